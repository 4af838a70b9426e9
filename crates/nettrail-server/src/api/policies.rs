//! Policies and tags of log groups: PutRetentionPolicy, DeleteRetentionPolicy,
//! TagResource, UntagResource, ListTagsForResource, the older TagLogGroup,
//! UntagLogGroup and ListTagsLogGroup, and resource policies (PutResourcePolicy,
//! DescribeResourcePolicies, DeleteResourcePolicy).

use std::collections::BTreeMap;

use nettrail_store::{policy_key, ResourcePolicy};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::common::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::validate::{Violations, RETENTION_DAYS};

use super::context::{invalid_token, put_opt, ApiContext, GroupNameRequest};

/// Account-level resource policies allowed per region.
const MAX_ACCOUNT_POLICIES: usize = 10;
/// Characters allowed in an account-level policy document.
const MAX_ACCOUNT_POLICY_CHARS: usize = 5120;
/// Characters allowed in a log-group-level policy document.
const MAX_RESOURCE_POLICY_CHARS: usize = 51_200;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutRetentionPolicyRequest {
    log_group_name: Option<String>,
    retention_in_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagResourceRequest {
    resource_arn: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UntagResourceRequest {
    resource_arn: Option<String>,
    tag_keys: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResourceArnRequest {
    resource_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TagLogGroupRequest {
    log_group_name: Option<String>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UntagLogGroupRequest {
    log_group_name: Option<String>,
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PutResourcePolicyRequest {
    policy_name: Option<String>,
    policy_document: Option<String>,
    resource_arn: Option<String>,
    expected_revision_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DescribeResourcePoliciesRequest {
    next_token: Option<String>,
    limit: Option<i64>,
    resource_arn: Option<String>,
    policy_scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteResourcePolicyRequest {
    policy_name: Option<String>,
    resource_arn: Option<String>,
    expected_revision_id: Option<String>,
}

pub(crate) fn put_retention_policy(
    api: &ApiContext,
    req: PutRetentionPolicyRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.required("retentionInDays", &req.retention_in_days);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    if let Some(days) = req.retention_in_days {
        if !RETENTION_DAYS.iter().any(|&d| i64::from(d) == days) {
            let allowed: Vec<String> = RETENTION_DAYS.iter().map(u32::to_string).collect();
            let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
            v.one_of("retentionInDays", Some(&days.to_string()), &allowed);
        }
    }
    v.finish()?;
    let days = req.retention_in_days.expect("validated") as u32;
    api.store
        .set_retention(&req.log_group_name.expect("validated"), Some(days))?;
    Ok(json!({}))
}

pub(crate) fn delete_retention_policy(api: &ApiContext, req: GroupNameRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.finish()?;
    api.store
        .set_retention(&req.log_group_name.expect("validated"), None)?;
    Ok(json!({}))
}

/// The log group named by a tagging ARN (`arn:aws:logs:…:log-group:NAME`, `:*`
/// tolerated).
pub(crate) fn group_from_resource_arn(arn: &str) -> ApiResult<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "logs"
        && parts[5].starts_with("log-group:");
    if !valid {
        return Err(ApiError::InvalidParameter(format!(
            "Invalid resourceArn: {arn} is not a log group ARN."
        )));
    }
    let name = &parts[5]["log-group:".len()..];
    Ok(name.strip_suffix(":*").unwrap_or(name).to_owned())
}

pub(crate) fn add_tags(
    api: &ApiContext,
    group: &str,
    arn: &str,
    new_tags: BTreeMap<String, String>,
) -> ApiResult<()> {
    let mut tags = api.store.group(group)?.tags;
    tags.extend(new_tags);
    if tags.len() > 50 {
        return Err(ApiError::TooManyTags {
            message: "A resource can have no more than 50 tags.".into(),
            resource_name: arn.to_owned(),
        });
    }
    api.store.set_tags(group, tags)?;
    Ok(())
}

pub(crate) fn remove_tags(api: &ApiContext, group: &str, keys: &[String]) -> ApiResult<()> {
    let mut tags = api.store.group(group)?.tags;
    for key in keys {
        tags.remove(key);
    }
    api.store.set_tags(group, tags)?;
    Ok(())
}

pub(crate) fn tag_resource(api: &ApiContext, req: TagResourceRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("resourceArn", &req.resource_arn);
    v.required("tags", &req.tags);
    v.resource_arn("resourceArn", req.resource_arn.as_deref());
    v.tags("tags", req.tags.as_ref(), true);
    v.finish()?;
    let arn = req.resource_arn.expect("validated");
    let group = group_from_resource_arn(&arn)?;
    add_tags(api, &group, &arn, req.tags.expect("validated"))?;
    Ok(json!({}))
}

pub(crate) fn untag_resource(api: &ApiContext, req: UntagResourceRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("resourceArn", &req.resource_arn);
    v.required("tagKeys", &req.tag_keys);
    v.resource_arn("resourceArn", req.resource_arn.as_deref());
    v.list_length("tagKeys", req.tag_keys.as_deref(), 0, 50);
    for key in req.tag_keys.iter().flatten() {
        v.tag_key("tagKeys.member", key);
    }
    v.finish()?;
    let group = group_from_resource_arn(req.resource_arn.as_deref().expect("validated"))?;
    remove_tags(api, &group, &req.tag_keys.expect("validated"))?;
    Ok(json!({}))
}

pub(crate) fn list_tags_for_resource(
    api: &ApiContext,
    req: ResourceArnRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("resourceArn", &req.resource_arn);
    v.resource_arn("resourceArn", req.resource_arn.as_deref());
    v.finish()?;
    let group = group_from_resource_arn(req.resource_arn.as_deref().expect("validated"))?;
    Ok(json!({ "tags": api.store.group(&group)?.tags }))
}

pub(crate) fn tag_log_group(api: &ApiContext, req: TagLogGroupRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.required("tags", &req.tags);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.tags("tags", req.tags.as_ref(), true);
    v.finish()?;
    let group = req.log_group_name.expect("validated");
    let arn = api.group_arn(&group);
    add_tags(api, &group, &arn, req.tags.expect("validated"))?;
    Ok(json!({}))
}

pub(crate) fn untag_log_group(api: &ApiContext, req: UntagLogGroupRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.required("tags", &req.tags);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.list_length("tags", req.tags.as_deref(), 1, usize::MAX);
    for key in req.tags.iter().flatten() {
        v.tag_key("tags.member", key);
    }
    v.finish()?;
    remove_tags(
        api,
        &req.log_group_name.expect("validated"),
        &req.tags.expect("validated"),
    )?;
    Ok(json!({}))
}

pub(crate) fn list_tags_log_group(api: &ApiContext, req: GroupNameRequest) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("logGroupName", &req.log_group_name);
    v.log_group_name("logGroupName", req.log_group_name.as_deref());
    v.finish()?;
    Ok(json!({ "tags": api.store.group(&req.log_group_name.expect("validated"))?.tags }))
}

pub(crate) fn policy_json(p: &ResourcePolicy) -> Value {
    let mut m = Map::new();
    m.insert("policyName".into(), p.name.clone().into());
    m.insert("policyDocument".into(), p.document.clone().into());
    m.insert("lastUpdatedTime".into(), p.last_updated.into());
    let scope = if p.resource_arn.is_some() {
        "RESOURCE"
    } else {
        "ACCOUNT"
    };
    m.insert("policyScope".into(), scope.into());
    put_opt(&mut m, "resourceArn", p.resource_arn.clone());
    m.insert("revisionId".into(), p.revision_id.clone().into());
    Value::Object(m)
}

pub(crate) fn put_resource_policy(
    api: &ApiContext,
    req: PutResourcePolicyRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.required("policyDocument", &req.policy_document);
    v.length(
        "policyDocument",
        req.policy_document.as_deref(),
        1,
        MAX_RESOURCE_POLICY_CHARS,
    );
    v.length(
        "expectedRevisionId",
        req.expected_revision_id.as_deref(),
        1,
        usize::MAX,
    );
    if req.resource_arn.is_none() {
        v.required("policyName", &req.policy_name);
    }
    v.finish()?;
    let document = req.policy_document.expect("validated");
    if !serde_json::from_str::<Value>(&document).is_ok_and(|d| d.is_object()) {
        return Err(ApiError::InvalidParameter(
            "Invalid policy document: the policyDocument must be a JSON object.".into(),
        ));
    }
    let existing_policies = api.store.policies();
    if let Some(arn) = &req.resource_arn {
        let group = group_from_resource_arn(arn)?;
        api.store.group(&group)?;
    } else if document.chars().count() > MAX_ACCOUNT_POLICY_CHARS {
        return Err(ApiError::InvalidParameter(format!(
            "The policy document of an account-level resource policy is limited to {MAX_ACCOUNT_POLICY_CHARS} characters."
        )));
    }
    let name = req.policy_name.unwrap_or_default();
    let key = policy_key(req.resource_arn.as_deref(), &name);
    let existing = existing_policies.iter().find(|p| p.key() == key);
    if let (Some(existing), Some(expected)) = (existing, &req.expected_revision_id) {
        if &existing.revision_id != expected {
            return Err(ApiError::OperationAborted(format!(
                "The expected revision id {expected} does not match the current revision id {}.",
                existing.revision_id
            )));
        }
    }
    let account_policies = existing_policies
        .iter()
        .filter(|p| p.resource_arn.is_none())
        .count();
    if existing.is_none() && req.resource_arn.is_none() && account_policies >= MAX_ACCOUNT_POLICIES
    {
        return Err(ApiError::LimitExceeded(format!(
            "Resource limit exceeded: an account can have at most {MAX_ACCOUNT_POLICIES} resource policies."
        )));
    }
    let policy = ResourcePolicy {
        name,
        document,
        last_updated: now_ms(),
        resource_arn: req.resource_arn,
        revision_id: uuid::Uuid::new_v4().simple().to_string(),
    };
    api.store.put_policy(policy.clone())?;
    Ok(json!({ "resourcePolicy": policy_json(&policy), "revisionId": policy.revision_id }))
}

pub(crate) fn describe_resource_policies(
    api: &ApiContext,
    req: DescribeResourcePoliciesRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.next_token("nextToken", req.next_token.as_deref());
    v.range("limit", req.limit, 1, 50);
    v.one_of(
        "policyScope",
        req.policy_scope.as_deref(),
        &["ACCOUNT", "RESOURCE"],
    );
    v.finish()?;
    let limit = req.limit.unwrap_or(50) as usize;
    let after = match &req.next_token {
        Some(token) => Some(
            token
                .strip_prefix("p/")
                .ok_or_else(invalid_token)?
                .to_owned(),
        ),
        None => None,
    };
    let selected: Vec<ResourcePolicy> = api
        .store
        .policies()
        .into_iter()
        .filter(|p| after.as_deref().is_none_or(|a| p.key().as_str() > a))
        .filter(|p| req.resource_arn.is_none() || p.resource_arn == req.resource_arn)
        .filter(|p| match req.policy_scope.as_deref() {
            Some("ACCOUNT") => p.resource_arn.is_none(),
            Some(_) => p.resource_arn.is_some(),
            None => true,
        })
        .collect();
    let page = &selected[..selected.len().min(limit)];
    let mut out = json!({ "resourcePolicies": page.iter().map(policy_json).collect::<Vec<_>>() });
    if selected.len() > page.len() {
        out["nextToken"] = format!("p/{}", page.last().expect("a full page").key()).into();
    }
    Ok(out)
}

pub(crate) fn delete_resource_policy(
    api: &ApiContext,
    req: DeleteResourcePolicyRequest,
) -> ApiResult<Value> {
    let mut v = Violations::new();
    v.length(
        "expectedRevisionId",
        req.expected_revision_id.as_deref(),
        1,
        usize::MAX,
    );
    if req.resource_arn.is_none() {
        v.required("policyName", &req.policy_name);
    }
    v.finish()?;
    let name = req.policy_name.unwrap_or_default();
    let key = policy_key(req.resource_arn.as_deref(), &name);
    let Some(existing) = api.store.policies().into_iter().find(|p| p.key() == key) else {
        let what = req.resource_arn.unwrap_or(name);
        return Err(ApiError::ResourceNotFound(format!(
            "Policy with name [{what}] does not exist"
        )));
    };
    if let Some(expected) = &req.expected_revision_id {
        if &existing.revision_id != expected {
            return Err(ApiError::OperationAborted(format!(
                "The expected revision id {expected} does not match the current revision id {}.",
                existing.revision_id
            )));
        }
    }
    api.store.delete_policy(&key)?;
    Ok(json!({}))
}
