"""Fixtures that start the real `nettrail serve` binary and point boto3 and the aws CLI
at it.

The binary comes from NETTRAIL_BIN, or target/{release,debug}/nettrail under
CARGO_TARGET_DIR or the repository. Every server a test starts is stopped by PID when
the test ends, and its data directory is a fresh temporary one.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
ACCESS_KEY = "AKIANETTRAILTEST0001"
SECRET_KEY = "nettrail/test/secret/key/0123456789abcdef"
REGION = "us-east-1"


def nettrail_bin() -> str:
    if os.environ.get("NETTRAIL_BIN"):
        return os.environ["NETTRAIL_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("release", "debug"):
        candidate = target / profile / "nettrail"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("build nettrail first (cargo build --release) or set NETTRAIL_BIN")


def client_env(**extra) -> dict:
    """The environment of a client process (nettrail's CLI, the aws CLI) that signs
    with the test key and reads no AWS config files."""
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NettrailServer:
    """One `nettrail serve` process on a free loopback port."""

    def __init__(self, data_dir: Path, keys: bool = True, config: str = ""):
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.keys = keys
        self.config_text = config
        self.proc = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 15.0):
        env = dict(os.environ)
        env.pop("NETTRAIL_ACCESS_KEY_ID", None)
        env.pop("NETTRAIL_SECRET_ACCESS_KEY", None)
        if self.keys:
            env["NETTRAIL_ACCESS_KEY_ID"] = ACCESS_KEY
            env["NETTRAIL_SECRET_ACCESS_KEY"] = SECRET_KEY
        args = [nettrail_bin(), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir)]
        if self.config_text:
            config_path = self.data_dir.parent / f"config-{self.port}.toml"
            config_path.write_text(self.config_text)
            args += ["--config", str(config_path)]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nettrail exited with {self.proc.returncode}: {self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nettrail did not start listening in time")

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise
        finally:
            self.log.close()

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def client(self, secret: str = SECRET_KEY, access_key: str = ACCESS_KEY, service: str = "logs", **config):
        """A boto3 client of `service` (CloudWatch Logs, or `athena`) for this server."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
            config=Config(inject_host_prefix=False, retries={"max_attempts": 1, "mode": "standard"}, **config),
        )

    def aws(self, *args, check: bool = True, env_extra=None):
        """Runs the real aws CLI against this server; returns (exit code, parsed JSON or
        text of stdout, stderr)."""
        env = client_env(AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="", **(env_extra or {}))
        proc = subprocess.run(
            ["aws", "--endpoint-url", self.endpoint, "--output", "json", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        out = proc.stdout.strip()
        try:
            parsed = json.loads(out) if out else None
        except json.JSONDecodeError:
            parsed = out
        return proc.returncode, parsed, proc.stderr


@pytest.fixture
def server(tmp_path):
    srv = NettrailServer(tmp_path / "data").start()
    yield srv
    srv.stop()


@pytest.fixture
def logs(server):
    return server.client()


def now_ms() -> int:
    return int(time.time() * 1000)


def make_tls_certificate(directory: Path):
    """A private CA and a certificate for 127.0.0.1 signed by it, made with openssl;
    returns (CA file, certificate file, key file)."""
    ca, ca_key = directory / "ca.pem", directory / "ca-key.pem"
    cert, key, csr = directory / "cert.pem", directory / "key.pem", directory / "cert.csr"
    ext = directory / "leaf.ext"
    ext.write_text("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n")
    for args in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=nettrail test CA",
         "-keyout", ca_key, "-out", ca],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", csr],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "1",
         "-extfile", ext, "-out", cert],
    ):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)
    return ca, cert, key


@pytest.fixture
def moto(tmp_path):
    """A real S3-compatible server (moto's `moto_server`), started and stopped by PID;
    yields its endpoint URL."""
    port = free_port()
    log = open(tmp_path / "moto.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "moto.log").read_text())
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()
