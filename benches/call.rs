//! In-process cost of one tool call: a fresh store and instance from the
//! cached `InstancePre` on the pooling allocator, the guest's `call`, and the
//! host's work around it (argument validation, result mapping).
//!
//! Target (issue 2): instantiate + call a trivial tool, median <= 25 µs.

use std::sync::Arc;

#[path = "common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use toolmesh::app::Stack;
use toolmesh::capability::CallInputs;
use toolmesh::config::Config;
use toolmesh::service::CallMeta;
use toolmesh::wit::CallContext;

/// How long the thread idles before each `after_idle` call: about the gap
/// a sequential MCP client leaves between a response and its next request.
const IDLE_GAP: std::time::Duration = std::time::Duration::from_micros(100);

fn bench_call(c: &mut Criterion) {
    let common::BenchHost {
        rt,
        host,
        _data: _data_dir,
    } = common::bench_host();
    let snapshot = host.registry.snapshot();
    let (plugin, _) = snapshot.resolve("hello__add").expect("hello is bundled");
    let code = plugin.code.clone();
    let runtime = Arc::clone(host.loader.runtime());
    let cancel = CancellationToken::new();
    let ctx = CallContext {
        request_id: "bench".into(),
        client: None,
    };

    let mut group = c.benchmark_group("call");
    group.bench_function("instantiate_and_call/hello_add", |b| {
        b.to_async(&rt).iter(|| async {
            runtime
                .call(
                    &code,
                    &ctx,
                    "add",
                    r#"{"a":1,"b":2}"#,
                    &cancel,
                    CallInputs::local(),
                )
                .await
                .0
                .expect("add")
        });
    });
    let arguments = json!({"a": 1, "b": 2});
    let serde_json::Value::Object(arguments) = arguments else {
        unreachable!()
    };
    group.bench_function("tool_service/hello_add", |b| {
        b.to_async(&rt).iter(|| async {
            let result = host
                .service
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
        });
    });
    group.bench_function("tool_service/hello_greet", |b| {
        let arguments = json!({"name": "bench"});
        let serde_json::Value::Object(arguments) = arguments else {
            unreachable!()
        };
        b.to_async(&rt).iter(|| async {
            host.service
                .call(
                    "hello__greet",
                    Some(arguments.clone()),
                    CallMeta::default(),
                    &cancel,
                )
                .await
                .expect("known tool")
        });
    });
    // The same call after the thread has slept (as a server does between
    // sequential requests): only the call is timed. The difference from
    // `tool_service/hello_add` is what an idle CPU's cold caches cost a call.
    group.bench_function("tool_service/hello_add_after_idle", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                std::thread::sleep(IDLE_GAP);
                let started = std::time::Instant::now();
                let result = rt
                    .block_on(host.service.call(
                        "hello__add",
                        Some(arguments.clone()),
                        CallMeta::default(),
                        &cancel,
                    ))
                    .expect("known tool");
                total += started.elapsed();
                assert_eq!(result.is_error, Some(false));
            }
            total
        });
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
        quota: None,
    };
    c.bench_function("usage/record", |b| {
        b.iter(|| usage.record(std::hint::black_box(&record)));
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
        let host = rt.block_on(Stack::start(&config)).expect("host");
        let snapshot = host.registry.snapshot();
        let (plugin, _) = snapshot.resolve("hostile__burn").expect("burn");
        let code = plugin.code.clone();
        let runtime = Arc::clone(host.loader.runtime());
        let cancel = CancellationToken::new();
        let ctx = CallContext {
            request_id: "bench".into(),
            client: None,
        };
        let name = if metering {
            "burn_1m/fuel_on"
        } else {
            "burn_1m/fuel_off"
        };
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                runtime
                    .call(
                        &code,
                        &ctx,
                        "burn",
                        r#"{"rounds":1000000}"#,
                        &cancel,
                        CallInputs::local(),
                    )
                    .await
                    .0
                    .expect("burn")
            });
        });
    }
    group.finish();
}

/// The per-call cost of each capability's setup: the same trivial call
/// (`hostile__noop`) into copies of the hostile plugin whose levels grant one
/// capability each (the plugin asks for all of them).
fn bench_capabilities(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let grants: [(&str, &str); 7] = [
        ("none", ""),
        ("log", "\"log\""),
        ("kv", "\"kv\""),
        ("blobs", "\"blobs\""),
        ("progress", "\"progress\""),
        ("fs", "\"fs-read\", \"fs-write\""),
        ("env", "\"env\""),
    ];
    let host_dir = toolmesh_test_support::TempHost::new().expect("temp host");
    let mut config_text = String::new();
    for (name, capabilities) in grants {
        let plugin = format!("cap-{name}");
        let dir = host_dir
            .add_plugin(&toolmesh_test_support::test_plugin("hostile"), &plugin)
            .expect("hostile plugin");
        let manifest = std::fs::read_to_string(dir.join("plugin.toml"))
            .expect("manifest")
            .replace("name = \"hostile\"", &format!("name = \"{plugin}\""))
            .replace("level = \"untrusted\"", &format!("level = \"{plugin}\""));
        std::fs::write(dir.join("plugin.toml"), manifest).expect("manifest");
        config_text.push_str(&format!(
            "[levels.{plugin}]\ncapabilities = [{capabilities}]\n"
        ));
    }
    // SAFETY: set before any thread of this benchmark reads the environment.
    unsafe { std::env::set_var("TOOLMESH_TEST_GRANTED", "x") };
    let mut config: Config = toml::from_str(&config_text).expect("config");
    config.data_dir = Some(host_dir.data_dir());
    config.plugins_dir = Some(host_dir.plugins_dir());
    config.bundled_plugins = false;
    let host = rt.block_on(Stack::start(&config)).expect("host");
    let runtime = Arc::clone(host.loader.runtime());
    let cancel = CancellationToken::new();
    let ctx = CallContext {
        request_id: "bench".into(),
        client: None,
    };
    let snapshot = host.registry.snapshot();
    // The sink a progress-granted call gets (noop never reports; the receiver
    // stays open so the sink is live).
    let (sink, _reports) = toolmesh::capability::progress::channel();
    let mut group = c.benchmark_group("capability_setup");
    for (name, _) in grants {
        let (plugin, _) = snapshot
            .resolve(&format!("cap-{name}__noop"))
            .expect("noop");
        let code = plugin.code.clone();
        // The plugin asks for 9 things (6 imports, 2 directories, 1 variable);
        // each level grants exactly the ones under test.
        let granted = match name {
            "none" => 0,
            "fs" => 2,
            _ => 1,
        };
        assert_eq!(
            9 - code.access().refused.len(),
            granted,
            "{name}: {:?}",
            code.access().refused
        );
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let progress = (name == "progress").then(|| sink.clone());
                runtime
                    .call(
                        &code,
                        &ctx,
                        "noop",
                        "{}",
                        &cancel,
                        CallInputs {
                            progress,
                            ..CallInputs::local()
                        },
                    )
                    .await
                    .0
                    .expect("noop")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_call, bench_fuel, bench_capabilities);
criterion_main!(benches);
