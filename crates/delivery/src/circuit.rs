//! Per-host circuit breaker (Braze's unhealthy-host detection): a pure state machine over
//! injected `Instant`s. Closed until, within a sliding window, failures reach a count *and* a
//! share of attempts; then open (requests are not sent; Braze simulates `598`) for a cool-down;
//! then half-open, letting one probe through: success closes it, failure reopens it.
//!
//! The window is kept as a ring of time buckets (a tenth of the window each), so memory is fixed
//! however many requests a host sees; counts are accurate to one bucket.
//!
//! Must not know clocks, HTTP or storage. [`CircuitBreakers`] is the thin per-host map over it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BUCKETS: u32 = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct CircuitConfig {
    pub window: Duration,
    /// Failures in the window needed to open (Braze: 3,000 a minute).
    pub min_failures: u32,
    /// And the failures' share of attempts in the window must exceed this (e.g. 0.9).
    pub failure_ratio: f64,
    /// How long the circuit stays open before a probe (Braze: one minute).
    pub cool_down: Duration,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        CircuitConfig {
            window: Duration::from_secs(60),
            min_failures: 3000,
            failure_ratio: 0.9,
            cool_down: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// One probe is in flight.
    HalfOpen,
}

/// Whether a request may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// The one request that tests a host after its cool-down.
    Probe,
    /// Not now; the circuit is open until then.
    Rejected {
        until: Instant,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: Instant,
    attempts: u32,
    failures: u32,
}

#[derive(Debug, Clone)]
pub struct Circuit {
    config: CircuitConfig,
    state: State,
    buckets: VecDeque<Bucket>,
}

impl Circuit {
    pub fn new(config: CircuitConfig) -> Circuit {
        Circuit {
            config,
            state: State::Closed,
            buckets: VecDeque::with_capacity(BUCKETS as usize + 1),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            State::Closed => Admission::Allowed,
            State::Open { until } if now < until => Admission::Rejected { until },
            State::Open { .. } => {
                self.state = State::HalfOpen;
                Admission::Probe
            }
            // Others wait for the probe's answer, a cool-down at most.
            State::HalfOpen => Admission::Rejected {
                until: now + self.config.cool_down,
            },
        }
    }

    /// Records an attempt's result; `failure` means the host looked unhealthy (see
    /// [`Classification::is_host_failure`](crate::retry::Classification::is_host_failure)).
    pub fn record(&mut self, now: Instant, failure: bool) {
        match self.state {
            State::HalfOpen => {
                if failure {
                    self.state = State::Open {
                        until: now + self.config.cool_down,
                    };
                } else {
                    self.state = State::Closed;
                    self.buckets.clear();
                }
                return;
            }
            // Answers to requests admitted before the circuit opened change nothing.
            State::Open { .. } => return,
            State::Closed => {}
        }
        self.expire(now);
        let width = (self.config.window / BUCKETS).max(Duration::from_millis(1));
        match self.buckets.back_mut() {
            Some(b) if now.saturating_duration_since(b.start) < width => {
                b.attempts += 1;
                b.failures += u32::from(failure);
            }
            _ => self.buckets.push_back(Bucket {
                start: now,
                attempts: 1,
                failures: u32::from(failure),
            }),
        }
        let (attempts, failures) = self.buckets.iter().fold((0u64, 0u64), |(a, f), b| {
            (a + u64::from(b.attempts), f + u64::from(b.failures))
        });
        if failures >= u64::from(self.config.min_failures)
            && failures as f64 > attempts as f64 * self.config.failure_ratio
        {
            self.state = State::Open {
                until: now + self.config.cool_down,
            };
            self.buckets.clear();
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(front) = self.buckets.front() {
            if now.saturating_duration_since(front.start) >= self.config.window {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }
}

/// One [`Circuit`] per host, behind a mutex (held for microseconds, never across an await).
#[derive(Debug)]
pub struct CircuitBreakers {
    config: CircuitConfig,
    circuits: Mutex<HashMap<String, Circuit>>,
}

impl CircuitBreakers {
    pub fn new(config: CircuitConfig) -> CircuitBreakers {
        CircuitBreakers {
            config,
            circuits: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, host: &str, f: impl FnOnce(&mut Circuit) -> T) -> T {
        let mut map = self
            .circuits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !map.contains_key(host) {
            map.insert(host.to_owned(), Circuit::new(self.config.clone()));
        }
        match map.get_mut(host) {
            Some(circuit) => f(circuit),
            None => f(&mut Circuit::new(self.config.clone())),
        }
    }

    pub fn admit(&self, host: &str, now: Instant) -> Admission {
        self.with(host, |c| c.admit(now))
    }

    pub fn record(&self, host: &str, now: Instant, failure: bool) {
        self.with(host, |c| c.record(now, failure));
    }

    pub fn state(&self, host: &str) -> State {
        self.with(host, |c| c.state())
    }

    /// Every host's circuit, for `/metrics`.
    pub fn states(&self) -> Vec<(String, State)> {
        let map = self
            .circuits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter().map(|(h, c)| (h.clone(), c.state())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> CircuitConfig {
        CircuitConfig {
            window: Duration::from_secs(60),
            min_failures: 3,
            failure_ratio: 0.5,
            cool_down: Duration::from_secs(10),
        }
    }

    #[test]
    fn opens_on_count_and_ratio_then_probes_and_closes() {
        let t0 = Instant::now();
        let mut c = Circuit::new(small());
        c.record(t0, true);
        c.record(t0, true);
        assert_eq!(c.state(), State::Closed, "two failures are not enough");
        c.record(t0 + Duration::from_secs(1), true);
        let until = t0 + Duration::from_secs(11);
        assert_eq!(c.state(), State::Open { until });
        assert_eq!(
            c.admit(t0 + Duration::from_secs(5)),
            Admission::Rejected { until }
        );
        assert_eq!(c.admit(until), Admission::Probe);
        assert!(
            matches!(c.admit(until), Admission::Rejected { .. }),
            "one probe"
        );
        c.record(until, false);
        assert_eq!(c.state(), State::Closed);
        assert_eq!(c.admit(until), Admission::Allowed);
    }

    #[test]
    fn failed_probe_reopens() {
        let t0 = Instant::now();
        let mut c = Circuit::new(small());
        for _ in 0..3 {
            c.record(t0, true);
        }
        let later = t0 + Duration::from_secs(10);
        assert_eq!(c.admit(later), Admission::Probe);
        c.record(later, true);
        assert_eq!(
            c.state(),
            State::Open {
                until: later + Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn ratio_keeps_a_busy_healthy_host_closed() {
        let t0 = Instant::now();
        let mut c = Circuit::new(small());
        for i in 0..10 {
            c.record(t0, false);
            if i % 3 == 0 {
                c.record(t0, true);
            }
        }
        assert_eq!(c.state(), State::Closed, "4 failures of 14 is under 50%");
    }

    #[test]
    fn old_failures_leave_the_window() {
        let t0 = Instant::now();
        let mut c = Circuit::new(small());
        c.record(t0, true);
        c.record(t0, true);
        c.record(t0 + Duration::from_secs(61), true);
        assert_eq!(c.state(), State::Closed);
        c.record(t0 + Duration::from_secs(62), true);
        c.record(t0 + Duration::from_secs(63), true);
        assert!(matches!(c.state(), State::Open { .. }));
    }

    #[test]
    fn hosts_are_independent() {
        let breakers = CircuitBreakers::new(small());
        let t0 = Instant::now();
        for _ in 0..3 {
            breakers.record("bad.example", t0, true);
        }
        assert!(matches!(
            breakers.admit("bad.example", t0),
            Admission::Rejected { .. }
        ));
        assert_eq!(breakers.admit("good.example", t0), Admission::Allowed);
    }
}
