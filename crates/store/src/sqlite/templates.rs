//! Webhook templates (`webhook_templates`) and credentials (`webhook_credentials`).

use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};

use super::{SqliteTx, conflict, from_millis, millis, new_id};
use crate::codec::{decode_headers, encode_headers};
use crate::{CredentialKind, CredentialRow, StoreError, TemplateRow};

const COLUMNS: &str = "id, name, description, definition, archived, created_at, updated_at";

fn template_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TemplateRow> {
    Ok(TemplateRow {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        definition: r.get(3)?,
        archived: r.get(4)?,
        created_at: from_millis(r.get(5)?),
        updated_at: from_millis(r.get(6)?),
    })
}

impl SqliteTx<'_> {
    /// Saves a new template (its name must not be taken by an active one); returns its id.
    pub fn insert_template(
        &mut self,
        name: &str,
        description: &str,
        definition: &str,
    ) -> Result<String, StoreError> {
        let id = new_id("wt_");
        let now = millis(SystemTime::now());
        self.conn
            .prepare_cached(
                "INSERT INTO webhook_templates (id, name, description, definition, archived, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
            )?
            .execute(params![id, name, description, definition, now])
            .map_err(|e| {
                conflict(e, || {
                    format!("a template named '{name}' already exists; choose another name or update it")
                })
            })?;
        Ok(id)
    }

    /// Replaces a template's definition; `false` when no template has this id.
    pub fn update_template(
        &mut self,
        id: &str,
        name: &str,
        description: &str,
        definition: &str,
    ) -> Result<bool, StoreError> {
        let now = millis(SystemTime::now());
        // `updated_at` is the compile cache's version: it must move even within a millisecond.
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE webhook_templates SET name = ?2, description = ?3, definition = ?4, updated_at = max(?5, updated_at + 1) WHERE id = ?1",
            )?
            .execute(params![id, name, description, definition, now])
            .map_err(|e| conflict(e, || format!("a template named '{name}' already exists")))?;
        Ok(changed > 0)
    }

    /// Archives a template; `false` when no template has this id.
    pub fn archive_template(&mut self, id: &str) -> Result<bool, StoreError> {
        let now = millis(SystemTime::now());
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE webhook_templates SET archived = 1, updated_at = max(?2, updated_at + 1) WHERE id = ?1",
            )?
            .execute(params![id, now])?;
        Ok(changed > 0)
    }

    pub fn template(&mut self, id: &str) -> Result<Option<TemplateRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM webhook_templates WHERE id = ?1"
            ))?
            .query_row([id], template_row)
            .optional()?)
    }

    /// Templates, oldest first.
    pub fn templates(
        &mut self,
        include_archived: bool,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<TemplateRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM webhook_templates WHERE (?1 OR archived = 0) ORDER BY created_at, id LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    include_archived,
                    i64::try_from(limit).unwrap_or(i64::MAX),
                    i64::try_from(offset).unwrap_or(0)
                ],
                template_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The template's version (its `updated_at` in ms, to key a compile cache) and whether it
    /// is archived.
    pub fn template_version(&mut self, id: &str) -> Result<Option<(i64, bool)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT updated_at, archived FROM webhook_templates WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// The id of the active template with this name (or id).
    pub fn template_id_by_name(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM webhook_templates WHERE (name = ?1 OR id = ?1) AND archived = 0",
            )?
            .query_row([name], |r| r.get(0))
            .optional()?)
    }

    /// Creates or replaces a credential (by name).
    pub fn put_credential(&mut self, c: &CredentialRow) -> Result<(), StoreError> {
        let now = millis(SystemTime::now());
        let headers = encode_headers(&c.headers);
        self.conn
            .prepare_cached(
                "INSERT INTO webhook_credentials (name, kind, username, secret, headers, allowed_domain, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT(name) DO UPDATE SET kind = ?2, username = ?3, secret = ?4, headers = ?5, allowed_domain = ?6, updated_at = ?7",
            )?
            .execute(params![c.name, c.kind.as_str(), c.username, c.secret, headers, c.allowed_domain, now])?;
        Ok(())
    }

    /// Every credential, secrets included, by name.
    pub fn credentials(&mut self) -> Result<Vec<CredentialRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, kind, username, secret, headers, allowed_domain, created_at, updated_at FROM webhook_credentials ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            let kind: String = r.get(1)?;
            let headers: String = r.get(4)?;
            Ok(CredentialRow {
                name: r.get(0)?,
                kind: if kind == "basic" {
                    CredentialKind::Basic
                } else {
                    CredentialKind::Token
                },
                username: r.get(2)?,
                secret: r.get(3)?,
                headers: decode_headers(&headers),
                allowed_domain: r.get(5)?,
                created_at: from_millis(r.get(6)?),
                updated_at: from_millis(r.get(7)?),
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Deletes a credential; `false` when there was none by that name.
    pub fn delete_credential(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM webhook_credentials WHERE name = ?1")?
            .execute([name])?
            > 0)
    }

    pub fn credential(&mut self, name: &str) -> Result<Option<CredentialRow>, StoreError> {
        Ok(self.credentials()?.into_iter().find(|c| c.name == name))
    }
}
