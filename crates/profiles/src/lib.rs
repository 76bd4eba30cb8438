//! User profiles as Braze models them, and what changing them means.
//!
//! - [`track`] parses a `/users/track` body into typed, validated objects (parse, don't validate):
//!   a bad object becomes a minor error naming its array, index and field; the rest still apply.
//! - [`profile`] applies attribute objects, events and purchases to a [`Profile`] and returns the
//!   [`Trigger`]s the change raises (email added, attribute changed, event, purchase).
//!
//! Pure: no clock reads (the caller passes `now`), no I/O, no storage. The store and the API build on
//! this; this crate must not know about SQL, HTTP or campaigns.

pub mod identifier;
pub mod profile;
pub mod track;
pub mod trigger;

pub use identifier::{Identifier, UserAlias};
pub use profile::{ActionSummary, History, Profile, STANDARD_ATTRIBUTES};
pub use track::{
    AttributeObject, EventObject, MinorError, ParsedTrack, PurchaseObject, TrackError, parse_track,
};
pub use trigger::Trigger;
