//! The org's Lead records: create, read, update, delete, upsert matching, queries, the duplicate rule on
//! Email, and the serialisable snapshot the state file holds. Pure in-memory data; the HTTP shell wraps
//! it in a lock and decides when to persist. Knows nothing of HTTP, tokens or limits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api_error::ApiError;
use crate::id::{KeyPrefix, SalesforceId};
use crate::lead::{LeadChanges, LeadRecord, validate_write};
use crate::schema::{FieldIndex, LeadSchema};
use crate::soql::Query;
use crate::timestamp::Millis;

/// The two characters after the key prefix: an imaginary instance, fixed so ids are reproducible.
pub const INSTANCE: [u8; 2] = *b"8e";

/// Why a record operation failed, before it is put in Salesforce's words (which need the URL key).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    NotFound,
    Deleted,
    /// The duplicate rule on Email matched these live records.
    Duplicate(Vec<SalesforceId>),
    Rejected(ApiError),
}

impl From<ApiError> for StoreError {
    fn from(error: ApiError) -> Self {
        StoreError::Rejected(error)
    }
}

/// How the upsert matched its external id.
#[derive(Debug, Clone, PartialEq)]
pub enum UpsertOutcome {
    Created(SalesforceId),
    Updated(SalesforceId),
    /// More than one record has the value: 300 with their URLs.
    Ambiguous(Vec<SalesforceId>),
}

/// Lead records plus the indexes the duplicate rule needs.
#[derive(Debug, Clone)]
pub struct LeadStore {
    schema: Arc<LeadSchema>,
    leads: BTreeMap<SalesforceId, LeadRecord>,
    next_sequence: u64,
    /// Lower-cased Email -> live leads with it.
    by_email: HashMap<String, Vec<SalesforceId>>,
    email_field: Option<FieldIndex>,
    duplicate_rule_on_email: bool,
}

impl LeadStore {
    pub fn new(schema: Arc<LeadSchema>, duplicate_rule_on_email: bool) -> Self {
        let email_field = schema.index_of("Email");
        LeadStore {
            schema,
            leads: BTreeMap::new(),
            next_sequence: 1,
            by_email: HashMap::new(),
            email_field,
            duplicate_rule_on_email,
        }
    }

    pub fn schema(&self) -> &Arc<LeadSchema> {
        &self.schema
    }

    fn email_key(&self, record: &LeadRecord) -> Option<String> {
        let index = self.email_field?;
        record.values[index.0].as_str().map(str::to_lowercase)
    }

    fn index_record(&mut self, id: SalesforceId) {
        let Some(record) = self.leads.get(&id) else {
            return;
        };
        if record.deleted {
            return;
        }
        if let Some(key) = self.email_key(record) {
            self.by_email.entry(key).or_default().push(id);
        }
    }

    fn unindex_record(&mut self, id: SalesforceId) {
        let Some(key) = self
            .leads
            .get(&id)
            .and_then(|record| self.email_key(record))
        else {
            return;
        };
        if let Some(ids) = self.by_email.get_mut(&key) {
            ids.retain(|existing| *existing != id);
            if ids.is_empty() {
                self.by_email.remove(&key);
            }
        }
    }

    /// Live records other than `except` that share the e-mail a write would leave on the record.
    fn duplicates(
        &self,
        changes: &LeadChanges,
        existing: Option<&LeadRecord>,
    ) -> Vec<SalesforceId> {
        let Some(email_index) = self.email_field.filter(|_| self.duplicate_rule_on_email) else {
            return Vec::new();
        };
        let email = match changes.get(email_index) {
            Some(value) => value.as_str(),
            None => existing.and_then(|record| record.values[email_index.0].as_str()),
        };
        let Some(email) = email else {
            return Vec::new();
        };
        let except = existing.map(|record| record.id);
        self.by_email
            .get(&email.to_lowercase())
            .map(|ids| {
                ids.iter()
                    .copied()
                    .filter(|id| Some(*id) != except)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks a create without applying it.
    pub fn check_create(
        &self,
        changes: &LeadChanges,
        allow_duplicates: bool,
    ) -> Result<(), StoreError> {
        validate_write(&self.schema, changes, None)?;
        let duplicates = if allow_duplicates {
            Vec::new()
        } else {
            self.duplicates(changes, None)
        };
        if duplicates.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Duplicate(duplicates))
        }
    }

    pub fn create(
        &mut self,
        changes: &LeadChanges,
        owner: SalesforceId,
        now: Millis,
        allow_duplicates: bool,
    ) -> Result<SalesforceId, StoreError> {
        self.check_create(changes, allow_duplicates)?;
        let id = SalesforceId::generate(KeyPrefix::LEAD, INSTANCE, self.next_sequence);
        self.next_sequence += 1;
        let record = LeadRecord::create(&self.schema, id, changes, owner, now);
        self.leads.insert(id, record);
        self.index_record(id);
        Ok(id)
    }

    pub fn get(&self, id: &SalesforceId) -> Result<&LeadRecord, StoreError> {
        match self.leads.get(id) {
            None => Err(StoreError::NotFound),
            Some(record) if record.deleted => Err(StoreError::Deleted),
            Some(record) => Ok(record),
        }
    }

    pub fn check_update(
        &self,
        id: &SalesforceId,
        changes: &LeadChanges,
        allow_duplicates: bool,
    ) -> Result<(), StoreError> {
        let existing = self.get(id)?;
        validate_write(&self.schema, changes, Some(existing))?;
        let duplicates = if allow_duplicates {
            Vec::new()
        } else {
            self.duplicates(changes, Some(existing))
        };
        if duplicates.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Duplicate(duplicates))
        }
    }

    pub fn update(
        &mut self,
        id: &SalesforceId,
        changes: &LeadChanges,
        now: Millis,
        allow_duplicates: bool,
    ) -> Result<(), StoreError> {
        self.check_update(id, changes, allow_duplicates)?;
        self.unindex_record(*id);
        if let Some(record) = self.leads.get_mut(id) {
            record.apply(changes, now);
        }
        self.index_record(*id);
        Ok(())
    }

    /// Deleted records stay, flagged, like the Recycle Bin, so a second delete says ENTITY_IS_DELETED.
    pub fn delete(&mut self, id: &SalesforceId, now: Millis) -> Result<(), StoreError> {
        self.get(id)?;
        self.unindex_record(*id);
        if let Some(record) = self.leads.get_mut(id) {
            record.deleted = true;
            record.modified = now;
        }
        Ok(())
    }

    /// Live records whose `field` equals `value`; text compares case-insensitively, as external ids do.
    pub fn find_by(&self, field: FieldIndex, value: &str) -> Vec<SalesforceId> {
        let wanted = value.to_lowercase();
        self.live()
            .filter(|record| match &record.values[field.0] {
                Value::String(text) => text.to_lowercase() == wanted,
                Value::Number(number) => {
                    number.to_string() == value || number.as_f64() == value.parse::<f64>().ok()
                }
                _ => false,
            })
            .map(|record| record.id)
            .collect()
    }

    /// Upsert by external id: create with the id set, update the one match, or report ambiguity.
    pub fn upsert(
        &mut self,
        field: FieldIndex,
        value: &str,
        mut changes: LeadChanges,
        owner: SalesforceId,
        now: Millis,
        allow_duplicates: bool,
    ) -> Result<UpsertOutcome, StoreError> {
        let matches = self.find_by(field, value);
        match matches.as_slice() {
            [] => {
                changes.set(field, Value::String(value.to_owned()));
                self.create(&changes, owner, now, allow_duplicates)
                    .map(UpsertOutcome::Created)
            }
            [only] => {
                let id = *only;
                self.update(&id, &changes, now, allow_duplicates)
                    .map(|()| UpsertOutcome::Updated(id))
            }
            _ => Ok(UpsertOutcome::Ambiguous(matches)),
        }
    }

    pub fn live(&self) -> impl DoubleEndedIterator<Item = &LeadRecord> {
        self.leads.values().filter(|record| !record.deleted)
    }

    pub fn all(&self) -> impl Iterator<Item = &LeadRecord> {
        self.leads.values()
    }

    pub fn live_count(&self) -> usize {
        self.live().count()
    }

    pub fn deleted_count(&self) -> usize {
        self.leads.values().filter(|record| record.deleted).count()
    }

    /// Records matching a query's conditions, in creation order, up to its LIMIT.
    pub fn query<'a>(
        &'a self,
        query: &'a Query,
        render: impl Fn(&LeadRecord, FieldIndex) -> Value + 'a,
    ) -> Vec<&'a LeadRecord> {
        self.live()
            .filter(|record| {
                query
                    .conditions
                    .iter()
                    .all(|condition| condition.matches(&render(record, condition.field)))
            })
            .take(query.limit.unwrap_or(usize::MAX))
            .collect()
    }

    pub fn clear(&mut self) {
        self.leads.clear();
        self.by_email.clear();
        self.next_sequence = 1;
    }

    /// Removes a record outright: only to undo creates of an all-or-none batch that failed midway.
    pub fn purge(&mut self, id: &SalesforceId) {
        self.unindex_record(*id);
        self.leads.remove(id);
    }

    /// The records in a form that survives schema changes: stored fields by name.
    pub fn snapshot(&self) -> StoreSnapshot {
        let leads = self
            .leads
            .values()
            .map(|record| StoredLead {
                id: record.id,
                created: record.created,
                modified: record.modified,
                deleted: record.deleted,
                fields: self
                    .schema
                    .fields()
                    .filter(|(index, field)| field.is_stored() && !record.values[index.0].is_null())
                    .map(|(index, field)| (field.name.clone(), record.values[index.0].clone()))
                    .collect(),
            })
            .collect();
        StoreSnapshot {
            next_sequence: self.next_sequence,
            leads,
        }
    }

    /// Loads a snapshot; fields the current schema lacks are dropped (and named in the result).
    pub fn restore(&mut self, snapshot: StoreSnapshot) -> Vec<String> {
        self.clear();
        let mut dropped = Vec::new();
        for stored in snapshot.leads {
            let mut values: Vec<Value> = vec![Value::Null; self.schema.len()];
            for (name, value) in stored.fields {
                match self.schema.lookup(&name) {
                    Some(index) if self.schema.field(index).is_stored() => values[index.0] = value,
                    _ => {
                        if !dropped.contains(&name) {
                            dropped.push(name);
                        }
                    }
                }
            }
            let record = LeadRecord {
                id: stored.id,
                values,
                created: stored.created,
                modified: stored.modified,
                deleted: stored.deleted,
            };
            self.leads.insert(stored.id, record);
            self.index_record(stored.id);
        }
        self.next_sequence = snapshot.next_sequence.max(self.leads.len() as u64 + 1);
        dropped
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLead {
    pub id: SalesforceId,
    pub created: Millis,
    pub modified: Millis,
    pub deleted: bool,
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreSnapshot {
    pub next_sequence: u64,
    pub leads: Vec<StoredLead>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::{WriteKind, parse_changes};

    fn store(duplicate_rule: bool) -> LeadStore {
        LeadStore::new(
            Arc::new(LeadSchema::new(&[]).expect("schema")),
            duplicate_rule,
        )
    }

    fn changes(store: &LeadStore, body: Value) -> LeadChanges {
        let object = body.as_object().cloned().unwrap_or_default();
        parse_changes(store.schema(), &object, None, WriteKind::Create).expect("valid body")
    }

    fn owner() -> SalesforceId {
        SalesforceId::generate(KeyPrefix::USER, INSTANCE, 1)
    }

    #[test]
    fn create_update_delete_lifecycle() {
        let mut store = store(false);
        let body = changes(&store, serde_json::json!({"LastName": "L", "Company": "C"}));
        let id = store
            .create(&body, owner(), Millis(1), false)
            .expect("created");
        assert_eq!(id.key_prefix(), "00Q");
        let update = changes(&store, serde_json::json!({"FirstName": "F"}));
        store
            .update(&id, &update, Millis(2), false)
            .expect("updated");
        assert_eq!(store.get(&id).expect("live").modified, Millis(2));
        store.delete(&id, Millis(3)).expect("deleted");
        assert_eq!(store.get(&id), Err(StoreError::Deleted));
        assert_eq!(store.delete(&id, Millis(4)), Err(StoreError::Deleted));
        let unknown = SalesforceId::generate(KeyPrefix::LEAD, INSTANCE, 999);
        assert_eq!(store.get(&unknown), Err(StoreError::NotFound));
    }

    #[test]
    fn duplicate_rule_matches_email_case_insensitively_and_can_be_bypassed() {
        let mut store = store(true);
        let first = changes(
            &store,
            serde_json::json!({"LastName": "L", "Company": "C", "Email": "A@x.io"}),
        );
        let id = store
            .create(&first, owner(), Millis(1), false)
            .expect("created");
        let second = changes(
            &store,
            serde_json::json!({"LastName": "M", "Company": "C", "Email": "a@X.io"}),
        );
        assert_eq!(
            store.create(&second, owner(), Millis(2), false),
            Err(StoreError::Duplicate(vec![id]))
        );
        assert!(store.create(&second, owner(), Millis(2), true).is_ok());
        // Updating the record itself does not count as a duplicate of itself.
        let same = changes(&store, serde_json::json!({"Email": "A@x.io"}));
        assert!(
            matches!(store.update(&id, &same, Millis(3), false), Err(StoreError::Duplicate(others)) if others.len() == 1)
        );
    }

    #[test]
    fn snapshot_round_trips() {
        let mut store = store(false);
        let body = changes(
            &store,
            serde_json::json!({"LastName": "L", "Company": "C", "Email": "a@b.co"}),
        );
        let id = store
            .create(&body, owner(), Millis(5), false)
            .expect("created");
        let snapshot = store.snapshot();
        let json = serde_json::to_string(&snapshot).expect("serialisable");
        let mut restored = self::store(false);
        let dropped = restored.restore(serde_json::from_str(&json).expect("parses"));
        assert!(dropped.is_empty());
        assert_eq!(
            restored.get(&id).expect("restored"),
            store.get(&id).expect("original")
        );
        let next = restored
            .create(&body, owner(), Millis(6), false)
            .expect("created");
        assert!(next > id);
    }
}
