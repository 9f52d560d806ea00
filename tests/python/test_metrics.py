"""`/metrics` of a real `toolmesh serve --http`, read by a real Prometheus
text parser (the `prometheus-client` package's OpenMetrics parser) after
calls made by the official MCP Python SDK; the families the dashboard and
scrapers rely on are there and agree with the calls made."""

import asyncio
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from test_mcp_http import BINARY, Host, add_client, session, text_of

pytestmark = pytest.mark.timeout(180)


def scrape(addr, key):
    request = urllib.request.Request(
        f"http://{addr}/metrics", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        return response.read().decode()


def samples(text):
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(found, name, **labels):
    matches = [s.value for s in found.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, f"{name}{labels}: {matches}"
    return matches[0]


def test_metrics_parse_and_count_the_calls_made():
    if not Path(BINARY).is_file():
        pytest.fail(f"TOOLMESH_BIN must name the built toolmesh binary (got {BINARY!r})")
    with tempfile.TemporaryDirectory() as data:
        config = Path(data) / "toolmesh.toml"
        config.write_text("")
        agent_key = add_client(data, "agent", "alice")
        ops_key = add_client(data, "ops", "operator", "--scope", "admin")
        server = Host(data, str(config))
        try:
            async def calls():
                async with session(server.url, agent_key) as agent:
                    for i in range(3):
                        result = await agent.call_tool("hello__greet", {"name": f"n{i}"})
                        assert text_of(result) == f"Hello, n{i}!"
                    overflow = await agent.call_tool(
                        "hello__add", {"a": 1.7e308, "b": 1.7e308}
                    )
                    assert overflow.is_error

            asyncio.run(calls())
            # A client without the admin scope is refused.
            with pytest.raises(urllib.error.HTTPError) as refused:
                scrape(server.addr, agent_key)
            assert refused.value.code == 403

            found = samples(scrape(server.addr, ops_key))
            greet = {"plugin": "hello", "tool": "hello__greet"}
            assert value(found, "toolmesh_tool_calls_total", outcome="ok", **greet) == 3
            assert value(found, "toolmesh_tool_calls_total", outcome="tool_error", tool="hello__add") == 1
            assert value(found, "toolmesh_tool_call_duration_seconds_count", **greet) == 3
            buckets = [s for s in found["toolmesh_tool_call_duration_seconds_bucket"] if s.labels["tool"] == "hello__greet"]
            assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 3
            counts = [s.value for s in buckets]
            assert counts == sorted(counts), "buckets are cumulative"
            assert value(found, "toolmesh_tool_fuel_total", **greet) > 0
            assert value(found, "toolmesh_plugin_state", plugin="hello", state="enabled") == 1
            assert value(found, "toolmesh_plugin_breaker_state", plugin="hello", state="closed") == 1
            assert value(found, "toolmesh_tool_quota_hits_total", quota="fuel", **greet) == 0
            # The refused scrape and the MCP requests were counted, by client.
            assert value(found, "toolmesh_http_requests_total", status="403", client="-") >= 1
            assert sum(s.value for s in found["toolmesh_http_requests_total"] if s.labels["client"] == "agent") >= 4
            assert value(found, "toolmesh_process_resident_memory_bytes") > 1 << 20
            assert value(found, "toolmesh_process_cpu_seconds_total") > 0
        finally:
            server.stop()
