//! Who may use the dashboard and what they may do: roles mapped onto the REST API's
//! [`Permission`]s, argon2 password hashes, sessions (a random token in an HttpOnly,
//! SameSite=Strict cookie; the store keeps only its SHA-256) and CSRF tokens derived from the
//! session, checked on every form post.

use std::fmt;
use std::str::FromStr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use leadwire_api::Permission;
use leadwire_store::{DashboardUserRow, Store, StoreError, token_hash};
use sha2::Digest as _;

/// What a dashboard user may do. Each role is a set of the REST API's permissions, so a
/// dashboard action requires exactly what its endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reads everything but credentials' secrets (which nobody can read).
    Viewer,
    /// A viewer who also edits templates, campaigns and Canvases and sends tests.
    Editor,
    /// Every permission: credentials too.
    Admin,
}

/// What every role may do: read.
const READ: &[Permission] = &[
    Permission::UsersExportIds,
    Permission::TriggersRead,
    Permission::CampaignsRead,
    Permission::CanvasRead,
    Permission::TemplatesRead,
    Permission::CredentialsRead,
    Permission::ActivityRead,
];

/// What an editor may do besides reading.
const EDIT: &[Permission] = &[
    Permission::UsersTrack,
    Permission::CampaignsWrite,
    Permission::CampaignsTriggerSend,
    Permission::CanvasWrite,
    Permission::CanvasTriggerSend,
    Permission::TemplatesWrite,
];

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// The permissions the role carries.
    pub fn permissions(self) -> Vec<Permission> {
        match self {
            Role::Viewer => READ.to_vec(),
            Role::Editor => [READ, EDIT].concat(),
            Role::Admin => Permission::ALL.to_vec(),
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        match self {
            Role::Viewer => READ.contains(&permission),
            Role::Editor => READ.contains(&permission) || EDIT.contains(&permission),
            Role::Admin => true,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}'; use viewer, editor or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Why a user could not be created or signed in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters long")]
    WeakPassword,
    #[error("'{0}' is not an email address")]
    BadEmail(String),
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub const MIN_PASSWORD_CHARS: usize = 12;

/// The argon2id PHC string for a password, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string (a malformed one matches nothing).
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Emails are compared as written but for case and surrounding space.
pub fn normalize_email(email: &str) -> Result<String, AuthError> {
    let email = email.trim().to_lowercase();
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(AuthError::BadEmail(email))
    }
}

/// Creates a dashboard user (`leadwire dashboard-users create`); returns the user's id.
pub async fn create_user(
    store: &Store,
    email: &str,
    role: Role,
    password: &str,
) -> Result<String, AuthError> {
    let email = normalize_email(email)?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::WeakPassword);
    }
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))??;
    let id = store
        .transact(move |tx| tx.create_dashboard_user(&email, &hash, role.as_str()))
        .await?;
    Ok(id)
}

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
}

impl User {
    fn of(row: DashboardUserRow) -> Option<User> {
        match row.role.parse() {
            Ok(role) => Some(User {
                id: row.id,
                email: row.email,
                role,
            }),
            Err(e) => {
                tracing::warn!(user = %row.email, error = %e, "dashboard user has an unknown role; refusing the session");
                None
            }
        }
    }
}

/// A checked session: its user and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
    /// The token's hash (what signing out deletes).
    pub(crate) token_hash: String,
}

/// The CSRF token of the session whose cookie holds `token`: derived, so nothing more is
/// stored, and unguessable without the cookie.
pub fn csrf_for(token: &str) -> String {
    hex(&sha2::Sha256::digest(
        format!("leadwire-dashboard-csrf\0{token}").as_bytes(),
    ))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token (256 bits), as the cookie carries it.
pub fn new_token() -> String {
    hex(&rand::random::<[u8; 32]>())
}

/// Equal without leaking where they differ through timing.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Failed sign-ins per email, kept by this node: after [`MAX_FAILURES`] within
/// [`FAILURE_WINDOW`] the email is refused without checking the password until the window ends,
/// so a password cannot be guessed at argon2's speed.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: std::sync::Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>,
}

pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl Throttle {
    /// Whether `email` may try now.
    pub fn allows(&self, email: &str, now: std::time::Instant) -> bool {
        let Ok(map) = self.failures.lock() else {
            return true;
        };
        match map.get(email) {
            Some((n, since)) => *n < MAX_FAILURES || now.duration_since(*since) >= FAILURE_WINDOW,
            None => true,
        }
    }

    /// Counts a failure (a new window when the last one ended).
    pub fn failed(&self, email: &str, now: std::time::Instant) {
        if let Ok(mut map) = self.failures.lock() {
            // Old windows go, so the map holds only recent failures.
            map.retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
            let entry = map.entry(email.to_owned()).or_insert((0, now));
            entry.0 += 1;
        }
    }

    /// A success clears the email's failures.
    pub fn succeeded(&self, email: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(email);
        }
    }
}

/// A PHC string verified when the email is unknown, so an unknown email takes as long as a
/// wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("leadwire decoy password").unwrap_or_default())
}

/// Checks a password; on success saves a session ending at `expires_at` and returns its token
/// (for the cookie) and the user. `None` for an unknown email or a wrong password alike.
pub async fn sign_in(
    store: &Store,
    email: &str,
    password: &str,
    expires_at: DateTime<Utc>,
) -> Result<Option<(String, User)>, AuthError> {
    let Ok(email) = normalize_email(email) else {
        return Ok(None);
    };
    let row = store
        .read(move |tx| tx.dashboard_user_by_email(&email))
        .await?;
    let password = password.to_owned();
    let (row, ok) = tokio::task::spawn_blocking(move || match row {
        Some(row) => {
            let ok = verify_password(&password, &row.password_hash);
            (Some(row), ok)
        }
        None => {
            verify_password(&password, decoy_hash());
            (None, false)
        }
    })
    .await
    .map_err(|e| AuthError::Hash(e.to_string()))?;
    let Some(user) = row.filter(|_| ok).and_then(User::of) else {
        return Ok(None);
    };
    let token = new_token();
    let hash = token_hash(&token);
    let user_id = user.id.clone();
    store
        .transact(move |tx| tx.create_dashboard_session(&hash, &user_id, expires_at))
        .await?;
    Ok(Some((token, user)))
}

/// The live session a cookie's token names, as of `now`.
pub async fn session(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Session>, StoreError> {
    let hash = token_hash(token);
    let key = hash.clone();
    let row = store
        .read(move |tx| tx.dashboard_session(&key, now))
        .await?;
    Ok(row.and_then(|r| User::of(r.user)).map(|user| Session {
        user,
        csrf: csrf_for(token),
        token_hash: hash,
    }))
}

/// Ends the session (its cookie no longer signs anyone in).
pub async fn sign_out(store: &Store, session: &Session) -> Result<(), StoreError> {
    let hash = session.token_hash.clone();
    store
        .transact(move |tx| tx.delete_dashboard_session(&hash))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_sets_of_the_apis_permissions() {
        for p in Permission::ALL {
            assert!(Role::Admin.allows(*p), "{p}");
        }
        for p in Role::Viewer.permissions() {
            assert!(
                Role::Editor.allows(p),
                "an editor can do what a viewer can: {p}"
            );
            assert!(
                !p.as_str().ends_with(".write") && !p.as_str().ends_with(".send"),
                "a viewer only reads: {p}"
            );
        }
        assert!(Role::Editor.allows(Permission::TemplatesWrite));
        assert!(!Role::Editor.allows(Permission::CredentialsWrite));
        assert!(!Role::Viewer.allows(Permission::TemplatesWrite));
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            for p in Permission::ALL {
                assert_eq!(r.allows(*p), r.permissions().contains(p), "{r} {p}");
            }
        }
        assert_eq!("owner".parse::<Role>(), Err(UnknownRole("owner".into())));
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password("correct horse battery").expect("hashes");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        let again = hash_password("correct horse battery").expect("hashes");
        assert_ne!(hash, again, "a fresh salt each time");
    }

    #[test]
    fn csrf_tokens_follow_the_session_and_compare_whole() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(csrf_for(&a), csrf_for(&a));
        assert_ne!(csrf_for(&a), csrf_for(&b));
        assert!(same(&csrf_for(&a), &csrf_for(&a)));
        assert!(!same(&csrf_for(&a), &csrf_for(&b)));
        assert!(!same("abc", "abcd"));
    }

    #[test]
    fn the_throttle_refuses_after_repeated_failures_until_the_window_ends() {
        let t = Throttle::default();
        let start = std::time::Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(t.allows("a@example.com", start));
            t.failed("a@example.com", start);
        }
        assert!(!t.allows("a@example.com", start));
        assert!(t.allows("b@example.com", start), "per email");
        assert!(t.allows("a@example.com", start + FAILURE_WINDOW));
        t.succeeded("a@example.com");
        assert!(t.allows("a@example.com", start));
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("  Ana@Example.COM ").expect("valid"),
            "ana@example.com"
        );
        assert!(normalize_email("ana").is_err());
        assert!(normalize_email("@example.com").is_err());
        assert!(normalize_email("ana@localhost").is_err());
    }
}
