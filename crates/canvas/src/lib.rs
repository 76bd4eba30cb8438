//! Canvas: multi-step journeys as Braze runs them (reference §6).
//!
//! - [`spec`]: the Canvas as written in YAML or JSON, and `compile()`, which checks the graph (no
//!   dangling or unreachable step, no cycle without a wait, at most 200 steps) with errors that
//!   name the step. Pure.
//! - [`journey`]: the step state machine, `advance()`: one user's journey moved as far as it can go,
//!   returning effects (webhooks to enqueue, user updates to apply) and whether the user waits or
//!   leaves. Pure: no clock, no I/O.
//! - [`engine`]: [`CanvasEngine`], a consumer of the feed runner (`leadwire-engine`) that keeps
//!   every journey durable in the store, consumes the trigger feed exactly once and enqueues
//!   webhooks and applies User Updates in the same transaction. It knows the store's transaction
//!   API; it must not speak HTTP or write SQL.
//!
//! The pure modules must not know SQL, HTTP or how webhooks are delivered.

pub mod engine;
pub mod journey;
pub mod spec;

pub use engine::{CanvasEngine, CanvasRecord, EntryRecipient, JourneyRow};
pub use journey::{Advanced, Effect, ExitReason, Journey, Status, UpdateOp, Wait, advance, enter};
pub use leadwire_engine::{EngineError, PassReport};
pub use spec::{CanvasError, CanvasSpec, CanvasStatus, CompiledCanvas, StepKind, StepSpec};

#[cfg(test)]
mod unit_tests;
