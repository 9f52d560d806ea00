//! Full MCP round trips over stdio: rmcp's client driving the real `toolmesh`
//! binary, sequentially and with 32 calls in flight. Two measurements:
//!
//! - `mcp_roundtrip/*`: wall time per call as the client sees it;
//! - `server_cpu_per_call/*`: CPU time the server process spends per call
//!   (user + system, summed over its threads from /proc, nanosecond precision).
//!
//! - `startup/spawn_to_tools_list`: from spawning the process to an answered
//!   `tools/list` with the default plugins and a warm compile cache.
//!
//! Targets (issue 2): server CPU <= 50 µs per call, >= 5,000 sequential calls/s,
//! startup <= 150 ms.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use tokio::process::Command;
use toolmesh_test_support::CpuMeter;

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

struct Server {
    client: RunningService<RoleClient, ()>,
    pid: u32,
    _data: tempfile::TempDir,
}

async fn start() -> Server {
    start_in(tempfile::tempdir().expect("tempdir")).await
}

async fn start_in(data: tempfile::TempDir) -> Server {
    let mut cmd = Command::new(Path::new(BIN));
    cmd.arg("--data-dir")
        .arg(data.path())
        .arg("serve")
        .env("TOOLMESH_LOG", "warn");
    let transport = TokioChildProcess::new(cmd).expect("spawn toolmesh");
    let pid = transport.id().expect("child pid");
    let client = ().serve(transport).await.expect("initialize");
    Server {
        client,
        pid,
        _data: data,
    }
}

fn add_request() -> CallToolRequestParams {
    let serde_json::Value::Object(arguments) = serde_json::json!({"a": 1, "b": 2}) else {
        unreachable!()
    };
    let arguments: JsonObject = arguments;
    CallToolRequestParams::new("hello__add").with_arguments(arguments)
}

async fn sequential(server: &Server, n: u64) {
    for _ in 0..n {
        let result = server.client.call_tool(add_request()).await.expect("call");
        assert_eq!(result.is_error, Some(false));
    }
}

async fn in_flight(server: &Server, n: u64, width: usize) {
    futures::stream::iter(0..n)
        .map(|_| server.client.call_tool(add_request()))
        .buffer_unordered(width)
        .for_each(|result| async move {
            assert_eq!(result.expect("call").is_error, Some(false));
        })
        .await;
}

fn bench_roundtrip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let server = rt.block_on(start());
    rt.block_on(sequential(&server, 200)); // warm up

    let mut wall = c.benchmark_group("mcp_roundtrip");
    wall.bench_function("sequential", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let server = &server;
            async move {
                let started = Instant::now();
                sequential(server, iters).await;
                started.elapsed()
            }
        });
    });
    wall.bench_function("in_flight_32", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let server = &server;
            async move {
                let started = Instant::now();
                in_flight(server, iters, 32).await;
                started.elapsed()
            }
        });
    });
    wall.finish();

    // Reported "time" is the server's CPU time for the calls, not wall time.
    let meter = &CpuMeter::new(server.pid);
    let mut cpu = c.benchmark_group("server_cpu_per_call");
    cpu.bench_function("sequential", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let server = &server;
            async move {
                let before = meter.total();
                sequential(server, iters).await;
                meter.total() - before
            }
        });
    });
    cpu.bench_function("in_flight_32", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let server = &server;
            async move {
                let before = meter.total();
                in_flight(server, iters, 32).await;
                meter.total() - before
            }
        });
    });
    cpu.finish();
    let Server { client, .. } = server;
    let _ = rt.block_on(client.cancel());

    // Startup with a warm compile cache: the first start fills it.
    let data = tempfile::tempdir().expect("tempdir");
    let data_path = data.path().to_owned();
    let warm = rt.block_on(start_in(data));
    let _ = rt.block_on(warm.client.cancel());
    let mut startup = c.benchmark_group("startup");
    startup.sample_size(30);
    startup.bench_function("spawn_to_tools_list", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let data_path = data_path.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let mut cmd = Command::new(Path::new(BIN));
                    cmd.arg("--data-dir")
                        .arg(&data_path)
                        .arg("serve")
                        .env("TOOLMESH_LOG", "warn");
                    let client =
                        ().serve(TokioChildProcess::new(cmd).expect("spawn"))
                            .await
                            .expect("initialize");
                    let tools = client.list_all_tools().await.expect("tools/list");
                    total += started.elapsed();
                    assert!(tools.len() >= 2);
                    let _ = client.cancel().await;
                }
                total
            }
        });
    });
    startup.finish();
}

criterion_group!(benches, bench_roundtrip);
criterion_main!(benches);
