//! A campaign's definition and the pure rules that decide a send: does this trigger fire it, may this
//! user receive it again, and when may the send leave under the delivery speed limit.

use chrono::{DateTime, Duration, Utc};
use leadwire_profiles::Trigger;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::filter::{Filter, FilterError, FilterSpec};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    #[default]
    Draft,
    Active,
    Paused,
    Archived,
}

/// What starts a campaign (Braze's action-based triggers that apply to leads, or the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum TriggerSpec {
    /// "Add an email address": once per profile that gets an email.
    EmailAdded,
    /// "Change custom attribute value": any new value, or a specific one.
    AttributeChanged {
        attribute: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Json>,
    },
    /// "Perform custom event", narrowed by event property filters.
    CustomEvent {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        property_filters: Option<FilterSpec>,
    },
    /// "Make a purchase", of any product or of one.
    Purchase {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        product_id: Option<String>,
    },
    /// Sent through `POST /campaigns/trigger/send`.
    ApiTriggered,
}

/// A campaign as written in YAML or sent to the REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub status: CampaignStatus,
    pub trigger: TriggerSpec,
    /// The webhook template sent, by name.
    pub template: String,
    /// The audience: users must match when the trigger fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<FilterSpec>,
    /// Seconds after receiving before a user may receive again; absent means once per user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reeligibility_seconds: Option<u64>,
    /// Most sends per minute (Braze: 10 to 500,000); absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
}

/// A campaign checked and compiled: filters parsed, limits in range.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub spec: CampaignSpec,
    pub audience: Option<Filter>,
    pub property_filter: Option<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    #[error("campaign name is empty")]
    NoName,
    #[error("campaign '{0}' names no template")]
    NoTemplate(String),
    #[error(
        "campaign '{name}': rate_limit_per_minute must be between 10 and 500000 (Braze's range), got {got}"
    )]
    RateLimit { name: String, got: u32 },
    #[error("campaign '{name}': {source}")]
    Filter { name: String, source: FilterError },
}

impl CampaignSpec {
    pub fn compile(&self) -> Result<Compiled, CampaignError> {
        if self.name.trim().is_empty() {
            return Err(CampaignError::NoName);
        }
        if self.template.trim().is_empty() {
            return Err(CampaignError::NoTemplate(self.name.clone()));
        }
        if let Some(r) = self.rate_limit_per_minute
            && !(10..=500_000).contains(&r)
        {
            return Err(CampaignError::RateLimit {
                name: self.name.clone(),
                got: r,
            });
        }
        let wrap = |source| CampaignError::Filter {
            name: self.name.clone(),
            source,
        };
        let audience = self
            .audience
            .as_ref()
            .map(FilterSpec::compile)
            .transpose()
            .map_err(wrap)?;
        let property_filter = match &self.trigger {
            TriggerSpec::CustomEvent {
                property_filters: Some(f),
                ..
            } => Some(f.compile().map_err(wrap)?),
            _ => None,
        };
        Ok(Compiled {
            spec: self.clone(),
            audience,
            property_filter,
        })
    }
}

impl Compiled {
    /// Whether a trigger from the feed starts this campaign (before the audience is checked).
    pub fn fired_by(&self, trigger: &Trigger) -> bool {
        match (&self.spec.trigger, trigger) {
            (TriggerSpec::EmailAdded, Trigger::EmailAdded { .. }) => true,
            (
                TriggerSpec::AttributeChanged { attribute, value },
                Trigger::AttributeChanged { name, new, .. },
            ) => {
                attribute == name && !new.is_null() && value.as_ref().is_none_or(|want| want == new)
            }
            (
                TriggerSpec::CustomEvent { name, .. },
                Trigger::CustomEvent {
                    name: event,
                    properties,
                    ..
                },
            ) => {
                name == event
                    && self
                        .property_filter
                        .as_ref()
                        .is_none_or(|f| f.matches_properties(properties))
            }
            (
                TriggerSpec::Purchase { product_id },
                Trigger::Purchase {
                    product_id: bought, ..
                },
            ) => product_id.as_ref().is_none_or(|p| p == bought),
            _ => false,
        }
    }
}

/// Braze's re-eligibility: by default a user receives a campaign once; with a window, again once
/// the window since the last receipt has passed. A trigger that did not lead to a receipt (abort,
/// failure) leaves the user eligible, so callers pass the time of the last *received* send.
pub fn eligible(
    last_received: Option<DateTime<Utc>>,
    reeligibility_seconds: Option<u64>,
    now: DateTime<Utc>,
) -> bool {
    match (last_received, reeligibility_seconds) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(at), Some(window)) => now >= at + Duration::seconds(window as i64),
    }
}

/// The delivery speed limit as slots: the n-th send of a minute-long window goes out no earlier
/// than the window that still has room. Pure: the caller keeps the state between calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RateLimiter {
    window_start: Option<DateTime<Utc>>,
    used: u32,
}

impl RateLimiter {
    /// When the next send may leave, and counts it.
    pub fn next_slot(&mut self, per_minute: Option<u32>, now: DateTime<Utc>) -> DateTime<Utc> {
        let Some(limit) = per_minute.filter(|l| *l > 0) else {
            return now;
        };
        let start = match self.window_start {
            // The open window (possibly in the future, when sends are queued up) still has time.
            Some(s) if s + Duration::minutes(1) > now => s,
            _ => {
                self.used = 0;
                now
            }
        };
        self.window_start = Some(start);
        if self.used >= limit {
            self.window_start = Some(start + Duration::minutes(1));
            self.used = 0;
        }
        self.used += 1;
        self.window_start.map_or(now, |s| s.max(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(trigger: Json) -> Compiled {
        let spec: CampaignSpec = serde_json::from_value(
            json!({"name": "c", "template": "t", "status": "active", "trigger": trigger}),
        )
        .expect("parses");
        spec.compile().expect("compiles")
    }

    #[test]
    fn triggers_match_like_braze() {
        let email = spec(json!({"type": "email_added"}));
        assert!(email.fired_by(&Trigger::EmailAdded {
            email: "a@b.co".into()
        }));
        let any = spec(json!({"type": "attribute_changed", "attribute": "lead_score"}));
        let changed = Trigger::AttributeChanged {
            name: "lead_score".into(),
            old: None,
            new: json!(51),
        };
        assert!(any.fired_by(&changed));
        assert!(!any.fired_by(&Trigger::AttributeChanged {
            name: "other".into(),
            old: None,
            new: json!(1)
        }));
        let specific =
            spec(json!({"type": "attribute_changed", "attribute": "lead_stage", "value": "MQL"}));
        assert!(!specific.fired_by(&Trigger::AttributeChanged {
            name: "lead_stage".into(),
            old: None,
            new: json!("Lead")
        }));
        assert!(specific.fired_by(&Trigger::AttributeChanged {
            name: "lead_stage".into(),
            old: None,
            new: json!("MQL")
        }));
        let event = spec(
            json!({"type": "custom_event", "name": "webinar", "property_filters": {"attribute": "minutes", "greater_than": 30}}),
        );
        let props = |m: i64| {
            json!({"minutes": m})
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        assert!(event.fired_by(&Trigger::CustomEvent {
            name: "webinar".into(),
            properties: props(45),
            time: String::new()
        }));
        assert!(!event.fired_by(&Trigger::CustomEvent {
            name: "webinar".into(),
            properties: props(10),
            time: String::new()
        }));
    }

    #[test]
    fn reeligibility_defaults_to_once() {
        let now = Utc::now();
        assert!(eligible(None, None, now));
        assert!(!eligible(Some(now - Duration::days(400)), None, now));
        assert!(!eligible(Some(now - Duration::seconds(10)), Some(60), now));
        assert!(eligible(Some(now - Duration::seconds(60)), Some(60), now));
        assert!(
            eligible(Some(now), Some(0), now),
            "a 0 s window always re-qualifies"
        );
    }

    #[test]
    fn rate_limit_spreads_sends_over_minutes() {
        let now = Utc::now();
        let mut limiter = RateLimiter::default();
        let slots: Vec<_> = (0..25).map(|_| limiter.next_slot(Some(10), now)).collect();
        assert!(slots[..10].iter().all(|s| *s == now));
        assert!(
            slots[10..20]
                .iter()
                .all(|s| *s == now + Duration::minutes(1))
        );
        assert!(slots[20..].iter().all(|s| *s == now + Duration::minutes(2)));
        assert_eq!(RateLimiter::default().next_slot(None, now), now);
    }

    #[test]
    fn bad_campaigns_are_rejected_with_their_name() {
        let bad: CampaignSpec = serde_json::from_value(json!({"name": "New lead", "template": "t", "trigger": {"type": "email_added"}, "rate_limit_per_minute": 5})).expect("parses");
        assert_eq!(bad.compile().err().map(|e| e.to_string()), Some("campaign 'New lead': rate_limit_per_minute must be between 10 and 500000 (Braze's range), got 5".into()));
    }
}
