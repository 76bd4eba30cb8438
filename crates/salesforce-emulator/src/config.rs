//! Emulator configuration: what the CLI or a test asks for ([`EmulatorConfig`]), checked once into
//! [`ValidConfig`] at start. Knows nothing of HTTP or sockets beyond the addresses to bind.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::ConnectedApp;
use crate::faults::{FaultPlan, FaultPlanError, FaultSettings};
use crate::schema::{CustomFieldError, CustomFieldKind, CustomFieldSpec, LeadSchema};

/// The connected app every emulator has unless configured otherwise.
pub const DEFAULT_CLIENT_ID: &str = "leadwire-emulator-client-id";
pub const DEFAULT_CLIENT_SECRET: &str = "leadwire-emulator-client-secret";
/// Salesforce's default session timeout.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// Enterprise Edition's base daily allocation (Developer Edition has 15,000).
pub const DEFAULT_DAILY_REQUEST_LIMIT: u64 = 100_000;

/// Everything the emulator can be told at start.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Plain HTTP listener; `127.0.0.1:0` picks a free port.
    pub http_listen: Option<SocketAddr>,
    /// HTTPS listener with a generated certificate.
    pub https_listen: Option<SocketAddr>,
    /// Where to write the CA certificate (PEM) that clients must trust for HTTPS.
    pub ca_cert_out: Option<PathBuf>,
    pub connected_apps: Vec<ConnectedApp>,
    pub custom_fields: Vec<CustomFieldSpec>,
    /// Fields usable in upsert URLs; declared as text(255) if not among `custom_fields`.
    pub external_id_fields: Vec<String>,
    pub daily_request_limit: u64,
    pub session_timeout: Duration,
    /// The standard duplicate rule on Email, blocking (`DUPLICATES_DETECTED`).
    pub duplicate_rule_on_email: bool,
    pub faults: FaultSettings,
    /// Keep state (leads, usage, sessions) in this JSON file across restarts.
    pub state_file: Option<PathBuf>,
    /// How many requests the admin request log keeps.
    pub request_log_capacity: usize,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            https_listen: None,
            ca_cert_out: None,
            connected_apps: vec![ConnectedApp {
                client_id: DEFAULT_CLIENT_ID.to_owned(),
                client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            }],
            custom_fields: Vec::new(),
            external_id_fields: Vec::new(),
            daily_request_limit: DEFAULT_DAILY_REQUEST_LIMIT,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            duplicate_rule_on_email: false,
            faults: FaultSettings::default(),
            state_file: None,
            request_log_capacity: 10_000,
        }
    }
}

impl EmulatorConfig {
    /// HTTP and HTTPS on free loopback ports, default app: what other crates' tests want.
    pub fn loopback_with_https() -> Self {
        EmulatorConfig {
            https_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..Self::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("no listener: give an HTTP or an HTTPS address")]
    NoListener,
    #[error("no connected app: give at least one client id and secret")]
    NoConnectedApp,
    #[error("connected app `{0}` is configured twice")]
    DuplicateApp(String),
    #[error("connected app `{0}` has an empty client id or secret")]
    EmptyCredentials(String),
    #[error(transparent)]
    CustomField(#[from] CustomFieldError),
    #[error("invalid fault settings: {0}")]
    Faults(#[from] FaultPlanError),
    #[error("the daily request limit must be at least 1")]
    ZeroRequestLimit,
    #[error("the session timeout must be at least 1 second")]
    ZeroSessionTimeout,
}

/// Configuration that passed every check, with the Lead schema built.
#[derive(Debug, Clone)]
pub struct ValidConfig {
    pub http_listen: Option<SocketAddr>,
    pub https_listen: Option<SocketAddr>,
    pub ca_cert_out: Option<PathBuf>,
    pub connected_apps: Arc<[ConnectedApp]>,
    pub schema: Arc<LeadSchema>,
    pub daily_request_limit: u64,
    pub session_timeout: Duration,
    pub duplicate_rule_on_email: bool,
    pub faults: FaultPlan,
    pub state_file: Option<PathBuf>,
    pub request_log_capacity: usize,
}

impl TryFrom<EmulatorConfig> for ValidConfig {
    type Error = ConfigError;

    fn try_from(config: EmulatorConfig) -> Result<Self, Self::Error> {
        if config.http_listen.is_none() && config.https_listen.is_none() {
            return Err(ConfigError::NoListener);
        }
        if config.connected_apps.is_empty() {
            return Err(ConfigError::NoConnectedApp);
        }
        for (index, app) in config.connected_apps.iter().enumerate() {
            if app.client_id.is_empty() || app.client_secret.is_empty() {
                return Err(ConfigError::EmptyCredentials(app.client_id.clone()));
            }
            if config.connected_apps[..index]
                .iter()
                .any(|other| other.client_id == app.client_id)
            {
                return Err(ConfigError::DuplicateApp(app.client_id.clone()));
            }
        }
        if config.daily_request_limit == 0 {
            return Err(ConfigError::ZeroRequestLimit);
        }
        if config.session_timeout < Duration::from_secs(1) {
            return Err(ConfigError::ZeroSessionTimeout);
        }
        let mut custom_fields = config.custom_fields.clone();
        for name in &config.external_id_fields {
            match custom_fields
                .iter_mut()
                .find(|field| field.name.eq_ignore_ascii_case(name))
            {
                Some(field) => field.external_id = true,
                None => {
                    let mut field = CustomFieldSpec::parse(name)?;
                    field.kind = CustomFieldKind::Text { length: 255 };
                    field.external_id = true;
                    custom_fields.push(field);
                }
            }
        }
        let schema = LeadSchema::new(&custom_fields)?;
        let faults = FaultPlan::try_from(config.faults)?;
        Ok(ValidConfig {
            http_listen: config.http_listen,
            https_listen: config.https_listen,
            ca_cert_out: config.ca_cert_out,
            connected_apps: config.connected_apps.into(),
            schema: Arc::new(schema),
            daily_request_limit: config.daily_request_limit,
            session_timeout: config.session_timeout,
            duplicate_rule_on_email: config.duplicate_rule_on_email,
            faults,
            state_file: config.state_file,
            request_log_capacity: config.request_log_capacity.max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_external_ids_become_fields() {
        let config = EmulatorConfig {
            external_id_fields: vec!["Ext_Id__c".into()],
            ..EmulatorConfig::default()
        };
        let valid = ValidConfig::try_from(config).expect("valid");
        let index = valid.schema.lookup("ext_id__c").expect("declared");
        assert!(valid.schema.field(index).external_id);
    }

    #[test]
    fn rejects_bad_configs() {
        let no_apps = EmulatorConfig {
            connected_apps: vec![],
            ..EmulatorConfig::default()
        };
        assert!(matches!(
            ValidConfig::try_from(no_apps),
            Err(ConfigError::NoConnectedApp)
        ));
        let no_listener = EmulatorConfig {
            http_listen: None,
            ..EmulatorConfig::default()
        };
        assert!(matches!(
            ValidConfig::try_from(no_listener),
            Err(ConfigError::NoListener)
        ));
        let bad_ext = EmulatorConfig {
            external_id_fields: vec!["NotCustom".into()],
            ..EmulatorConfig::default()
        };
        assert!(matches!(
            ValidConfig::try_from(bad_ext),
            Err(ConfigError::CustomField(_))
        ));
    }
}
