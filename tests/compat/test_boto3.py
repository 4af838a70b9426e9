"""Every operation of the spine through boto3, happy and error paths, against the real
server with SigV4 verification on."""

import json
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import NettrailServer, now_ms

DAY = 86_400_000
HOUR = 3_600_000


def error_of(excinfo):
    err = excinfo.value.response["Error"]
    return err["Code"], err["Message"]


def make_stream(logs, group="/g", stream="s"):
    try:
        logs.create_log_group(logGroupName=group)
    except ClientError:
        pass
    logs.create_log_stream(logGroupName=group, logStreamName=stream)


# --- log groups -----------------------------------------------------------------------


def test_create_describe_delete_log_group(logs):
    logs.create_log_group(
        logGroupName="/vpn/tunnels",
        tags={"team": "net"},
        logGroupClass="INFREQUENT_ACCESS",
        kmsKeyId="arn:aws:kms:us-east-1:123456789012:key/abc",
    )
    groups = logs.describe_log_groups()["logGroups"]
    assert len(groups) == 1
    g = groups[0]
    assert g["logGroupName"] == "/vpn/tunnels"
    assert g["arn"] == "arn:aws:logs:us-east-1:123456789012:log-group:/vpn/tunnels:*"
    assert g["logGroupArn"] == "arn:aws:logs:us-east-1:123456789012:log-group:/vpn/tunnels"
    assert g["logGroupClass"] == "INFREQUENT_ACCESS"
    assert g["kmsKeyId"].endswith("key/abc")
    assert g["storedBytes"] == 0 and g["metricFilterCount"] == 0
    assert "retentionInDays" not in g
    assert abs(g["creationTime"] - now_ms()) < 60_000
    assert logs.list_tags_for_resource(resourceArn=g["logGroupArn"])["tags"] == {"team": "net"}
    logs.delete_log_group(logGroupName="/vpn/tunnels")
    assert logs.describe_log_groups()["logGroups"] == []


def test_log_group_errors(logs):
    logs.create_log_group(logGroupName="/dup")
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName="/dup")
    assert error_of(e) == ("ResourceAlreadyExistsException", "The specified log group already exists")
    with pytest.raises(ClientError) as e:
        logs.delete_log_group(logGroupName="/missing")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName="x:y")
    assert error_of(e) == (
        "InvalidParameterException",
        "1 validation error detected: Value 'x:y' at 'logGroupName' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: [\.\-_/#A-Za-z0-9]+",
    )
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName="aws/lambda/x")
    assert error_of(e) == ("InvalidParameterException", "Log groups starting with AWS/ are reserved for AWS.")
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName="a" * 513)
    assert "Member must have length less than or equal to 512" in error_of(e)[1]
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName="/c", logGroupClass="GOLD")
    assert "Member must satisfy enum value set: [STANDARD, INFREQUENT_ACCESS, DELIVERY]" in error_of(e)[1]


def test_deletion_protection_blocks_delete(logs):
    logs.create_log_group(logGroupName="/protected", deletionProtectionEnabled=True)
    with pytest.raises(ClientError) as e:
        logs.delete_log_group(logGroupName="/protected")
    assert error_of(e)[0] == "ValidationException"
    assert logs.describe_log_groups()["logGroups"][0]["deletionProtectionEnabled"] is True


def test_describe_log_groups_filters(logs):
    for name in ["/app/a", "/app/b", "/vpc/flows", "/vpn/tunnels", "/vpn/clients"]:
        logs.create_log_group(logGroupName=name)
    names = lambda r: [g["logGroupName"] for g in r["logGroups"]]  # noqa: E731
    assert names(logs.describe_log_groups(logGroupNamePrefix="/vpn/")) == ["/vpn/clients", "/vpn/tunnels"]
    by_pattern = logs.describe_log_groups(logGroupNamePattern="pc/fl")
    assert names(by_pattern) == ["/vpc/flows"]
    assert set(by_pattern["logGroups"][0]) == {"logGroupName", "creationTime", "arn"}
    ids = logs.describe_log_groups(
        logGroupIdentifiers=["/app/b", "arn:aws:logs:us-east-1:123456789012:log-group:/vpc/flows"]
    )
    assert names(ids) == ["/app/b", "/vpc/flows"]
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups(logGroupNamePrefix="/a", logGroupNamePattern="b")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups(limit=100)
    assert error_of(e)[1] == (
        "1 validation error detected: Value '100' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 50"
    )
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups(nextToken="bogus")
    assert error_of(e)[0] == "InvalidParameterException"


def test_pagination_over_many_groups(logs):
    created = sorted(f"/many/{i:03d}" for i in range(123))
    for name in created:
        logs.create_log_group(logGroupName=name)
    pages = list(logs.get_paginator("describe_log_groups").paginate(PaginationConfig={"PageSize": 10}))
    seen = [g["logGroupName"] for p in pages for g in p["logGroups"]]
    assert seen == created
    assert len(pages) == 13
    assert "nextToken" not in pages[-1]
    tokens = [p["nextToken"] for p in pages[:-1]]
    assert len(set(tokens)) == len(tokens)
    # An exactly full last page still ends without a token.
    pages = list(logs.get_paginator("describe_log_groups").paginate(PaginationConfig={"PageSize": 41}))
    assert [len(p["logGroups"]) for p in pages] == [41, 41, 41] and "nextToken" not in pages[-1]


# --- log streams ----------------------------------------------------------------------


def test_log_streams_lifecycle_and_errors(logs):
    logs.create_log_group(logGroupName="/g")
    logs.create_log_stream(logGroupName="/g", logStreamName="eni-0a1b2c3d-all")
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName="/g", logStreamName="eni-0a1b2c3d-all")
    assert error_of(e) == ("ResourceAlreadyExistsException", "The specified log stream already exists")
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName="/nope", logStreamName="s")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName="/g", logStreamName="a:b")
    assert "Member must satisfy regular expression pattern: [^:*]*" in error_of(e)[1]
    streams = logs.describe_log_streams(logGroupName="/g")["logStreams"]
    assert streams[0]["logStreamName"] == "eni-0a1b2c3d-all"
    assert streams[0]["arn"] == "arn:aws:logs:us-east-1:123456789012:log-group:/g:log-stream:eni-0a1b2c3d-all"
    assert "firstEventTimestamp" not in streams[0]
    logs.delete_log_stream(logGroupName="/g", logStreamName="eni-0a1b2c3d-all")
    with pytest.raises(ClientError) as e:
        logs.delete_log_stream(logGroupName="/g", logStreamName="eni-0a1b2c3d-all")
    assert error_of(e) == ("ResourceNotFoundException", "The specified log stream does not exist.")
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName="/nope")
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_describe_log_streams_ordering_and_pagination(logs):
    logs.create_log_group(logGroupName="/g")
    now = now_ms()
    names = [f"s{i:02d}" for i in range(25)]
    for i, name in enumerate(names):
        logs.create_log_stream(logGroupName="/g", logStreamName=name)
        # Last event times in the reverse order of the names.
        logs.put_log_events(
            logGroupName="/g", logStreamName=name, logEvents=[{"timestamp": now - i * 1000, "message": name}]
        )
    paginator = logs.get_paginator("describe_log_streams")
    by_name = [s["logStreamName"] for p in paginator.paginate(logGroupName="/g", PaginationConfig={"PageSize": 4}) for s in p["logStreams"]]
    assert by_name == names
    desc = [s["logStreamName"] for p in paginator.paginate(logGroupName="/g", descending=True, PaginationConfig={"PageSize": 7}) for s in p["logStreams"]]
    assert desc == names[::-1]
    by_time = [
        s["logStreamName"]
        for p in paginator.paginate(logGroupName="/g", orderBy="LastEventTime", PaginationConfig={"PageSize": 6})
        for s in p["logStreams"]
    ]
    assert by_time == names[::-1]
    prefixed = logs.describe_log_streams(logGroupIdentifier="arn:aws:logs:us-east-1:123456789012:log-group:/g", logStreamNamePrefix="s1")
    assert [s["logStreamName"] for s in prefixed["logStreams"]] == names[10:20]
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName="/g", orderBy="LastEventTime", logStreamNamePrefix="s")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName="/g", logGroupIdentifier="/g")
    assert error_of(e)[0] == "InvalidParameterException"
    s = logs.describe_log_streams(logGroupName="/g", logStreamNamePrefix="s00")["logStreams"][0]
    assert s["firstEventTimestamp"] == s["lastEventTimestamp"] == now
    assert s["lastIngestionTime"] >= now - 1000


# --- PutLogEvents ---------------------------------------------------------------------


def test_put_log_events_rejected_info_uses_aws_index_semantics(logs):
    make_stream(logs)
    now = now_ms()
    events = [
        {"timestamp": now - 20 * DAY, "message": "too old 1"},
        {"timestamp": now - 15 * DAY, "message": "too old 2"},
        {"timestamp": now - 1000, "message": "ok 1"},
        {"timestamp": now, "message": "ok 2"},
        {"timestamp": now + 3 * HOUR, "message": "too new"},
    ]
    r = logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=events)
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2, "tooNewLogEventStartIndex": 4}
    assert len(r["nextSequenceToken"]) == 56
    got = logs.get_log_events(logGroupName="/g", logStreamName="s", startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["ok 1", "ok 2"]
    # Nothing rejected: no rejectedLogEventsInfo at all.
    r = logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=[{"timestamp": now, "message": "x"}])
    assert "rejectedLogEventsInfo" not in r


def test_put_log_events_expired_by_retention(logs):
    make_stream(logs)
    logs.put_retention_policy(logGroupName="/g", retentionInDays=1)
    now = now_ms()
    r = logs.put_log_events(
        logGroupName="/g",
        logStreamName="s",
        logEvents=[{"timestamp": now - 2 * DAY, "message": "expired"}, {"timestamp": now, "message": "kept"}],
    )
    assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}


def test_put_log_events_batch_errors(logs):
    make_stream(logs)
    now = now_ms()
    with pytest.raises(ClientError) as e:
        logs.put_log_events(
            logGroupName="/g", logStreamName="s", logEvents=[{"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}]
        )
    assert error_of(e) == (
        "InvalidParameterException",
        "Log events in a single PutLogEvents request must be in chronological order.",
    )
    # 1,048,576 bytes counted as UTF-8 bytes + 26 per event: exactly at the limit passes.
    at_limit = [{"timestamp": now, "message": "é" * ((1_048_576 // 4 - 26) // 2)} for _ in range(4)]
    logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=at_limit)
    over = at_limit + [{"timestamp": now, "message": "x"}]
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=over)
    assert error_of(e) == ("InvalidParameterException", "Upload too large: 1048603 bytes exceeds limit of 1048576")
    with pytest.raises(ClientError) as e:
        logs.put_log_events(
            logGroupName="/g", logStreamName="s", logEvents=[{"timestamp": now - 23 * HOUR - 1, "message": "a"}, {"timestamp": now + HOUR, "message": "b"}]
        )
    assert error_of(e) == (
        "InvalidParameterException",
        "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
    )
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName="/g", logStreamName="nope", logEvents=[{"timestamp": now, "message": "a"}])
    assert error_of(e) == ("ResourceNotFoundException", "The specified log stream does not exist.")
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName="/nope", logStreamName="s", logEvents=[{"timestamp": now, "message": "a"}])
    assert error_of(e) == ("ResourceNotFoundException", "The specified log group does not exist.")


def test_put_log_events_count_and_message_limits(server):
    # botocore validates these client-side, so send them raw, signed, to reach the server.
    logs = server.client(parameter_validation=False)
    make_stream(logs)
    now = now_ms()
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=[{"timestamp": now, "message": "x"}] * 10_001)
    assert "at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to 10000" in error_of(e)[1]
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=[{"timestamp": now, "message": ""}])
    assert "at 'logEvents.1.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1" in error_of(e)[1]
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=[])
    assert error_of(e)[0] == "InvalidParameterException"


# --- GetLogEvents ---------------------------------------------------------------------


def test_get_log_events_paging_both_ways_and_token_echo(logs):
    make_stream(logs)
    now = now_ms()
    events = [{"timestamp": now - 10_000 + i, "message": f"m{i}"} for i in range(25)]
    logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=events)
    # Default: the latest events.
    latest = logs.get_log_events(logGroupName="/g", logStreamName="s", limit=10)
    assert [e["message"] for e in latest["events"]] == [f"m{i}" for i in range(15, 25)]
    # Backward paging from there.
    older = logs.get_log_events(logGroupName="/g", logStreamName="s", limit=10, nextToken=latest["nextBackwardToken"])
    assert [e["message"] for e in older["events"]] == [f"m{i}" for i in range(5, 15)]
    # Forward from the head to the end; at the end the same forward token comes back.
    token, seen = None, []
    for _ in range(10):
        kwargs = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName="/g", logStreamName="s", startFromHead=True, limit=7, **kwargs)
        seen += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert seen == [f"m{i}" for i in range(25)]
    assert page["events"] == []
    # New events show up with the last forward token.
    logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=[{"timestamp": now, "message": "late"}])
    page = logs.get_log_events(logGroupName="/g", logStreamName="s", nextToken=token, startFromHead=True)
    assert [e["message"] for e in page["events"]] == ["late"]
    assert all(set(e) == {"timestamp", "message", "ingestionTime"} for e in page["events"])
    # Time window: start inclusive, end exclusive.
    window = logs.get_log_events(logGroupName="/g", logStreamName="s", startTime=now - 10_000 + 3, endTime=now - 10_000 + 6, startFromHead=True)
    assert [e["message"] for e in window["events"]] == ["m3", "m4", "m5"]
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName="/g", logStreamName="s", nextToken="garbage")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName="/g", logStreamName="missing")
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_get_log_events_on_an_empty_stream_echoes_tokens(logs):
    make_stream(logs)
    first = logs.get_log_events(logGroupName="/g", logStreamName="s", startFromHead=True)
    assert first["events"] == []
    again = logs.get_log_events(logGroupName="/g", logStreamName="s", startFromHead=True, nextToken=first["nextForwardToken"])
    assert again["nextForwardToken"] == first["nextForwardToken"]


# --- FilterLogEvents ------------------------------------------------------------------


def test_filter_log_events_interleaves_streams_with_stable_unique_ids(logs):
    logs.create_log_group(logGroupName="/g")
    now = now_ms()
    for stream in ["a", "b", "c"]:
        logs.create_log_stream(logGroupName="/g", logStreamName=stream)
    for stream, offset in [("a", 0), ("b", 1), ("c", 2)]:
        logs.put_log_events(
            logGroupName="/g",
            logStreamName=stream,
            logEvents=[{"timestamp": now - 3000 + i * 3 + offset, "message": f"{stream}{i}"} for i in range(100)],
        )
    first = logs.filter_log_events(logGroupName="/g")
    msgs = [e["message"] for e in first["events"]]
    assert msgs == [f"{s}{i}" for i in range(100) for s in "abc"]
    assert "nextToken" not in first and first["searchedLogStreams"] == []
    ids = [e["eventId"] for e in first["events"]]
    assert len(set(ids)) == 300 and all(len(i) == 56 and i.isdigit() for i in ids)
    assert [e["eventId"] for e in logs.filter_log_events(logGroupName="/g")["events"]] == ids, "ids are stable"
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName="/g", PaginationConfig={"PageSize": 40}))
    assert [e["eventId"] for p in pages for e in p["events"]] == ids
    assert "nextToken" not in pages[-1]
    only = logs.filter_log_events(logGroupName="/g", logStreamNames=["b"], limit=5)
    assert [e["message"] for e in only["events"]] == [f"b{i}" for i in range(5)] and "nextToken" in only
    prefix = logs.filter_log_events(logGroupIdentifier="arn:aws:logs:us-east-1:123456789012:log-group:/g", logStreamNamePrefix="c")
    assert {e["logStreamName"] for e in prefix["events"]} == {"c"}
    window = logs.filter_log_events(logGroupName="/g", startTime=now - 3000, endTime=now - 3000 + 6)
    assert [e["message"] for e in window["events"]] == ["a0", "b0", "c0", "a1", "b1", "c1"]


def test_filter_log_events_errors(logs):
    make_stream(logs)
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName="/g", logStreamNames=["s"], logStreamNamePrefix="s")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName="/g", filterPattern='{ $.eventType = "x"')
    assert error_of(e) == (
        "InvalidParameterException",
        "Invalid filter pattern at character 20: If a filter pattern starts with '{' it must end with '}'",
    )
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName="/g", filterPattern="%(ERROR|WARN)%")
    assert "parentheses are not supported" in error_of(e)[1]
    assert logs.filter_log_events(logGroupName="/g", filterPattern="")["events"] == []
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName="/nope")
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName="/g", nextToken="zzz")
    assert error_of(e)[0] == "InvalidParameterException"


# --- retention ------------------------------------------------------------------------


def test_retention_policy(logs):
    logs.create_log_group(logGroupName="/g")
    for days in [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]:
        logs.put_retention_policy(logGroupName="/g", retentionInDays=days)
        assert logs.describe_log_groups()["logGroups"][0]["retentionInDays"] == days
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName="/g", retentionInDays=2)
    assert error_of(e) == (
        "InvalidParameterException",
        "1 validation error detected: Value '2' at 'retentionInDays' failed to satisfy constraint: Member must "
        "satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, "
        "2192, 2557, 2922, 3288, 3653]",
    )
    logs.delete_retention_policy(logGroupName="/g")
    assert "retentionInDays" not in logs.describe_log_groups()["logGroups"][0]
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName="/nope", retentionInDays=1)
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.delete_retention_policy(logGroupName="/nope")
    assert error_of(e)[0] == "ResourceNotFoundException"


# --- tags -----------------------------------------------------------------------------


def test_tagging_apis(logs):
    logs.create_log_group(logGroupName="/g")
    arn = logs.describe_log_groups()["logGroups"][0]["logGroupArn"]
    logs.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
    logs.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}
    logs.tag_log_group(logGroupName="/g", tags={"c": "3"})
    logs.untag_log_group(logGroupName="/g", tags=["b"])
    assert logs.list_tags_log_group(logGroupName="/g")["tags"] == {"c": "3"}
    with pytest.raises(ClientError) as e:
        logs.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(50)})
    assert error_of(e)[0] == "TooManyTagsException"
    assert e.value.response["resourceName"] == arn
    with pytest.raises(ClientError) as e:
        logs.tag_resource(resourceArn=arn.replace("/g", "/nope"), tags={"a": "1"})
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.list_tags_log_group(logGroupName="/nope")
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.tag_resource(resourceArn="arn:aws:sns:us-east-1:123456789012:topic", tags={"a": "1"})
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.tag_log_group(logGroupName="/g", tags={"bad key!": "v"})
    assert error_of(e)[0] == "InvalidParameterException"


# --- resource policies ----------------------------------------------------------------

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "route53.amazonaws.com"}, "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}
        ],
    }
)


def test_account_resource_policies(logs):
    r = logs.put_resource_policy(policyName="route53", policyDocument=POLICY)
    assert r["resourcePolicy"]["policyName"] == "route53"
    assert r["resourcePolicy"]["policyScope"] == "ACCOUNT"
    listed = logs.describe_resource_policies()["resourcePolicies"]
    assert [p["policyName"] for p in listed] == ["route53"]
    assert listed[0]["policyDocument"] == POLICY
    logs.put_resource_policy(policyName="route53", policyDocument=POLICY)  # update, not a new one
    for i in range(9):
        logs.put_resource_policy(policyName=f"p{i}", policyDocument=POLICY)
    with pytest.raises(ClientError) as e:
        logs.put_resource_policy(policyName="eleventh", policyDocument=POLICY)
    assert error_of(e)[0] == "LimitExceededException"
    pages = list(logs.get_paginator("describe_resource_policies").paginate(PaginationConfig={"PageSize": 3}))
    assert sum(len(p["resourcePolicies"]) for p in pages) == 10
    logs.delete_resource_policy(policyName="route53")
    with pytest.raises(ClientError) as e:
        logs.delete_resource_policy(policyName="route53")
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        logs.put_resource_policy(policyName="big", policyDocument=json.dumps({"x": "y" * 5200}))
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        logs.put_resource_policy(policyName="notjson", policyDocument="{not json")
    assert error_of(e)[0] == "InvalidParameterException"


def test_log_group_resource_policy_with_revisions(logs):
    logs.create_log_group(logGroupName="/g")
    arn = logs.describe_log_groups()["logGroups"][0]["logGroupArn"]
    r = logs.put_resource_policy(resourceArn=arn, policyDocument=POLICY)
    assert r["resourcePolicy"]["policyScope"] == "RESOURCE" and r["resourcePolicy"]["resourceArn"] == arn
    rev = r["revisionId"]
    with pytest.raises(ClientError) as e:
        logs.put_resource_policy(resourceArn=arn, policyDocument=POLICY, expectedRevisionId="stale")
    assert error_of(e)[0] == "OperationAbortedException"
    rev2 = logs.put_resource_policy(resourceArn=arn, policyDocument=POLICY, expectedRevisionId=rev)["revisionId"]
    assert rev2 != rev
    assert [p["resourceArn"] for p in logs.describe_resource_policies(policyScope="RESOURCE")["resourcePolicies"]] == [arn]
    assert logs.describe_resource_policies(policyScope="ACCOUNT")["resourcePolicies"] == []
    logs.delete_resource_policy(resourceArn=arn, expectedRevisionId=rev2)
    with pytest.raises(ClientError) as e:
        logs.put_resource_policy(resourceArn=arn.replace("/g", "/nope"), policyDocument=POLICY)
    assert error_of(e)[0] == "ResourceNotFoundException"


# --- protocol, auth, limits -----------------------------------------------------------


def test_wrong_secret_unknown_key_and_unsigned_requests_are_refused(server):
    with pytest.raises(ClientError) as e:
        server.client(secret="not-the-secret").describe_log_groups()
    code, message = error_of(e)
    assert code == "InvalidSignatureException" and "signature we calculated does not match" in message
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        server.client(access_key="AKIAUNKNOWN000000000").describe_log_groups()
    assert error_of(e)[0] == "UnrecognizedClientException"
    req = urllib.request.Request(
        server.endpoint + "/",
        data=b"{}",
        method="POST",
        headers={"X-Amz-Target": "Logs_20140328.DescribeLogGroups", "Content-Type": "application/x-amz-json-1.1"},
    )
    status, body = raw(req)
    assert status == 400 and body["__type"] == "MissingAuthenticationTokenException"


def raw(req):
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_protocol_errors_are_json_never_html(tmp_path):
    srv = NettrailServer(tmp_path / "data", keys=False).start()  # loopback, any credentials
    try:
        def post(target, body):
            headers = {"Content-Type": "application/x-amz-json-1.1"}
            if target:
                headers["X-Amz-Target"] = target
            return raw(urllib.request.Request(srv.endpoint + "/", data=body, method="POST", headers=headers))

        status, body = post("Logs_20140328.Frobnicate", b"{}")
        assert (status, body["__type"]) == (400, "UnknownOperationException")
        status, body = post("Logs_20140328.PutQueryDefinition", b"{}")
        assert (status, body["__type"]) == (400, "UnknownOperationException") and "not implemented" in body["message"]
        status, body = post("Logs_20140328.CreateLogGroup", b"{not json")
        assert (status, body["__type"]) == (400, "SerializationException")
        status, body = post("Logs_20140328.CreateLogGroup", b'["a list"]')
        assert (status, body["__type"]) == (400, "SerializationException")
        status, body = post(None, b"{}")
        assert (status, body["__type"]) == (400, "UnknownOperationException")
        status, body = post("Logs_20140328.CreateLogGroup", b"{}")
        assert status == 400 and "Value null at 'logGroupName'" in body["message"]
        status, body = post("Logs_20140328.CreateLogGroup", b'{"logGroupName": "/x", "futureMember": 1, "kmsKeyId": null}')
        assert status == 200, "unknown members and nulls are ignored"
        with urllib.request.urlopen(srv.endpoint + "/health", timeout=5) as r:
            assert r.status == 200
        # Any credentials work on loopback without keys.
        assert srv.client(secret="anything", access_key="ANYTHING").describe_log_groups()["logGroups"][0]["logGroupName"] == "/x"
    finally:
        srv.stop()


def test_oversized_body_is_refused_without_reading_it(tmp_path):
    srv = NettrailServer(tmp_path / "data", keys=False, config="[limits]\nmax_body_bytes = 1000\n").start()
    try:
        req = urllib.request.Request(
            srv.endpoint + "/",
            data=b'{"logGroupName": "' + b"a" * 2000 + b'"}',
            method="POST",
            headers={"X-Amz-Target": "Logs_20140328.CreateLogGroup"},
        )
        status, body = raw(req)
        assert status == 400 and body["__type"] == "RequestEntityTooLargeException"
        assert srv.proc.poll() is None
    finally:
        srv.stop()


def test_request_ids_and_content_type(server, logs):
    r = logs.describe_log_groups()
    assert len(r["ResponseMetadata"]["RequestId"]) == 36
    headers = r["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert "date" in headers


def test_sigterm_flushes_and_exits_zero_and_data_survives(tmp_path):
    srv = NettrailServer(tmp_path / "data").start()
    logs = srv.client()
    make_stream(logs)
    now = now_ms()
    logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=[{"timestamp": now, "message": "durable"}])
    logs.put_retention_policy(logGroupName="/g", retentionInDays=30)
    assert srv.stop() == 0
    again = NettrailServer(tmp_path / "data").start()
    try:
        logs = again.client()
        assert [e["message"] for e in logs.get_log_events(logGroupName="/g", logStreamName="s")["events"]] == ["durable"]
        g = logs.describe_log_groups()["logGroups"][0]
        assert g["retentionInDays"] == 30 and g["storedBytes"] > 0
    finally:
        again.stop()


def test_refuses_a_non_loopback_listen_without_keys(tmp_path):
    import subprocess
    from conftest import nettrail_bin

    proc = subprocess.run(
        [nettrail_bin(), "serve", "--listen", "0.0.0.0:0", "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode != 0
    assert "without access keys" in proc.stderr


def test_a_second_server_on_the_same_data_dir_says_why(tmp_path, server):
    import subprocess
    from conftest import nettrail_bin

    proc = subprocess.run(
        [nettrail_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0 and "in use by another nettrail process" in proc.stderr


def test_a_flood_is_throttled_not_buffered(tmp_path):
    import concurrent.futures
    import socket

    srv = NettrailServer(
        tmp_path / "data", keys=False, config="[limits]\nmax_in_flight = 1\nthrottle_wait_ms = 1\n"
    ).start()
    try:
        logs = srv.client()
        make_stream(logs)
        batch = [{"timestamp": now_ms(), "message": "x" * 1000}] * 1000

        def put(_):
            try:
                logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=batch)
                return "ok"
            except ClientError as e:
                return error_of_response(e)

        # A client that sends its body slowly holds the only processing slot (taken
        # before the body is read): everyone else is throttled, deterministically.
        slow = socket.create_connection(("127.0.0.1", srv.port))
        slow.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Logs_20140328.DescribeLogGroups\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{"
        )
        time.sleep(0.3)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(put, range(32)))
        assert set(results) == {"ThrottlingException"}, results
        slow.close()
        time.sleep(0.3)
        # Once the slot is free, a flood gets through in part and is throttled in part,
        # and nothing else happens to it.
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(put, range(64)))
        assert "ok" in results
        assert set(results) <= {"ok", "ThrottlingException"}
        assert srv.proc.poll() is None
    finally:
        srv.stop()


def error_of_response(e):
    return e.response["Error"]["Code"]
