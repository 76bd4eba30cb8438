//! One integration binary: deliveries over real HTTP, against the in-process Salesforce emulator
//! (HTTPS, trusting its CA) and a scripted axum server for exact statuses.

mod emulator;
mod helpers;
mod salesforce_faults;
mod statuses;
