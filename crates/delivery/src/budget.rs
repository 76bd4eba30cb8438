//! Each Salesforce org's API allowance as its responses report it (`Sforce-Limit-Info`), and
//! whether the next send to it may go now: the shell around
//! [`leadwire_salesforce::limits::BudgetPolicy`]. One per node; every node reads the org-wide
//! figure from its own responses, so no coordination is needed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use leadwire_salesforce::limits::BudgetPolicy;
pub use leadwire_salesforce::limits::{ApiUsage, Pace};

/// What [`Budgets::admit`] says about a send.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetAdmission {
    Go,
    /// Hold the send until `until` (no attempt is used).
    Hold {
        until: Instant,
        reason: String,
    },
}

/// A change worth a line in the activity log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetChange {
    Paused(String),
    Resumed(String),
}

#[derive(Debug)]
struct Org {
    usage: ApiUsage,
    pace: Pace,
    next_send: Option<Instant>,
    last_probe: Option<Instant>,
}

#[derive(Debug)]
pub struct Budgets {
    policy: BudgetPolicy,
    orgs: Mutex<HashMap<String, Org>>,
}

fn describe(origin: &str, usage: ApiUsage, reserve: u64) -> String {
    format!(
        "{origin} has used {} of its {} daily API calls, keeping {reserve} in reserve",
        usage.used, usage.max
    )
}

impl Budgets {
    pub fn new(policy: BudgetPolicy) -> Budgets {
        Budgets {
            policy,
            orgs: Mutex::new(HashMap::new()),
        }
    }

    pub fn policy(&self) -> &BudgetPolicy {
        &self.policy
    }

    /// Whether a send to `origin` may go at `now`. While an org is paused one send goes through
    /// every `probe_every`, so its answer can say the window has room again.
    pub fn admit(&self, origin: &str, now: Instant) -> BudgetAdmission {
        let Ok(mut orgs) = self.orgs.lock() else {
            return BudgetAdmission::Go;
        };
        let Some(org) = orgs.get_mut(origin) else {
            return BudgetAdmission::Go;
        };
        match org.pace {
            Pace::Go => BudgetAdmission::Go,
            Pace::Spaced(spacing) => match org.next_send {
                Some(at) if at > now => BudgetAdmission::Hold {
                    until: at,
                    reason: format!(
                        "{}: sends are spaced {:.1} s apart",
                        describe(origin, org.usage, self.policy.reserve(org.usage.max)),
                        spacing.as_secs_f64()
                    ),
                },
                _ => {
                    org.next_send = Some(now + spacing);
                    BudgetAdmission::Go
                }
            },
            Pace::Paused => match org.last_probe {
                Some(at) if at + self.policy.probe_every > now => BudgetAdmission::Hold {
                    until: at + self.policy.probe_every,
                    reason: format!(
                        "{}: sends are paused",
                        describe(origin, org.usage, self.policy.reserve(org.usage.max))
                    ),
                },
                _ => {
                    org.last_probe = Some(now);
                    BudgetAdmission::Go
                }
            },
        }
    }

    /// Takes in the usage an answer from `origin` reported; says when that pauses or resumes it.
    pub fn observe(&self, origin: &str, usage: ApiUsage, now: Instant) -> Option<BudgetChange> {
        let pace = self.policy.pace(usage);
        let reserve = self.policy.reserve(usage.max);
        metrics::gauge!("leadwire_salesforce_api_calls_used", "org" => origin.to_owned())
            .set(usage.used as f64);
        metrics::gauge!("leadwire_salesforce_api_calls_allowed", "org" => origin.to_owned())
            .set(usage.max as f64);
        metrics::gauge!("leadwire_salesforce_api_paused", "org" => origin.to_owned())
            .set(if pace == Pace::Paused { 1.0 } else { 0.0 });
        let mut orgs = self.orgs.lock().ok()?;
        let org = orgs.entry(origin.to_owned()).or_insert(Org {
            usage,
            pace: Pace::Go,
            next_send: None,
            last_probe: None,
        });
        let was_paused = org.pace == Pace::Paused;
        org.usage = usage;
        org.pace = pace;
        match (was_paused, pace == Pace::Paused) {
            (false, true) => {
                org.last_probe = Some(now);
                Some(BudgetChange::Paused(format!(
                    "{}: sends to it are paused; one send every {} s checks whether the 24-hour window has room again",
                    describe(origin, usage, reserve),
                    self.policy.probe_every.as_secs()
                )))
            }
            (true, false) => Some(BudgetChange::Resumed(format!(
                "{}: sends to it resume",
                describe(origin, usage, reserve)
            ))),
            _ => None,
        }
    }

    /// Salesforce refused a call for the daily limit (`REQUEST_LIMIT_EXCEEDED`): the org is
    /// out of calls whatever the last header said.
    pub fn exhausted(&self, origin: &str, now: Instant) -> Option<BudgetChange> {
        let max = self
            .orgs
            .lock()
            .ok()
            .and_then(|orgs| orgs.get(origin).map(|o| o.usage.max))
            .unwrap_or(1);
        self.observe(origin, ApiUsage { used: max, max }, now)
    }

    /// How long a job waits before its org is probed again.
    pub fn probe_every(&self) -> Duration {
        self.policy.probe_every
    }

    /// Every org an answer has reported on, by origin: its allowance as last reported and
    /// what that means for sends now.
    pub fn known(&self) -> Vec<OrgBudget> {
        let Ok(orgs) = self.orgs.lock() else {
            return Vec::new();
        };
        let mut known: Vec<OrgBudget> = orgs
            .iter()
            .map(|(origin, org)| OrgBudget {
                origin: origin.clone(),
                usage: org.usage,
                reserve: self.policy.reserve(org.usage.max),
                pace: org.pace,
            })
            .collect();
        known.sort_by(|a, b| a.origin.cmp(&b.origin));
        known
    }
}

/// One org's API allowance as its last answer reported it (`Sforce-Limit-Info`).
#[derive(Debug, Clone, PartialEq)]
pub struct OrgBudget {
    pub origin: String,
    pub usage: ApiUsage,
    /// Calls kept back for the org's other users.
    pub reserve: u64,
    pub pace: Pace,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BudgetPolicy {
        BudgetPolicy {
            reserve_calls: 10,
            reserve_share: 0.0,
            slow_down_share: 0.5,
            window: Duration::from_secs(100),
            probe_every: Duration::from_secs(30),
            max_spacing: Duration::from_secs(60),
        }
    }

    #[test]
    fn pauses_probes_and_resumes() {
        let b = Budgets::new(policy());
        let t0 = Instant::now();
        let org = "https://acme.my.salesforce.com";
        assert_eq!(b.admit(org, t0), BudgetAdmission::Go, "unknown org");
        assert_eq!(b.observe(org, ApiUsage { used: 10, max: 100 }, t0), None);
        assert_eq!(b.admit(org, t0), BudgetAdmission::Go);
        // 90 used, 10 kept back: paused.
        assert!(matches!(
            b.observe(org, ApiUsage { used: 90, max: 100 }, t0),
            Some(BudgetChange::Paused(m)) if m.contains("used 90 of its 100")
        ));
        assert!(
            matches!(b.admit(org, t0 + Duration::from_secs(29)), BudgetAdmission::Hold { until, .. } if until == t0 + Duration::from_secs(30))
        );
        assert_eq!(
            b.admit(org, t0 + Duration::from_secs(30)),
            BudgetAdmission::Go,
            "probe"
        );
        assert!(matches!(
            b.admit(org, t0 + Duration::from_secs(31)),
            BudgetAdmission::Hold { .. }
        ));
        assert!(matches!(
            b.observe(
                org,
                ApiUsage { used: 1, max: 100 },
                t0 + Duration::from_secs(32)
            ),
            Some(BudgetChange::Resumed(_))
        ));
        assert_eq!(
            b.admit(org, t0 + Duration::from_secs(32)),
            BudgetAdmission::Go
        );
    }

    #[test]
    fn spaced_sends_and_limit_exceeded() {
        let b = Budgets::new(policy());
        let t0 = Instant::now();
        let org = "o";
        b.observe(org, ApiUsage { used: 50, max: 100 }, t0);
        // 40 spendable over 100 s: 2.5 s apart.
        assert_eq!(b.admit(org, t0), BudgetAdmission::Go);
        assert!(
            matches!(b.admit(org, t0 + Duration::from_secs(1)), BudgetAdmission::Hold { until, .. } if until == t0 + Duration::from_millis(2500))
        );
        assert!(matches!(
            b.exhausted(org, t0),
            Some(BudgetChange::Paused(_))
        ));
    }

    #[test]
    fn known_lists_each_reported_org_with_its_pace() {
        let b = Budgets::new(policy());
        let t0 = Instant::now();
        assert!(b.known().is_empty());
        b.observe(
            "https://b.my.salesforce.com",
            ApiUsage { used: 95, max: 100 },
            t0,
        );
        b.observe(
            "https://a.my.salesforce.com",
            ApiUsage { used: 10, max: 100 },
            t0,
        );
        let known = b.known();
        assert_eq!(
            known
                .iter()
                .map(|o| (o.origin.as_str(), o.usage.used, o.reserve, o.pace))
                .collect::<Vec<_>>(),
            vec![
                ("https://a.my.salesforce.com", 10, 10, Pace::Go),
                ("https://b.my.salesforce.com", 95, 10, Pace::Paused),
            ]
        );
    }
}
