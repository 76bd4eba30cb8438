//! Braze's Connected Content credentials (`:basic_auth NAME`, `:auth_credentials NAME`), so a
//! client secret need not sit in a template. Secrets are written here and read only by the
//! renderer ([`SqliteCredentials`] as `leadwire_liquid::CredentialStore`) and the redactor;
//! every listing returns [`CredentialInfo`], which has no secret in it.

use std::sync::Arc;
use std::time::SystemTime;

use leadwire_liquid::{CredentialStore, TokenCredential};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value as Json, json};

use crate::WebhookError;
use crate::db::{Db, from_millis, millis};

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
            "kind": self.kind,
            "username": self.username,
            "header_names": self.header_names,
            "allowed_domain": self.allowed_domain,
            "created_at": crate::templates::rfc3339(self.created_at),
            "updated_at": crate::templates::rfc3339(self.updated_at),
        })
    }
}

/// The credentials table.
pub struct SqliteCredentials {
    db: Arc<Db>,
}

impl SqliteCredentials {
    pub(crate) fn new(db: Arc<Db>) -> SqliteCredentials {
        SqliteCredentials { db }
    }

    /// Creates or replaces a credential.
    pub(crate) fn save(&self, credential: &NewCredential) -> Result<CredentialInfo, WebhookError> {
        credential.check()?;
        let now = millis(SystemTime::now());
        let (kind, username, secret, headers, domain) = match credential {
            NewCredential::Basic {
                username, password, ..
            } => (
                "basic",
                Some(username.clone()),
                Some(password.clone()),
                "[]".to_owned(),
                None,
            ),
            NewCredential::Token {
                headers,
                allowed_domain,
                ..
            } => (
                "token",
                None,
                None,
                Json::Array(headers.iter().map(|(k, v)| json!([k, v])).collect()).to_string(),
                allowed_domain.clone(),
            ),
        };
        let conn = self.db.lock();
        conn.execute(
            "INSERT INTO webhook_credentials (name, kind, username, secret, headers, allowed_domain, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
             ON CONFLICT(name) DO UPDATE SET kind = ?2, username = ?3, secret = ?4, headers = ?5, allowed_domain = ?6, updated_at = ?7",
            params![credential.name(), kind, username, secret, headers, domain, now],
        )?;
        drop(conn);
        self.list()?
            .into_iter()
            .find(|c| c.name == credential.name())
            .ok_or_else(|| WebhookError::Database("the saved credential vanished".into()))
    }

    pub(crate) fn list(&self) -> Result<Vec<CredentialInfo>, WebhookError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare(
            "SELECT name, kind, username, headers, allowed_domain, created_at, updated_at FROM webhook_credentials ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            let kind: String = r.get(1)?;
            let headers: String = r.get(3)?;
            Ok(CredentialInfo {
                name: r.get(0)?,
                kind: if kind == "basic" { "basic" } else { "token" },
                username: r.get(2)?,
                header_names: header_pairs(&headers).into_iter().map(|(k, _)| k).collect(),
                allowed_domain: r.get(4)?,
                created_at: from_millis(r.get(5)?),
                updated_at: from_millis(r.get(6)?),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Every secret value (passwords, token header values), for the redactor.
    pub(crate) fn secrets(&self) -> Result<Vec<String>, WebhookError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare("SELECT secret, headers FROM webhook_credentials")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (secret, headers) = row?;
            out.extend(secret);
            out.extend(header_pairs(&headers).into_iter().map(|(_, v)| {
                // `Bearer abc` is redacted as `abc` too.
                v.split_once(' ').map_or(v.clone(), |(_, t)| t.to_owned())
            }));
        }
        Ok(out)
    }
}

fn header_pairs(text: &str) -> Vec<(String, String)> {
    let Ok(Json::Array(items)) = serde_json::from_str::<Json>(text) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|p| {
            Some((
                p.get(0)?.as_str()?.to_owned(),
                p.get(1)?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

impl CredentialStore for SqliteCredentials {
    fn basic_auth(&self, name: &str) -> Option<(String, String)> {
        let conn = self.db.lock();
        let row = conn
            .query_row(
                "SELECT username, secret FROM webhook_credentials WHERE name = ?1 AND kind = 'basic'",
                [name],
                |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional();
        match row {
            Ok(Some((Some(u), Some(p)))) => Some((u, p)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(credential = name, error = %e, "reading a credential failed");
                None
            }
        }
    }

    fn token_auth(&self, name: &str) -> Option<TokenCredential> {
        let conn = self.db.lock();
        let row = conn
            .query_row(
                "SELECT headers, allowed_domain FROM webhook_credentials WHERE name = ?1 AND kind = 'token'",
                [name],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional();
        match row {
            Ok(Some((headers, allowed_domain))) => Some(TokenCredential {
                headers: header_pairs(&headers),
                allowed_domain,
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(credential = name, error = %e, "reading a credential failed");
                None
            }
        }
    }
}
