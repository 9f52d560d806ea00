//! Resource reads and prompt gets through the host, next to a tool call of
//! the same plugin (`hello`): each runs the plugin in a fresh instance under
//! its level's quotas.
//!
//! - `offers_in_process/*`: the service's path (resolve, namespace, run,
//!   map to MCP), no transport;
//! - `offers_stdio/*`: full MCP round trips, rmcp's client driving the real
//!   binary over stdio, sequentially.
//!
//! Issue 13 asks for these figures beside the tool-call one (no target).

use std::path::Path;

#[path = "common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams};
use rmcp::transport::TokioChildProcess;
use serde_json::json;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;
use toolmesh::service::{CallMeta, prompts, resources};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");
const ABOUT: &str = "toolmesh://hello/about";
const PROMPT: &str = "hello__introduce";

fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

fn bench_in_process(c: &mut Criterion) {
    let common::BenchHost {
        rt,
        host,
        _data: _data_dir,
    } = common::bench_host();
    let service = &host.service;
    let cancel = CancellationToken::new();
    let mut group = c.benchmark_group("offers_in_process");
    group.bench_function("tool_call/hello_add", |b| {
        b.to_async(&rt).iter(|| async {
            let args = object(json!({"a": 1, "b": 2}));
            let result = service
                .call("hello__add", Some(args), CallMeta::default(), &cancel)
                .await
                .expect("known tool");
            assert_eq!(result.is_error, Some(false));
        });
    });
    group.bench_function("resource_read/hello_about", |b| {
        b.to_async(&rt).iter(|| async {
            let read = resources::read(service, ABOUT, CallMeta::default(), &cancel)
                .await
                .expect("read");
            assert_eq!(read.contents.len(), 1);
        });
    });
    group.bench_function("prompt_get/hello_introduce", |b| {
        b.to_async(&rt).iter(|| async {
            let args = object(json!({"name": "Ada"}));
            let prompt = prompts::get(service, PROMPT, Some(args), CallMeta::default(), &cancel)
                .await
                .expect("prompt");
            assert_eq!(prompt.messages.len(), 1);
        });
    });
    group.finish();
}

fn bench_stdio(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let data = tempfile::tempdir().expect("tempdir");
    let client = rt.block_on(async {
        let mut cmd = Command::new(Path::new(BIN));
        cmd.arg("--data-dir")
            .arg(data.path())
            .arg("serve")
            .env("TOOLMESH_LOG", "warn");
        ().serve(TokioChildProcess::new(cmd).expect("spawn toolmesh"))
            .await
            .expect("initialize")
    });
    let client = &client;
    let mut group = c.benchmark_group("offers_stdio");
    group.bench_function("tool_call/hello_add", |b| {
        b.to_async(&rt).iter(|| async {
            let request = CallToolRequestParams::new("hello__add")
                .with_arguments(object(json!({"a": 1, "b": 2})));
            let result = client.call_tool(request).await.expect("call");
            assert_eq!(result.is_error, Some(false));
        });
    });
    group.bench_function("resource_read/hello_about", |b| {
        b.to_async(&rt).iter(|| async {
            let read = client
                .read_resource(ReadResourceRequestParams::new(ABOUT))
                .await
                .expect("read");
            assert_eq!(read.contents.len(), 1);
        });
    });
    group.bench_function("prompt_get/hello_introduce", |b| {
        b.to_async(&rt).iter(|| async {
            let mut request = GetPromptRequestParams::new(PROMPT);
            request.arguments = Some(object(json!({"name": "Ada"})));
            let prompt = client.get_prompt(request).await.expect("prompt");
            assert_eq!(prompt.messages.len(), 1);
        });
    });
    group.finish();
}

criterion_group!(benches, bench_in_process, bench_stdio);
criterion_main!(benches);
