//! Canvas: multi-step journeys as Braze runs them (reference §6).
//!
//! - [`spec`]: the Canvas as written in YAML or JSON, and `compile()`, which checks the graph (no
//!   dangling or unreachable step, no cycle without a wait, at most 200 steps) with errors that
//!   name the step. Pure.
//! - [`journey`]: the step state machine, `advance()`: one user's journey moved as far as it can go,
//!   returning effects (webhooks to enqueue, user updates to apply) and whether the user waits or
//!   leaves. Pure: no clock, no I/O.
//! - [`engine`]: [`CanvasEngine`], which keeps every journey durable in leadwire's SQLite file,
//!   consumes the trigger feed exactly once and enqueues webhooks in the same transaction. It knows
//!   SQL, the store's shared reads and the webhook queue's `enqueue`; it must not speak HTTP.
//!
//! The pure modules must not know SQL, HTTP or how webhooks are delivered.

pub mod engine;
pub mod journey;
pub mod spec;

pub use engine::{CanvasEngine, CanvasRecord, EngineError, EntryRecipient, PassReport};
pub use journey::{Advanced, Effect, ExitReason, Journey, Status, UpdateOp, Wait, advance, enter};
pub use spec::{CanvasError, CanvasSpec, CanvasStatus, CompiledCanvas, StepKind, StepSpec};

#[cfg(test)]
mod unit_tests;
