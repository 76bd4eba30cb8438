//! Braze's Connected Content credentials (`:basic_auth NAME`, `:auth_credentials NAME`), so a
//! client secret need not sit in a template. Secrets are written here and read only by the
//! renderer ([`Credentials`] as `leadwire_liquid::CredentialStore`) and the redactor;
//! every listing returns [`CredentialInfo`], which has no secret in it.

use std::time::SystemTime;

use leadwire_liquid::{CredentialStore, TokenCredential};
use leadwire_store::{CredentialKind, CredentialRow, Store};
use serde_json::{Value as Json, json};

use crate::WebhookError;
use crate::sealed::SecretKey;

/// A credential to save. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum NewCredential {
    /// `:basic_auth NAME` sends `Authorization: Basic base64(username:password)`.
    Basic {
        name: String,
        username: String,
        password: String,
    },
    /// `:auth_credentials NAME` sends these headers, only to `allowed_domain` when set.
    Token {
        name: String,
        headers: Vec<(String, String)>,
        allowed_domain: Option<String>,
    },
}

impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NewCredential::Basic { name, username, .. } => f
                .debug_struct("Basic")
                .field("name", name)
                .field("username", username)
                .finish_non_exhaustive(),
            NewCredential::Token { name, .. } => f
                .debug_struct("Token")
                .field("name", name)
                .finish_non_exhaustive(),
        }
    }
}

impl NewCredential {
    pub fn name(&self) -> &str {
        match self {
            NewCredential::Basic { name, .. } | NewCredential::Token { name, .. } => name,
        }
    }

    fn check(&self) -> Result<(), WebhookError> {
        let name = self.name();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(WebhookError::Invalid(format!(
                "credential name '{name}' must be letters, digits, '_', '-' or '.' (it is written after :basic_auth in a template)"
            )));
        }
        match self {
            NewCredential::Basic { password, .. } if password.is_empty() => Err(
                WebhookError::Invalid("a basic credential needs a 'password'".into()),
            ),
            NewCredential::Token { headers, .. } if headers.is_empty() => Err(
                WebhookError::Invalid("a token credential needs at least one header".into()),
            ),
            _ => Ok(()),
        }
    }
}

/// What may be shown about a credential: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    pub name: String,
    /// `basic` or `token`.
    pub kind: &'static str,
    pub username: Option<String>,
    /// The header names a token credential sends (not their values).
    pub header_names: Vec<String>,
    pub allowed_domain: Option<String>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

impl CredentialInfo {
    pub fn to_json(&self) -> Json {
        json!({
            "name": self.name,
            "type": self.kind,
            "username": self.username,
            "header_names": self.header_names,
            "allowed_domain": self.allowed_domain,
            "created_at": crate::templates::rfc3339(self.created_at),
            "updated_at": crate::templates::rfc3339(self.updated_at),
        })
    }
}

/// The credentials, over the store. With a key, secrets (a basic credential's password, a token
/// credential's header values) are sealed before they reach the store and opened when read.
pub struct Credentials {
    store: Store,
    key: Option<SecretKey>,
}

fn info(row: CredentialRow) -> CredentialInfo {
    CredentialInfo {
        kind: row.kind.as_str(),
        header_names: row.headers.into_iter().map(|(k, _)| k).collect(),
        name: row.name,
        username: row.username,
        allowed_domain: row.allowed_domain,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

impl Credentials {
    pub(crate) fn new(store: Store, key: Option<SecretKey>) -> Credentials {
        Credentials { store, key }
    }

    fn seal(&self, row: &mut CredentialRow) {
        let Some(key) = &self.key else { return };
        if let Some(secret) = &mut row.secret {
            *secret = key.seal(secret);
        }
        for (_, value) in &mut row.headers {
            *value = key.seal(value);
        }
    }

    /// The row with its secrets in clear; an error names the credential and what to do.
    fn open(&self, mut row: CredentialRow) -> Result<CredentialRow, WebhookError> {
        let Some(key) = &self.key else {
            return Ok(row);
        };
        let name = row.name.clone();
        let open = |value: &str| {
            key.open(value)
                .map_err(|e| WebhookError::Invalid(format!("credential '{name}': {e}")))
        };
        if let Some(secret) = &mut row.secret {
            *secret = open(secret)?;
        }
        for (_, value) in &mut row.headers {
            *value = open(value)?;
        }
        Ok(row)
    }

    /// Seals the secrets saved in clear (before a key was configured); returns how many
    /// credentials changed.
    pub(crate) async fn seal_plaintext(&self) -> Result<usize, WebhookError> {
        if self.key.is_none() {
            return Ok(0);
        }
        let rows = self.store.read(|tx| tx.credentials()).await?;
        let mut sealed = 0;
        for row in rows {
            let plain = row.secret.as_deref().is_some_and(SecretKey::is_plain)
                || row.headers.iter().any(|(_, v)| SecretKey::is_plain(v));
            if !plain {
                continue;
            }
            let mut row = self.open(row)?;
            self.seal(&mut row);
            self.store
                .transact(move |tx| tx.put_credential(&row))
                .await?;
            sealed += 1;
        }
        Ok(sealed)
    }

    /// Creates or replaces a credential.
    pub(crate) async fn save(
        &self,
        credential: &NewCredential,
    ) -> Result<CredentialInfo, WebhookError> {
        credential.check()?;
        let row = match credential.clone() {
            NewCredential::Basic {
                name,
                username,
                password,
            } => CredentialRow {
                name,
                kind: CredentialKind::Basic,
                username: Some(username),
                secret: Some(password),
                headers: Vec::new(),
                allowed_domain: None,
                created_at: SystemTime::now(),
                updated_at: SystemTime::now(),
            },
            NewCredential::Token {
                name,
                headers,
                allowed_domain,
            } => CredentialRow {
                name,
                kind: CredentialKind::Token,
                username: None,
                secret: None,
                headers,
                allowed_domain,
                created_at: SystemTime::now(),
                updated_at: SystemTime::now(),
            },
        };
        let name = row.name.clone();
        let mut row = row;
        self.seal(&mut row);
        let saved = self
            .store
            .transact(move |tx| {
                tx.put_credential(&row)?;
                tx.credential(&name)
            })
            .await?;
        saved
            .map(info)
            .ok_or_else(|| WebhookError::Database("the saved credential vanished".into()))
    }

    pub(crate) async fn list(&self) -> Result<Vec<CredentialInfo>, WebhookError> {
        let rows = self.store.read(|tx| tx.credentials()).await?;
        Ok(rows.into_iter().map(info).collect())
    }

    /// Every secret value (passwords, token header values), for the redactor.
    pub(crate) async fn secrets(&self) -> Result<Vec<String>, WebhookError> {
        let rows = self.store.read(|tx| tx.credentials()).await?;
        let mut out = Vec::new();
        for row in rows {
            let row = self.open(row)?;
            out.extend(row.secret);
            out.extend(row.headers.into_iter().map(|(_, v)| {
                // `Bearer abc` is redacted as `abc` too.
                v.split_once(' ').map_or(v.clone(), |(_, t)| t.to_owned())
            }));
        }
        Ok(out)
    }

    fn lookup(&self, name: &str) -> Option<CredentialRow> {
        let row = match self.store.read_blocking(|tx| tx.credential(name)) {
            Ok(row) => row?,
            Err(e) => {
                tracing::warn!(credential = name, error = %e, "reading a credential failed");
                return None;
            }
        };
        match self.open(row) {
            Ok(row) => Some(row),
            Err(e) => {
                tracing::error!(credential = name, error = %e, "a credential cannot be opened");
                None
            }
        }
    }
}

impl CredentialStore for Credentials {
    fn basic_auth(&self, name: &str) -> Option<(String, String)> {
        match self.lookup(name)? {
            CredentialRow {
                kind: CredentialKind::Basic,
                username: Some(u),
                secret: Some(p),
                ..
            } => Some((u, p)),
            _ => None,
        }
    }

    fn token_auth(&self, name: &str) -> Option<TokenCredential> {
        let row = self.lookup(name)?;
        (row.kind == CredentialKind::Token).then_some(TokenCredential {
            headers: row.headers,
            allowed_domain: row.allowed_domain,
        })
    }
}
