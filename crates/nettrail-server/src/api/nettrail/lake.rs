//! nettrail's GetLakeTable: where a log group's columnar parts are, their layout, and
//! the `CREATE EXTERNAL TABLE` statement that lets Athena, Trino or Spark read them;
//! and SetFlowLogFormat: the flow-log format of a group's events, declared by what
//! writes them (the agent, the importer, a user), so that records of a custom format
//! get typed columns too (the default formats are recognised without it).

use serde::Deserialize;
use serde_json::{json, Value};

use nettrail_query::ddl::create_external_table;
use nettrail_query::partitions::TableShape;
use nettrail_query::table::{GroupTable, LakeIdentity};

use crate::api::context::ApiContext;
use crate::error::{ApiError, ApiResult};
use crate::validate::Violations;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LakeTableRequest {
    log_group_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SetFlowLogFormatRequest {
    log_group_name: Option<String>,
    /// `${version} ${account-id} …`; absent or empty forgets the format.
    log_format: Option<String>,
}

/// The request's `logGroupName`, which both operations require.
fn required_group(name: Option<String>) -> ApiResult<String> {
    let mut v = Violations::new();
    v.log_group_name("logGroupName", name.as_deref());
    v.finish()?;
    name.ok_or_else(|| ApiError::InvalidParameter("logGroupName is required.".into()))
}

/// nettrail's SetFlowLogFormat.
pub(crate) fn set_flow_log_format(
    api: &ApiContext,
    req: SetFlowLogFormatRequest,
) -> ApiResult<Value> {
    let group = required_group(req.log_group_name)?;
    let format = match req.log_format.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let format = nettrail_formats::flow::LogFormat::parse(text).map_err(|e| {
                ApiError::InvalidParameter(format!("logFormat is not a flow-log format: {e}"))
            })?;
            Some(format.to_spec())
        }
    };
    api.store.set_flow_log_format(&group, format.as_deref())?;
    Ok(json!({}))
}

/// nettrail's GetLakeTable.
pub(crate) fn get_lake_table(api: &ApiContext, req: LakeTableRequest) -> ApiResult<Value> {
    let group = required_group(req.log_group_name)?;
    let snapshot = api.store.tier_snapshot(&group)?;
    let parts = snapshot.parts.len();
    let snapshot_format = snapshot.flow_log_format.clone();
    let table = GroupTable::new(
        snapshot,
        LakeIdentity {
            account_id: api.config.account_id.clone(),
            region: api.config.region.clone(),
        },
        TableShape::Hive,
    )
    .map_err(|e| ApiError::Internal(format!("reading the log group's layout: {e}")))?;
    let location = api.config.store.lake_location(&api.config.data_dir, &group);
    Ok(json!({
        "logGroupName": group,
        "location": location,
        "layout": table.layout().to_metadata(),
        "flowLogFormat": snapshot_format,
        "parts": parts,
        "createTable": create_external_table(&group, table.layout(), &location),
    }))
}
