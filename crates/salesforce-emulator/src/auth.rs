//! Connected apps and access tokens: the client-credentials grant's checks and answers, session
//! timeout (refreshed on use once half of it has passed, as Salesforce does), revocation, and periodic
//! revocation for fault tests. Pure: callers pass the time and fresh random token text; no HTTP here.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::timestamp::Millis;

/// A connected app's consumer key and secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedApp {
    pub client_id: String,
    pub client_secret: String,
}

/// An OAuth error as the token endpoint returns it: HTTP 400 `{"error","error_description"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    pub error: &'static str,
    pub error_description: &'static str,
}

impl OAuthError {
    pub const UNKNOWN_CLIENT: OAuthError = OAuthError {
        error: "invalid_client_id",
        error_description: "client identifier invalid",
    };
    pub const WRONG_SECRET: OAuthError = OAuthError {
        error: "invalid_client",
        error_description: "invalid client credentials",
    };
    pub const UNSUPPORTED_GRANT: OAuthError = OAuthError {
        error: "unsupported_grant_type",
        error_description: "grant type not supported",
    };
    pub const MISSING_GRANT: OAuthError = OAuthError {
        error: "invalid_request",
        error_description: "grant type is missing",
    };
}

/// Finds the app and checks its secret.
pub fn authenticate_client<'a>(
    apps: &'a [ConnectedApp],
    client_id: &str,
    client_secret: &str,
) -> Result<&'a ConnectedApp, OAuthError> {
    let app = apps
        .iter()
        .find(|app| app.client_id == client_id)
        .ok_or(OAuthError::UNKNOWN_CLIENT)?;
    // Not constant-time: this is a local test double, not a security boundary.
    if app.client_secret == client_secret {
        Ok(app)
    } else {
        Err(OAuthError::WRONG_SECRET)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub client_id: String,
    pub issued: Millis,
    pub last_active: Millis,
}

/// Why a bearer token is not accepted; all become 401 INVALID_SESSION_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("no such session")]
    Unknown,
    #[error("the session timed out")]
    Expired,
    #[error("the session was revoked")]
    Revoked,
}

/// Live sessions by token.
#[derive(Debug, Clone)]
pub struct Sessions {
    by_token: HashMap<String, Session>,
    timeout_millis: i64,
    revocation: Option<PeriodicRevocation>,
}

/// All tokens issued before the latest multiple of `period` since `origin` are revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodicRevocation {
    pub origin: Millis,
    pub period_millis: i64,
}

impl PeriodicRevocation {
    fn epoch(&self, at: Millis) -> i64 {
        (at.0 - self.origin.0).div_euclid(self.period_millis.max(1))
    }
}

/// A token handed out by the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub access_token: String,
    pub issued: Millis,
}

impl Sessions {
    pub fn new(timeout_millis: i64) -> Self {
        Sessions {
            by_token: HashMap::new(),
            timeout_millis,
            revocation: None,
        }
    }

    pub fn set_periodic_revocation(&mut self, revocation: Option<PeriodicRevocation>) {
        self.revocation = revocation;
    }

    /// Salesforce hands a live session's token out again on a repeated client-credentials call.
    pub fn grant(
        &mut self,
        client_id: &str,
        now: Millis,
        fresh_token: impl FnOnce() -> String,
    ) -> Grant {
        let live = self
            .by_token
            .iter()
            .filter(|(_, session)| {
                session.client_id == client_id && self.check(session, now).is_ok()
            })
            .max_by_key(|(_, session)| session.issued)
            .map(|(token, session)| Grant {
                access_token: token.clone(),
                issued: session.issued,
            });
        if let Some(grant) = live {
            return grant;
        }
        let access_token = fresh_token();
        self.by_token.insert(
            access_token.clone(),
            Session {
                client_id: client_id.to_owned(),
                issued: now,
                last_active: now,
            },
        );
        Grant {
            access_token,
            issued: now,
        }
    }

    fn check(&self, session: &Session, now: Millis) -> Result<(), SessionError> {
        if let Some(revocation) = self.revocation
            && revocation.epoch(now) != revocation.epoch(session.issued)
        {
            return Err(SessionError::Revoked);
        }
        if now.0 - session.last_active.0 > self.timeout_millis {
            return Err(SessionError::Expired);
        }
        Ok(())
    }

    /// Checks a bearer token and records the activity; returns the app it belongs to.
    pub fn authenticate(&mut self, token: &str, now: Millis) -> Result<String, SessionError> {
        let session = self.by_token.get(token).ok_or(SessionError::Unknown)?;
        if let Err(error) = self.check(session, now) {
            self.by_token.remove(token);
            return Err(error);
        }
        let timeout = self.timeout_millis;
        let session = self.by_token.get_mut(token).ok_or(SessionError::Unknown)?;
        // The "last active" time only moves once half the timeout has passed.
        if now.0 - session.last_active.0 > timeout / 2 {
            session.last_active = now;
        }
        Ok(session.client_id.clone())
    }

    pub fn revoke(&mut self, token: &str) -> bool {
        self.by_token.remove(token).is_some()
    }

    pub fn revoke_all(&mut self) -> usize {
        let count = self.by_token.len();
        self.by_token.clear();
        count
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    pub fn export(&self) -> Vec<(String, Session)> {
        self.by_token
            .iter()
            .map(|(token, session)| (token.clone(), session.clone()))
            .collect()
    }

    pub fn import(&mut self, sessions: Vec<(String, Session)>) {
        self.by_token.extend(sessions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps() -> Vec<ConnectedApp> {
        vec![ConnectedApp {
            client_id: "id".into(),
            client_secret: "secret".into(),
        }]
    }

    #[test]
    fn checks_client_credentials() {
        assert!(authenticate_client(&apps(), "id", "secret").is_ok());
        assert_eq!(
            authenticate_client(&apps(), "nope", "secret"),
            Err(OAuthError::UNKNOWN_CLIENT)
        );
        assert_eq!(
            authenticate_client(&apps(), "id", "wrong"),
            Err(OAuthError::WRONG_SECRET)
        );
    }

    #[test]
    fn repeats_the_live_token_and_expires_idle_sessions() {
        let mut sessions = Sessions::new(1_000);
        let first = sessions.grant("id", Millis(0), || "t1".into());
        let again = sessions.grant("id", Millis(10), || "t2".into());
        assert_eq!(first, again);
        assert_eq!(sessions.authenticate("t1", Millis(900)), Ok("id".into()));
        // Activity at 900 (> half the timeout) moved last_active, so 1_800 is still live.
        assert!(sessions.authenticate("t1", Millis(1_800)).is_ok());
        assert_eq!(
            sessions.authenticate("t1", Millis(3_000)),
            Err(SessionError::Expired)
        );
        assert_eq!(
            sessions.authenticate("t1", Millis(3_001)),
            Err(SessionError::Unknown)
        );
    }

    #[test]
    fn periodic_revocation_ends_sessions_at_period_boundaries() {
        let mut sessions = Sessions::new(1_000_000);
        sessions.set_periodic_revocation(Some(PeriodicRevocation {
            origin: Millis(0),
            period_millis: 100,
        }));
        sessions.grant("id", Millis(150), || "t".into());
        assert!(sessions.authenticate("t", Millis(199)).is_ok());
        assert_eq!(
            sessions.authenticate("t", Millis(200)),
            Err(SessionError::Revoked)
        );
        let next = sessions.grant("id", Millis(201), || "u".into());
        assert_eq!(next.access_token, "u");
    }
}
