//! Webhook templates and credentials on PostgreSQL.

use std::time::SystemTime;

use postgres::Row;

use super::PgTx;
use crate::codec::{decode_headers, encode_headers, from_millis, millis, new_id};
use crate::{CredentialKind, CredentialRow, StoreError, TemplateRow};

const COLUMNS: &str = "id, name, description, definition, archived, created_at, updated_at";

fn template_row(r: &Row) -> TemplateRow {
    TemplateRow {
        id: r.get(0),
        name: r.get(1),
        description: r.get(2),
        definition: r.get(3),
        archived: r.get(4),
        created_at: from_millis(r.get(5)),
        updated_at: from_millis(r.get(6)),
    }
}

impl PgTx<'_> {
    /// Drops what this transaction remembered of templates (it is about to change one).
    fn forget_templates(&mut self) {
        self.template_versions.clear();
        self.template_ids.clear();
    }

    /// Saves a new template (its name must not be taken by an active one); returns its id.
    pub fn insert_template(
        &mut self,
        name: &str,
        description: &str,
        definition: &str,
    ) -> Result<String, StoreError> {
        self.forget_templates();
        let id = new_id("wt_");
        let now = millis(SystemTime::now());
        self.query_unique(
            "INSERT INTO webhook_templates (id, name, description, definition, archived, created_at, updated_at) VALUES ($1, $2, $3, $4, false, $5, $5)",
            &[&id, &name, &description, &definition, &now],
            || format!("a template named '{name}' already exists; choose another name or update it"),
        )?;
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
        self.forget_templates();
        let now = millis(SystemTime::now());
        // `updated_at` is the compile cache's version: it must move even within a millisecond.
        let rows = self.query_unique(
            "UPDATE webhook_templates SET name = $2, description = $3, definition = $4, updated_at = GREATEST($5, updated_at + 1) WHERE id = $1 RETURNING id",
            &[&id, &name, &description, &definition, &now],
            || format!("a template named '{name}' already exists"),
        )?;
        Ok(!rows.is_empty())
    }

    /// Archives a template; `false` when no template has this id.
    pub fn archive_template(&mut self, id: &str) -> Result<bool, StoreError> {
        self.forget_templates();
        let now = millis(SystemTime::now());
        Ok(self.execute(
            "UPDATE webhook_templates SET archived = true, updated_at = GREATEST($2, updated_at + 1) WHERE id = $1",
            &[&id, &now],
        )? > 0)
    }

    pub fn template(&mut self, id: &str) -> Result<Option<TemplateRow>, StoreError> {
        Ok(self
            .query_opt(
                &format!("SELECT {COLUMNS} FROM webhook_templates WHERE id = $1"),
                &[&id],
            )?
            .as_ref()
            .map(template_row))
    }

    /// Templates, oldest first.
    pub fn templates(
        &mut self,
        include_archived: bool,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<TemplateRow>, StoreError> {
        let rows = self.query(
            &format!(
                "SELECT {COLUMNS} FROM webhook_templates WHERE ($1 OR NOT archived) ORDER BY created_at, id LIMIT $2 OFFSET $3"
            ),
            &[
                &include_archived,
                &i64::try_from(limit).unwrap_or(i64::MAX),
                &i64::try_from(offset).unwrap_or(0),
            ],
        )?;
        Ok(rows.iter().map(template_row).collect())
    }

    /// The template's version (its `updated_at` in ms) and whether it is archived. Asked once
    /// per transaction (a pass enqueues many jobs of one template).
    pub fn template_version(&mut self, id: &str) -> Result<Option<(i64, bool)>, StoreError> {
        if let Some(known) = self.template_versions.get(id) {
            return Ok(*known);
        }
        let version = self
            .query_opt(
                "SELECT updated_at, archived FROM webhook_templates WHERE id = $1",
                &[&id],
            )?
            .map(|r| (r.get(0), r.get(1)));
        self.template_versions.insert(id.to_owned(), version);
        Ok(version)
    }

    /// The id of the active template with this name (or id); asked once per transaction.
    pub fn template_id_by_name(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        if let Some(known) = self.template_ids.get(name) {
            return Ok(known.clone());
        }
        let id: Option<String> = self
            .query_opt(
                "SELECT id FROM webhook_templates WHERE (name = $1 OR id = $1) AND NOT archived",
                &[&name],
            )?
            .map(|r| r.get(0));
        self.template_ids.insert(name.to_owned(), id.clone());
        Ok(id)
    }

    /// Creates or replaces a credential (by name).
    /// Deletes a credential; `false` when there was none by that name.
    pub fn delete_credential(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM webhook_credentials WHERE name = $1", &[&name])? > 0)
    }

    pub fn put_credential(&mut self, c: &CredentialRow) -> Result<(), StoreError> {
        let now = millis(SystemTime::now());
        self.execute(
            "INSERT INTO webhook_credentials (name, kind, username, secret, headers, allowed_domain, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (name) DO UPDATE SET kind = $2, username = $3, secret = $4, headers = $5, allowed_domain = $6, updated_at = $7",
            &[
                &c.name,
                &c.kind.as_str(),
                &c.username,
                &c.secret,
                &encode_headers(&c.headers),
                &c.allowed_domain,
                &now,
            ],
        )?;
        Ok(())
    }

    /// Every credential, secrets included, by name.
    pub fn credentials(&mut self) -> Result<Vec<CredentialRow>, StoreError> {
        let rows = self.query(
            "SELECT name, kind, username, secret, headers, allowed_domain, created_at, updated_at FROM webhook_credentials ORDER BY name",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| CredentialRow {
                name: r.get(0),
                kind: if r.get::<_, &str>(1) == "basic" {
                    CredentialKind::Basic
                } else {
                    CredentialKind::Token
                },
                username: r.get(2),
                secret: r.get(3),
                headers: decode_headers(r.get(4)),
                allowed_domain: r.get(5),
                created_at: from_millis(r.get(6)),
                updated_at: from_millis(r.get(7)),
            })
            .collect())
    }

    pub fn credential(&mut self, name: &str) -> Result<Option<CredentialRow>, StoreError> {
        Ok(self.credentials()?.into_iter().find(|c| c.name == name))
    }
}
