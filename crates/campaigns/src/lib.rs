//! Campaigns as Braze runs them, as pure functions: which trigger a campaign listens to, whether a
//! user is in its audience ([`filter`]), whether they may receive it again (re-eligibility), and when
//! a send may go out under the delivery speed limit.
//!
//! No clock reads, no I/O: the caller passes `now`, the profile and the campaign's history. The
//! engine that consumes the trigger feed and enqueues sends builds on this; this crate must not know
//! SQL, HTTP or how webhooks are delivered.

pub mod campaign;
pub mod filter;

pub use campaign::{CampaignSpec, CampaignStatus, RateLimiter, TriggerSpec, eligible};
pub use filter::{Filter, FilterError, FilterSpec};
