//! The real `toolmesh` binary, driven over stdio by rmcp's MCP client: list
//! tools, call them, send bad arguments and unknown names, cancel a running
//! guest, hit the deadline, and check the host answers after each.

use std::path::Path;
use std::time::{Duration, Instant};

use rmcp::ServiceError;
use rmcp::model::ErrorCode;
use serde_json::json;
use toolmesh_test_support::{TempHost, call, connect, first_text, test_plugin};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

/// A host with the bundled plugins and the hostile test plugin.
async fn start(config: Option<&str>) -> anyhow::Result<(TempHost, toolmesh_test_support::Client)> {
    let host = TempHost::new()?;
    host.add_plugin(&test_plugin("hostile"), "hostile")?;
    let mut args = host.args();
    if let Some(config) = config {
        let path = host.data_dir().with_file_name("toolmesh.toml");
        std::fs::write(&path, config)?;
        args.extend(["--config".into(), path.display().to_string()]);
    }
    let client = connect(Path::new(BIN), &args).await?;
    Ok((host, client))
}

#[tokio::test]
async fn lists_namespaced_tools_with_schemas_and_hints() -> anyhow::Result<()> {
    let (_host, client) = start(None).await?;
    let info = client.peer_info().expect("initialized");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("toolmesh")
    );

    let tools = client.list_all_tools().await?;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "hello__greet",
        "hello__add",
        "hostile__spin",
        "hostile__panic",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for name in &names {
        assert!(
            name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{name} is not a portable tool name"
        );
    }
    let add = tools.iter().find(|t| t.name == "hello__add").unwrap();
    assert_eq!(add.input_schema["type"], "object");
    assert_eq!(add.input_schema["properties"]["a"]["type"], "number");
    let output = add
        .output_schema
        .as_ref()
        .expect("add declares an output schema");
    assert_eq!(output["properties"]["sum"]["type"], "number");
    let hints = add.annotations.as_ref().expect("hints");
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.idempotent_hint, Some(true));
    let greet = tools.iter().find(|t| t.name == "hello__greet").unwrap();
    assert!(greet.output_schema.is_none());
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn calls_return_text_and_structured_content() -> anyhow::Result<()> {
    let (_host, client) = start(None).await?;
    let greeting = call(&client, "hello__greet", json!({"name": "Ada"})).await?;
    assert_eq!(greeting.is_error, Some(false));
    assert_eq!(first_text(&greeting), "Hello, Ada!");
    assert!(greeting.structured_content.is_none());

    let sum = call(&client, "hello__add", json!({"a": 1.5, "b": 2})).await?;
    assert_eq!(sum.is_error, Some(false));
    assert_eq!(sum.structured_content, Some(json!({"sum": 3.5})));
    // Clients that ignore structured content read the same JSON as text.
    let text: serde_json::Value = serde_json::from_str(first_text(&sum))?;
    assert_eq!(text, json!({"sum": 3.5}));
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn bad_arguments_are_error_results_and_the_host_keeps_serving() -> anyhow::Result<()> {
    let (_host, client) = start(None).await?;

    let wrong_type = call(&client, "hello__add", json!({"a": "one", "b": 2})).await?;
    assert_eq!(wrong_type.is_error, Some(true));
    let text = first_text(&wrong_type);
    assert!(
        text.contains("invalid arguments for `hello__add`"),
        "{text}"
    );
    assert!(text.contains("at `/a`"), "{text}");

    let missing = call(&client, "hello__greet", json!({})).await?;
    assert_eq!(missing.is_error, Some(true));
    assert!(
        first_text(&missing).contains("\"name\" is a required property"),
        "{}",
        first_text(&missing)
    );

    let extra = call(&client, "hello__greet", json!({"name": "x", "admin": true})).await?;
    assert_eq!(extra.is_error, Some(true), "{}", first_text(&extra));

    // The guest's own refusal (a finite sum is required) is a tool error too.
    let overflow = call(&client, "hello__add", json!({"a": 1e308, "b": 1e308})).await?;
    assert_eq!(overflow.is_error, Some(true));
    assert!(first_text(&overflow).starts_with("invalid arguments: the sum is not a finite number"));

    let denied = call(&client, "hostile__deny", json!({})).await?;
    assert_eq!(first_text(&denied), "denied: this tool refuses everyone");

    match call(&client, "nope__missing", json!({})).await {
        Err(e) => match e.downcast_ref::<ServiceError>() {
            Some(ServiceError::McpError(error)) => {
                assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
                assert!(
                    error.message.contains("unknown tool `nope__missing`"),
                    "{}",
                    error.message
                );
            }
            other => panic!("expected an MCP error, got {other:?}"),
        },
        Ok(result) => panic!("an unknown tool must be a protocol error, got {result:?}"),
    }

    let after = call(&client, "hello__greet", json!({"name": "again"})).await?;
    assert_eq!(first_text(&after), "Hello, again!");
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn a_panicking_guest_is_an_error_result_with_its_message() -> anyhow::Result<()> {
    let (_host, client) = start(None).await?;
    let crashed = call(&client, "hostile__panic", json!({"message": "boom-1234"})).await?;
    assert_eq!(crashed.is_error, Some(true));
    let text = first_text(&crashed);
    assert!(text.starts_with("the plugin crashed"), "{text}");
    assert!(
        text.contains("boom-1234"),
        "the panic message is shown: {text}"
    );
    let after = call(&client, "hello__add", json!({"a": 1, "b": 1})).await?;
    assert_eq!(after.structured_content, Some(json!({"sum": 2.0})));
    client.cancel().await?;
    Ok(())
}

/// One call slot: if cancelling did not stop the spinning guest, the slot
/// would stay taken and the next call would wait out the 60 s deadline.
#[tokio::test]
async fn cancelling_a_call_stops_the_running_guest() -> anyhow::Result<()> {
    let config = "[runtime]\nmax_concurrent_calls = 1\n[levels.untrusted]\ntimeout_ms = 60000\nfuel = 1000000000000\n";
    let (_host, client) = start(Some(config)).await?;
    let spin = call(&client, "hostile__spin", json!({}));
    // Dropping the request future makes rmcp send notifications/cancelled.
    let outcome = tokio::time::timeout(Duration::from_millis(300), spin).await;
    assert!(outcome.is_err(), "spin cannot finish on its own");

    let started = Instant::now();
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        call(&client, "hello__greet", json!({"name": "next"})),
    )
    .await??;
    assert_eq!(first_text(&next), "Hello, next!");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn the_deadline_stops_a_guest_that_never_returns() -> anyhow::Result<()> {
    let config = "[levels.untrusted]\ntimeout_ms = 300\nfuel = 1000000000000\n";
    let (_host, client) = start(Some(config)).await?;
    // Sleeping in a host call uses no fuel: only the deadline can end it.
    for (tool, args) in [
        ("hostile__sleep", json!({"ms": 60000})),
        ("hostile__spin", json!({})),
    ] {
        let started = Instant::now();
        let result = call(&client, tool, args).await?;
        let elapsed = started.elapsed();
        assert_eq!(result.is_error, Some(true));
        assert_eq!(
            first_text(&result),
            "deadline exceeded: the call ran longer than 300 ms"
        );
        assert!(elapsed >= Duration::from_millis(300), "{tool}: {elapsed:?}");
        // The deadline may overrun by at most two 10 ms epoch ticks, plus the
        // round trip; allow generous slack for a loaded CI machine.
        assert!(elapsed < Duration::from_secs(2), "{tool}: {elapsed:?}");
    }
    let after = call(&client, "hello__greet", json!({"name": "x"})).await?;
    assert_eq!(after.is_error, Some(false));
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn quotas_end_the_call_with_an_error_naming_the_quota() -> anyhow::Result<()> {
    let config = "[levels.untrusted]\nfuel = 50000000\nmemory_bytes = 33554432\nmax_output_bytes = 1048576\n";
    let (_host, client) = start(Some(config)).await?;

    let spin = call(&client, "hostile__spin", json!({})).await?;
    assert_eq!(
        first_text(&spin),
        "fuel exhausted: 50000000 units (the `untrusted` level's limit per call)"
    );

    let bomb = call(&client, "hostile__alloc", json!({"mib": 256})).await?;
    let text = first_text(&bomb);
    assert_eq!(bomb.is_error, Some(true));
    assert!(
        text.starts_with("memory limit exceeded: the plugin asked for"),
        "{text}"
    );
    assert!(
        text.ends_with("the `untrusted` level allows 33554432"),
        "{text}"
    );
    // Within the quota the same tool works.
    let small = call(&client, "hostile__alloc", json!({"mib": 4})).await?;
    assert_eq!(first_text(&small), "allocated 4 MiB");

    let hoard = call(&client, "hostile__handles", json!({"count": 1000})).await?;
    assert_eq!(
        first_text(&hoard),
        "handle limit exceeded: the `untrusted` level allows 64 open handles"
    );
    let few = call(&client, "hostile__handles", json!({"count": 10})).await?;
    assert_eq!(first_text(&few), "holding 10 handles");

    let big = call(&client, "hostile__output", json!({"mib": 2})).await?;
    assert_eq!(
        first_text(&big),
        "output too large: 2097168 bytes; the `untrusted` level allows 1048576"
    );

    let after = call(&client, "hello__add", json!({"a": 2, "b": 3})).await?;
    assert_eq!(after.structured_content, Some(json!({"sum": 5.0})));
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn concurrent_calls_all_complete() -> anyhow::Result<()> {
    let (_host, client) = start(None).await?;
    let calls = (0..64).map(|i| {
        let client = &client;
        async move { call(client, "hello__add", json!({"a": i, "b": 1})).await }
    });
    let results = futures::future::try_join_all(calls).await?;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(
            result.structured_content,
            Some(json!({"sum": i as f64 + 1.0}))
        );
    }
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn usage_is_recorded_per_call_and_served_as_a_resource() -> anyhow::Result<()> {
    let config = "[levels.untrusted]\nfuel = 50000000\n";
    let (_host, client) = start(Some(config)).await?;
    call(&client, "hello__add", json!({"a": 1, "b": 2})).await?;
    call(&client, "hello__add", json!({"a": 3, "b": 4})).await?;
    call(&client, "hello__add", json!({"a": "bad"})).await?;
    call(&client, "hostile__spin", json!({})).await?;
    call(&client, "hostile__panic", json!({"message": "x"})).await?;

    let resources = client.list_all_resources().await?;
    assert!(
        resources.iter().any(|r| r.uri == "toolmesh://usage"),
        "{resources:?}"
    );
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "toolmesh://usage",
        ))
        .await?;
    let rmcp::model::ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("usage is JSON text: {read:?}");
    };
    let usage: serde_json::Value = serde_json::from_str(text)?;
    assert!(
        usage["process"]["rss_bytes"].as_u64().unwrap_or(0) > 1 << 20,
        "{usage}"
    );

    let plugin = |name: &str| {
        usage["plugins"]
            .as_array()
            .and_then(|plugins| plugins.iter().find(|p| p["plugin"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing from {usage}"))
    };
    let add = &plugin("hello")["tools"]["hello__add"];
    assert_eq!(add["calls"], 3, "{add}");
    assert_eq!(add["errors"], 1, "{add}");
    assert_eq!(
        add["outcomes"],
        json!([["ok", 2], ["invalid_arguments", 1]])
    );
    assert!(add["fuel_total"].as_u64().unwrap() > 0, "{add}");
    assert!(
        add["peak_memory_bytes"].as_u64().unwrap() >= 65_536,
        "{add}"
    );
    assert!(add["latency_us"]["p50"].as_u64().unwrap() > 0, "{add}");
    assert!(
        add["bytes_out"].as_u64().unwrap() >= 2 * "{\"sum\":3.0}".len() as u64,
        "{add}"
    );

    let hostile = plugin("hostile");
    assert_eq!(hostile["level"], "untrusted");
    let spin = &hostile["tools"]["hostile__spin"];
    assert_eq!(spin["outcomes"], json!([["quota", 1]]), "{spin}");
    assert_eq!(spin["fuel_total"], 50_000_000, "{spin}");
    assert_eq!(
        hostile["tools"]["hostile__panic"]["outcomes"],
        json!([["trap", 1]])
    );

    let missing = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "toolmesh://nope",
        ))
        .await;
    assert!(missing.is_err(), "an unknown resource is an error");
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn without_fuel_metering_the_deadline_still_holds() -> anyhow::Result<()> {
    let config =
        "[runtime]\nfuel_metering = false\n[levels.untrusted]\nfuel = 50000000\ntimeout_ms = 300\n";
    let (_host, client) = start(Some(config)).await?;
    let spin = call(&client, "hostile__spin", json!({})).await?;
    assert_eq!(
        first_text(&spin),
        "deadline exceeded: the call ran longer than 300 ms"
    );
    let burn = call(&client, "hostile__burn", json!({"rounds": 1000})).await?;
    assert_eq!(burn.is_error, Some(false), "{}", first_text(&burn));
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn kv_is_atomic_isolated_durable_and_quota_limited() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    host.add_plugin(&test_plugin("hostile"), "hostile")?;
    // A second install of the same component under another name.
    let other = host.add_plugin(&test_plugin("hostile"), "hostile-b")?;
    let manifest = std::fs::read_to_string(other.join("plugin.toml"))?;
    std::fs::write(
        other.join("plugin.toml"),
        manifest.replacen("name = \"hostile\"", "name = \"hostile-b\"", 1),
    )?;
    let config = host.data_dir().with_file_name("toolmesh.toml");
    std::fs::write(&config, "[levels.untrusted]\nkv_bytes = 262144\n")?;
    let mut args = host.args();
    args.extend(["--config".into(), config.display().to_string()]);

    let client = connect(Path::new(BIN), &args).await?;
    // 16 clients' worth of concurrent increments add up exactly.
    let increments = (0..16).map(|_| call(&client, "hostile__kv_incr", json!({"key": "counter"})));
    for result in futures::future::try_join_all(increments).await? {
        assert_eq!(result.is_error, Some(false), "{}", first_text(&result));
    }
    let counter = call(&client, "hostile__kv_get", json!({"key": "counter"})).await?;
    assert_eq!(first_text(&counter), "16");
    // The other plugin has its own store.
    let elsewhere = call(&client, "hostile-b__kv_get", json!({"key": "counter"})).await?;
    assert_eq!(first_text(&elsewhere), "(unset)");

    let fill = call(&client, "hostile-b__kv_fill", json!({"mib": 1})).await?;
    assert_eq!(fill.is_error, Some(true));
    let text = first_text(&fill);
    assert!(text.starts_with("denied: kv quota exceeded"), "{text}");
    assert!(text.ends_with("allows 262144"), "{text}");
    // Filling one plugin's quota leaves the other's writes alone.
    let more = call(&client, "hostile__kv_incr", json!({"key": "counter"})).await?;
    assert_eq!(first_text(&more), "17");
    client.cancel().await?;

    // A restart keeps the data.
    let client = connect(Path::new(BIN), &args).await?;
    let counter = call(&client, "hostile__kv_get", json!({"key": "counter"})).await?;
    assert_eq!(first_text(&counter), "17");
    client.cancel().await?;
    Ok(())
}

/// `toolmesh stats` shows a running host's usage from another process, and
/// the final figures after it stops.
#[tokio::test]
async fn stats_reads_a_running_hosts_usage_from_the_data_dir() -> anyhow::Result<()> {
    let (host, client) = start(None).await?;
    let stats = || -> anyhow::Result<(bool, String)> {
        let output = std::process::Command::new(BIN)
            .args(host.args())
            .args(["stats"])
            .output()?;
        Ok((
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ))
    };
    let fresh = TempHost::new()?;
    let output = std::process::Command::new(BIN)
        .args(fresh.args())
        .args(["stats"])
        .output()?;
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && text.contains("no usage snapshot"),
        "{text}"
    );

    for name in ["a", "b", "c"] {
        call(&client, "hello__greet", json!({ "name": name })).await?;
    }
    let greet_row = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("hello__greet"))
            .map(|l| l.split_whitespace().nth(2).unwrap_or("").to_owned())
    };
    // The snapshot is rewritten about once a second while calls happen.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (ok, text) = stats()?;
        if ok && greet_row(&text).as_deref() == Some("3") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot with 3 calls:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains("(running)"), "{text}");

    call(&client, "hello__greet", json!({"name": "d"})).await?;
    client.cancel().await?;
    // The host writes a last snapshot as it stops.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = stats()?;
        if text.contains("(not running)") {
            assert_eq!(greet_row(&text).as_deref(), Some("4"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "the host did not stop:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let json = std::process::Command::new(BIN)
        .args(host.args())
        .args(["stats", "--json"])
        .output()?;
    let snapshot: serde_json::Value = serde_json::from_slice(&json.stdout)?;
    assert!(snapshot["report"]["plugins"].is_array(), "{snapshot}");
    Ok(())
}
