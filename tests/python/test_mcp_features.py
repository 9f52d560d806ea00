"""Resources, templates, prompts, plugin logs and subscriptions of the real
`toolmesh` binary, driven by the official Python MCP SDK over stdio, with the
bundled plugins (`hello`, `budget`, `permission`).

Run by `cargo xtask test`, which builds the binary and points TOOLMESH_BIN at it.
"""

import asyncio
import json
import os
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client, types

BINARY = os.environ.get("TOOLMESH_BIN", "")

pytestmark = pytest.mark.timeout(60)


@asynccontextmanager
async def session(**callbacks):
    if not Path(BINARY).is_file():
        pytest.fail(f"TOOLMESH_BIN must name the built toolmesh binary (got {BINARY!r})")
    with tempfile.TemporaryDirectory() as data:
        params = StdioServerParameters(
            command=BINARY,
            args=["--data-dir", data, "serve"],
            # Wait for every plugin: a cold compile can outlast the 5 s start bound.
            env={"TOOLMESH_LOG": "warn", "TOOLMESH_STARTUP_WAIT_MS": "600000"},
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, **callbacks) as client:
                await client.initialize()
                yield client


async def until(predicate, seconds=5.0):
    """Waits for `predicate()` to hold (the SDK hands notifications over on tasks)."""
    for _ in range(int(seconds * 100)):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


def test_resources_templates_and_prompts():
    async def main():
        async with session() as client:
            listed = await client.list_resources()
            uris = {str(r.uri) for r in listed.resources}
            assert {"toolmesh://hello/about", "toolmesh://budget/alerts"} <= uris, uris
            about = await client.read_resource("toolmesh://hello/about")
            assert about.contents[0].text == "hello greets people and adds numbers."
            assert about.contents[0].mime_type == "text/plain"

            templates = await client.list_resource_templates()
            assert "toolmesh://budget/budgets/{id}" in {
                t.uri_template for t in templates.resource_templates
            }
            made = await client.call_tool("budget__set_budget", {"id": "py", "limit": 10})
            assert not made.is_error, made
            one = await client.read_resource("toolmesh://budget/budgets/py")
            assert json.loads(one.contents[0].text)["limit"] == 10

            prompts = {p.name: p for p in (await client.list_prompts()).prompts}
            assert {"hello__introduce", "permission__request_access"} <= prompts.keys()
            assert [a.name for a in prompts["hello__introduce"].arguments] == ["name"]
            got = await client.get_prompt("hello__introduce", {"name": "Grace"})
            assert got.messages[0].content.text == "Introduce Grace in one friendly sentence."
            access = await client.get_prompt(
                "permission__request_access",
                {"resource": "secrets", "justification": "rotate the keys"},
            )
            assert "permission__request" in access.messages[0].content.text

    asyncio.run(main())


def test_plugin_logs_reach_the_client_at_its_level():
    records = []

    async def on_log(params: types.LoggingMessageNotificationParams):
        records.append(params)

    async def main():
        async with session(logging_callback=on_log) as client:
            await client.call_tool("hello__greet", {"name": "quiet"})
            await client.set_logging_level("debug")
            await client.call_tool("hello__greet", {"name": "Py"})
            assert await until(lambda: records), "no log record arrived"
            assert records[0].logger == "hello"
            assert records[0].data == "greeting Py"
            assert len(records) == 1, "nothing before the level was set"

    asyncio.run(main())


def test_a_budget_alert_updates_a_subscribed_resource():
    updated = []

    async def on_message(message):
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))

    async def main():
        async with session(message_handler=on_message) as client:
            await client.subscribe_resource("toolmesh://budget/alerts")
            await client.call_tool(
                "budget__set_budget", {"id": "team", "limit": 100, "alert_threshold": 0.5}
            )
            spent = await client.call_tool("budget__report_spending", {"id": "team", "amount": 60})
            assert not spent.is_error, spent
            assert await until(lambda: "toolmesh://budget/alerts" in updated), updated
            alerts = await client.read_resource("toolmesh://budget/alerts")
            assert json.loads(alerts.contents[0].text)["alerts"][0]["budget"] == "team"

    asyncio.run(main())
