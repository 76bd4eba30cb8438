//! Braze's `recipients` objects, shared by `/campaigns/trigger/send` and `/canvas/trigger/send`:
//! exactly one identifier each, and `attributes` (with `send_to_existing_only`) applied to the
//! profile before the send.

use leadwire_profiles::{Identifier, parse_track};
use serde_json::{Value as Json, json};

use crate::routes::parse_alias;
use crate::{ApiError, AppState};

fn recipient_identifier(r: &Json, i: usize) -> Result<Identifier, ApiError> {
    let given: Vec<&str> = ["external_user_id", "user_alias", "email"]
        .into_iter()
        .filter(|k| r.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if given.len() != 1 {
        return Err(ApiError::bad_request(format!(
            "'recipients[{i}]' needs exactly one of external_user_id, user_alias or email (got {})",
            if given.is_empty() {
                "none".to_string()
            } else {
                given.join(", ")
            }
        )));
    }
    match given[0] {
        "external_user_id" => r["external_user_id"]
            .as_str()
            .map(|s| Identifier::ExternalId(s.to_string()))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "'recipients[{i}].external_user_id' must be a string"
                ))
            }),
        "user_alias" => Ok(Identifier::Alias(parse_alias(
            &r["user_alias"],
            &format!("'recipients[{i}].user_alias'"),
        )?)),
        _ => r["email"]
            .as_str()
            .map(|s| Identifier::Email(s.to_lowercase()))
            .ok_or_else(|| {
                ApiError::bad_request(format!("'recipients[{i}].email' must be a string"))
            }),
    }
}

/// The identifier as a `/users/track` object key.
fn track_identity(id: &Identifier) -> Json {
    match id {
        Identifier::ExternalId(x) => json!({"external_id": x}),
        Identifier::Alias(a) => {
            json!({"user_alias": {"alias_name": a.alias_name, "alias_label": a.alias_label}})
        }
        Identifier::Email(e) => json!({"email": e}),
        Identifier::BrazeId(b) => json!({"braze_id": b}),
        Identifier::Phone(p) => json!({"phone": p}),
    }
}

/// A recipient's identifier and, when it carries `attributes`, the `/users/track` attribute object
/// they become (update-only unless `send_to_existing_only` is false, which creates the user).
pub(crate) fn parse(r: &Json, i: usize) -> Result<(Identifier, Option<Json>), ApiError> {
    let user = recipient_identifier(r, i)?;
    let existing_only = r
        .get("send_to_existing_only")
        .and_then(Json::as_bool)
        .unwrap_or(true);
    let attributes = r.get("attributes").filter(|a| !a.is_null());
    if !existing_only && attributes.is_none() {
        return Err(ApiError::bad_request(format!(
            "'recipients[{i}]': send_to_existing_only false needs an 'attributes' object to create the user"
        )));
    }
    if !existing_only && matches!(user, Identifier::Alias(_)) {
        return Err(ApiError::bad_request(format!(
            "'recipients[{i}]': send_to_existing_only false is not supported with user_alias"
        )));
    }
    let update = match attributes {
        None => None,
        Some(Json::Object(attrs)) => {
            let mut object = track_identity(&user);
            if let Json::Object(o) = &mut object {
                o.extend(attrs.clone());
                o.insert("_update_existing_only".into(), Json::Bool(existing_only));
            }
            Some(object)
        }
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "'recipients[{i}].attributes' must be an object"
            )));
        }
    };
    Ok((user, update))
}

/// Applies the recipients' attributes before the send; returns minor errors indexed by recipient.
pub(crate) async fn apply_attributes(
    state: &AppState,
    updates: Vec<(usize, Json)>,
) -> Result<Vec<Json>, ApiError> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    let (indexes, objects): (Vec<usize>, Vec<Json>) = updates.into_iter().unzip();
    let parsed = parse_track(&json!({"attributes": objects}))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let result = state.store.track(parsed, crate::api_origin()).await?;
    Ok(result
        .errors
        .iter()
        .map(|e| json!({"type": e.message, "input_array": "recipients", "index": indexes.get(e.index).copied().unwrap_or(e.index)}))
        .collect())
}
