//! The org's daily API allowance as Salesforce reports it on every REST response
//! (`Sforce-Limit-Info: api-usage=18/15000`), and the policy that spends it: go, slow down as the
//! allowance runs low, pause before the reserve is touched.
//!
//! Salesforce's window is a rolling 24 hours and nothing says when a call will be given back, so
//! a paused org is probed again after a while (one send goes through and its header tells).

use std::time::Duration;

/// `used` of `max` calls in the current 24-hour window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

impl ApiUsage {
    pub fn remaining(self) -> u64 {
        self.max.saturating_sub(self.used)
    }
}

/// Reads `api-usage=N/M` from a `Sforce-Limit-Info` value (anywhere in it, as jsforce does, but
/// not the pilot's `per-app-api-usage=`).
pub fn parse_limit_info(value: &str) -> Option<ApiUsage> {
    value.split([';', ',']).find_map(|part| {
        let part = part.trim();
        let numbers = part.strip_prefix("api-usage=")?;
        let (used, max) = numbers.split_once('/')?;
        let max = max
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or("");
        Some(ApiUsage {
            used: used.trim().parse().ok()?,
            max: max.parse().ok()?,
        })
    })
}

/// How an org's allowance is spent.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetPolicy {
    /// Calls kept back for people and other integrations: at least this many…
    pub reserve_calls: u64,
    /// …or this share of the allowance, whichever is larger.
    pub reserve_share: f64,
    /// From this share of the allowance used, sends are spaced out.
    pub slow_down_share: f64,
    /// The window the allowance refills over (Salesforce: 24 hours, rolling).
    pub window: Duration,
    /// While paused, one send is let through this often to read the usage again.
    pub probe_every: Duration,
    /// The longest gap slowing down puts between two sends.
    pub max_spacing: Duration,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        BudgetPolicy {
            reserve_calls: 500,
            reserve_share: 0.05,
            slow_down_share: 0.8,
            window: Duration::from_secs(24 * 3600),
            probe_every: Duration::from_secs(5 * 60),
            max_spacing: Duration::from_secs(60),
        }
    }
}

/// What the policy says about the next send to an org.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    Go,
    /// Leave at least this long between sends.
    Spaced(Duration),
    /// Send nothing (but a probe) until the usage says there is room again.
    Paused,
}

impl BudgetPolicy {
    /// Calls that must stay unspent.
    pub fn reserve(&self, max: u64) -> u64 {
        let share = (max as f64 * self.reserve_share.clamp(0.0, 1.0)).ceil() as u64;
        self.reserve_calls.max(share).min(max)
    }

    pub fn pace(&self, usage: ApiUsage) -> Pace {
        if usage.max == 0 {
            return Pace::Go;
        }
        let reserve = self.reserve(usage.max);
        let spendable = usage.remaining().saturating_sub(reserve);
        if spendable == 0 {
            return Pace::Paused;
        }
        let slow_from = (usage.max as f64 * self.slow_down_share.clamp(0.0, 1.0)) as u64;
        if usage.used < slow_from {
            return Pace::Go;
        }
        // Spread what is left above the reserve over the window, so it lasts until calls come back.
        let spacing = self.window.div_f64(spendable as f64).min(self.max_spacing);
        Pace::Spaced(spacing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_forms() {
        let u = |used, max| Some(ApiUsage { used, max });
        assert_eq!(parse_limit_info("api-usage=18/15000"), u(18, 15000));
        assert_eq!(
            parse_limit_info("api-usage=25/5000; per-app-api-usage=17/250(appName=sample)"),
            u(25, 5000)
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=17/250(appName=x); api-usage=3/10"),
            u(3, 10)
        );
        assert_eq!(parse_limit_info("api-bursts=1/750"), None);
        assert_eq!(parse_limit_info("api-usage=x/10"), None);
        assert_eq!(parse_limit_info(""), None);
    }

    #[test]
    fn go_then_spaced_then_paused() {
        let policy = BudgetPolicy {
            reserve_calls: 10,
            reserve_share: 0.0,
            slow_down_share: 0.5,
            window: Duration::from_secs(1000),
            probe_every: Duration::from_secs(60),
            max_spacing: Duration::from_secs(60),
        };
        let at = |used| policy.pace(ApiUsage { used, max: 100 });
        assert_eq!(at(0), Pace::Go);
        assert_eq!(at(49), Pace::Go);
        // 50 used, 10 kept back: 40 to spend over 1000 s.
        assert_eq!(at(50), Pace::Spaced(Duration::from_secs(25)));
        assert_eq!(at(89), Pace::Spaced(Duration::from_secs(60)), "capped");
        assert_eq!(at(90), Pace::Paused);
        assert_eq!(at(120), Pace::Paused);
        assert_eq!(policy.pace(ApiUsage { used: 5, max: 0 }), Pace::Go);
    }

    #[test]
    fn reserve_is_the_larger_of_calls_and_share() {
        let policy = BudgetPolicy::default();
        assert_eq!(policy.reserve(15_000), 750);
        assert_eq!(policy.reserve(1_000), 500);
        assert_eq!(policy.reserve(100), 100, "never more than the allowance");
    }
}
