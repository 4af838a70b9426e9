"""Recorded aws CLI sessions, replayed against a fresh server.

A session file (`cli_sessions/*.session`) is a sequence of commands:

    # a comment
    $ aws logs create-log-group --log-group-name /vpn/tunnels
    $ aws logs describe-log-groups --query 'logGroups[].logGroupName'
    [
        "/vpn/tunnels"
    ]
    $ aws logs create-log-group --log-group-name /vpn/tunnels
    ? 255
    ! An error occurred (ResourceAlreadyExistsException) when calling the CreateLogGroup operation: The specified log group already exists

Lines after a command are its expected stdout (compared as JSON when it parses, where
the string "<ANY>" matches any value); `? N` is the expected exit code (0 if absent);
`! text` must appear in stderr. `@env NAME=value` sets a variable for the next command
only. In commands, `{NOW}`, `{NOW-N}` and `{NOW+N}` become the current time in ms
(offset by N ms).
"""

import json
import re
import shlex
import time
from pathlib import Path

import pytest

from conftest import NettrailServer

SESSIONS = sorted((Path(__file__).parent / "cli_sessions").glob("*.session"))


def parse_session(path: Path):
    steps, current = [], None
    for raw in path.read_text().splitlines():
        if raw.startswith("#") or (not raw.strip() and current is None):
            continue
        if raw.startswith("@env "):
            pending_env = dict([raw[5:].split("=", 1)])
            steps.append({"env": pending_env})
            continue
        if raw.startswith("$ "):
            env = steps.pop()["env"] if steps and set(steps[-1]) == {"env"} else {}
            current = {"cmd": raw[2:], "stdout": [], "code": 0, "stderr": [], "env": env, "line": raw}
            steps.append(current)
        elif raw.startswith("? "):
            current["code"] = int(raw[2:])
        elif raw.startswith("! "):
            current["stderr"].append(raw[2:])
        else:
            current["stdout"].append(raw)
    return steps


def expand(cmd: str) -> str:
    now = int(time.time() * 1000)
    return re.sub(r"\{NOW([+-]\d+)?\}", lambda m: str(now + int(m.group(1) or 0)), cmd)


def matches(expected, actual) -> bool:
    if expected == "<ANY>":
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and expected.keys() == actual.keys() and all(matches(expected[k], actual[k]) for k in expected)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(matches(e, a) for e, a in zip(expected, actual))
    return expected == actual


@pytest.mark.parametrize("session", SESSIONS, ids=[p.stem for p in SESSIONS])
def test_cli_session(session, tmp_path):
    srv = NettrailServer(tmp_path / "data").start()
    try:
        for step in parse_session(session):
            argv = shlex.split(expand(step["cmd"]))
            assert argv[0] == "aws", step["line"]
            code, out, err = srv.aws(*argv[1:], check=False, env_extra=step["env"])
            assert code == step["code"], f"{step['line']}: exit {code}, stderr: {err}"
            for needle in step["stderr"]:
                assert needle in err, f"{step['line']}: {needle!r} not in stderr {err!r}"
            expected_text = "\n".join(step["stdout"]).strip()
            if not expected_text:
                assert out in (None, ""), f"{step['line']}: unexpected output {out!r}"
                continue
            try:
                expected = json.loads(expected_text)
            except json.JSONDecodeError:
                expected = expected_text
            assert matches(expected, out), f"{step['line']}:\nexpected {expected!r}\n     got {out!r}"
    finally:
        srv.stop()
