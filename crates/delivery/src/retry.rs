//! Braze's retry rules as pure functions: what an attempt's outcome means ([`classify`]) and how
//! long to wait before the next one ([`next_delay`]).
//!
//! Must not know clocks, sleeps, HTTP clients or storage: every input (the attempt number, the
//! `Retry-After` value, "now", the random number for jitter) is a parameter, so every rule is a
//! unit test.

use std::time::{Duration, SystemTime};

/// What one attempt ended with, as far as the retry rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The endpoint answered with this status.
    Status(u16),
    /// No connection (DNS failure, refused, reset before an answer, TLS failure).
    ConnectError,
    /// No complete answer within the request time limit.
    Timeout,
    /// The request went out but the connection closed before an answer came.
    NoAnswer,
    /// The host's circuit is open; Braze simulates `598 Host Unhealthy` and retries.
    CircuitOpen,
    /// We refused to send (SSRF guard, invalid request): retrying cannot help.
    Refused,
}

/// Why an attempt will be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// 408, 429 or 5xx: the host answered and asked (implicitly) to try later.
    Status(u16),
    /// Connection failure, timeout or open circuit: the host is unreachable.
    Unreachable,
}

/// Braze's reading of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// 2xx: marked as received.
    Success,
    Retry(RetryReason),
    /// 30x (Braze follows no redirect), other 4xx, 1xx, refusals: never retried.
    Terminal,
}

impl Classification {
    pub fn is_success(self) -> bool {
        matches!(self, Classification::Success)
    }
    /// Whether the host should be counted unhealthy for this attempt (circuit breaker input).
    /// A terminal 4xx means the host is up and answering, so it is not a host failure.
    pub fn is_host_failure(self) -> bool {
        matches!(self, Classification::Retry(_))
    }
}

/// Braze §4.1: 20x received; 408, 429, 5xx and connection failures retried; 30x and other 4xx
/// terminal. `Retry-After` never makes a terminal response retriable.
pub fn classify(result: AttemptResult) -> Classification {
    match result {
        AttemptResult::Status(code) => match code {
            200..=299 => Classification::Success,
            408 | 429 | 500..=599 => Classification::Retry(RetryReason::Status(code)),
            _ => Classification::Terminal,
        },
        AttemptResult::ConnectError
        | AttemptResult::Timeout
        | AttemptResult::NoAnswer
        | AttemptResult::CircuitOpen => Classification::Retry(RetryReason::Unreachable),
        AttemptResult::Refused => Classification::Terminal,
    }
}

impl AttemptResult {
    /// Whether the request may have been received and acted on although no answer says so: a
    /// create retried after this can make a second record.
    pub fn outcome_unknown(self) -> bool {
        matches!(self, AttemptResult::Timeout | AttemptResult::NoAnswer)
    }
}

/// A parsed `Retry-After` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    Date(SystemTime),
}

/// Parses `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT` (any HTTP-date form).
/// Anything else is ignored (`None`), as a client should.
pub fn parse_retry_after(value: &str) -> Option<RetryAfter> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate rather than fail; the clamp applies later.
        return Some(RetryAfter::Seconds(value.parse().unwrap_or(u64::MAX)));
    }
    httpdate::parse_http_date(value).ok().map(RetryAfter::Date)
}

impl RetryAfter {
    /// The wait this header asks for, seen at `now` (a date in the past asks for no wait).
    pub fn delay_from(self, now: SystemTime) -> Duration {
        match self {
            RetryAfter::Seconds(s) => Duration::from_secs(s),
            RetryAfter::Date(at) => at.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

/// How the random part of a backoff delay is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the exponential delay (tests, reproducibility).
    None,
    /// Uniform in `[0, d]` (AWS "full jitter").
    Full,
    /// Uniform in `[d/2, d]`: spreads retries but keeps a floor.
    Equal,
    /// Uniform in `[base, 3 × previous delay]`, capped (AWS "decorrelated jitter").
    Decorrelated,
}

/// A retry schedule. `Default` is Braze's: 5 tries within about 30 minutes for answered
/// failures (delays of about 2, 4, 8, 16 minutes, equal jitter, so between 15 and 30 minutes
/// in all), and, when the host is unreachable, up to 10 tries spread over several hours.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    /// Attempts in all (the first one included) for 408/429/5xx answers.
    pub max_attempts: u32,
    /// Attempts in all when the host could not be reached (connect error, timeout, open circuit).
    pub max_attempts_unreachable: u32,
    /// Delay before the first retry, before jitter.
    pub base_delay: Duration,
    /// Each retry waits this much longer than the one before.
    pub multiplier: f64,
    /// No backoff delay exceeds this (answered failures).
    pub max_delay: Duration,
    /// No backoff delay exceeds this (unreachable host).
    pub max_delay_unreachable: Duration,
    /// `Retry-After` is honoured up to this wait.
    pub max_retry_after: Duration,
    pub jitter: Jitter,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            max_attempts: 5,
            max_attempts_unreachable: 10,
            base_delay: Duration::from_secs(120),
            multiplier: 2.0,
            max_delay: Duration::from_secs(16 * 60),
            max_delay_unreachable: Duration::from_secs(6 * 3600),
            max_retry_after: Duration::from_secs(3600),
            jitter: Jitter::Equal,
        }
    }
}

/// Everything [`next_delay`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct RetryInput {
    /// Attempts made so far, the one that just failed included (1 after the first attempt).
    pub attempts_made: u32,
    pub reason: RetryReason,
    pub retry_after: Option<RetryAfter>,
    /// The delay used before the attempt that just failed (for decorrelated jitter).
    pub previous_delay: Option<Duration>,
    pub now: SystemTime,
    /// A random number in `[0, 1)`; values outside are clamped.
    pub random: f64,
}

/// The wait before the next attempt, or `None` when the schedule is used up (the job fails).
pub fn next_delay(schedule: &RetrySchedule, input: RetryInput) -> Option<Duration> {
    let (limit, cap) = match input.reason {
        RetryReason::Status(_) => (schedule.max_attempts, schedule.max_delay),
        RetryReason::Unreachable => (
            schedule.max_attempts_unreachable,
            schedule.max_delay_unreachable,
        ),
    };
    if input.attempts_made >= limit {
        return None;
    }
    if let Some(retry_after) = input.retry_after {
        return Some(
            retry_after
                .delay_from(input.now)
                .min(schedule.max_retry_after),
        );
    }
    let random = if input.random.is_finite() {
        input.random.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let exponent = input.attempts_made.saturating_sub(1).min(63) as i32;
    let raw = schedule.base_delay.as_secs_f64() * schedule.multiplier.max(1.0).powi(exponent);
    let capped = raw.min(cap.as_secs_f64());
    let seconds = match schedule.jitter {
        Jitter::None => capped,
        Jitter::Full => capped * random,
        Jitter::Equal => capped / 2.0 + capped / 2.0 * random,
        Jitter::Decorrelated => {
            let base = schedule.base_delay.as_secs_f64();
            let previous = input
                .previous_delay
                .map_or(base, |d| d.as_secs_f64())
                .max(base);
            (base + (previous * 3.0 - base) * random).min(cap.as_secs_f64())
        }
    };
    Some(Duration::from_secs_f64(seconds.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(attempts_made: u32, reason: RetryReason, random: f64) -> RetryInput {
        RetryInput {
            attempts_made,
            reason,
            retry_after: None,
            previous_delay: None,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            random,
        }
    }

    #[test]
    fn braze_status_table() {
        for code in [200, 201, 204, 299] {
            assert_eq!(
                classify(AttemptResult::Status(code)),
                Classification::Success
            );
        }
        for code in [408, 429, 500, 502, 503, 504, 529, 598, 599] {
            assert_eq!(
                classify(AttemptResult::Status(code)),
                Classification::Retry(RetryReason::Status(code)),
                "{code}"
            );
        }
        for code in [100, 301, 302, 304, 307, 400, 401, 403, 404, 405, 409, 422] {
            assert_eq!(
                classify(AttemptResult::Status(code)),
                Classification::Terminal,
                "{code}"
            );
        }
        for r in [
            AttemptResult::ConnectError,
            AttemptResult::Timeout,
            AttemptResult::CircuitOpen,
        ] {
            assert_eq!(classify(r), Classification::Retry(RetryReason::Unreachable));
        }
        assert_eq!(classify(AttemptResult::Refused), Classification::Terminal);
        assert!(!classify(AttemptResult::Status(404)).is_host_failure());
        assert!(classify(AttemptResult::Status(503)).is_host_failure());
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 120 "), Some(RetryAfter::Seconds(120)));
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(RetryAfter::Seconds(u64::MAX))
        );
        let date = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").expect("IMF-fixdate");
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:27:00 GMT").expect("date");
        assert_eq!(date.delay_from(now), Duration::from_secs(60));
        let later = now + Duration::from_secs(3600);
        assert_eq!(date.delay_from(later), Duration::ZERO);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-5"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn default_schedule_is_five_tries_within_thirty_minutes() {
        let schedule = RetrySchedule::default();
        for random in [0.0, 0.5, 0.999_999] {
            let mut total = Duration::ZERO;
            let mut attempts = 1;
            while let Some(d) =
                next_delay(&schedule, input(attempts, RetryReason::Status(503), random))
            {
                total += d;
                attempts += 1;
            }
            assert_eq!(attempts, 5, "five tries in all");
            assert!(total <= Duration::from_secs(30 * 60), "{total:?}");
            assert!(total >= Duration::from_secs(15 * 60), "{total:?}");
        }
    }

    #[test]
    fn unreachable_hosts_get_more_tries_over_hours() {
        let schedule = RetrySchedule::default();
        let mut total = Duration::ZERO;
        let mut attempts = 1;
        while let Some(d) = next_delay(&schedule, input(attempts, RetryReason::Unreachable, 1.0)) {
            total += d;
            attempts += 1;
        }
        assert_eq!(attempts, 10);
        assert!(total > Duration::from_secs(3600) && total < Duration::from_secs(24 * 3600));
    }

    #[test]
    fn exponential_growth_is_capped() {
        let schedule = RetrySchedule {
            jitter: Jitter::None,
            max_attempts: 100,
            ..RetrySchedule::default()
        };
        let d = |n| next_delay(&schedule, input(n, RetryReason::Status(500), 0.3));
        assert_eq!(d(1), Some(Duration::from_secs(120)));
        assert_eq!(d(2), Some(Duration::from_secs(240)));
        assert_eq!(d(3), Some(Duration::from_secs(480)));
        assert_eq!(d(60), Some(schedule.max_delay));
    }

    #[test]
    fn jitter_modes_stay_in_their_ranges() {
        let mut schedule = RetrySchedule {
            jitter: Jitter::Full,
            ..RetrySchedule::default()
        };
        let at = |s: &RetrySchedule, r| next_delay(s, input(2, RetryReason::Status(500), r));
        assert_eq!(at(&schedule, 0.0), Some(Duration::ZERO));
        assert_eq!(at(&schedule, 0.5), Some(Duration::from_secs(120)));
        assert_eq!(
            at(&schedule, f64::NAN),
            Some(Duration::ZERO),
            "NaN is not a random"
        );
        schedule.jitter = Jitter::Equal;
        assert_eq!(at(&schedule, 0.0), Some(Duration::from_secs(120)));
        assert_eq!(
            at(&schedule, 7.0),
            Some(Duration::from_secs(240)),
            "clamped"
        );
        schedule.jitter = Jitter::Decorrelated;
        let mut i = input(2, RetryReason::Status(500), 1.0);
        i.previous_delay = Some(Duration::from_secs(200));
        assert_eq!(next_delay(&schedule, i), Some(Duration::from_secs(600)));
        i.random = 0.0;
        assert_eq!(next_delay(&schedule, i), Some(Duration::from_secs(120)));
        i.previous_delay = Some(Duration::from_secs(100_000));
        i.random = 1.0;
        assert_eq!(next_delay(&schedule, i), Some(schedule.max_delay));
    }

    #[test]
    fn retry_after_replaces_backoff_and_is_clamped() {
        let schedule = RetrySchedule::default();
        let mut i = input(1, RetryReason::Status(429), 0.5);
        i.retry_after = Some(RetryAfter::Seconds(7));
        assert_eq!(next_delay(&schedule, i), Some(Duration::from_secs(7)));
        i.retry_after = Some(RetryAfter::Seconds(86_400));
        assert_eq!(next_delay(&schedule, i), Some(schedule.max_retry_after));
        i.retry_after = Some(RetryAfter::Date(i.now + Duration::from_secs(30)));
        assert_eq!(next_delay(&schedule, i), Some(Duration::from_secs(30)));
        // It does not extend the schedule.
        i.attempts_made = 5;
        assert_eq!(next_delay(&schedule, i), None);
    }
}
