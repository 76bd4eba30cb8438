//! Audience filters on profile attributes: equals, not equal, greater/less than, is blank / not blank,
//! exists, is none of, contains, matches regex, before/after dates; combined with `all` (AND) and
//! `any` (OR). Parsed once into a [`Filter`] (regexes compiled, dates parsed), then evaluated.

use chrono::{DateTime, Utc};
use leadwire_profiles::Profile;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// A filter as written in YAML or JSON:
/// `{all: [{attribute: lead_stage, equals: Lead}, {any: [{attribute: lead_score, greater_than: 50}]}]}`.
///
/// Deserialized by hand ([`FilterSpec::from_json`]): serde's untagged enums say only "did not
/// match any variant", where a user needs to hear which operator was misspelt.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum FilterSpec {
    All { all: Vec<FilterSpec> },
    Any { any: Vec<FilterSpec> },
    Condition(ConditionSpec),
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ConditionSpec {
    pub attribute: String,
    #[serde(flatten)]
    pub op: OpSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpSpec {
    Equals(Json),
    NotEqual(Json),
    GreaterThan(f64),
    LessThan(f64),
    IsBlank(bool),
    Exists(bool),
    IsNoneOf(Vec<Json>),
    Contains(Json),
    MatchesRegex(String),
    Before(String),
    After(String),
}

impl OpSpec {
    /// Every operator's name, as written in a condition (kept in step with the enum by a test).
    pub const NAMES: [&'static str; 11] = [
        "equals",
        "not_equal",
        "greater_than",
        "less_than",
        "is_blank",
        "exists",
        "is_none_of",
        "contains",
        "matches_regex",
        "before",
        "after",
    ];
}

impl<'de> Deserialize<'de> for FilterSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(deserializer)?;
        FilterSpec::from_json(&json, "").map_err(serde::de::Error::custom)
    }
}

const FILTER_SHAPES: &str =
    "{attribute: NAME, OPERATOR: VALUE}, {all: [FILTER, ...]} or {any: [FILTER, ...]}";

impl FilterSpec {
    /// Reads a filter, naming the place (`all[1]`) and the fix when it is wrong.
    pub fn from_json(json: &Json, at: &str) -> Result<FilterSpec, String> {
        let place = |at: &str| {
            if at.is_empty() {
                "filter".to_string()
            } else {
                format!("filter at {at}")
            }
        };
        let Json::Object(map) = json else {
            return Err(format!("{}: a filter is {FILTER_SHAPES}", place(at)));
        };
        for group in ["all", "any"] {
            let Some(members) = map.get(group) else {
                continue;
            };
            if let Some(other) = map.keys().find(|k| *k != group) {
                return Err(format!(
                    "{}: a group has only '{group}'; '{other}' does not belong beside it \
                     (nest conditions inside the list)",
                    place(at)
                ));
            }
            let Json::Array(members) = members else {
                return Err(format!("{}: '{group}' takes a list of filters", place(at)));
            };
            let members = members
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let inner = if at.is_empty() {
                        format!("{group}[{i}]")
                    } else {
                        format!("{at}.{group}[{i}]")
                    };
                    FilterSpec::from_json(m, &inner)
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if group == "all" {
                FilterSpec::All { all: members }
            } else {
                FilterSpec::Any { any: members }
            });
        }
        let operators = OpSpec::NAMES.join(", ");
        let attribute = match map.get("attribute") {
            Some(Json::String(a)) => a.clone(),
            Some(_) => return Err(format!("{}: 'attribute' must be a name", place(at))),
            None => {
                return Err(format!(
                    "{}: a condition needs 'attribute' and one operator ({operators}); \
                     a filter is {FILTER_SHAPES}",
                    place(at)
                ));
            }
        };
        let mut ops = map.iter().filter(|(k, _)| *k != "attribute");
        let Some((op, value)) = ops.next() else {
            return Err(format!(
                "{}: the condition on '{attribute}' has no operator; add one of {operators}",
                place(at)
            ));
        };
        if let Some((second, _)) = ops.next() {
            return Err(format!(
                "{}: the condition on '{attribute}' has two operators, '{op}' and '{second}'; \
                 write one condition each inside {{all: [...]}}",
                place(at)
            ));
        }
        if !OpSpec::NAMES.contains(&op.as_str()) {
            let hint = OpSpec::NAMES
                .iter()
                .find(|n| n.starts_with(op.as_str()) || op.starts_with(*n))
                .map(|n| format!("did you mean '{n}'? "))
                .unwrap_or_default();
            return Err(format!(
                "{}: unknown operator '{op}' on '{attribute}'; {hint}use one of {operators}",
                place(at)
            ));
        }
        let mut one = Map::new();
        one.insert(op.clone(), value.clone());
        let op = serde_json::from_value::<OpSpec>(Json::Object(one)).map_err(|e| {
            format!(
                "{}: '{op}' on '{attribute}': {}",
                place(at),
                e.to_string().replace("invalid type: ", "")
            )
        })?;
        Ok(FilterSpec::Condition(ConditionSpec { attribute, op }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    #[error("filter on '{attribute}': '{pattern}' is not a valid regular expression: {reason}")]
    BadRegex {
        attribute: String,
        pattern: String,
        reason: String,
    },
    #[error(
        "filter on '{attribute}': '{value}' is not a date; use ISO 8601 such as 2024-05-28 or 2024-05-28T10:00:00Z"
    )]
    BadDate { attribute: String, value: String },
    #[error("an empty '{0}' group matches nothing useful; remove it or add conditions")]
    EmptyGroup(&'static str),
}

/// A compiled filter.
#[derive(Debug, Clone)]
pub enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Condition { attribute: String, op: Op },
}

#[derive(Debug, Clone)]
pub enum Op {
    Equals(Json),
    NotEqual(Json),
    GreaterThan(f64),
    LessThan(f64),
    IsBlank(bool),
    Exists(bool),
    IsNoneOf(Vec<Json>),
    Contains(Json),
    Matches(regex::Regex),
    Before(DateTime<Utc>),
    After(DateTime<Utc>),
}

pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

impl FilterSpec {
    pub fn compile(&self) -> Result<Filter, FilterError> {
        Ok(match self {
            FilterSpec::All { all } if all.is_empty() => {
                return Err(FilterError::EmptyGroup("all"));
            }
            FilterSpec::Any { any } if any.is_empty() => {
                return Err(FilterError::EmptyGroup("any"));
            }
            FilterSpec::All { all } => Filter::All(
                all.iter()
                    .map(FilterSpec::compile)
                    .collect::<Result<_, _>>()?,
            ),
            FilterSpec::Any { any } => Filter::Any(
                any.iter()
                    .map(FilterSpec::compile)
                    .collect::<Result<_, _>>()?,
            ),
            FilterSpec::Condition(c) => {
                let attribute = c.attribute.clone();
                let date = |v: &str| {
                    parse_date(v).ok_or_else(|| FilterError::BadDate {
                        attribute: attribute.clone(),
                        value: v.to_string(),
                    })
                };
                let op = match &c.op {
                    OpSpec::Equals(v) => Op::Equals(v.clone()),
                    OpSpec::NotEqual(v) => Op::NotEqual(v.clone()),
                    OpSpec::GreaterThan(n) => Op::GreaterThan(*n),
                    OpSpec::LessThan(n) => Op::LessThan(*n),
                    OpSpec::IsBlank(b) => Op::IsBlank(*b),
                    OpSpec::Exists(b) => Op::Exists(*b),
                    OpSpec::IsNoneOf(v) => Op::IsNoneOf(v.clone()),
                    OpSpec::Contains(v) => Op::Contains(v.clone()),
                    OpSpec::MatchesRegex(p) => Op::Matches(
                        regex::RegexBuilder::new(p)
                            .case_insensitive(true)
                            .build()
                            .map_err(|e| FilterError::BadRegex {
                                attribute: attribute.clone(),
                                pattern: p.clone(),
                                reason: e.to_string(),
                            })?,
                    ),
                    OpSpec::Before(d) => Op::Before(date(d)?),
                    OpSpec::After(d) => Op::After(date(d)?),
                };
                Filter::Condition { attribute, op }
            }
        })
    }
}

/// An attribute's value on a profile: `external_id`, a standard field, or a custom attribute
/// (a dotted name reaches into nested objects).
pub fn attribute<'a>(profile: &'a Profile, name: &str) -> Option<&'a Json> {
    if let Some(v) = profile
        .standard
        .get(name)
        .or_else(|| profile.custom.get(name))
    {
        return Some(v);
    }
    let mut parts = name.split('.');
    let first = parts.next()?;
    parts.try_fold(profile.custom.get(first)?, |v, k| v.get(k))
}

fn as_number(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn loosely_equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::String(x), Json::String(y)) => x.eq_ignore_ascii_case(y),
        (Json::Number(_), _) | (_, Json::Number(_)) => match (as_number(a), as_number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        _ => a == b,
    }
}

impl Filter {
    /// Evaluates the filter against a profile's attributes.
    pub fn matches_profile(&self, profile: &Profile) -> bool {
        self.matches(&|name| attribute(profile, name).cloned())
    }

    /// Evaluates the filter against a flat property map (event properties).
    pub fn matches_properties(&self, props: &Map<String, Json>) -> bool {
        self.matches(&|name| props.get(name).cloned())
    }

    fn matches(&self, lookup: &dyn Fn(&str) -> Option<Json>) -> bool {
        match self {
            Filter::All(fs) => fs.iter().all(|f| f.matches(lookup)),
            Filter::Any(fs) => fs.iter().any(|f| f.matches(lookup)),
            Filter::Condition { attribute, op } => {
                let value = lookup(attribute).filter(|v| !v.is_null());
                match op {
                    Op::Equals(want) => value.is_some_and(|v| loosely_equal(&v, want)),
                    Op::NotEqual(want) => !value.is_some_and(|v| loosely_equal(&v, want)),
                    Op::GreaterThan(n) => {
                        value.as_ref().and_then(as_number).is_some_and(|v| v > *n)
                    }
                    Op::LessThan(n) => value.as_ref().and_then(as_number).is_some_and(|v| v < *n),
                    Op::IsBlank(blank) => {
                        let is_blank = match &value {
                            None => true,
                            Some(Json::String(s)) => s.trim().is_empty(),
                            Some(Json::Array(a)) => a.is_empty(),
                            Some(_) => false,
                        };
                        is_blank == *blank
                    }
                    Op::Exists(exists) => value.is_some() == *exists,
                    Op::IsNoneOf(list) => {
                        !value.is_some_and(|v| list.iter().any(|w| loosely_equal(&v, w)))
                    }
                    Op::Contains(needle) => match (&value, needle) {
                        (Some(Json::String(s)), Json::String(n)) => {
                            s.to_lowercase().contains(&n.to_lowercase())
                        }
                        (Some(Json::Array(items)), n) => items.iter().any(|i| loosely_equal(i, n)),
                        _ => false,
                    },
                    Op::Matches(re) => matches!(&value, Some(Json::String(s)) if re.is_match(s)),
                    Op::Before(t) => value
                        .as_ref()
                        .and_then(Json::as_str)
                        .and_then(parse_date)
                        .is_some_and(|v| v < *t),
                    Op::After(t) => value
                        .as_ref()
                        .and_then(Json::as_str)
                        .and_then(parse_date)
                        .is_some_and(|v| v > *t),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_operator_name_is_an_operator() {
        for name in OpSpec::NAMES {
            let value = if name.ends_with("than") {
                json!(1)
            } else if name == "is_blank" || name == "exists" {
                json!(true)
            } else if name == "is_none_of" {
                json!([])
            } else {
                json!("x")
            };
            let spec = FilterSpec::from_json(&json!({"attribute": "a", name: value}), "");
            assert!(spec.is_ok(), "{name}: {spec:?}");
        }
    }

    #[test]
    fn filter_errors_name_the_place_and_the_fix() {
        let err = |j: Json| FilterSpec::from_json(&j, "").expect_err("wrong");
        assert_eq!(
            err(
                json!({"all": [{"attribute": "x", "exists": true}, {"attribute": "lead_stage", "equal": "Lead"}]})
            ),
            "filter at all[1]: unknown operator 'equal' on 'lead_stage'; did you mean 'equals'? \
             use one of equals, not_equal, greater_than, less_than, is_blank, exists, is_none_of, \
             contains, matches_regex, before, after"
        );
        assert_eq!(
            err(json!({"attribute": "score", "greater_than": "high"})),
            "filter: 'greater_than' on 'score': string \"high\", expected f64"
        );
        assert_eq!(
            err(json!({"attribute": "a", "equals": 1, "contains": 2})),
            "filter: the condition on 'a' has two operators, 'equals' and 'contains'; write one \
             condition each inside {all: [...]}"
        );
        assert!(err(json!("x")).starts_with("filter: a filter is {attribute: NAME"));
        assert!(
            err(json!({"any": [], "all": []}))
                .contains("a group has only 'all'; 'any' does not belong beside it")
        );
    }

    fn profile(custom: Json, standard: Json) -> Profile {
        let mut p = Profile::new("b".into(), Utc::now());
        p.custom = custom.as_object().cloned().unwrap_or_default();
        p.standard = standard.as_object().cloned().unwrap_or_default();
        p
    }

    fn filter(spec: Json) -> Filter {
        serde_json::from_value::<FilterSpec>(spec)
            .expect("spec parses")
            .compile()
            .expect("compiles")
    }

    #[test]
    fn mql_threshold_from_the_seed() {
        let f = filter(
            json!({"all": [{"attribute": "lead_stage", "equals": "Lead"}, {"attribute": "lead_score", "greater_than": 50}]}),
        );
        assert!(f.matches_profile(&profile(
            json!({"lead_stage": "Lead", "lead_score": 51}),
            json!({})
        )));
        assert!(!f.matches_profile(&profile(
            json!({"lead_stage": "Lead", "lead_score": 50}),
            json!({})
        )));
        assert!(!f.matches_profile(&profile(
            json!({"lead_stage": "MQL", "lead_score": 90}),
            json!({})
        )));
    }

    #[test]
    fn every_operator() {
        let p = profile(
            json!({"plan": "pro", "tags": ["a", "b"], "signup": "2024-05-28T10:00:00Z", "address": {"city": "Porto"}, "blank": " "}),
            json!({"email": "jose@gmail.com"}),
        );
        let yes = [
            json!({"attribute": "plan", "not_equal": "free"}),
            json!({"attribute": "missing", "is_blank": true}),
            json!({"attribute": "blank", "is_blank": true}),
            json!({"attribute": "plan", "is_blank": false}),
            json!({"attribute": "plan", "exists": true}),
            json!({"attribute": "missing", "exists": false}),
            json!({"attribute": "plan", "is_none_of": ["free", "trial"]}),
            json!({"attribute": "tags", "contains": "b"}),
            json!({"attribute": "email", "matches_regex": "@GMAIL\\.com$"}),
            json!({"attribute": "signup", "after": "2024-01-01"}),
            json!({"attribute": "signup", "before": "2025-01-01"}),
            json!({"attribute": "address.city", "equals": "porto"}),
            json!({"any": [{"attribute": "plan", "equals": "free"}, {"attribute": "plan", "equals": "pro"}]}),
        ];
        for spec in yes {
            assert!(filter(spec.clone()).matches_profile(&p), "{spec}");
        }
        assert!(!filter(json!({"attribute": "missing", "greater_than": 1})).matches_profile(&p));
    }

    #[test]
    fn bad_filters_are_reported() {
        let e = serde_json::from_value::<FilterSpec>(
            json!({"attribute": "email", "matches_regex": "(("}),
        )
        .expect("parses")
        .compile();
        assert!(matches!(e, Err(FilterError::BadRegex { .. })));
        let e =
            serde_json::from_value::<FilterSpec>(json!({"attribute": "d", "before": "yesterday"}))
                .expect("parses")
                .compile();
        assert!(matches!(e, Err(FilterError::BadDate { .. })));
    }
}
