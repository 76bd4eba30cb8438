//! A user profile and how attribute objects, events and purchases change it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::identifier::UserAlias;
use crate::track::{AttrOp, AttributeObject, EventObject, MAX_ARRAY_ITEMS, PurchaseObject};
use crate::trigger::Trigger;

/// Braze's standard profile fields accepted by `/users/track` (lower-case keys).
pub const STANDARD_ATTRIBUTES: [&str; 17] = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "dob",
    "gender",
    "country",
    "home_city",
    "language",
    "time_zone",
    "email_subscribe",
    "push_subscribe",
    "subscription_groups",
    "push_tokens",
    "current_location",
    "date_of_first_session",
    "date_of_last_session",
];

pub(crate) fn is_standard_attribute(key: &str) -> bool {
    STANDARD_ATTRIBUTES.contains(&key)
}

/// How standard fields are named in Liquid (`{{${email_address}}}` reads `email`).
const LIQUID_NAMES: [(&str, &str); 5] = [
    ("email", "email_address"),
    ("phone", "phone_number"),
    ("dob", "date_of_birth"),
    ("home_city", "city"),
    ("language", "language"),
];

/// What a user did, summed per event name or product, as `/users/export/ids` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionSummary {
    pub name: String,
    /// RFC 3339: the first and the latest time.
    pub first: String,
    pub last: String,
    pub count: u64,
}

/// A profile's custom events and purchases, summarised (Braze's export fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct History {
    pub custom_events: Vec<ActionSummary>,
    pub purchases: Vec<ActionSummary>,
    /// The sum of price × quantity over every purchase, whatever its currency (as Braze sums).
    pub total_revenue: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub braze_id: String,
    pub external_id: Option<String>,
    #[serde(default)]
    pub aliases: Vec<UserAlias>,
    #[serde(default)]
    pub standard: Map<String, Json>,
    #[serde(default)]
    pub custom: Map<String, Json>,
    /// When the profile first got an email: "email added" fires once per profile.
    #[serde(default)]
    pub email_added_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Profile {
    pub fn new(braze_id: String, now: DateTime<Utc>) -> Profile {
        Profile {
            braze_id,
            external_id: None,
            aliases: Vec::new(),
            standard: Map::new(),
            custom: Map::new(),
            email_added_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn email(&self) -> Option<&str> {
        self.standard.get("email").and_then(Json::as_str)
    }

    /// Sets the email that identified a new profile (an email-only user) and raises "email added".
    pub fn set_identifying_email(&mut self, email: &str, now: DateTime<Utc>) -> Vec<Trigger> {
        let mut triggers = Vec::new();
        self.standard
            .insert("email".into(), Json::String(email.to_string()));
        self.note_email(now, &mut triggers);
        triggers
    }

    fn note_email(&mut self, now: DateTime<Utc>, triggers: &mut Vec<Trigger>) {
        if self.email_added_at.is_none()
            && let Some(email) = self.email().map(str::to_string)
        {
            self.email_added_at = Some(now);
            triggers.push(Trigger::EmailAdded { email });
        }
    }

    /// Applies one attribute object. All or nothing: every new value is computed first, and the
    /// profile changes only when all of them could be (no copy of the profile is needed).
    pub fn apply_attributes(
        &mut self,
        obj: &AttributeObject,
        now: DateTime<Utc>,
    ) -> Result<Vec<Trigger>, String> {
        let mut standard: Vec<(&String, Option<&Json>)> = Vec::new();
        let mut custom: Vec<(&String, Option<Json>)> = Vec::with_capacity(obj.ops.len());
        for (key, op) in &obj.ops {
            if is_standard_attribute(key) {
                match op {
                    AttrOp::Set(v) => standard.push((key, Some(v))),
                    AttrOp::Remove => standard.push((key, None)),
                    _ => {
                        return Err(format!(
                            "'{key}' is a standard attribute; set it to a value"
                        ));
                    }
                }
                continue;
            }
            let new = apply_custom(self.custom.get(key), op, obj.merge_objects)
                .map_err(|e| format!("'{key}': {e}"))?;
            custom.push((key, new));
        }
        let mut triggers = Vec::new();
        for (key, value) in standard {
            match value {
                Some(v) => self.standard.insert(key.clone(), v.clone()),
                None => self.standard.remove(key),
            };
        }
        for (key, new) in custom {
            match new {
                None => {
                    self.custom.remove(key);
                }
                Some(new) => {
                    let old = self.custom.insert(key.clone(), new.clone());
                    if old.as_ref() != Some(&new) {
                        triggers.push(Trigger::AttributeChanged {
                            name: key.clone(),
                            old,
                            new,
                        });
                    }
                }
            }
        }
        self.note_email(now, &mut triggers);
        self.updated_at = now;
        Ok(triggers)
    }

    pub fn event_trigger(event: &EventObject) -> Trigger {
        Trigger::CustomEvent {
            name: event.name.clone(),
            properties: event.properties.clone(),
            time: event.time.to_rfc3339(),
        }
    }

    pub fn purchase_trigger(p: &PurchaseObject) -> Trigger {
        Trigger::Purchase {
            product_id: p.product_id.clone(),
            currency: p.currency.clone(),
            price: p.price,
            quantity: p.quantity,
            properties: p.properties.clone(),
            time: p.time.to_rfc3339(),
        }
    }

    /// A user written by hand (a test user), in either shape Braze shows users in: the export
    /// shape (`external_id`, `email`, `first_name`, …, `custom_attributes`) or the render
    /// context (`{"profile": {"user_id", "email_address", …}, "custom_attributes": {...}}`).
    /// Either way `email` and `email_address` mean the same field, as do `external_id` and
    /// `user_id`; a key that is no standard field is a custom attribute.
    pub fn from_user_json(user: &Map<String, Json>, now: DateTime<Utc>) -> Profile {
        let mut profile = Profile::new("custom-user".into(), now);
        let put = |profile: &mut Profile, key: &str, value: &Json| {
            let standard = LIQUID_NAMES
                .iter()
                .find(|(_, liquid)| *liquid == key)
                .map_or(key, |(field, _)| field);
            match (standard, value) {
                ("external_id" | "user_id", Json::String(id)) => {
                    profile.external_id = Some(id.clone());
                }
                ("braze_id", Json::String(id)) => profile.braze_id = id.clone(),
                (field, value) if is_standard_attribute(field) => {
                    profile.standard.insert(field.to_string(), value.clone());
                }
                (_, value) => {
                    profile.custom.insert(key.to_string(), value.clone());
                }
            }
        };
        for (key, value) in user {
            match (key.as_str(), value) {
                ("profile", Json::Object(fields)) => {
                    for (key, value) in fields {
                        put(&mut profile, key, value);
                    }
                }
                ("custom_attributes", Json::Object(custom)) => {
                    profile
                        .custom
                        .extend(custom.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                (key, value) => put(&mut profile, key, value),
            }
        }
        if profile.email().is_some() {
            profile.email_added_at = Some(now);
        }
        profile
    }

    /// The render context the Liquid engine reads: `${...}` standard attributes by their Liquid
    /// names, and `custom_attribute.${...}`.
    pub fn liquid_context(&self) -> Json {
        let mut profile = Map::new();
        for (k, v) in &self.standard {
            let name = LIQUID_NAMES
                .iter()
                .find(|(field, _)| field == k)
                .map_or(k.as_str(), |(_, liquid)| liquid);
            profile.insert(name.to_string(), v.clone());
        }
        if let Some(id) = &self.external_id {
            profile.insert("user_id".into(), Json::String(id.clone()));
        }
        profile.insert("braze_id".into(), Json::String(self.braze_id.clone()));
        serde_json::json!({"profile": profile, "custom_attributes": self.custom})
    }

    /// The `/users/export/ids` form of the profile with its events and purchases, limited to
    /// `fields` when given.
    pub fn export_with(&self, history: &History, fields: Option<&[String]>) -> Json {
        let mut out = match self.export(None) {
            Json::Object(map) => map,
            _ => Map::new(),
        };
        out.insert(
            "custom_events".into(),
            serde_json::to_value(&history.custom_events).unwrap_or(Json::Null),
        );
        out.insert(
            "purchases".into(),
            serde_json::to_value(&history.purchases).unwrap_or(Json::Null),
        );
        out.insert(
            "total_revenue".into(),
            serde_json::json!(history.total_revenue),
        );
        if let Some(fields) = fields {
            out.retain(|k, _| fields.iter().any(|f| f == k));
        }
        Json::Object(out)
    }

    /// The `/users/export/ids` form of the profile alone, limited to `fields` when given.
    pub fn export(&self, fields: Option<&[String]>) -> Json {
        let mut out = Map::new();
        out.insert("braze_id".into(), Json::String(self.braze_id.clone()));
        if let Some(id) = &self.external_id {
            out.insert("external_id".into(), Json::String(id.clone()));
        }
        if !self.aliases.is_empty() {
            out.insert(
                "user_aliases".into(),
                serde_json::to_value(&self.aliases).unwrap_or(Json::Null),
            );
        }
        for (k, v) in &self.standard {
            out.insert(k.clone(), v.clone());
        }
        out.insert(
            "custom_attributes".into(),
            Json::Object(self.custom.clone()),
        );
        out.insert(
            "created_at".into(),
            Json::String(self.created_at.to_rfc3339()),
        );
        if let Some(fields) = fields {
            out.retain(|k, _| {
                fields.iter().any(|f| f == k)
                    || (k == "user_aliases" && fields.iter().any(|f| f == "user_aliases"))
            });
        }
        Json::Object(out)
    }
}

/// The new value of a custom attribute, or `None` to remove it.
fn apply_custom(
    old: Option<&Json>,
    op: &AttrOp,
    merge_objects: bool,
) -> Result<Option<Json>, String> {
    Ok(match op {
        AttrOp::Remove => None,
        AttrOp::Set(Json::Object(new)) if merge_objects => match old {
            Some(Json::Object(existing)) => Some(Json::Object(deep_merge(existing.clone(), new))),
            _ => Some(Json::Object(strip_nulls(new))),
        },
        AttrOp::Set(v) => Some(v.clone()),
        AttrOp::Inc(n) => {
            let sum = match (old, n.as_i64()) {
                (None | Some(Json::Null), _) => Json::Number(n.clone()),
                (Some(Json::Number(o)), Some(i)) if o.is_i64() => {
                    Json::from(o.as_i64().unwrap_or(0).saturating_add(i))
                }
                (Some(Json::Number(o)), _) => serde_json::Number::from_f64(
                    o.as_f64().unwrap_or(0.0) + n.as_f64().unwrap_or(0.0),
                )
                .map(Json::Number)
                .unwrap_or(Json::Null),
                (Some(other), _) => {
                    return Err(format!("cannot increment a {} value", type_name(other)));
                }
            };
            Some(sum)
        }
        AttrOp::ArrayEdit { add, remove } => {
            let mut items = match old {
                Some(Json::Array(a)) => a.clone(),
                None | Some(Json::Null) => Vec::new(),
                Some(other) => vec![other.clone()],
            };
            items.retain(|i| !remove.contains(i));
            for a in add {
                items.retain(|i| i != a);
                items.push(a.clone());
            }
            let drop = items.len().saturating_sub(MAX_ARRAY_ITEMS);
            Some(Json::Array(items.split_off(drop)))
        }
        AttrOp::ObjectArrayEdit {
            add,
            remove,
            update,
        } => {
            let mut items = match old {
                Some(Json::Array(a)) => a.clone(),
                None | Some(Json::Null) => Vec::new(),
                Some(other) => {
                    return Err(format!(
                        "is a {}, not an array of objects",
                        type_name(other)
                    ));
                }
            };
            items.retain(|i| !remove.iter().any(|(k, v)| i.get(k) == Some(v)));
            for (k, v, new) in update {
                for item in items.iter_mut().filter(|i| i.get(k) == Some(v)) {
                    *item = match (merge_objects, &*item) {
                        (true, Json::Object(existing)) => {
                            Json::Object(deep_merge(existing.clone(), new))
                        }
                        _ => Json::Object(new.clone()),
                    };
                }
            }
            items.extend(add.iter().cloned());
            Some(Json::Array(items))
        }
    })
}

fn deep_merge(mut base: Map<String, Json>, patch: &Map<String, Json>) -> Map<String, Json> {
    for (k, v) in patch {
        match (base.get_mut(k), v) {
            (_, Json::Null) => {
                base.remove(k);
            }
            (Some(Json::Object(existing)), Json::Object(p)) => {
                let merged = deep_merge(std::mem::take(existing), p);
                *existing = merged;
            }
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

fn strip_nulls(map: &Map<String, Json>) -> Map<String, Json> {
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_hand_written_user_renders_the_same_in_either_braze_shape() {
        let now = Utc::now();
        let export = serde_json::json!({
            "external_id": "jose", "email": "jose@example.com", "first_name": "José",
            "custom_attributes": {"company": "Acme"}, "lead_score": 60
        });
        let context = serde_json::json!({
            "profile": {"user_id": "jose", "email_address": "jose@example.com", "first_name": "José"},
            "custom_attributes": {"company": "Acme", "lead_score": 60}
        });
        let a = Profile::from_user_json(export.as_object().expect("object"), now);
        let b = Profile::from_user_json(context.as_object().expect("object"), now);
        assert_eq!(a.liquid_context(), b.liquid_context());
        assert_eq!(
            a.liquid_context()["profile"]["email_address"],
            "jose@example.com"
        );
        assert_eq!(a.liquid_context()["profile"]["user_id"], "jose");
        assert_eq!(a.liquid_context()["custom_attributes"]["lead_score"], 60);
    }

    use super::*;
    use crate::track::parse_track;
    use serde_json::json;

    fn apply(profile: &mut Profile, attrs: Json) -> Vec<Trigger> {
        let parsed = parse_track(&json!({"attributes": [attrs]})).expect("parses");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        profile
            .apply_attributes(&parsed.attributes[0], Utc::now())
            .expect("applies")
    }

    #[test]
    fn attribute_change_triggers_follow_braze_rules() {
        let mut p = Profile::new("b1".into(), Utc::now());
        let t = apply(&mut p, json!({"external_id": "u", "lead_score": 10}));
        assert_eq!(
            t,
            vec![Trigger::AttributeChanged {
                name: "lead_score".into(),
                old: None,
                new: json!(10)
            }]
        );
        assert!(
            apply(&mut p, json!({"external_id": "u", "lead_score": 10})).is_empty(),
            "same value again: no trigger"
        );
        assert!(
            apply(&mut p, json!({"external_id": "u", "lead_score": null})).is_empty(),
            "null: no trigger"
        );
        let t = apply(
            &mut p,
            json!({"external_id": "u", "lead_score": {"inc": 5}}),
        );
        assert_eq!(
            t,
            vec![Trigger::AttributeChanged {
                name: "lead_score".into(),
                old: None,
                new: json!(5)
            }]
        );
    }

    #[test]
    fn email_added_fires_once_per_profile() {
        let mut p = Profile::new("b1".into(), Utc::now());
        assert_eq!(
            apply(&mut p, json!({"external_id": "u", "email": "A@x.io"})),
            vec![Trigger::EmailAdded {
                email: "a@x.io".into()
            }]
        );
        assert!(apply(&mut p, json!({"external_id": "u", "email": "b@x.io"})).is_empty());
        assert!(apply(&mut p, json!({"external_id": "u", "email": null})).is_empty());
        assert!(apply(&mut p, json!({"external_id": "u", "email": "c@x.io"})).is_empty());
    }

    #[test]
    fn arrays_and_objects_edit_like_braze() {
        let mut p = Profile::new("b1".into(), Utc::now());
        apply(&mut p, json!({"external_id": "u", "tags": ["a", "b"]}));
        apply(
            &mut p,
            json!({"external_id": "u", "tags": {"add": ["a", "c"], "remove": ["b"]}}),
        );
        assert_eq!(p.custom["tags"], json!(["a", "c"]));
        apply(
            &mut p,
            json!({"external_id": "u", "pets": [{"id": 1, "type": "dog"}, {"id": 2, "type": "cat"}]}),
        );
        apply(
            &mut p,
            json!({"external_id": "u", "_merge_objects": true, "pets": {
                "$update": [{"$identifier_key": "id", "$identifier_value": 1, "$new_object": {"name": "Rex"}}],
                "$remove": [{"$identifier_key": "id", "$identifier_value": 2}],
                "$add": [{"id": 3, "type": "fish"}]
            }}),
        );
        assert_eq!(
            p.custom["pets"],
            json!([{"id": 1, "type": "dog", "name": "Rex"}, {"id": 3, "type": "fish"}])
        );
        apply(
            &mut p,
            json!({"external_id": "u", "address": {"city": "Porto", "zip": "4000"}}),
        );
        apply(
            &mut p,
            json!({"external_id": "u", "_merge_objects": true, "address": {"zip": null, "street": "Rua"}}),
        );
        assert_eq!(
            p.custom["address"],
            json!({"city": "Porto", "street": "Rua"})
        );
    }

    #[test]
    fn liquid_context_uses_braze_tag_names() {
        let mut p = Profile::new("b1".into(), Utc::now());
        p.external_id = Some("00Q1".into());
        apply(
            &mut p,
            json!({"external_id": "00Q1", "email": "j@x.io", "first_name": "José", "company": "Acme"}),
        );
        let ctx = p.liquid_context();
        assert_eq!(ctx["profile"]["email_address"], "j@x.io");
        assert_eq!(ctx["profile"]["user_id"], "00Q1");
        assert_eq!(ctx["custom_attributes"]["company"], "Acme");
    }
}
