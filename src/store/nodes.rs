//! Node rows: create, read, list, and the writes fenced by the node's lock (save, delete).

use chrono::Utc;
use sqlx::types::Json;

use super::list::{col, json, opt, Filter, Kind::*, ListQuery, Page, Table};
use super::{on_pool, unique_to_conflict, Node, NodeLock, Store, StoreError, StoreResult};

/// The nodes table for lists: every column, its type and nullability.
pub const NODES: Table = Table {
    name: "nodes",
    kind: "Node",
    columns: &[
        col("id", Int),
        col("uuid", Text),
        opt("name", Text),
        col("driver", Text),
        json("driver_info"),
        json("instance_info"),
        json("properties"),
        json("extra"),
        json("driver_internal_info"),
        json("network_data"),
        json("clean_step"),
        json("deploy_step"),
        col("provision_state", Text),
        opt("target_provision_state", Text),
        opt("power_state", Text),
        opt("target_power_state", Text),
        opt("last_error", Text),
        col("maintenance", Bool),
        opt("maintenance_reason", Text),
        opt("reservation", Text),
        opt("instance_uuid", Text),
        opt("instance_name", Text),
        opt("health", Text),
        col("bios_interface", Text),
        col("boot_interface", Text),
        col("console_interface", Text),
        col("deploy_interface", Text),
        col("firmware_interface", Text),
        col("inspect_interface", Text),
        col("management_interface", Text),
        col("network_interface", Text),
        col("power_interface", Text),
        col("raid_interface", Text),
        col("rescue_interface", Text),
        col("storage_interface", Text),
        col("vendor_interface", Text),
        opt("description", Text),
        opt("owner", Text),
        opt("lessee", Text),
        opt("resource_class", Text),
        col("conductor_group", Text),
        opt("boot_mode", Text),
        opt("automated_clean", Bool),
        col("protected", Bool),
        opt("protected_reason", Text),
        col("retired", Bool),
        opt("retired_reason", Text),
        opt("shard", Text),
        opt("parent_node", Text),
        col("disable_power_off", Bool),
        opt("chassis_uuid", Text),
        col("console_enabled", Bool),
        col("created_at", Time),
        opt("updated_at", Time),
        opt("provision_updated_at", Time),
        opt("inspection_started_at", Time),
        opt("inspection_finished_at", Time),
        opt("fault", Text),
        opt("allocation_uuid", Text),
    ],
};

/// The columns `save_node` writes, in bind order: all but `uuid` (the key), `reservation`
/// (only reserve/release touch it) and `created_at`. [`bind_writable`] binds them.
const WRITABLE: [&str; 54] = [
    "name",
    "driver",
    "driver_info",
    "instance_info",
    "properties",
    "extra",
    "driver_internal_info",
    "network_data",
    "clean_step",
    "deploy_step",
    "provision_state",
    "target_provision_state",
    "power_state",
    "target_power_state",
    "last_error",
    "maintenance",
    "maintenance_reason",
    "instance_uuid",
    "instance_name",
    "health",
    "bios_interface",
    "boot_interface",
    "console_interface",
    "deploy_interface",
    "firmware_interface",
    "inspect_interface",
    "management_interface",
    "network_interface",
    "power_interface",
    "raid_interface",
    "rescue_interface",
    "storage_interface",
    "vendor_interface",
    "description",
    "owner",
    "lessee",
    "resource_class",
    "conductor_group",
    "boot_mode",
    "automated_clean",
    "protected",
    "protected_reason",
    "retired",
    "retired_reason",
    "shard",
    "parent_node",
    "disable_power_off",
    "chassis_uuid",
    "console_enabled",
    "fault",
    "updated_at",
    "provision_updated_at",
    "inspection_started_at",
    "inspection_finished_at",
];

static INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let columns = WRITABLE.join(", ");
    let values: Vec<String> = (1..=WRITABLE.len() + 3).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO nodes (uuid, {columns}, reservation, created_at) VALUES ({}) RETURNING *",
        values.join(", ")
    )
});

static UPDATE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let sets: Vec<String> = WRITABLE
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 2))
        .collect();
    // Fenced by the lock: the row must still name the holder ($N after the writable columns).
    format!(
        "UPDATE nodes SET {} WHERE uuid = $1 AND reservation = ${} RETURNING *",
        sets.join(", "),
        WRITABLE.len() + 2
    )
});

/// Binds the [`WRITABLE`] columns of node `$n` to query `$q`, in order.
macro_rules! bind_writable {
    ($q:expr, $n:expr) => {
        $q.bind(&$n.name)
            .bind(&$n.driver)
            .bind(Json(&$n.driver_info))
            .bind(Json(&$n.instance_info))
            .bind(Json(&$n.properties))
            .bind(Json(&$n.extra))
            .bind(Json(&$n.driver_internal_info))
            .bind(Json(&$n.network_data))
            .bind(Json(&$n.clean_step))
            .bind(Json(&$n.deploy_step))
            .bind(&$n.provision_state)
            .bind(&$n.target_provision_state)
            .bind(&$n.power_state)
            .bind(&$n.target_power_state)
            .bind(&$n.last_error)
            .bind($n.maintenance)
            .bind(&$n.maintenance_reason)
            .bind(&$n.instance_uuid)
            .bind(&$n.instance_name)
            .bind(&$n.health)
            .bind(&$n.bios_interface)
            .bind(&$n.boot_interface)
            .bind(&$n.console_interface)
            .bind(&$n.deploy_interface)
            .bind(&$n.firmware_interface)
            .bind(&$n.inspect_interface)
            .bind(&$n.management_interface)
            .bind(&$n.network_interface)
            .bind(&$n.power_interface)
            .bind(&$n.raid_interface)
            .bind(&$n.rescue_interface)
            .bind(&$n.storage_interface)
            .bind(&$n.vendor_interface)
            .bind(&$n.description)
            .bind(&$n.owner)
            .bind(&$n.lessee)
            .bind(&$n.resource_class)
            .bind(&$n.conductor_group)
            .bind(&$n.boot_mode)
            .bind($n.automated_clean)
            .bind($n.protected)
            .bind(&$n.protected_reason)
            .bind($n.retired)
            .bind(&$n.retired_reason)
            .bind(&$n.shard)
            .bind(&$n.parent_node)
            .bind($n.disable_power_off)
            .bind(&$n.chassis_uuid)
            .bind($n.console_enabled)
            .bind(&$n.fault)
            .bind($n.updated_at)
            .bind($n.provision_updated_at)
            .bind($n.inspection_started_at)
            .bind($n.inspection_finished_at)
    };
}

fn name_conflict(n: &Node) -> impl FnOnce(&str) -> String + '_ {
    move |detail: &str| {
        if detail.contains("instance_uuid") {
            format!(
                "Instance {} is already associated with a node.",
                n.instance_uuid.as_deref().unwrap_or("")
            )
        } else if detail.contains("name") {
            format!(
                "A node with name {} already exists.",
                n.name.as_deref().unwrap_or("")
            )
        } else {
            format!("A node with UUID {} already exists.", n.uuid)
        }
    }
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "Node",
        id: id.to_string(),
    }
}

impl Store {
    /// Inserts `n` (its `id` is ignored) and returns the stored row.
    pub async fn create_node(&self, n: &Node) -> StoreResult<Node> {
        on_pool!(self, pool => bind_writable!(sqlx::query_as::<_, Node>(&INSERT).bind(&n.uuid), n)
            .bind(&n.reservation)
            .bind(n.created_at)
            .fetch_one(pool)
            .await)
        .map_err(|e| unique_to_conflict(e, name_conflict(n)))
    }

    /// Saves every field of `n` but `reservation`, setting `updated_at` to now, only while
    /// `lock` still holds the node: a write by anyone else is refused with `LockLost`.
    pub async fn save_node(&self, lock: &NodeLock, n: &Node) -> StoreResult<Node> {
        if n.uuid != lock.uuid() {
            return Err(StoreError::LockLost {
                node: n.uuid.clone(),
                holder: lock.holder().to_string(),
                now: None,
            });
        }
        let mut n = n.clone();
        n.updated_at = Some(Utc::now());
        let n = &n;
        let saved = on_pool!(self, pool => bind_writable!(sqlx::query_as::<_, Node>(&UPDATE).bind(&n.uuid), n)
            .bind(lock.holder())
            .fetch_optional(pool)
            .await)
        .map_err(|e| unique_to_conflict(e, name_conflict(n)))?;
        match saved {
            Some(saved) => Ok(saved),
            None => Err(self.fence_failure(lock).await),
        }
    }

    pub async fn node_by_uuid(&self, uuid: &str) -> StoreResult<Option<Node>> {
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, Node>("SELECT * FROM nodes WHERE uuid = $1")
            .bind(uuid)
            .fetch_optional(pool)
            .await)?,
        )
    }

    pub async fn node_by_name(&self, name: &str) -> StoreResult<Option<Node>> {
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, Node>("SELECT * FROM nodes WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await)?,
        )
    }

    /// Finds a node by UUID, else by name; NotFound names what was asked for.
    pub async fn node(&self, ident: &str) -> StoreResult<Node> {
        if let Some(n) = self.node_by_uuid(ident).await? {
            return Ok(n);
        }
        self.node_by_name(ident)
            .await?
            .ok_or_else(|| not_found(ident))
    }

    /// Every node, in creation order.
    pub async fn nodes(&self) -> StoreResult<Vec<Node>> {
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, Node>("SELECT * FROM nodes ORDER BY id")
            .fetch_all(pool)
            .await)?,
        )
    }

    /// One page of nodes (see `store::list`).
    pub async fn list_nodes(&self, q: &ListQuery) -> StoreResult<Page<Node>> {
        self.list(&NODES, q).await
    }

    /// Nodes whose provision_state is one of `states`, every column, in creation order.
    pub async fn nodes_in_states(&self, states: &[&str]) -> StoreResult<Vec<Node>> {
        let mut q = ListQuery {
            filters: vec![Filter::In(
                "provision_state",
                states.iter().map(|s| (*s).into()).collect(),
            )],
            ..ListQuery::default()
        };
        let mut all = Vec::new();
        loop {
            let page = self.list_nodes(&q).await?;
            q.marker = page.rows.last().map(|n| n.uuid.clone());
            all.extend(page.rows);
            if !page.more {
                return Ok(all);
            }
        }
    }

    /// Deletes the locked node (its ports and history go with it), only while `lock` holds it.
    pub async fn delete_node(&self, lock: NodeLock) -> StoreResult<()> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM nodes WHERE uuid = $1 AND reservation = $2",
        )
        .bind(lock.uuid())
        .bind(lock.holder())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(self.fence_failure(&lock).await);
        }
        lock.forget();
        Ok(())
    }

    /// How many nodes are in each shard (None: nodes without one), most first.
    pub async fn shard_counts(&self) -> StoreResult<Vec<(Option<String>, i64)>> {
        Ok(
            on_pool!(self, pool => sqlx::query_as::<_, (Option<String>, i64)>(
            "SELECT shard, COUNT(id) FROM nodes GROUP BY shard ORDER BY COUNT(id) DESC, shard",
        )
        .fetch_all(pool)
        .await)?,
        )
    }

    /// How many nodes are in each provision state, by state name.
    pub async fn node_counts_by_state(&self) -> StoreResult<Vec<(String, i64)>> {
        Ok(on_pool!(self, pool => sqlx::query_as::<_, (String, i64)>(
            "SELECT provision_state, COUNT(*) FROM nodes GROUP BY provision_state ORDER BY provision_state",
        )
        .fetch_all(pool)
        .await)?)
    }
}
