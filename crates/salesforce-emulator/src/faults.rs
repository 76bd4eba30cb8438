//! Fault injection for reliability tests: which fault, if any, a request gets, drawn from a seeded
//! generator so a run can be repeated. Pure: the HTTP shell carries the decision out (answers 500/503/429,
//! sleeps, drops the connection before or after committing the write).

use serde::{Deserialize, Serialize};

/// A probability in `[0, 1]`, checked when parsed.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Share(f64);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultPlanError {
    #[error("a share must be between 0 and 1, got {0}")]
    ShareOutOfRange(f64),
    #[error("the fault shares add up to {0}, more than 1")]
    SharesAboveOne(f64),
    #[error("token revocation needs a period of at least 1 second")]
    ZeroRevocationPeriod,
}

impl TryFrom<f64> for Share {
    type Error = FaultPlanError;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        if (0.0..=1.0).contains(&value) {
            Ok(Share(value))
        } else {
            Err(FaultPlanError::ShareOutOfRange(value))
        }
    }
}

impl From<Share> for f64 {
    fn from(share: Share) -> f64 {
        share.0
    }
}

impl std::str::FromStr for Share {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let value: f64 = text
            .parse()
            .map_err(|_| format!("`{text}` is not a number"))?;
        Share::try_from(value).map_err(|error| error.to_string())
    }
}

/// What an operator asks for, by flag or through `PUT /__admin/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    pub seed: u64,
    /// Share of requests answered 500.
    pub internal_error: Share,
    /// Share answered 503.
    pub unavailable: Share,
    /// Share answered 429 with `Retry-After`.
    pub too_many_requests: Share,
    pub retry_after_secs: u32,
    /// Share answered only after `slow_delay_ms`.
    pub slow: Share,
    pub slow_delay_ms: u64,
    /// Share whose connection is closed before anything is written.
    pub drop_before_write: Share,
    /// Share processed and committed, then the connection is closed without an answer.
    pub drop_after_write: Share,
    /// Every N seconds all access tokens are revoked.
    pub revoke_tokens_every_secs: Option<u64>,
}

impl Default for FaultSettings {
    fn default() -> Self {
        FaultSettings {
            seed: 0,
            internal_error: Share(0.0),
            unavailable: Share(0.0),
            too_many_requests: Share(0.0),
            retry_after_secs: 1,
            slow: Share(0.0),
            slow_delay_ms: 5_000,
            drop_before_write: Share(0.0),
            drop_after_write: Share(0.0),
            revoke_tokens_every_secs: None,
        }
    }
}

/// Validated settings: shares add up to at most 1.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPlan {
    settings: FaultSettings,
}

impl TryFrom<FaultSettings> for FaultPlan {
    type Error = FaultPlanError;
    fn try_from(settings: FaultSettings) -> Result<Self, Self::Error> {
        let total: f64 = settings
            .ordered_shares()
            .iter()
            .map(|(share, _)| share.0)
            .sum();
        if total > 1.0 + 1e-9 {
            return Err(FaultPlanError::SharesAboveOne(total));
        }
        if settings.revoke_tokens_every_secs == Some(0) {
            return Err(FaultPlanError::ZeroRevocationPeriod);
        }
        Ok(FaultPlan { settings })
    }
}

impl FaultSettings {
    fn ordered_shares(&self) -> [(Share, FaultKind); 6] {
        [
            (self.internal_error, FaultKind::InternalError),
            (self.unavailable, FaultKind::Unavailable),
            (self.too_many_requests, FaultKind::TooManyRequests),
            (self.slow, FaultKind::Slow),
            (self.drop_before_write, FaultKind::DropBeforeWrite),
            (self.drop_after_write, FaultKind::DropAfterWrite),
        ]
    }
}

impl FaultPlan {
    pub fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    fn injects_anything(&self) -> bool {
        self.settings
            .ordered_shares()
            .iter()
            .any(|(share, _)| share.0 > 0.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    InternalError,
    Unavailable,
    TooManyRequests,
    Slow,
    DropBeforeWrite,
    DropAfterWrite,
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    InternalError,
    Unavailable,
    TooManyRequests { retry_after_secs: u32 },
    Slow { delay_ms: u64 },
    DropBeforeWrite,
    DropAfterWrite,
}

impl Fault {
    pub fn kind(self) -> Option<FaultKind> {
        match self {
            Fault::None => None,
            Fault::InternalError => Some(FaultKind::InternalError),
            Fault::Unavailable => Some(FaultKind::Unavailable),
            Fault::TooManyRequests { .. } => Some(FaultKind::TooManyRequests),
            Fault::Slow { .. } => Some(FaultKind::Slow),
            Fault::DropBeforeWrite => Some(FaultKind::DropBeforeWrite),
            Fault::DropAfterWrite => Some(FaultKind::DropAfterWrite),
        }
    }
}

/// SplitMix64: tiny, fast, and the same sequence on every platform and crate version.
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Decides faults request by request. One draw per request while any share is non-zero.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    plan: FaultPlan,
    rng: SeededRng,
}

impl FaultInjector {
    pub fn new(plan: FaultPlan) -> Self {
        let rng = SeededRng::new(plan.settings.seed);
        FaultInjector { plan, rng }
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    pub fn decide(&mut self) -> Fault {
        if !self.plan.injects_anything() {
            return Fault::None;
        }
        let draw = self.rng.next_unit();
        let settings = &self.plan.settings;
        let mut threshold = 0.0;
        for (share, kind) in settings.ordered_shares() {
            threshold += share.0;
            if draw < threshold {
                return match kind {
                    FaultKind::InternalError => Fault::InternalError,
                    FaultKind::Unavailable => Fault::Unavailable,
                    FaultKind::TooManyRequests => Fault::TooManyRequests {
                        retry_after_secs: settings.retry_after_secs,
                    },
                    FaultKind::Slow => Fault::Slow {
                        delay_ms: settings.slow_delay_ms,
                    },
                    FaultKind::DropBeforeWrite => Fault::DropBeforeWrite,
                    FaultKind::DropAfterWrite => Fault::DropAfterWrite,
                };
            }
        }
        Fault::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(settings: FaultSettings) -> FaultPlan {
        FaultPlan::try_from(settings).expect("valid plan")
    }

    #[test]
    fn same_seed_same_faults() {
        let settings = FaultSettings {
            seed: 42,
            internal_error: Share(0.3),
            drop_after_write: Share(0.3),
            ..Default::default()
        };
        let mut first = FaultInjector::new(plan(settings.clone()));
        let mut second = FaultInjector::new(plan(settings));
        let a: Vec<Fault> = (0..100).map(|_| first.decide()).collect();
        let b: Vec<Fault> = (0..100).map(|_| second.decide()).collect();
        assert_eq!(a, b);
        assert!(
            a.contains(&Fault::InternalError)
                && a.contains(&Fault::DropAfterWrite)
                && a.contains(&Fault::None)
        );
    }

    #[test]
    fn shares_are_respected_roughly() {
        let mut injector = FaultInjector::new(plan(FaultSettings {
            seed: 7,
            unavailable: Share(0.25),
            ..Default::default()
        }));
        let hits = (0..10_000)
            .filter(|_| injector.decide() == Fault::Unavailable)
            .count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
    }

    #[test]
    fn a_full_share_always_fires_and_no_share_never_does() {
        let mut always = FaultInjector::new(plan(FaultSettings {
            too_many_requests: Share(1.0),
            retry_after_secs: 3,
            ..Default::default()
        }));
        assert!((0..50).all(|_| always.decide()
            == Fault::TooManyRequests {
                retry_after_secs: 3
            }));
        let mut never = FaultInjector::new(FaultPlan::default());
        assert!((0..50).all(|_| never.decide() == Fault::None));
    }

    #[test]
    fn invalid_plans_are_rejected() {
        assert!(Share::try_from(1.5).is_err());
        assert!("abc".parse::<Share>().is_err());
        let too_much = FaultSettings {
            internal_error: Share(0.6),
            unavailable: Share(0.6),
            ..Default::default()
        };
        assert!(matches!(
            FaultPlan::try_from(too_much),
            Err(FaultPlanError::SharesAboveOne(_))
        ));
        let bad_json = serde_json::from_str::<FaultSettings>(r#"{"internal_error": 2.0}"#);
        assert!(bad_json.is_err());
        let unknown = serde_json::from_str::<FaultSettings>(r#"{"bogus": 1}"#);
        assert!(unknown.is_err());
    }
}
