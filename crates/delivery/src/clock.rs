//! Where the shell reads the time. The pure parts ([`circuit`](crate::circuit),
//! [`retry`](crate::retry)) take instants as arguments; the [`Sender`](crate::sender::Sender),
//! the [`Worker`](crate::worker::Worker) (through its sender) and the
//! [`MemoryQueue`](crate::memory::MemoryQueue) read them from a [`Clock`], so a test can move time
//! by hand ([`ManualClock`]) instead of sleeping and hoping the machine keeps up.
//!
//! Only the delivery core's own time decisions go through it (cool-downs, due times, leases,
//! `Retry-After` dates, log timestamps). Network time limits (the request timeout, waiting for a
//! host permit) stay on tokio's timer: they bound real I/O.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub trait Clock: Send + Sync + 'static {
    /// Monotonic time: circuit windows and cool-downs, due times and leases.
    fn now(&self) -> Instant;
    /// Calendar time: retry times handed to a queue, `Retry-After` dates, activity timestamps.
    fn system_now(&self) -> SystemTime;
}

/// The machine's clocks (the default everywhere).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The default clock, shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that stands still until told to move; both readings move together. Starts at the
/// machine's current time, so real `Retry-After` dates still compare sensibly.
pub struct ManualClock {
    start: Instant,
    start_system: SystemTime,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock {
            start: Instant::now(),
            start_system: SystemTime::now(),
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    fn elapsed(&self) -> std::sync::MutexGuard<'_, Duration> {
        self.elapsed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn advance(&self, by: Duration) {
        *self.elapsed() += by;
    }

    /// Moves forward to `at`; never backwards (a monotonic clock).
    pub fn advance_to(&self, at: Instant) {
        let target = at.saturating_duration_since(self.start);
        let mut elapsed = self.elapsed();
        *elapsed = (*elapsed).max(target);
    }

    /// How far the clock has been moved since it was made.
    pub fn moved(&self) -> Duration {
        *self.elapsed()
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("moved", &self.moved())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.elapsed()
    }
    fn system_now(&self) -> SystemTime {
        self.start_system + *self.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_never_back() {
        let clock = ManualClock::new();
        let (t0, s0) = (clock.now(), clock.system_now());
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.now() - t0, Duration::from_millis(250));
        assert_eq!(clock.system_now(), s0 + Duration::from_millis(250));
        clock.advance_to(t0 + Duration::from_secs(1));
        assert_eq!(clock.now(), t0 + Duration::from_secs(1));
        clock.advance_to(t0);
        assert_eq!(clock.now(), t0 + Duration::from_secs(1), "not backwards");
        assert_eq!(clock.moved(), Duration::from_secs(1));
    }
}
