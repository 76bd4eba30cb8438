//! leadwire's webhook delivery core: from a compiled webhook template and a user to a request
//! received (or a terminal failure explained in the activity log), with Braze's retry rules.
//!
//! Pure parts: [`webhook`] (compile and render), [`retry`] (classification and backoff),
//! [`circuit`] (per-host breaker), [`ssrf`] (address classification), [`redact`]. The shell:
//! [`hostlimit`] (semaphores), [`sender`] (one HTTP attempt), [`worker`] (the loop over a
//! [`worker::JobQueue`]); the shell reads the time from a [`clock::Clock`], so tests move it by
//! hand.
//!
//! This crate must not depend on any storage: durable jobs, the activity log and profile
//! write-back are the [`worker::JobQueue`] (which takes the write-back with the completion) and [`worker::ActivitySink`]
//! traits, implemented by the store (and in memory here, for tests and the benchmark).

pub mod batch;
pub mod budget;
pub mod circuit;
pub mod clock;
pub mod hostlimit;
pub mod memory;
pub mod redact;
pub mod retry;
pub mod sender;
pub mod ssrf;
pub mod webhook;
pub mod worker;
