//! MCP over Streamable HTTP, driven against the real binary by real
//! clients: rmcp's Streamable HTTP client, and raw HTTP (reqwest) for the
//! requests no well-behaved client sends. Authentication (API keys made
//! with `toolmesh client`, JWTs signed here against a JWKS file), identity,
//! limits, the audit log and the edge's defences.

use std::time::{Duration, Instant, SystemTime};

use rmcp::model::{CallToolRequestParams, JsonObject, MetaObject, RequestMetaObject};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use toolmesh_test_support::http::{HttpHost, add_client};
use toolmesh_test_support::{TempHost, test_plugin};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

fn bin() -> &'static std::path::Path {
    std::path::Path::new(BIN)
}

fn object(v: Value) -> JsonObject {
    match v {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// A request's headers for session `session` on the 2025-11-25 protocol.
fn in_session(request: reqwest::RequestBuilder, session: &str) -> reqwest::RequestBuilder {
    request
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
}

/// The start of `text`, for assertion messages.
fn head(text: &str) -> String {
    text.chars().take(400).collect()
}

/// A raw JSON-RPC POST to `/mcp`.
fn post(host: &HttpHost, key: Option<&str>, body: Value) -> reqwest::RequestBuilder {
    let mut request = reqwest::Client::new()
        .post(host.url())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    request
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "1"}}})
}

/// The audit records of the host at `args`, as `toolmesh audit --json` prints them.
fn audit(args: &[String], extra: &[&str]) -> Vec<Value> {
    let out = std::process::Command::new(bin())
        .args(args)
        .arg("audit")
        .arg("--json")
        .args(extra)
        .output()
        .expect("toolmesh audit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// Waits until `check` holds for the audit log (records are written by a
/// background task, in batches).
async fn audit_until(args: &[String], what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let records = audit(args, &[]);
        if check(&records) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "the audit log never showed {what}: {records:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_agent_calls_tools_with_its_key_and_the_audit_shows_it() {
    let host = TempHost::new().unwrap();
    let args = host.args();
    let key = add_client(bin(), &args, "laptop", "alice", &[]).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();

    let client = server.connect((), Some(&key)).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "hello__greet"), "{tools:?}");
    let params =
        CallToolRequestParams::new("hello__greet").with_arguments(object(json!({"name": "HTTP"})));
    let result = client.call_tool(params).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(
        result.content[0].as_text().map(|t| t.text.as_str()),
        Some("Hello, HTTP!")
    );
    client.cancel().await.unwrap();

    let records = audit_until(&args, "the call", |r| {
        r.iter().any(|r| r["method"] == "tools/call")
    })
    .await;
    let call = records
        .iter()
        .find(|r| r["method"] == "tools/call")
        .unwrap();
    assert_eq!(call["client"], "laptop");
    assert_eq!(call["agent"], "alice");
    assert_eq!(call["target"], "hello__greet");
    assert_eq!(call["outcome"], "ok");
    assert!(call["bytes_out"].as_u64().unwrap() > 0);
    assert!(records.iter().any(|r| r["method"] == "tools/list"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn missing_malformed_unknown_and_revoked_keys_are_refused_and_audited() {
    let host = TempHost::new().unwrap();
    let args = host.args();
    let key = add_client(bin(), &args, "ci", "bot", &[]).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();

    let none = post(&server, None, initialize()).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let challenge = none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer resource_metadata=\"http://")
            && challenge.contains("/.well-known/oauth-protected-resource\""),
        "{challenge}"
    );
    let metadata: Value = reqwest::get(server.url_of("/.well-known/oauth-protected-resource"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], server.url());

    let malformed = reqwest::Client::new()
        .post(server.url())
        .header("authorization", "Basic Zm9vOmJhcg==")
        .body(initialize().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 401);
    let forged = post(
        &server,
        Some("tm_forged0000000000000000000000000000000000"),
        initialize(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(forged.status(), 401);
    assert!(forged.text().await.unwrap().contains("unknown API key"));

    // The key works, then is revoked while the host runs: the next request fails.
    let ok = post(&server, Some(&key), initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let revoked = std::process::Command::new(bin())
        .args(&args)
        .args(["client", "revoke", "ci"])
        .status()
        .unwrap();
    assert!(revoked.success());
    let after = post(&server, Some(&key), initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    assert!(after.text().await.unwrap().contains("revoked"));

    let records = audit_until(&args, "four refusals", |r| {
        r.iter().filter(|r| r["method"] == "auth").count() >= 4
    })
    .await;
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains(&key), "the audit log never holds a secret");
    assert!(
        records
            .iter()
            .any(|r| r["method"] == "auth" && r["client"] == "ci")
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_agent_cannot_claim_another_in_meta() {
    let host = TempHost::new().unwrap();
    let args = host.args();
    let key = add_client(bin(), &args, "laptop", "alice", &[]).unwrap();
    let admin = add_client(bin(), &args, "ops", "operator", &["--scope", "admin"]).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();

    let spoof = |agent: &str| {
        let meta = object(json!({"toolmesh/agent": agent}));
        let mut params = CallToolRequestParams::new("discovery__register")
            .with_arguments(object(json!({"id": agent, "capabilities": ["x"]})));
        params.meta = Some(RequestMetaObject(MetaObject(meta)));
        params
    };
    let alice = server.connect((), Some(&key)).await.unwrap();
    let refused = alice.call_tool(spoof("bob")).await.unwrap();
    assert_eq!(refused.is_error, Some(true));
    let text = refused.content[0].as_text().unwrap().text.clone();
    assert!(text.contains("authenticated as agent `alice`"), "{text}");
    // Without the spoof, the plugin itself refuses to register someone else.
    let other = CallToolRequestParams::new("discovery__register")
        .with_arguments(object(json!({"id": "bob", "capabilities": ["x"]})));
    let refused = alice.call_tool(other).await.unwrap();
    let text = refused.content[0].as_text().unwrap().text.clone();
    assert!(text.contains("may register only for itself"), "{text}");
    let own = CallToolRequestParams::new("discovery__register")
        .with_arguments(object(json!({"id": "alice", "capabilities": ["x"]})));
    assert_ne!(alice.call_tool(own).await.unwrap().is_error, Some(true));
    alice.cancel().await.unwrap();

    // An admin may act for others, and reads the audit log as a resource.
    let ops = server.connect((), Some(&admin)).await.unwrap();
    let for_bob = ops.call_tool(spoof("bob")).await.unwrap();
    assert_ne!(for_bob.is_error, Some(true), "{for_bob:?}");
    let listed = ops.list_all_resources().await.unwrap();
    assert!(
        listed.iter().any(|r| r.uri == "toolmesh://audit"),
        "{listed:?}"
    );
    let audit = ops
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "toolmesh://audit",
        ))
        .await
        .unwrap();
    let text = match &audit.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("not text: {other:?}"),
    };
    let records: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(
        records
            .iter()
            .any(|r| r["client"] == "laptop" && r["outcome"] == "error")
    );
    ops.cancel().await.unwrap();
    // Nobody else sees it.
    let alice = server.connect((), Some(&key)).await.unwrap();
    let listed = alice.list_all_resources().await.unwrap();
    assert!(!listed.iter().any(|r| r.uri == "toolmesh://audit"));
    alice.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn wrong_host_origin_oversized_bodies_junk_and_dead_sessions_get_clear_statuses() {
    let host = TempHost::new().unwrap();
    let args = host.args();
    let key = add_client(bin(), &args, "laptop", "alice", &[]).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();

    let rebinding = post(&server, Some(&key), initialize())
        .header("host", "evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(rebinding.status(), 403);
    let origin = post(&server, Some(&key), initialize())
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(origin.status(), 403);

    let huge = "x".repeat(5 * 1024 * 1024);
    let oversized = post(
        &server,
        Some(&key),
        json!({"jsonrpc": "2.0", "id": 1,
        "method": "initialize", "params": {"pad": huge}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(oversized.status(), 413);

    let junk = reqwest::Client::new()
        .post(server.url())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), 400);
    let answer: Value = junk.json().await.unwrap();
    assert_eq!(
        answer["error"]["code"], -32700,
        "JSON-RPC's parse error: {answer}"
    );
    assert_eq!(answer["id"], Value::Null);

    let dead = post(
        &server,
        Some(&key),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .header("mcp-session-id", "no-such-session")
    .header("mcp-protocol-version", "2025-11-25")
    .send()
    .await
    .unwrap();
    assert_eq!(dead.status(), 404);

    // The host still serves.
    let client = server.connect((), Some(&key)).await.unwrap();
    assert!(!client.list_all_tools().await.unwrap().is_empty());
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_belongs_to_the_client_that_opened_it() {
    let host = TempHost::new().unwrap();
    let args = host.args();
    let alice = add_client(bin(), &args, "a", "alice", &[]).unwrap();
    let mallory = add_client(bin(), &args, "m", "mallory", &[]).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();

    let opened = post(&server, Some(&alice), initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = opened.text().await;
    let initialized = in_session(
        post(
            &server,
            Some(&alice),
            json!({"jsonrpc": "2.0",
        "method": "notifications/initialized"}),
        ),
        &session,
    )
    .send()
    .await
    .unwrap();
    assert!(initialized.status().is_success());
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let stolen = in_session(post(&server, Some(&mallory), list.clone()), &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        stolen.contains("belongs to another client"),
        "{}",
        head(&stolen)
    );
    let own = in_session(post(&server, Some(&alice), list), &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(own.contains("hello__greet"), "{}", head(&own));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_stateless_era_answers_server_discover() {
    let host = TempHost::new().unwrap();
    let args = host.args();
    let key = add_client(bin(), &args, "a", "alice", &[]).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let discover = post(
        &server,
        Some(&key),
        json!({"jsonrpc": "2.0", "id": 1,
        "method": "server/discover", "params": {"_meta": meta}}),
    )
    .header("mcp-protocol-version", "2026-07-28")
    .header("mcp-method", "server/discover")
    .send()
    .await
    .unwrap();
    assert_eq!(discover.status(), 200);
    let body = discover.text().await.unwrap();
    assert!(body.contains("supportedVersions"), "{body}");
    let call = post(
        &server,
        Some(&key),
        json!({"jsonrpc": "2.0", "id": 2,
        "method": "tools/call", "params": {"name": "hello__greet",
        "arguments": {"name": "stateless"}, "_meta": meta}}),
    )
    .header("mcp-protocol-version", "2026-07-28")
    .header("mcp-method", "tools/call")
    .header("mcp-name", "hello__greet")
    .send()
    .await
    .unwrap();
    let body = call.text().await.unwrap();
    assert!(body.contains("Hello, stateless!"), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn serving_beyond_loopback_without_authentication_is_refused() {
    let host = TempHost::new().unwrap();
    let args = host.args_with_config("[http]\nauth = \"none\"\n").unwrap();
    let out = std::process::Command::new(bin())
        .args(&args)
        .args(["serve", "--http", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without authentication"), "{stderr}");
}

#[tokio::test]
async fn idle_connections_and_trickling_clients_cannot_hold_the_host() {
    let host = TempHost::new().unwrap();
    let args = host
        .args_with_config(
            "[http]\nheader_timeout_ms = 2000\nbody_timeout_ms = 2000\nmax_connections = 1200\n",
        )
        .unwrap();
    let key = add_client(bin(), &args, "a", "alice", &[]).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();

    // 1,000 connections opened and left idle.
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // A client that sends its headers one byte a second.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        let request = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        let started = Instant::now();
        for byte in request {
            if slow.write_all(&[*byte]).await.is_err() {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        started.elapsed()
    });
    // Meanwhile a real client is served.
    let started = Instant::now();
    let client = server.connect((), Some(&key)).await.unwrap();
    let params =
        CallToolRequestParams::new("hello__greet").with_arguments(object(json!({"name": "busy"})));
    assert_ne!(client.call_tool(params).await.unwrap().is_error, Some(true));
    assert!(started.elapsed() < Duration::from_secs(10));
    client.cancel().await.unwrap();
    // The idle ones are closed by the server once the header timeout passes.
    let deadline = Instant::now() + Duration::from_secs(30);
    for mut conn in idle {
        let mut buf = [0u8; 16];
        let left = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(left, conn.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "an idle connection stayed open"
        );
    }
    let held = trickle.await.unwrap();
    assert!(
        held < Duration::from_secs(15),
        "the trickling client held on for {held:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_flooding_client_gets_429_and_cannot_starve_another() {
    let host = TempHost::new().unwrap();
    host.add_plugin(&test_plugin("hostile"), "hostile").unwrap();
    let args = host.args();
    let flood = add_client(
        bin(),
        &args,
        "flood",
        "f",
        &["--rate", "1", "--burst", "20"],
    )
    .unwrap();
    let calm = add_client(bin(), &args, "calm", "c", &[]).unwrap();
    let narrow = add_client(bin(), &args, "narrow", "n", &["--in-flight", "1"]).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();

    let mut flooding = Vec::new();
    for _ in 0..200 {
        flooding.push(tokio::spawn(
            post(&server, Some(&flood), initialize()).send(),
        ));
    }
    let calm_client = server.connect((), Some(&calm)).await.unwrap();
    for _ in 0..20 {
        let params = CallToolRequestParams::new("hello__greet")
            .with_arguments(object(json!({"name": "calm"})));
        assert_ne!(
            calm_client.call_tool(params).await.unwrap().is_error,
            Some(true)
        );
    }
    calm_client.cancel().await.unwrap();
    let mut limited = 0;
    for request in flooding {
        let response = request.await.unwrap().unwrap();
        if response.status() == 429 {
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
            limited += 1;
        }
    }
    assert!(
        limited >= 150,
        "only {limited} of 200 flooding requests were limited"
    );

    // Calls in flight: while a client capped at one call has one running,
    // its next is refused with a tool error naming the limit.
    let narrow_client = std::sync::Arc::new(server.connect((), Some(&narrow)).await.unwrap());
    let long = {
        let c = narrow_client.clone();
        tokio::spawn(async move {
            let params = CallToolRequestParams::new("hostile__sleep")
                .with_arguments(object(json!({"ms": 1500})));
            c.call_tool(params).await
        })
    };
    // Whichever of the two arrives second is refused: on a loaded machine
    // the spawned long call may reach the host after a short one.
    let mut refused = None;
    while !long.is_finished() {
        let params = CallToolRequestParams::new("hello__greet")
            .with_arguments(object(json!({"name": "second"})));
        let result = narrow_client.call_tool(params).await.unwrap();
        if result.is_error == Some(true) {
            refused = result.content[0].as_text().map(|t| t.text.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let long = long.await.unwrap().unwrap();
    if long.is_error == Some(true) {
        refused = long.content[0].as_text().map(|t| t.text.clone());
    }
    let refused = refused.expect("no call was refused while one was in flight");
    assert!(
        refused.contains("1 tool calls running (its limit)"),
        "{refused}"
    );
    server.stop().await.unwrap();
}

/// A PKCS#8 v1 DER wrapping of an Ed25519 seed (RFC 8410).
fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

struct Signer {
    key: jsonwebtoken::EncodingKey,
    kid: String,
}

impl Signer {
    /// A fresh Ed25519 key, and its JWK.
    fn new(kid: &str) -> (Self, Value) {
        let pair = libp2p::identity::ed25519::Keypair::generate();
        let bytes = pair.to_bytes();
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[..32]);
        let public = pair.public().to_bytes();
        use base64::Engine;
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public);
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
        let key = jsonwebtoken::EncodingKey::from_ed_der(&ed25519_pkcs8(&seed));
        (
            Self {
                key,
                kid: kid.into(),
            },
            jwk,
        )
    }

    fn sign(&self, claims: Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn jwt_access_tokens_are_checked_against_the_jwks() {
    let host = TempHost::new().unwrap();
    let dir = host.data_dir().parent().unwrap().to_owned();
    let (signer, jwk) = Signer::new("k1");
    let (stranger, _) = Signer::new("k1");
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).unwrap();
    // The audience is this server's resource URL; fixed here, since the
    // port is chosen at start.
    let resource = "https://tools.example.test/mcp";
    let args = host.args_with_config(&format!(
                "[http]\nresource_url = \"{resource}\"\n[http.oauth]\nissuer = \"https://auth.example.test\"\njwks_file = \"{}\"\nzone = \"trusted\"\n",
                jwks.display()
            )).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();
    let claims = |overrides: Value| {
        let mut c = json!({"iss": "https://auth.example.test", "aud": resource, "sub": "carol",
            "client_id": "carol-app", "scope": "tools", "exp": now_s() + 600, "nbf": now_s() - 10});
        for (k, v) in overrides.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };

    let good = signer.sign(claims(json!({})));
    let client = server.connect((), Some(&good)).await.unwrap();
    let params =
        CallToolRequestParams::new("hello__greet").with_arguments(object(json!({"name": "carol"})));
    assert_ne!(client.call_tool(params).await.unwrap().is_error, Some(true));
    client.cancel().await.unwrap();

    let cases = [
        (
            "expired",
            signer.sign(claims(json!({"exp": now_s() - 3600}))),
            "xpired",
        ),
        (
            "not yet valid",
            signer.sign(claims(json!({"nbf": now_s() + 3600}))),
            "mmature",
        ),
        (
            "another audience",
            signer.sign(claims(json!({"aud": "https://other.test/mcp"}))),
            "udience",
        ),
        (
            "another issuer",
            signer.sign(claims(json!({"iss": "https://evil.test"}))),
            "ssuer",
        ),
        (
            "wrongly signed",
            stranger.sign(claims(json!({}))),
            "ignature",
        ),
        ("malformed", "abc.def".to_owned(), "malformed"),
    ];
    for (what, token, says) in cases {
        let response = post(&server, Some(&token), initialize())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{what}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.contains("invalid_token") || what == "malformed",
            "{what}: {challenge}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains(says), "{what}: {body}");
    }
    let no_scope = signer.sign(claims(json!({"scope": "profile"})));
    let response = post(&server, Some(&no_scope), initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("scope=\"tools\""),
        "{challenge}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn idle_sessions_expire() {
    let host = TempHost::new().unwrap();
    let args = host
        .args_with_config("[http]\nsession_idle_s = 1\n")
        .unwrap();
    let key = add_client(bin(), &args, "a", "alice", &[]).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();
    let opened = post(&server, Some(&key), initialize())
        .send()
        .await
        .unwrap();
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = opened.text().await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    // Left idle, the session goes; a request naming it then gets 404. (Each
    // request keeps a session alive, so look only every 3 s, well past the
    // 1 s idle limit.)
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let status = in_session(post(&server, Some(&key), list.clone()), &session)
            .send()
            .await
            .unwrap()
            .status();
        if status == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the idle session never expired ({status})"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn https_with_pem_files() {
    let host = TempHost::new().unwrap();
    let dir = host.data_dir().parent().unwrap().to_owned();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let args = host
        .args_with_config(&format!(
            "[http]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert_path.display(),
            key_path.display()
        ))
        .unwrap();
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args(&args)
        .args(["serve", "--http", "127.0.0.1:0"])
        .env("TOOLMESH_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        let n = tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line)
            .await
            .unwrap();
        assert!(n > 0, "toolmesh exited before listening");
        if line.contains("serving MCP over HTTP") {
            assert!(line.contains("tls=true"), "{line}");
            let at = line.find("addr=").unwrap() + 5;
            break line[at..].split_whitespace().next().unwrap().to_owned();
        }
    };
    tokio::spawn(async move {
        while tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut String::new())
            .await
            .unwrap_or(0)
            > 0
        {}
    });

    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::get(format!("http://{addr}/healthz")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    child.kill().await.unwrap();
}

/// One call slot: if cancelling over HTTP did not stop the spinning guest,
/// the slot would stay taken and the next call would wait out the deadline.
#[tokio::test]
async fn cancelling_a_call_over_http_stops_the_running_guest() {
    let host = TempHost::new().unwrap();
    host.add_plugin(&test_plugin("hostile"), "hostile").unwrap();
    let args = host.args_with_config("[runtime]\nmax_concurrent_calls = 1\n[levels.untrusted]\ntimeout_ms = 60000\nfuel = 1000000000000\n").unwrap();
    let key = add_client(bin(), &args, "a", "alice", &[]).unwrap();
    let server = HttpHost::start(bin(), &args, &[]).await.unwrap();
    let client = server.connect((), Some(&key)).await.unwrap();
    let spin = client.call_tool(CallToolRequestParams::new("hostile__spin"));
    // Dropping the request future makes rmcp send notifications/cancelled.
    let outcome = tokio::time::timeout(Duration::from_millis(500), spin).await;
    assert!(outcome.is_err(), "spin cannot finish on its own");
    let started = Instant::now();
    let params =
        CallToolRequestParams::new("hello__greet").with_arguments(object(json!({"name": "next"})));
    let next = tokio::time::timeout(Duration::from_secs(20), client.call_tool(params))
        .await
        .expect("the slot was freed")
        .unwrap();
    assert_ne!(next.is_error, Some(true), "{next:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}
