//! In-process cost of one tool call: a fresh store and instance from the
//! cached `InstancePre` on the pooling allocator, the guest's `call`, and the
//! host's work around it (argument validation, result mapping).
//!
//! Target (issue 2): instantiate + call a trivial tool, median <= 25 µs.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use toolmesh::config::Config;
use toolmesh::host::Host;
use toolmesh::mcp::CallMeta;
use toolmesh::runtime::call_context;

fn bench_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let data = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: Some(data.path().to_owned()),
        ..Config::default()
    };
    let host = rt.block_on(Host::start(&config)).expect("host");
    let snapshot = host.tools.registry().snapshot();
    let (plugin, _) = snapshot.resolve("hello__add").expect("hello is bundled");
    let code = plugin.code.clone();
    let runtime = Arc::clone(&host.runtime);
    let cancel = CancellationToken::new();
    let ctx = call_context("bench".into(), None);

    let mut group = c.benchmark_group("call");
    group.bench_function("instantiate_and_call/hello_add", |b| {
        b.to_async(&rt).iter(|| async {
            runtime
                .call(&code, &ctx, "add", r#"{"a":1,"b":2}"#, &cancel, None)
                .await
                .0
                .expect("add")
        })
    });
    let arguments = json!({"a": 1, "b": 2});
    let serde_json::Value::Object(arguments) = arguments else {
        unreachable!()
    };
    group.bench_function("tool_host/hello_add", |b| {
        b.to_async(&rt).iter(|| async {
            let result = host
                .tools
                .call(
                    "hello__add",
                    Some(arguments.clone()),
                    CallMeta::default(),
                    &cancel,
                )
                .await
                .expect("known tool");
            assert_eq!(result.is_error, Some(false));
            result
        })
    });
    group.bench_function("tool_host/hello_greet", |b| {
        let arguments = json!({"name": "bench"});
        let serde_json::Value::Object(arguments) = arguments else {
            unreachable!()
        };
        b.to_async(&rt).iter(|| async {
            host.tools
                .call(
                    "hello__greet",
                    Some(arguments.clone()),
                    CallMeta::default(),
                    &cancel,
                )
                .await
                .expect("known tool")
        })
    });
    group.finish();

    // Issue 3 target: tracking costs well under a microsecond per call.
    let usage = toolmesh::usage::ToolUsage::default();
    let record = toolmesh::usage::CallUsage {
        fuel: 12_345,
        peak_memory_bytes: 1 << 20,
        wall: std::time::Duration::from_micros(42),
        bytes_in: 13,
        bytes_out: 11,
        outcome: toolmesh::usage::Outcome::Ok,
    };
    c.bench_function("usage/record", |b| {
        b.iter(|| usage.record(std::hint::black_box(&record)))
    });
}

/// Fuel metering's cost on a CPU-bound guest: the same call with fuel on and
/// off (issue 3 target: at most 1.3x).
fn bench_fuel(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let mut group = c.benchmark_group("fuel");
    for metering in [false, true] {
        let host_dir = toolmesh_test_support::TempHost::new().expect("temp host");
        host_dir
            .add_plugin(&toolmesh_test_support::test_plugin("hostile"), "hostile")
            .expect("hostile plugin");
        let mut config = Config {
            data_dir: Some(host_dir.data_dir()),
            plugins_dir: Some(host_dir.plugins_dir()),
            bundled_plugins: false,
            ..Config::default()
        };
        config.runtime.fuel_metering = metering;
        let host = rt.block_on(Host::start(&config)).expect("host");
        let snapshot = host.tools.registry().snapshot();
        let (plugin, _) = snapshot.resolve("hostile__burn").expect("burn");
        let code = plugin.code.clone();
        let runtime = Arc::clone(&host.runtime);
        let cancel = CancellationToken::new();
        let ctx = call_context("bench".into(), None);
        let name = if metering {
            "burn_1m/fuel_on"
        } else {
            "burn_1m/fuel_off"
        };
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                runtime
                    .call(&code, &ctx, "burn", r#"{"rounds":1000000}"#, &cancel, None)
                    .await
                    .0
                    .expect("burn")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_call, bench_fuel);
criterion_main!(benches);
