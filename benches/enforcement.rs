//! The cost of the host's enforcement and of the core plugins' hot tools,
//! in-process through the tool layer (what an MCP call pays beyond
//! transport):
//!
//! - `validate_token`: `permission__validate` (a kv read and an audit append);
//! - `report_spending`: `budget__report_spending` (a compare-and-swap);
//! - `greet/unprotected` vs `greet/protected`: the same tool without and with
//!   a required grant (the host validates the token first). Issue 5 target:
//!   protected ≤ 2× unprotected.
//! - `server_cpu_per_call/greet_*`: the same comparison over MCP stdio with
//!   rmcp's client, as the server's CPU time per call (the host overhead
//!   `benches/mcp_roundtrip.rs` measures).

use criterion::{Criterion, criterion_group, criterion_main};
use rmcp::model::JsonObject;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use toolmesh::app::Stack;
use toolmesh::config::Config;
use toolmesh::service::CallMeta;

const POLICY: &str = r#"
[plugins.permission.config]
min_justification_chars = 1
[plugins.permission.config.resource_types.greeting]
[plugins.permission.config.roles.greeter]
permissions = ["greeting"]
[plugins.permission.config.agents.bench]
roles = ["greeter"]
"#;

fn object(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap_or_default()
}

fn start(rt: &tokio::runtime::Runtime, config: &str, data: &std::path::Path) -> Stack {
    let mut config: Config = toml::from_str(config).expect("config");
    config.data_dir = Some(data.to_owned());
    rt.block_on(Stack::start(&config)).expect("host")
}

fn bench_enforcement(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let cancel = CancellationToken::new();
    let plain_dir = tempfile::tempdir().expect("tempdir");
    let plain = start(&rt, POLICY, plain_dir.path());
    let guarded_dir = tempfile::tempdir().expect("tempdir");
    let guarded = start(
        &rt,
        &format!("{POLICY}\n[permissions.requires]\nhello__greet = \"greeting\"\n"),
        guarded_dir.path(),
    );

    let call = |host: &Stack, tool: &str, args: Value, meta: CallMeta| {
        let result = rt
            .block_on(host.service.call(tool, Some(object(args)), meta, &cancel))
            .expect("known tool");
        assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
        result.structured_content.unwrap_or(Value::Null)
    };
    let decision = call(
        &guarded,
        "permission__request",
        json!({"agent": "bench", "resource": "greeting", "justification": "bench", "duration_s": 3600}),
        CallMeta::default(),
    );
    let token = decision["token"].as_str().expect("granted").to_owned();
    call(
        &plain,
        "budget__set_budget",
        json!({"id": "bench", "limit": 1_000_000_000_000u64}),
        CallMeta::default(),
    );

    let mut group = c.benchmark_group("enforcement");
    let validate = object(json!({"token": token, "agent": "bench", "resource": "greeting"}));
    group.bench_function("validate_token", |b| {
        b.to_async(&rt).iter(|| async {
            guarded
                .service
                .call(
                    "permission__validate",
                    Some(validate.clone()),
                    CallMeta::default(),
                    &cancel,
                )
                .await
                .expect("known tool")
        });
    });
    let spend = object(json!({"id": "bench", "amount": 1}));
    group.bench_function("report_spending", |b| {
        b.to_async(&rt).iter(|| async {
            plain
                .service
                .call(
                    "budget__report_spending",
                    Some(spend.clone()),
                    CallMeta::default(),
                    &cancel,
                )
                .await
                .expect("known tool")
        });
    });
    let greet = object(json!({"name": "bench"}));
    group.bench_function("greet/unprotected", |b| {
        b.to_async(&rt).iter(|| async {
            plain
                .service
                .call(
                    "hello__greet",
                    Some(greet.clone()),
                    CallMeta::default(),
                    &cancel,
                )
                .await
                .expect("known tool")
        });
    });
    let meta = CallMeta {
        agent: Some("bench".into()),
        token: Some(token.clone()),
        ..CallMeta::default()
    };
    group.bench_function("greet/protected", |b| {
        b.to_async(&rt).iter(|| async {
            let result = guarded
                .service
                .call("hello__greet", Some(greet.clone()), meta.clone(), &cancel)
                .await
                .expect("known tool");
            assert_eq!(result.is_error, Some(false));
            result
        });
    });
    group.finish();
}

/// A `toolmesh serve` child with `config`, and a token for agent `bench`.
struct Served {
    client: rmcp::service::RunningService<rmcp::RoleClient, ()>,
    pid: u32,
    token: String,
    _data: tempfile::TempDir,
}

async fn serve(config: &str) -> Served {
    use rmcp::ServiceExt;
    let data = tempfile::tempdir().expect("tempdir");
    let config_path = data.path().join("toolmesh.toml");
    std::fs::write(&config_path, config).expect("config");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_toolmesh"));
    cmd.arg("--data-dir")
        .arg(data.path())
        .arg("--config")
        .arg(&config_path)
        .arg("serve")
        .env("TOOLMESH_LOG", "warn");
    let transport = rmcp::transport::TokioChildProcess::new(cmd).expect("spawn toolmesh");
    let pid = transport.id().expect("pid");
    let client = ().serve(transport).await.expect("initialize");
    let request = rmcp::model::CallToolRequestParams::new("permission__request").with_arguments(
        object(json!({"agent": "bench", "resource": "greeting", "justification": "bench", "duration_s": 3600})),
    );
    let decision = client.call_tool(request).await.expect("request");
    let token = decision
        .structured_content
        .and_then(|s| s["token"].as_str().map(str::to_owned))
        .expect("granted");
    Served {
        client,
        pid,
        token,
        _data: data,
    }
}

async fn greet_n(served: &Served, n: u64) {
    for _ in 0..n {
        let mut params = rmcp::model::CallToolRequestParams::new("hello__greet")
            .with_arguments(object(json!({"name": "bench"})));
        let mut meta = rmcp::model::RequestMetaObject::default();
        meta.0.0.insert("toolmesh/agent".into(), json!("bench"));
        meta.0
            .0
            .insert("toolmesh/token".into(), json!(served.token));
        params.meta = Some(meta);
        let result = served.client.call_tool(params).await.expect("call");
        assert_eq!(result.is_error, Some(false));
    }
}

fn bench_mcp(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let plain = rt.block_on(serve(POLICY));
    let guarded = rt.block_on(serve(&format!(
        "{POLICY}\n[permissions.requires]\nhello__greet = \"greeting\"\n"
    )));
    let mut cpu = c.benchmark_group("server_cpu_per_call");
    for (name, served) in [("greet_unprotected", &plain), ("greet_protected", &guarded)] {
        rt.block_on(greet_n(served, 200)); // warm up
        let meter = &toolmesh_test_support::CpuMeter::new(served.pid);
        cpu.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let before = meter.total();
                greet_n(served, iters).await;
                meter.total() - before
            });
        });
    }
    cpu.finish();
    for served in [plain, guarded] {
        let _ = rt.block_on(served.client.cancel());
    }
}

criterion_group!(benches, bench_enforcement, bench_mcp);
criterion_main!(benches);
