//! What reads the trigger feed: one [`runner`] for every feed consumer (one position per consumer
//! in the store, one loop woken by the store's feed signal, one error type, one pass report), and
//! the campaign engine, [`campaigns::CampaignEngine`], as one of its consumers (the Canvas engine
//! in `leadwire-canvas` is the other).
//!
//! A pass is one store transaction: the consumer's triggers after its position, what it decides
//! (sends enqueued, journeys moved), and the new position commit together or not at all, so a
//! trigger is consumed exactly once across crashes and restarts.
//!
//! Knows the store's transaction API and the pure rules of `leadwire-campaigns`; must not speak
//! HTTP, write SQL or deliver anything itself.

pub mod campaigns;
pub mod runner;
pub mod specs;

pub use campaigns::{CampaignEngine, CampaignRecord, Recipient};
pub use runner::{EngineError, FeedConsumer, FeedRunner, PassReport};
pub use specs::SpecCache;

use leadwire_profiles::{Identifier, Profile};

/// How a job names its user: the external id when there is one (it survives a merge), else the
/// braze id.
pub fn user_identifier(profile: &Profile) -> Identifier {
    match &profile.external_id {
        Some(id) => Identifier::ExternalId(id.clone()),
        None => Identifier::BrazeId(profile.braze_id.clone()),
    }
}

/// A new dispatch id (`dsp_…`), as Braze returns for an API-triggered send.
pub fn dispatch_id() -> String {
    format!("dsp_{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    // Enough uniqueness for dispatch ids without another dependency: time and a counter.
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}
