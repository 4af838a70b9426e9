//! The log groups as DataFusion tables, in the schema `default` of the catalog
//! `awsdatacatalog` (Athena's names). A table is resolved when a query names it: the
//! group's [`TierSnapshot`](nettrail_store::TierSnapshot) is taken then, on a blocking
//! thread, and the bytes it holds are counted for the query's statistics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};
use nettrail_store::{LogStore, StoreError};

use crate::partitions::{TableShape, BY_DAY_SUFFIX};
use crate::table::{GroupTable, LakeIdentity};

/// The alias of a log group name: lowercase letters, digits and underscores
/// (`/vpc/Flow-Logs` → `vpc_flow_logs`), as its part folder begins.
pub fn table_alias(group: &str) -> String {
    nettrail_store::readable_name(group)
}

/// The log groups of a store as tables.
pub struct LogGroupSchema {
    store: Arc<dyn LogStore>,
    lake: LakeIdentity,
    /// Bytes held by the tables this schema resolved (the query's data scanned).
    pub(crate) bytes: AtomicU64,
}

impl std::fmt::Debug for LogGroupSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGroupSchema")
            .field("lake", &self.lake)
            .finish()
    }
}

impl LogGroupSchema {
    /// The schema over `store`'s groups.
    pub fn new(store: Arc<dyn LogStore>, lake: LakeIdentity) -> LogGroupSchema {
        LogGroupSchema {
            store,
            lake,
            bytes: AtomicU64::new(0),
        }
    }

    /// Table names and what they are: every group's own name, its alias where no
    /// other group has the same one, and the alias with `_by_day` (the
    /// [`TableShape::ByDay`] table) where that names nothing else.
    fn names(&self) -> BTreeMap<String, (String, TableShape)> {
        let mut groups = Vec::new();
        self.store.visit_groups(None, &mut |g| {
            groups.push(g.name);
            true
        });
        let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for g in &groups {
            aliases.entry(table_alias(g)).or_default().push(g.clone());
        }
        let mut names: BTreeMap<String, (String, TableShape)> = groups
            .iter()
            .map(|g| (g.clone(), (g.clone(), TableShape::Hive)))
            .collect();
        let mut unique = Vec::new();
        for (alias, owners) in aliases {
            if owners.len() == 1 && !alias.is_empty() && !names.contains_key(&alias) {
                names.insert(alias.clone(), (owners[0].clone(), TableShape::Hive));
                unique.push((alias, owners[0].clone()));
            }
        }
        for (alias, group) in unique {
            let by_day = format!("{alias}{BY_DAY_SUFFIX}");
            names.entry(by_day).or_insert((group, TableShape::ByDay));
        }
        names
    }
}

#[async_trait]
impl SchemaProvider for LogGroupSchema {
    fn table_names(&self) -> Vec<String> {
        self.names().into_keys().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some((group, shape)) = self.names().get(name).cloned() else {
            return Ok(None);
        };
        let store = Arc::clone(&self.store);
        let lake = self.lake.clone();
        let table = tokio::task::spawn_blocking(move || -> Result<Option<GroupTable>> {
            match store.tier_snapshot(&group) {
                Ok(snapshot) => GroupTable::new(snapshot, lake, shape).map(Some),
                // Deleted since the names were listed.
                Err(StoreError::GroupNotFound(_)) => Ok(None),
                Err(e) => Err(DataFusionError::External(Box::new(e))),
            }
        })
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))??;
        Ok(table.map(|t| {
            self.bytes.fetch_add(t.stored_bytes(), Ordering::Relaxed);
            Arc::new(t) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.names().contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_sql_identifiers() {
        assert_eq!(table_alias("/vpc/Flow-Logs"), "vpc_flow_logs");
        assert_eq!(table_alias("tunnel.activity"), "tunnel_activity");
        assert_eq!(table_alias("///"), "");
    }
}
