//! Deploy template and runbook rows: the same shape in two tables (`TemplateKind` picks one).
//! Names and UUIDs are unique within a table.

use chrono::Utc;
use sqlx::types::Json;

use super::list::{col, json, opt, Column, Kind::*, ListQuery, Page, Table};
use super::{on_pool, unique_to_conflict, StepTemplate, Store, StoreError, StoreResult};

/// Which table of step templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    DeployTemplate,
    Runbook,
}

/// The columns of both tables. A migration that adds a column adds it here too.
const COLUMNS: &[Column] = &[
    col("id", Int),
    col("uuid", Text),
    col("name", Text),
    opt("description", Text),
    json("steps"),
    json("extra"),
    col("disable_ramdisk", Bool),
    col("public", Bool),
    opt("owner", Text),
    col("created_at", Time),
    opt("updated_at", Time),
];

const fn table(name: &'static str, kind: &'static str) -> Table {
    Table {
        name,
        kind,
        columns: COLUMNS,
    }
}

pub const DEPLOY_TEMPLATES: Table = table("deploy_templates", "DeployTemplate");
pub const RUNBOOKS: Table = table("runbooks", "Runbook");

impl TemplateKind {
    pub fn table(self) -> &'static Table {
        match self {
            TemplateKind::DeployTemplate => &DEPLOY_TEMPLATES,
            TemplateKind::Runbook => &RUNBOOKS,
        }
    }

    /// How Ironic's messages name it: "deploy template", "runbook".
    pub fn noun(self) -> &'static str {
        match self {
            TemplateKind::DeployTemplate => "deploy template",
            TemplateKind::Runbook => "runbook",
        }
    }

    fn not_found(self, id: &str) -> StoreError {
        StoreError::NotFound {
            kind: self.table().kind,
            id: id.to_string(),
        }
    }

    fn conflict(self, e: sqlx::Error, t: &StepTemplate) -> StoreError {
        unique_to_conflict(e, |detail| {
            if detail.contains("name") {
                format!("A {} with name {} already exists.", self.noun(), t.name)
            } else {
                format!("A {} with UUID {} already exists.", self.noun(), t.uuid)
            }
        })
    }
}

impl Store {
    pub async fn create_template(
        &self,
        kind: TemplateKind,
        t: &StepTemplate,
    ) -> StoreResult<StepTemplate> {
        let sql = format!(
            "INSERT INTO {} (uuid, name, description, steps, extra, disable_ramdisk, public, \
             owner, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
            kind.table().name
        );
        on_pool!(self, pool => sqlx::query_as::<_, StepTemplate>(&sql)
            .bind(&t.uuid)
            .bind(&t.name)
            .bind(&t.description)
            .bind(Json(&t.steps))
            .bind(Json(&t.extra))
            .bind(t.disable_ramdisk)
            .bind(t.public)
            .bind(&t.owner)
            .bind(t.created_at)
            .fetch_one(pool)
            .await)
        .map_err(|e| kind.conflict(e, t))
    }

    /// Saves every field of `t` but its uuid and created_at.
    pub async fn save_template(
        &self,
        kind: TemplateKind,
        t: &StepTemplate,
    ) -> StoreResult<StepTemplate> {
        let sql = format!(
            "UPDATE {} SET name = $2, description = $3, steps = $4, extra = $5, \
             disable_ramdisk = $6, public = $7, owner = $8, updated_at = $9 \
             WHERE uuid = $1 RETURNING *",
            kind.table().name
        );
        on_pool!(self, pool => sqlx::query_as::<_, StepTemplate>(&sql)
            .bind(&t.uuid)
            .bind(&t.name)
            .bind(&t.description)
            .bind(Json(&t.steps))
            .bind(Json(&t.extra))
            .bind(t.disable_ramdisk)
            .bind(t.public)
            .bind(&t.owner)
            .bind(Utc::now())
            .fetch_optional(pool)
            .await)
        .map_err(|e| kind.conflict(e, t))?
        .ok_or_else(|| kind.not_found(&t.uuid))
    }

    /// A template by UUID or name.
    pub async fn template(&self, kind: TemplateKind, ident: &str) -> StoreResult<StepTemplate> {
        let sql = format!(
            "SELECT * FROM {} WHERE uuid = $1 OR name = $2",
            kind.table().name
        );
        on_pool!(self, pool => sqlx::query_as::<_, StepTemplate>(&sql)
            .bind(ident.to_ascii_lowercase())
            .bind(ident)
            .fetch_optional(pool)
            .await)?
        .ok_or_else(|| kind.not_found(ident))
    }

    /// One page of templates (see `store::list`).
    pub async fn list_templates(
        &self,
        kind: TemplateKind,
        q: &ListQuery,
    ) -> StoreResult<Page<StepTemplate>> {
        self.list(kind.table(), q).await
    }

    pub async fn delete_template(&self, kind: TemplateKind, uuid: &str) -> StoreResult<()> {
        let table = kind.table();
        self.delete_by_uuid(table.name, table.kind, uuid).await
    }
}
