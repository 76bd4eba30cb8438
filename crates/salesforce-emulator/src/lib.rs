//! A local Salesforce Sales Cloud: OAuth 2.0 client credentials and the Lead REST API, faithful down to
//! status codes, headers and message texts, with fault injection for reliability tests.
//!
//! Layout: a pure core (`id`, `timestamp`, `schema`, `lead`, `soql`, `limits`, `auth`, `faults`, `store`,
//! `api_error`, `config`) that knows nothing of HTTP, sockets or files; and the shell (`http`, `tls`,
//! `persist`, `cli`) that serves it over HTTP/HTTPS, persists it and offers the command line.
//!
//! Start it in-process (tests of other crates do this):
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use leadwire_salesforce_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::loopback_with_https()).await?;
//! let base = emulator.http_url().expect("HTTP listener configured");
//! let token = emulator.issue_access_token();
//! // … POST {base}/services/data/v60.0/sobjects/Lead/ with `Authorization: Bearer {token}` …
//! assert_eq!(emulator.lead_count(), 0);
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! This crate must not depend on other leadwire crates: it stands for Salesforce, outside our system.

pub mod api_error;
pub mod auth;
pub mod cli;
pub mod config;
pub mod faults;
mod http;
pub mod id;
pub mod lead;
pub mod limits;
mod persist;
pub mod schema;
pub mod soql;
pub mod store;
pub mod timestamp;
mod tls;

pub use config::{ConfigError, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorConfig};
pub use faults::{FaultKind, FaultSettings, Share};
pub use http::{Emulator, RequestLogEntry, RunningEmulator, StartError};
pub use id::SalesforceId;
