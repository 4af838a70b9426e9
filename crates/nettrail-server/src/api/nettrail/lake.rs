//! nettrail's GetLakeTable: where a log group's columnar parts are, their layout, and
//! the `CREATE EXTERNAL TABLE` statement that lets Athena, Trino or Spark read them.

use serde::Deserialize;
use serde_json::{json, Value};

use nettrail_query::ddl::create_external_table;
use nettrail_query::table::{GroupTable, LakeIdentity};

use crate::api::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::validate::Violations;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LakeTableRequest {
    log_group_name: Option<String>,
}

/// nettrail's GetLakeTable.
pub(crate) fn get_lake_table(api: &ApiContext, req: LakeTableRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.finish()?;
    let group = req
        .log_group_name
        .ok_or_else(|| ApiError::InvalidParameter("logGroupName is required.".into()))?;
    let snapshot = api.store.tier_snapshot(&group)?;
    let parts = snapshot.parts.len();
    let table = GroupTable::new(
        snapshot,
        LakeIdentity {
            account_id: api.config.account_id.clone(),
            region: api.config.region.clone(),
        },
    )
    .map_err(|e| ApiError::Internal(format!("reading the log group's layout: {e}")))?;
    let data_dir =
        std::fs::canonicalize(&api.config.data_dir).unwrap_or(api.config.data_dir.clone());
    let location = data_dir.join(nettrail_store::lake_folder(&group));
    let location = format!("file://{}/", location.display());
    Ok(json!({
        "logGroupName": group,
        "location": location,
        "layout": table.layout().to_metadata(),
        "parts": parts,
        "createTable": create_external_table(&group, table.layout(), &location),
    }))
}
