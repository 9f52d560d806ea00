//! MCP over Streamable HTTP against the real `toolmesh` binary, and the
//! cost of the HTTP edge, in one run:
//!
//! - `load`: `tools/call hello__add` round trips from 64 concurrent
//!   clients on loopback (keep-alive connections, bearer API key, the
//!   stateless 2026-07-28 era, one POST per call): calls/s, p50/p99
//!   latency, and the server's CPU per call; then the same with the audit
//!   log off; then stdio with 32 calls in flight for the reference.
//!   Targets (issue 12): >= 10,000 calls/s; server CPU per call <= 2x the
//!   stdio figure.
//! - `auth/*` (criterion): one request's authentication, API key and JWT
//!   (target <= 5 us each); `audit/record`: queuing one audit record.
//!
//! `cargo bench -p toolmesh --bench http` (load only: `-- load`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use futures::StreamExt;
use hdrhistogram::Histogram;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::transport::TokioChildProcess;
use serde_json::json;
use toolmesh::audit::{AuditLog, AuditRecord};
use toolmesh::http::auth::Authenticator;
use toolmesh::http::auth::keys::{ClientStore, NewClient};
use toolmesh::http::config::{HttpConfig, OAuthConfig};
use toolmesh::identity::{Scope, Zone};
use toolmesh_test_support::http::{HttpHost, add_client};
use toolmesh_test_support::{CpuMeter, TempHost};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");
const CLIENTS: usize = 64;
const SECONDS: u64 = 5;

fn call_body(id: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
    "name": "hello__add", "arguments": {"a": 1, "b": 2},
    "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    }}})
    .to_string()
}

struct Load {
    calls: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
    cpu: Duration,
}

async fn load(server: &HttpHost, key: &str, clients: usize, seconds: u64) -> Load {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let meter = CpuMeter::new(server.pid().expect("pid"));
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url();
    let auth = format!("Bearer {key}");
    let cpu_before = meter.total();
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|w| {
            let (http, url, auth, stop) = (http.clone(), url.clone(), auth.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new(3).expect("histogram");
                let mut id = (w as u64) << 32;
                while !stop.load(Ordering::Relaxed) {
                    id += 1;
                    let sent = Instant::now();
                    let response = http
                        .post(&url)
                        .header("authorization", &auth)
                        .header("accept", "application/json, text/event-stream")
                        .header("content-type", "application/json")
                        .header("mcp-protocol-version", "2026-07-28")
                        .header("mcp-method", "tools/call")
                        .header("mcp-name", "hello__add")
                        .body(call_body(id))
                        .send()
                        .await
                        .expect("send");
                    assert!(response.status().is_success(), "{}", response.status());
                    let body = response.bytes().await.expect("body");
                    assert!(
                        body.windows(7).any(|w| w == b"\"sum\":3"),
                        "{}",
                        String::from_utf8_lossy(&body)
                    );
                    let _ = latency.record(sent.elapsed().as_micros() as u64);
                }
                latency
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    for w in workers {
        latency.add(w.await.expect("worker")).expect("add");
    }
    let elapsed = started.elapsed();
    Load {
        calls: latency.len(),
        elapsed,
        latency,
        cpu: meter.total() - cpu_before,
    }
}

fn report(what: &str, l: &Load) {
    let per_s = l.calls as f64 / l.elapsed.as_secs_f64();
    println!(
        "{what:<34} {:>9.0} calls/s  p50 {:>6} us  p99 {:>6} us  server CPU {:>6.1} us/call",
        per_s,
        l.latency.value_at_quantile(0.5),
        l.latency.value_at_quantile(0.99),
        l.cpu.as_secs_f64() * 1e6 / l.calls.max(1) as f64
    );
}

async fn http_host(audit: bool) -> (TempHost, HttpHost, String) {
    let host = TempHost::new().expect("host");
    let toml = format!("[http.audit]\nenabled = {audit}\n");
    let args = host.args_with_config(&toml).expect("config");
    let key = add_client(
        Path::new(BIN),
        &args,
        "bench",
        "bench",
        &[
            "--rate",
            "10000000",
            "--burst",
            "10000000",
            "--in-flight",
            "10000",
        ],
    )
    .expect("key");
    let server = HttpHost::start(Path::new(BIN), &args, &[])
        .await
        .expect("start");
    (host, server, key)
}

/// Server CPU per call over stdio, 32 in flight, for the reference.
async fn stdio_reference(calls: u64) -> (f64, Duration) {
    let host = TempHost::new().expect("host");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(host.args())
        .arg("serve")
        .env("TOOLMESH_LOG", "warn");
    let transport = TokioChildProcess::new(cmd).expect("spawn");
    let meter = CpuMeter::new(transport.id().expect("pid"));
    let client = ().serve(transport).await.expect("initialize");
    let request = || {
        let serde_json::Value::Object(arguments) = json!({"a": 1, "b": 2}) else {
            unreachable!()
        };
        let arguments: JsonObject = arguments;
        CallToolRequestParams::new("hello__add").with_arguments(arguments)
    };
    let run = |n: u64| {
        futures::stream::iter(0..n)
            .map(|_| client.call_tool(request()))
            .buffer_unordered(32)
            .for_each(|r| async move {
                assert_eq!(r.expect("call").is_error, Some(false));
            })
    };
    run(2000).await; // warm up
    let before = meter.total();
    let started = Instant::now();
    run(calls).await;
    let elapsed = started.elapsed();
    let cpu = meter.total() - before;
    let _ = client.cancel().await;
    (calls as f64 / elapsed.as_secs_f64(), cpu / calls as u32)
}

fn bench_load(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        println!(
            "-- load: {CLIENTS} HTTP clients, {SECONDS} s each, loopback, 2026-07-28 stateless --"
        );
        let (_h, server, key) = http_host(true).await;
        let _ = load(&server, &key, CLIENTS, 1).await; // warm up
        let with_audit = load(&server, &key, CLIENTS, SECONDS).await;
        report("http, API key, audit on", &with_audit);
        server.stop().await.expect("stop");
        let (_h, server, key) = http_host(false).await;
        let _ = load(&server, &key, CLIENTS, 1).await;
        let without = load(&server, &key, CLIENTS, SECONDS).await;
        report("http, API key, audit off", &without);
        server.stop().await.expect("stop");
        let (per_s, cpu) = stdio_reference(20_000).await;
        println!(
            "{:<34} {per_s:>9.0} calls/s  server CPU {:>6.1} us/call",
            "stdio, 32 in flight (reference)",
            cpu.as_secs_f64() * 1e6
        );
        let http_cpu = with_audit.cpu.as_secs_f64() / with_audit.calls.max(1) as f64;
        println!(
            "http/stdio server CPU per call: {:.2}x (target <= 2x)",
            http_cpu / cpu.as_secs_f64()
        );
    });
}

fn bench_edge(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ClientStore::new(dir.path());
    let key = store
        .add(NewClient {
            name: "bench".into(),
            agent: "bench".into(),
            scopes: vec![Scope::Tools],
            zone: Zone::External,
            limits: None,
        })
        .expect("add");
    // A JWKS with one Ed25519 key, and a token it signed.
    let pair = libp2p::identity::ed25519::Keypair::generate();
    let bytes = pair.to_bytes();
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&bytes[..32]);
    use base64::Engine;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public().to_bytes());
    let jwks = dir.path().join("jwks.json");
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k", "alg": "EdDSA"});
    std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).expect("jwks");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("k".into());
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
        + 3600;
    let token = jsonwebtoken::encode(
        &header,
        &json!({"iss": "https://auth.test", "aud": "http://127.0.0.1:1/mcp", "sub": "bench",
            "scope": "tools", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_ed_der(&der),
    )
    .expect("sign");
    let config = HttpConfig {
        oauth: Some(OAuthConfig {
            issuer: "https://auth.test".into(),
            jwks_file: jwks,
            audience: None,
            zone: Zone::External,
            agent_claim: "sub".into(),
        }),
        ..HttpConfig::default()
    };
    let auth = Authenticator::new(&config, dir.path(), "http://127.0.0.1:1/mcp").expect("auth");
    let headers = |credential: &str| {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {credential}")).expect("header"),
        );
        h
    };
    let (with_key, with_token) = (headers(&key), headers(&token));
    assert!(auth.authenticate(&with_key).is_ok());
    assert!(auth.authenticate(&with_token).is_ok());
    let mut group = c.benchmark_group("auth");
    group.bench_function("api_key", |b| b.iter(|| auth.authenticate(&with_key)));
    group.bench_function("jwt_eddsa", |b| b.iter(|| auth.authenticate(&with_token)));
    group.finish();

    let audit_dir = tempfile::tempdir().expect("tempdir");
    let log = rt
        .block_on(async { AuditLog::open(audit_dir.path().to_owned(), 1) })
        .expect("audit");
    let record = AuditRecord {
        time_ms: 1,
        client: Some("bench".into()),
        agent: Some("bench".into()),
        remote: Some("127.0.0.1:1".into()),
        method: "tools/call".into(),
        target: Some("hello__add".into()),
        outcome: "ok".into(),
        detail: None,
        latency_us: 30,
        bytes_in: 13,
        bytes_out: 80,
    };
    c.bench_function("audit/record", |b| {
        b.to_async(rt).iter(|| log.record(record.clone()));
    });
    rt.block_on(log.flush());
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wants("load") {
        bench_load(&rt);
    }
    if wants("auth") || wants("audit") {
        let mut c = Criterion::default().configure_from_args();
        bench_edge(&mut c, &rt);
        c.final_summary();
    }
}
