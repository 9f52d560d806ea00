"""MCP over Streamable HTTP, with the official Python SDK's HTTP client and a
bearer key, against the real `toolmesh serve --http`.

The seed scenario of issue 12: an agent on "machine B" (this Python process,
with its own key) asks the permission plugin on host A for a grant over HTTP,
calls a protected tool on A with it, the grant is revoked, the next call is
refused, and A's audit log shows each step under B's client name.
"""

import asyncio
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

BINARY = os.environ.get("TOOLMESH_BIN", "")

pytestmark = pytest.mark.timeout(180)

CONFIG = """
[permissions.requires]
"hello__greet" = "greeting"

[plugins.permission.config]
min_justification_chars = 5

[plugins.permission.config.resource_types.greeting]

[plugins.permission.config.roles.greeter]
permissions = ["greeting"]

[plugins.permission.config.agents.bob]
roles = ["greeter"]
"""


def toolmesh(args, data):
    out = subprocess.run(
        [BINARY, "--data-dir", data, *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def add_client(data, name, agent, *extra):
    stdout = toolmesh(["client", "add", name, "--agent", agent, *extra], data)
    return stdout.strip().splitlines()[-1]


class Host:
    """`toolmesh serve --http 127.0.0.1:0`, its address read from its log."""

    def __init__(self, data, config):
        self.proc = subprocess.Popen(
            [BINARY, "--data-dir", data, "--config", config, "serve", "--http", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TOOLMESH_LOG": "info"},
        )
        self.addr = None
        deadline = time.monotonic() + 120
        while self.addr is None:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError("toolmesh exited before listening")
            m = re.search(r"serving MCP over HTTP.*addr=(\S+)", line)
            if m:
                self.addr = m.group(1)
            assert time.monotonic() < deadline
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.addr}/readyz") as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "/readyz never turned 200"
            time.sleep(0.05)

    @property
    def url(self):
        return f"http://{self.addr}/mcp"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@asynccontextmanager
async def session(url, key):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                yield client


def text_of(result):
    return result.content[0].text if result.content else ""


@pytest.fixture
def host():
    if not Path(BINARY).is_file():
        pytest.fail(f"TOOLMESH_BIN must name the built toolmesh binary (got {BINARY!r})")
    with tempfile.TemporaryDirectory() as data:
        config = Path(data) / "toolmesh.toml"
        config.write_text(CONFIG)
        b_key = add_client(data, "machine-b", "bob")
        ops_key = add_client(data, "ops", "operator", "--scope", "admin")
        server = Host(data, str(config))
        try:
            yield server, data, b_key, ops_key
        finally:
            server.stop()


def test_grant_call_revoke_refuse_and_the_audit_shows_each_step(host):
    server, data, b_key, ops_key = host

    async def main():
        async with session(server.url, b_key) as b:
            denied = await b.call_tool("hello__greet", {"name": "A"})
            assert denied.is_error and "grant" in text_of(denied), text_of(denied)

            decision = await b.call_tool(
                "permission__request",
                {
                    "agent": "bob",
                    "resource": "greeting",
                    "justification": "greet host A's users",
                    "duration_s": 300,
                },
            )
            assert not decision.is_error, text_of(decision)
            token = decision.structured_content["token"]
            assert token

            # Bob cannot ask for someone else.
            other = await b.call_tool(
                "permission__request",
                {"agent": "alice", "resource": "greeting",
                 "justification": "not mine", "duration_s": 60},
            )
            assert other.is_error and "only for itself" in text_of(other), text_of(other)

            granted = await b.call_tool(
                "hello__greet", {"name": "A"}, meta={"toolmesh/token": token}
            )
            assert not granted.is_error, text_of(granted)
            assert text_of(granted) == "Hello, A!"

            async with session(server.url, ops_key) as ops:
                revoked = await ops.call_tool("permission__revoke", {"token": token})
                assert revoked.structured_content["revoked"] is True

            refused = await b.call_tool(
                "hello__greet", {"name": "A"}, meta={"toolmesh/token": token}
            )
            assert refused.is_error and "revoked" in text_of(refused), text_of(refused)

    asyncio.run(main())

    deadline = time.monotonic() + 30
    while True:
        lines = toolmesh(["audit", "--json", "--client", "machine-b"], data).splitlines()
        calls = [json.loads(l) for l in lines]
        calls = [c for c in calls if c["method"] == "tools/call"]
        if len(calls) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    steps = [(c["target"], c["outcome"]) for c in calls]
    assert steps == [
        ("hello__greet", "error"),
        ("permission__request", "ok"),
        ("permission__request", "error"),
        ("hello__greet", "ok"),
        ("hello__greet", "error"),
    ], steps
    assert all(c["agent"] == "bob" for c in calls)


def test_no_key_is_refused_with_a_challenge(host):
    server, _, _, _ = host
    request = urllib.request.Request(
        server.url,
        data=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 401
    assert "resource_metadata=" in refused.value.headers["WWW-Authenticate"]
