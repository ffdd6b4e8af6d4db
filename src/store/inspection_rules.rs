//! Inspection rule rows (API 1.96). Rules are addressed by UUID only (they have no names).

use chrono::Utc;
use sqlx::types::Json;

use super::list::{col, json, opt, Column, Filter, Kind::*, ListQuery, Page, Table};
use super::{on_pool, unique_to_conflict, InspectionRule, Store, StoreError, StoreResult};

/// The table's columns. A migration that adds a column adds it here too.
const COLUMNS: &[Column] = &[
    col("id", Int),
    col("uuid", Text),
    col("priority", Int),
    opt("description", Text),
    col("sensitive", Bool),
    opt("phase", Text),
    json("conditions"),
    json("actions"),
    col("created_at", Time),
    opt("updated_at", Time),
];

/// "Rule" as Ironic's InspectionRuleNotFound names it ("Rule X could not be found").
pub const INSPECTION_RULES: Table = Table {
    name: "inspection_rules",
    kind: "Rule",
    columns: COLUMNS,
};

fn conflict(e: sqlx::Error, r: &InspectionRule) -> StoreError {
    unique_to_conflict(e, |_| {
        format!("An inspection rule with UUID {} already exists.", r.uuid)
    })
}

impl Store {
    pub async fn create_inspection_rule(&self, r: &InspectionRule) -> StoreResult<InspectionRule> {
        on_pool!(self, pool => sqlx::query_as::<_, InspectionRule>(
            "INSERT INTO inspection_rules (uuid, priority, description, sensitive, phase, \
             conditions, actions, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        )
            .bind(&r.uuid)
            .bind(r.priority)
            .bind(&r.description)
            .bind(r.sensitive)
            .bind(&r.phase)
            .bind(Json(&r.conditions))
            .bind(Json(&r.actions))
            .bind(r.created_at)
            .fetch_one(pool)
            .await)
        .map_err(|e| conflict(e, r))
    }

    /// Saves every field of `r` but its uuid and created_at.
    pub async fn save_inspection_rule(&self, r: &InspectionRule) -> StoreResult<InspectionRule> {
        on_pool!(self, pool => sqlx::query_as::<_, InspectionRule>(
            "UPDATE inspection_rules SET priority = $2, description = $3, sensitive = $4, \
             phase = $5, conditions = $6, actions = $7, updated_at = $8 WHERE uuid = $1 RETURNING *",
        )
            .bind(&r.uuid)
            .bind(r.priority)
            .bind(&r.description)
            .bind(r.sensitive)
            .bind(&r.phase)
            .bind(Json(&r.conditions))
            .bind(Json(&r.actions))
            .bind(Utc::now())
            .fetch_optional(pool)
            .await)
        .map_err(|e| conflict(e, r))?
        .ok_or_else(|| StoreError::NotFound {
            kind: INSPECTION_RULES.kind,
            id: r.uuid.clone(),
        })
    }

    pub async fn inspection_rule(&self, uuid: &str) -> StoreResult<InspectionRule> {
        on_pool!(self, pool => sqlx::query_as::<_, InspectionRule>(
            "SELECT * FROM inspection_rules WHERE uuid = $1",
        )
            .bind(uuid.to_ascii_lowercase())
            .fetch_optional(pool)
            .await)?
        .ok_or_else(|| StoreError::NotFound {
            kind: INSPECTION_RULES.kind,
            id: uuid.to_string(),
        })
    }

    /// One page of rules (see `store::list`).
    pub async fn list_inspection_rules(&self, q: &ListQuery) -> StoreResult<Page<InspectionRule>> {
        self.list(&INSPECTION_RULES, q).await
    }

    /// Every rule of `phase`, for applying at inspection. The caller orders them by priority.
    pub async fn inspection_rules_of_phase(&self, phase: &str) -> StoreResult<Vec<InspectionRule>> {
        let mut all = Vec::new();
        let mut q = ListQuery {
            filters: vec![Filter::Eq("phase", phase.into())],
            ..ListQuery::default()
        };
        loop {
            let page = self.list_inspection_rules(&q).await?;
            q.marker = page.rows.last().map(|r| r.uuid.clone());
            all.extend(page.rows);
            if !page.more {
                return Ok(all);
            }
        }
    }

    pub async fn delete_inspection_rule(&self, uuid: &str) -> StoreResult<()> {
        self.delete_by_uuid(INSPECTION_RULES.name, INSPECTION_RULES.kind, uuid)
            .await
    }
}
