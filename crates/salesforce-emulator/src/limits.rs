//! The daily API request allocation and the `Sforce-Limit-Info` value. Pure: callers pass the time.

use crate::timestamp::Millis;

const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;

/// Requests used in the current 24-hour window against the org's allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUsage {
    max: u64,
    used: u64,
    window_start: Millis,
}

/// `used/max` as reported in `Sforce-Limit-Info: api-usage=N/M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UsageReport {
    pub used: u64,
    pub max: u64,
}

impl UsageReport {
    /// Must start with `api-usage=`: simple-salesforce's regex is anchored.
    pub fn header_value(&self) -> String {
        format!("api-usage={}/{}", self.used, self.max)
    }
}

impl ApiUsage {
    pub fn new(max: u64, now: Millis) -> Self {
        ApiUsage {
            max,
            used: 0,
            window_start: now,
        }
    }

    /// Counts one request, or refuses it once the allocation is spent. The window is a fixed 24 hours
    /// from the first request (Salesforce's is rolling; the difference does not matter for tests).
    pub fn try_consume(&mut self, now: Millis) -> Result<UsageReport, UsageReport> {
        self.roll_window(now);
        if self.used >= self.max {
            return Err(self.report());
        }
        self.used += 1;
        Ok(self.report())
    }

    pub fn report(&self) -> UsageReport {
        UsageReport {
            used: self.used,
            max: self.max,
        }
    }

    pub fn reset(&mut self, now: Millis) {
        self.used = 0;
        self.window_start = now;
    }

    pub fn set_used(&mut self, used: u64) {
        self.used = used;
    }

    fn roll_window(&mut self, now: Millis) {
        if now.0 - self.window_start.0 >= DAY_MILLIS {
            self.used = 0;
            self.window_start = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_allocation_and_resets_after_a_day() {
        let mut usage = ApiUsage::new(2, Millis(0));
        assert_eq!(
            usage.try_consume(Millis(1)).map(|r| r.header_value()),
            Ok("api-usage=1/2".to_owned())
        );
        assert!(usage.try_consume(Millis(2)).is_ok());
        assert_eq!(
            usage.try_consume(Millis(3)),
            Err(UsageReport { used: 2, max: 2 })
        );
        assert!(usage.try_consume(Millis(DAY_MILLIS + 1)).is_ok());
    }
}
