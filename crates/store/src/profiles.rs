//! What `/users/track`, `/users/delete`, `/users/alias/new` and `/users/identify` do to profiles,
//! once for every backend.
//!
//! A backend provides row access ([`ProfileRows`]): find a profile's row, load and save it,
//! append events, purchases, aliases and triggers. The rules (Braze's precedence, update-only
//! objects, one save per touched profile, merging an alias profile into an identified one) live
//! here and nowhere else.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use leadwire_profiles::{
    EventObject, History, Identifier, MinorError, ParsedTrack, Profile, PurchaseObject, Trigger,
    UserAlias,
};

use crate::{ChangeSource, IdentifyRequest, NewAlias, Origin, StoreError, TrackResult};

/// A backend's access to profile rows inside one transaction.
///
/// `load` moves the latest version of a profile out of wherever the backend keeps it; the
/// caller hands it back with `keep` (changed or not), so a transaction never reads a stale
/// version of a profile it changed.
pub(crate) trait ProfileRows {
    fn now(&self) -> DateTime<Utc>;
    /// The profile's row for an identifier, if any.
    fn resolve(&mut self, id: &Identifier) -> Result<Option<i64>, StoreError>;
    /// The latest version of a row (locked against other writers until commit, where the
    /// backend has other writers).
    fn load(&mut self, row: i64) -> Result<Option<Profile>, StoreError>;
    /// Hands a profile back (`None`: deleted) as this transaction's latest version.
    fn keep(&mut self, row: i64, profile: Option<Profile>);
    /// Takes back what `keep` holds for a row.
    fn kept(&mut self, row: i64) -> Option<Option<Profile>>;
    /// Writes an existing row.
    fn save(&mut self, row: i64, profile: &Profile) -> Result<(), StoreError>;
    /// Inserts a new profile; `None` when another transaction created a profile with the same
    /// external id first (the caller then loads that one).
    fn insert(&mut self, profile: &Profile) -> Result<Option<i64>, StoreError>;
    fn insert_alias(&mut self, alias: &UserAlias, row: i64) -> Result<(), StoreError>;
    fn insert_event(
        &mut self,
        row: i64,
        event: &EventObject,
        time: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    fn insert_purchase(
        &mut self,
        row: i64,
        purchase: &PurchaseObject,
        time: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The row's custom events and purchases, summed per name (for `/users/export/ids`).
    fn history(&mut self, row: i64) -> Result<History, StoreError>;
    /// Appends triggers to the feed.
    fn emit(
        &mut self,
        profile: &Profile,
        origin: &Origin,
        triggers: &[Trigger],
    ) -> Result<(), StoreError>;
    /// Moves `from`'s aliases, events and purchases to `into` and deletes `from`.
    fn merge_rows(&mut self, from: i64, into: i64) -> Result<(), StoreError>;
    /// Deletes a row; returns how many went (0 or 1).
    fn delete_row(&mut self, row: i64) -> Result<usize, StoreError>;
}

fn new_braze_id(now: DateTime<Utc>) -> String {
    // Like Braze's ids (Mongo ObjectIds): 4 bytes of time, 8 random bytes, as 24 hex characters.
    format!(
        "{:08x}{:016x}",
        now.timestamp() as u32,
        rand::random::<u64>()
    )
}

fn array_order(name: &str) -> u8 {
    match name {
        "attributes" => 0,
        "events" => 1,
        _ => 2,
    }
}

/// The profile an identifier names (Braze's precedence for email and phone), as of this
/// transaction.
pub(crate) fn profile(
    rows: &mut impl ProfileRows,
    id: &Identifier,
) -> Result<Option<Profile>, StoreError> {
    let Some(row) = rows.resolve(id)? else {
        return Ok(None);
    };
    let found = rows.load(row)?;
    if let Some(p) = &found {
        rows.keep(row, Some(p.clone()));
    }
    Ok(found)
}

/// Why an object of a track request found no profile.
enum NoProfile {
    /// Update-only and no such user: Braze accepts the object and does nothing.
    Skipped(String),
    /// A minor error of the request (a `braze_id` that names no user).
    Error(String),
}

impl NoProfile {
    fn record(self, result: &mut TrackResult, input_array: &'static str, index: usize) {
        let (list, message) = match self {
            NoProfile::Skipped(m) => (&mut result.skipped, m),
            NoProfile::Error(m) => (&mut result.errors, m),
        };
        list.push(MinorError {
            message,
            input_array,
            index,
        });
    }
}

/// The profile an identifier names with its events and purchases summed.
pub(crate) fn profile_with_history(
    rows: &mut impl ProfileRows,
    id: &Identifier,
) -> Result<Option<(Profile, History)>, StoreError> {
    let Some(row) = rows.resolve(id)? else {
        return Ok(None);
    };
    let Some(profile) = rows.load(row)? else {
        return Ok(None);
    };
    rows.keep(row, Some(profile.clone()));
    Ok(Some((profile, rows.history(row)?)))
}

/// Finds or (unless update-only) creates the profile an object is about.
fn profile_for(
    rows: &mut impl ProfileRows,
    id: &Identifier,
    update_existing_only: bool,
    origin: &Origin,
) -> Result<Result<(i64, Profile), NoProfile>, StoreError> {
    let now = rows.now();
    // Twice at most: a profile another transaction created between our lookup and our insert
    // is found the second time.
    for _ in 0..2 {
        if let Some(row) = rows.resolve(id)?
            && let Some(p) = rows.load(row)?
        {
            return Ok(Ok((row, p)));
        }
        if update_existing_only {
            return Ok(Err(NoProfile::Skipped(format!(
                "no user with {} (the object is update-only)",
                id.describe()
            ))));
        }
        let mut profile = Profile::new(new_braze_id(now), now);
        let mut triggers = Vec::new();
        match id {
            Identifier::ExternalId(x) => profile.external_id = Some(x.clone()),
            Identifier::BrazeId(x) => {
                return Ok(Err(NoProfile::Error(format!(
                    "no user with braze_id '{x}'"
                ))));
            }
            Identifier::Alias(a) => profile.aliases.push(a.clone()),
            Identifier::Email(e) => triggers = profile.set_identifying_email(e, now),
            Identifier::Phone(p) => {
                profile
                    .standard
                    .insert("phone".into(), serde_json::Value::String(p.clone()));
            }
        }
        let Some(row) = rows.insert(&profile)? else {
            continue;
        };
        if let Identifier::Alias(a) = id {
            rows.insert_alias(a, row)?;
        }
        rows.emit(&profile, origin, &triggers)?;
        rows.keep(row, Some(profile.clone()));
        return Ok(Ok((row, profile)));
    }
    Err(StoreError::Database(format!(
        "the profile for {} kept changing under this transaction",
        id.describe()
    )))
}

pub(crate) fn track(
    rows: &mut impl ProfileRows,
    req: &ParsedTrack,
    origin: &Origin,
) -> Result<TrackResult, StoreError> {
    let now = rows.now();
    let mut result = TrackResult {
        errors: req.errors.clone(),
        ..TrackResult::default()
    };
    let mut dirty: HashSet<i64> = HashSet::new();
    for obj in &req.attributes {
        let (row, mut profile) =
            match profile_for(rows, &obj.identifier, obj.update_existing_only, origin)? {
                Ok(found) => found,
                Err(missing) => {
                    missing.record(&mut result, "attributes", obj.index);
                    continue;
                }
            };
        match profile.apply_attributes(obj, now) {
            Ok(triggers) => {
                rows.emit(&profile, origin, &triggers)?;
                rows.keep(row, Some(profile));
                dirty.insert(row);
                result.attributes_processed += 1;
            }
            Err(message) => {
                // Unchanged, but it may carry this command's earlier, not yet saved changes.
                rows.keep(row, Some(profile));
                result.errors.push(MinorError {
                    message,
                    input_array: "attributes",
                    index: obj.index,
                })
            }
        }
    }
    // Write each touched profile once, however many objects changed it.
    let mut dirty: Vec<i64> = dirty.into_iter().collect();
    // In row order, so two transactions saving the same profiles lock them in the same order.
    dirty.sort_unstable();
    for row in dirty {
        if let Some(Some(p)) = rows.kept(row) {
            rows.save(row, &p)?;
            rows.keep(row, Some(p));
        }
    }
    for ev in &req.events {
        let (row, profile) =
            match profile_for(rows, &ev.identifier, ev.update_existing_only, origin)? {
                Ok(found) => found,
                Err(missing) => {
                    missing.record(&mut result, "events", ev.index);
                    continue;
                }
            };
        rows.insert_event(row, ev, ev.time.min(now))?;
        rows.emit(&profile, origin, &[Profile::event_trigger(ev)])?;
        rows.keep(row, Some(profile));
        result.events_processed += 1;
    }
    for p in &req.purchases {
        let (row, profile) = match profile_for(rows, &p.identifier, p.update_existing_only, origin)?
        {
            Ok(found) => found,
            Err(missing) => {
                missing.record(&mut result, "purchases", p.index);
                continue;
            }
        };
        rows.insert_purchase(row, p, p.time.min(now))?;
        rows.emit(&profile, origin, &[Profile::purchase_trigger(p)])?;
        rows.keep(row, Some(profile));
        result.purchases_processed += 1;
    }
    result
        .errors
        .sort_by_key(|e| (array_order(e.input_array), e.index));
    Ok(result)
}

pub(crate) fn delete_users(
    rows: &mut impl ProfileRows,
    ids: &[Identifier],
) -> Result<usize, StoreError> {
    let mut deleted = 0;
    for id in ids {
        let Some(row) = rows.resolve(id)? else {
            continue;
        };
        if rows.load(row)?.is_none() {
            continue;
        }
        deleted += rows.delete_row(row)?;
        rows.keep(row, None);
    }
    Ok(deleted)
}

pub(crate) fn add_aliases(
    rows: &mut impl ProfileRows,
    aliases: &[NewAlias],
) -> Result<Vec<(usize, String)>, StoreError> {
    let now = rows.now();
    let mut errors = Vec::new();
    for (i, new) in aliases.iter().enumerate() {
        if rows
            .resolve(&Identifier::Alias(new.alias.clone()))?
            .is_some()
        {
            errors.push((
                i,
                format!(
                    "alias '{}' with label '{}' already exists",
                    new.alias.alias_name, new.alias.alias_label
                ),
            ));
            continue;
        }
        match &new.external_id {
            Some(ext) => {
                let id = Identifier::ExternalId(ext.clone());
                let Some(row) = rows.resolve(&id)? else {
                    errors.push((i, format!("no user with external_id '{ext}'")));
                    continue;
                };
                let Some(mut profile) = rows.load(row)? else {
                    errors.push((i, format!("no user with external_id '{ext}'")));
                    continue;
                };
                profile.aliases.push(new.alias.clone());
                profile.updated_at = now;
                rows.insert_alias(&new.alias, row)?;
                rows.save(row, &profile)?;
                rows.keep(row, Some(profile));
            }
            None => {
                let created = profile_for(
                    rows,
                    &Identifier::Alias(new.alias.clone()),
                    false,
                    &Origin::from(ChangeSource::Api),
                )?;
                if let Err(NoProfile::Skipped(message) | NoProfile::Error(message)) = created {
                    errors.push((i, message));
                }
            }
        }
    }
    Ok(errors)
}

pub(crate) fn identify(
    rows: &mut impl ProfileRows,
    reqs: &[IdentifyRequest],
) -> Result<Vec<(usize, String)>, StoreError> {
    let now = rows.now();
    let mut errors = Vec::new();
    for (i, req) in reqs.iter().enumerate() {
        let alias_id = Identifier::Alias(req.alias.clone());
        let Some(alias_row) = rows.resolve(&alias_id)? else {
            errors.push((i, format!("no user with {}", alias_id.describe())));
            continue;
        };
        let Some(mut alias_profile) = rows.load(alias_row)? else {
            errors.push((i, format!("no user with {}", alias_id.describe())));
            continue;
        };
        if alias_profile.external_id.is_some() {
            errors.push((i, format!("{} is already identified", alias_id.describe())));
            rows.keep(alias_row, Some(alias_profile));
            continue;
        }
        match rows.resolve(&Identifier::ExternalId(req.external_id.clone()))? {
            None => {
                alias_profile.external_id = Some(req.external_id.clone());
                alias_profile.updated_at = now;
                rows.save(alias_row, &alias_profile)?;
                rows.keep(alias_row, Some(alias_profile));
            }
            Some(target_row) => {
                let Some(mut target) = rows.load(target_row)? else {
                    rows.keep(alias_row, Some(alias_profile));
                    continue;
                };
                // The identified profile keeps its values; the alias profile fills only gaps.
                for (k, v) in &alias_profile.custom {
                    target.custom.entry(k.clone()).or_insert_with(|| v.clone());
                }
                for (k, v) in &alias_profile.standard {
                    target
                        .standard
                        .entry(k.clone())
                        .or_insert_with(|| v.clone());
                }
                for a in &alias_profile.aliases {
                    if !target.aliases.contains(a) {
                        target.aliases.push(a.clone());
                    }
                }
                target.updated_at = now;
                rows.merge_rows(alias_row, target_row)?;
                rows.save(target_row, &target)?;
                rows.keep(alias_row, None);
                rows.keep(target_row, Some(target));
            }
        }
    }
    Ok(errors)
}
