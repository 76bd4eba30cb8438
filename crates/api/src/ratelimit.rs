//! Per-key fixed-window rate limiting with Braze's `X-RateLimit-*` headers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one request learned about its key's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// End of the current window, UTC epoch seconds.
    pub reset: u64,
}

pub struct RateLimiter {
    limit: u64,
    window: Duration,
    windows: Mutex<HashMap<String, (u64, u64)>>,
}

impl RateLimiter {
    pub fn new(limit: u64, window: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            window: window.max(Duration::from_secs(1)),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `key` at `now` (seconds since the epoch).
    pub fn check_at(&self, key: &str, now: u64) -> RateDecision {
        let window = self.window.as_secs();
        let start = now - now % window;
        let reset = start + window;
        let Ok(mut windows) = self.windows.lock() else {
            return RateDecision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit,
                reset,
            };
        };
        let entry = windows.entry(key.to_string()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        let allowed = entry.1 < self.limit;
        if allowed {
            entry.1 += 1;
        }
        RateDecision {
            allowed,
            limit: self.limit,
            remaining: self.limit - entry.1,
            reset,
        }
    }

    pub fn check(&self, key: &str) -> RateDecision {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.check_at(key, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reset_and_count_down() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let a = limiter.check_at("k", 120);
        assert_eq!((a.allowed, a.remaining, a.reset), (true, 1, 180));
        assert!(limiter.check_at("k", 130).allowed);
        assert!(!limiter.check_at("k", 179).allowed);
        assert!(
            limiter.check_at("other", 179).allowed,
            "keys are counted apart"
        );
        assert!(limiter.check_at("k", 180).allowed, "a new window starts");
    }
}
