"""The real `toolmesh` binary driven by the official Python MCP SDK (`mcp` on PyPI).

Run by `cargo xtask test`, which builds the binary, creates the virtualenv and
points TOOLMESH_BIN at the binary.
"""

import asyncio
import json
import os
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client

BINARY = os.environ.get("TOOLMESH_BIN", "")

pytestmark = pytest.mark.timeout(60)


@asynccontextmanager
async def session():
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
            async with ClientSession(read, write) as client:
                await client.initialize()
                yield client


def run(coro):
    return asyncio.run(coro)


def text_of(result) -> str:
    return result.content[0].text if result.content else ""


def test_initialize_and_list_tools():
    async def main():
        async with session() as client:
            listed = await client.list_tools()
            tools = {tool.name: tool for tool in listed.tools}
            assert {"hello__greet", "hello__add"} <= tools.keys()
            add = tools["hello__add"]
            assert add.input_schema["type"] == "object"
            assert set(add.input_schema["required"]) == {"a", "b"}
            assert add.output_schema["properties"]["sum"]["type"] == "number"
            assert add.annotations.read_only_hint is True

    run(main())


def test_greet_and_add():
    async def main():
        async with session() as client:
            greeting = await client.call_tool("hello__greet", {"name": "Grace"})
            assert not greeting.is_error
            assert text_of(greeting) == "Hello, Grace!"

            total = await client.call_tool("hello__add", {"a": 0.25, "b": 0.5})
            assert not total.is_error
            assert total.structured_content == {"sum": 0.75}
            assert json.loads(text_of(total)) == {"sum": 0.75}

    run(main())


def test_bad_arguments_unknown_tool_and_recovery():
    async def main():
        async with session() as client:
            bad = await client.call_tool("hello__add", {"a": [1], "b": 2})
            assert bad.is_error
            assert "invalid arguments for `hello__add`" in text_of(bad)
            assert "at `/a`" in text_of(bad)

            missing = await client.call_tool("hello__greet", {})
            assert missing.is_error
            assert '"name" is a required property' in text_of(missing)

            with pytest.raises(MCPError) as raised:
                await client.call_tool("no_such__tool", {})
            assert raised.value.code == -32602
            assert "unknown tool `no_such__tool`" in raised.value.message

            # The host still answers.
            again = await client.call_tool("hello__greet", {"name": "still here"})
            assert text_of(again) == "Hello, still here!"
            assert len((await client.list_tools()).tools) >= 2

    run(main())
