//! The sandbox, from the outside: every hostile behaviour of the `hostile`
//! test plugin, run at the `untrusted` level against the real binary through
//! rmcp's MCP client, must end its call with the right error, within its
//! limit, and leave the host serving other plugins. Also: what a level
//! refuses at load, progress notifications, blobs, and isolation between two
//! plugins at different levels, including under concurrency.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rmcp::model::ReadResourceRequestParams;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};
use toolmesh_test_support::{
    ProgressLog, TempHost, call, connect_command, first_text, serve_command, test_plugin,
};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

/// The untrusted level, with its deadline shortened so the suite is quick
/// and with files and environment allowed, so that the confinement of what is
/// granted can be tested. Its kv quota is small (256 KiB) so that filling it
/// takes a few durable writes: on a slow disk sixteen fsyncs can outlast the
/// deadline, and this case is about the quota, not the clock.
const CONFIG: &str = r#"
[levels.untrusted]
timeout_ms = 400
fuel = 200000000
memory_bytes = 33554432
blob_bytes = 4194304
kv_bytes = 262144
capabilities = ["log", "kv", "blobs", "progress", "fs-read", "fs-write", "env"]

# The suite runs every hostile behaviour in a row, each ending in a quota or
# a trap: the breaker would rightly open after five. Breakers are tested in
# tests/operate.rs.
[levels.untrusted.breaker]
failures = 1000
"#;

const SECRET: &str = "the secret outside every preopen";

/// A host directory laid out for the file-system cases: a file inside the
/// read-only preopen, a secret outside it, and symlinks that point out.
struct Layout {
    host: TempHost,
    secret: PathBuf,
    config: PathBuf,
}

fn layout(config: &str) -> anyhow::Result<Layout> {
    let host = TempHost::new()?;
    host.add_plugin(&test_plugin("hostile"), "hostile")?;
    let own = host.data_dir().join("files/hostile/data");
    std::fs::create_dir_all(&own)?;
    std::fs::write(own.join("readme.txt"), "inside")?;
    let secret = host.data_dir().join("secret.txt");
    std::fs::write(&secret, SECRET)?;
    std::os::unix::fs::symlink(&secret, own.join("absolute-link"))?;
    std::os::unix::fs::symlink("../../../secret.txt", own.join("relative-link"))?;
    let config_path = host.data_dir().with_file_name("toolmesh.toml");
    std::fs::write(&config_path, config)?;
    Ok(Layout {
        host,
        secret,
        config: config_path,
    })
}

fn args(layout: &Layout) -> Vec<String> {
    let mut args = layout.host.args();
    args.extend(["--config".into(), layout.config.display().to_string()]);
    args
}

/// Starts the host with one granted and one secret environment variable.
async fn start<H: ClientHandler>(
    layout: &Layout,
    handler: H,
) -> anyhow::Result<rmcp::service::RunningService<RoleClient, H>> {
    let mut cmd = serve_command(Path::new(BIN), &args(layout));
    cmd.env("TOOLMESH_TEST_GRANTED", "granted value")
        .env("TOOLMESH_TEST_SECRET", SECRET);
    connect_command(handler, cmd).await
}

/// One hostile behaviour: the call, and what its error must say.
struct Case {
    tool: &'static str,
    arguments: Value,
    expect: Expect,
}

enum Expect {
    /// An error result whose text contains this.
    Error(&'static str),
    /// A successful result with exactly this text (a confinement that hides
    /// instead of refusing, like an environment variable not granted).
    Text(&'static str),
}

fn cases(secret: &Path, listening: std::net::SocketAddr) -> Vec<Case> {
    use Expect::*;
    let case = |tool, arguments, expect| Case {
        tool,
        arguments,
        expect,
    };
    vec![
        case(
            "hostile__spin",
            json!({}),
            Error("fuel exhausted: 200000000 units"),
        ),
        case(
            "hostile__sleep",
            json!({"ms": 60000}),
            Error("deadline exceeded: the call ran longer than 400 ms"),
        ),
        case(
            "hostile__alloc",
            json!({"mib": 1024}),
            Error("memory limit exceeded"),
        ),
        case(
            "hostile__recurse",
            json!({"depth": 100000000}),
            Error("the plugin crashed"),
        ),
        case(
            "hostile__handles",
            json!({"count": 100000}),
            Error("handle limit exceeded: the `untrusted` level allows 64 open handles"),
        ),
        case(
            "hostile__output",
            json!({"mib": 4}),
            Error("output too large: 4194320 bytes; the `untrusted` level allows 1048576"),
        ),
        case(
            "hostile__panic",
            json!({"message": "on purpose"}),
            Error("on purpose"),
        ),
        case(
            "hostile__read_file",
            json!({"path": "/data/../../../secret.txt"}),
            Error("cannot read /data/../../../secret.txt"),
        ),
        case(
            "hostile__read_file",
            json!({"path": secret.display().to_string()}),
            Error("cannot read /"),
        ),
        case(
            "hostile__read_file",
            json!({"path": "/data/absolute-link"}),
            Error("cannot read /data/absolute-link"),
        ),
        case(
            "hostile__read_file",
            json!({"path": "/data/relative-link"}),
            Error("cannot read /data/relative-link"),
        ),
        case(
            "hostile__env",
            json!({"name": "TOOLMESH_TEST_SECRET"}),
            Text("(unset)"),
        ),
        case(
            "hostile__write_file",
            json!({"path": "/data/planted.txt", "text": "x"}),
            Error("cannot write /data/planted.txt"),
        ),
        case(
            "hostile__connect",
            json!({"address": listening.to_string()}),
            Error("Permission denied"),
        ),
        case(
            "hostile__kv_fill",
            json!({"mib": 8}),
            Error("kv quota exceeded"),
        ),
        case(
            "hostile__blob_fill",
            json!({"mib": 8}),
            Error("blob quota exceeded"),
        ),
    ]
}

/// The number of hostile behaviours the suite tries (quoted in the README).
const HOSTILE_BEHAVIOURS: usize = 16;

#[tokio::test]
async fn every_hostile_behaviour_is_contained() -> anyhow::Result<()> {
    let layout = layout(CONFIG)?;
    let client = start(&layout, ()).await?;
    // A listener the plugin tries to reach: it must never see a connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let cases = cases(&layout.secret, listener.local_addr()?);
    assert_eq!(cases.len(), HOSTILE_BEHAVIOURS);
    for case in &cases {
        let started = Instant::now();
        let result = call(&client, case.tool, case.arguments.clone()).await?;
        let elapsed = started.elapsed();
        let text = first_text(&result);
        let what = format!("{} {}", case.tool, case.arguments);
        match case.expect {
            Expect::Error(expected) => {
                assert_eq!(result.is_error, Some(true), "{what}: {text}");
                assert!(text.contains(expected), "{what}: {text}");
            }
            Expect::Text(expected) => assert_eq!(text, expected, "{what}"),
        }
        assert!(!text.contains(SECRET), "{what} leaked the secret: {text}");
        // Nothing runs past the deadline (generous slack for the round trip
        // on a loaded machine; the host-side figure is checked below).
        assert!(elapsed < Duration::from_secs(3), "{what}: {elapsed:?}");
        // The next call, to another plugin, succeeds.
        let next = call(&client, "hello__greet", json!({"name": "next"})).await?;
        assert_eq!(first_text(&next), "Hello, next!", "after {what}");
    }
    assert!(
        !layout
            .host
            .data_dir()
            .join("files/hostile/data/planted.txt")
            .exists(),
        "a read-only preopen was written"
    );
    assert!(listener.accept().is_err(), "the plugin reached the network");

    // The host's own measure of the deadline: at most two 10 ms epoch ticks
    // past the limit (plus a little for the timer itself).
    let usage = read_usage(&client).await?;
    let hostile = usage["plugins"]
        .as_array()
        .and_then(|plugins| plugins.iter().find(|p| p["plugin"] == "hostile"))
        .cloned()
        .unwrap_or_default();
    let sleep = &hostile["tools"]["hostile__sleep"];
    let max_ms = sleep["latency_us"]["max"].as_u64().unwrap_or(u64::MAX) / 1000;
    assert!(
        (400..=425).contains(&max_ms),
        "deadline overran: {max_ms} ms ({sleep})"
    );
    client.cancel().await?;
    Ok(())
}

async fn read_usage<H: ClientHandler>(
    client: &rmcp::service::RunningService<RoleClient, H>,
) -> anyhow::Result<Value> {
    let read = client
        .read_resource(ReadResourceRequestParams::new("toolmesh://usage"))
        .await?;
    let rmcp::model::ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        anyhow::bail!("usage is not text");
    };
    Ok(serde_json::from_str(text)?)
}

#[tokio::test]
async fn granted_files_and_environment_work_and_nothing_else_is_visible() -> anyhow::Result<()> {
    let layout = layout(CONFIG)?;
    let client = start(&layout, ()).await?;
    let read = call(
        &client,
        "hostile__read_file",
        json!({"path": "/data/readme.txt"}),
    )
    .await?;
    assert_eq!(first_text(&read), "inside");
    let write = call(
        &client,
        "hostile__write_file",
        json!({"path": "/scratch/out.txt", "text": "kept"}),
    )
    .await?;
    assert_eq!(first_text(&write), "wrote 4 bytes");
    let on_host = layout.host.data_dir().join("files/hostile/scratch/out.txt");
    assert_eq!(std::fs::read_to_string(on_host)?, "kept");
    let env = call(
        &client,
        "hostile__env",
        json!({"name": "TOOLMESH_TEST_GRANTED"}),
    )
    .await?;
    assert_eq!(first_text(&env), "granted value");
    let count = call(&client, "hostile__env_count", json!({})).await?;
    assert_eq!(
        first_text(&count),
        "1",
        "only the granted variable is visible"
    );
    for path in [
        "/",
        "/etc/passwd",
        "/proc/self/environ",
        "/scratch/../data/readme.txt",
    ] {
        let result = call(&client, "hostile__read_file", json!({ "path": path })).await?;
        assert_eq!(
            result.is_error,
            Some(true),
            "{path}: {}",
            first_text(&result)
        );
    }
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn the_level_decides_what_is_granted_and_says_what_it_refused() -> anyhow::Result<()> {
    // The built-in untrusted level: no writable files, no environment.
    let layout = layout("")?;
    let output = std::process::Command::new(BIN)
        .args(args(&layout))
        .args(["plugin", "list"])
        .env("TOOLMESH_TEST_GRANTED", "granted value")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for expected in [
        "granted: log, kv, blobs, progress, elicitation, fs /data = ",
        "not granted: capability `sampling`: the `untrusted` level does not allow `sampling`",
        "not granted: fs `/scratch`: the `untrusted` level does not allow `fs-write`",
        "not granted: env `TOOLMESH_TEST_GRANTED`: the `untrusted` level does not allow `env`",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing from:\n{stdout}"
        );
    }

    let client = start(&layout, ()).await?;
    let env = call(
        &client,
        "hostile__env",
        json!({"name": "TOOLMESH_TEST_GRANTED"}),
    )
    .await?;
    assert_eq!(first_text(&env), "(unset)");
    let write = call(
        &client,
        "hostile__write_file",
        json!({"path": "/scratch/out.txt", "text": "x"}),
    )
    .await?;
    assert_eq!(write.is_error, Some(true));
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn blobs_round_trip_by_hash_and_persist() -> anyhow::Result<()> {
    let layout = layout(CONFIG)?;
    let client = start(&layout, ()).await?;
    let put = call(&client, "hostile__blob_put", json!({"text": "weights v1"})).await?;
    let hash = first_text(&put).to_owned();
    assert_eq!(
        hash,
        format!("blake3:{}", blake3::hash(b"weights v1").to_hex())
    );
    let bad = call(&client, "hostile__blob_get", json!({"hash": "md5:abc"})).await?;
    assert_eq!(bad.is_error, Some(true));
    assert!(
        first_text(&bad).contains("must start with `blake3:`"),
        "{}",
        first_text(&bad)
    );
    client.cancel().await?;

    // After a restart the blob is still there, and verified on the way out.
    let client = start(&layout, ()).await?;
    let get = call(&client, "hostile__blob_get", json!({ "hash": hash })).await?;
    assert_eq!(first_text(&get), "weights v1");
    let hex = hash.trim_start_matches("blake3:");
    let file = layout
        .host
        .data_dir()
        .join("blobs")
        .join(&hex[..2])
        .join(hex);
    std::fs::write(&file, "tampered")?;
    let tampered = call(&client, "hostile__blob_get", json!({ "hash": hash })).await?;
    assert_eq!(tampered.is_error, Some(true));
    assert!(
        first_text(&tampered).contains("corrupt"),
        "{}",
        first_text(&tampered)
    );
    client.cancel().await?;
    Ok(())
}

/// Collects the progress notifications the server sends.
#[tokio::test]
async fn progress_reports_become_mcp_notifications() -> anyhow::Result<()> {
    let layout = layout(CONFIG)?;
    let log = ProgressLog::default();
    let client = start(&layout, log.clone()).await?;
    // rmcp's client puts a progress token on every request.
    let result = call(&client, "hostile__progress", json!({"steps": 5, "ms": 5})).await?;
    assert_eq!(first_text(&result), "did 5 steps");
    let seen = log.wait_for(5).await;
    let done: Vec<f64> = seen.iter().map(|p| p.progress).collect();
    assert_eq!(done, [1.0, 2.0, 3.0, 4.0, 5.0]);
    let token = &seen[0].progress_token;
    assert!(
        seen.iter()
            .all(|p| &p.progress_token == token && p.total == Some(5.0)),
        "{seen:?}"
    );
    assert_eq!(seen[2].message.as_deref(), Some("step 3"));

    // A plugin that floods progress is not slowed down and cannot flood the
    // agent: reports beyond what the channel holds are dropped.
    let started = Instant::now();
    let flood = call(
        &client,
        "hostile__progress",
        json!({"steps": 100000, "ms": 0}),
    )
    .await?;
    assert_eq!(first_text(&flood), "did 100000 steps");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    client.cancel().await?;
    Ok(())
}

/// Two copies of the hostile plugin at different levels: exhausting one's
/// kv, memory, fuel or time never affects the other, even at the same time.
#[tokio::test]
async fn plugins_at_different_levels_are_isolated_even_concurrently() -> anyhow::Result<()> {
    let layout = layout(CONFIG)?;
    let other = layout.host.add_plugin(&test_plugin("hostile"), "calm")?;
    let manifest = std::fs::read_to_string(other.join("plugin.toml"))?
        .replace("name = \"hostile\"", "name = \"calm\"")
        .replace("level = \"untrusted\"", "level = \"standard\"");
    std::fs::write(other.join("plugin.toml"), manifest)?;
    let client = start(&layout, ()).await?;

    let calm_set = call(&client, "calm__kv_incr", json!({"key": "n"})).await?;
    assert_eq!(first_text(&calm_set), "1");

    let hostile = [
        ("hostile__kv_fill", json!({"mib": 8})),
        ("hostile__alloc", json!({"mib": 1024})),
        ("hostile__spin", json!({})),
        ("hostile__sleep", json!({"ms": 60000})),
        ("hostile__blob_fill", json!({"mib": 8})),
    ];
    let attacks = hostile.iter().map(|(tool, arguments)| {
        let client = &client;
        async move { call(client, tool, arguments.clone()).await }
    });
    let calm_work = (0..20).map(|i| {
        let client = &client;
        async move {
            let tool = if i % 2 == 0 {
                "calm__kv_incr"
            } else {
                "calm__alloc"
            };
            let arguments = if i % 2 == 0 {
                json!({"key": "n"})
            } else {
                json!({"mib": 100})
            };
            call(client, tool, arguments).await
        }
    });
    let (attacks, calm) = futures::future::join(
        futures::future::join_all(attacks),
        futures::future::join_all(calm_work),
    )
    .await;
    for result in attacks {
        assert_eq!(result?.is_error, Some(true));
    }
    for result in calm {
        let result = result?;
        assert_eq!(result.is_error, Some(false), "{}", first_text(&result));
    }
    // calm's counter saw exactly its own 1 + 10 increments; hostile's kv
    // filled to its quota without touching it.
    let count = call(&client, "calm__kv_get", json!({"key": "n"})).await?;
    assert_eq!(first_text(&count), "11");
    let hostile_view = call(&client, "hostile__kv_get", json!({"key": "n"})).await?;
    assert_eq!(first_text(&hostile_view), "(unset)");
    // The standard level's kv quota (64 MiB) is untouched by hostile's fill.
    let calm_fill = call(&client, "calm__kv_fill", json!({"mib": 2})).await?;
    assert_eq!(first_text(&calm_fill), "wrote 2 MiB");
    client.cancel().await?;
    Ok(())
}

/// The quotas on every channel out of the sandbox (issue 18): log volume,
/// error messages and empty blocks against the output limit, kv bookkeeping,
/// a blob larger than the guest's memory, an oversized tool list, a pattern
/// built to backtrack, and input that is not JSON. Over HTTP, to read the
/// host's log.
#[tokio::test(flavor = "multi_thread")]
async fn every_channel_out_of_the_sandbox_has_a_quota() -> anyhow::Result<()> {
    let config = r#"
[levels.untrusted]
timeout_ms = 10000
memory_bytes = 16777216
kv_bytes = 2048
capabilities = ["log", "kv", "blobs"]

[levels.untrusted.breaker]
failures = 1000

[http]
auth = "none"
"#;
    let layout = layout(config)?;
    // A blob bigger than the plugin's 16 MiB of memory, already stored.
    let (_, big) = toolmesh_test_support::mesh::put_blob(&layout.host, &vec![7u8; 20 << 20])?;
    let server =
        toolmesh_test_support::http::HttpHost::start(Path::new(BIN), &args(&layout), &[]).await?;
    let client = server.connect((), None).await?;
    let error_of = |result: &rmcp::model::CallToolResult| {
        assert_eq!(result.is_error, Some(true), "{}", first_text(result));
        first_text(result).to_owned()
    };

    // Log volume: 2,000 records of 4 KiB; the untrusted budget is 256 KiB.
    let flood = call(&client, "hostile__log_flood", json!({"count": 2000})).await?;
    assert_eq!(first_text(&flood), "wrote 2000 records");
    let dropped = toolmesh_test_support::mesh::eventually(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let log = server
                .log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(log
                .iter()
                .any(|l| l.contains("log records dropped over the call's budget"))
                .then(|| log.iter().filter(|l| l.contains(&"x".repeat(64))).count()))
        },
    )
    .await?
    .expect("the host says it dropped records");
    assert!(
        dropped <= 64,
        "{dropped} records of 4 KiB reached the host's log"
    );

    // Output limit (1 MiB at untrusted): a 2 MiB error, 100,000 empty blocks.
    let error = error_of(&call(&client, "hostile__huge_error", json!({"mib": 2})).await?);
    assert!(
        error.contains("output too large") && error.len() < 1024,
        "{}",
        &error[..200.min(error.len())]
    );
    let error = error_of(&call(&client, "hostile__empty_blocks", json!({"count": 100000})).await?);
    assert!(error.contains("output too large"), "{error}");

    // kv bookkeeping: a new log's sequence row is charged (2 KiB: ~128 logs).
    let error = error_of(&call(&client, "hostile__kv_new_logs", json!({"count": 100000})).await?);
    assert!(error.contains("kv quota exceeded"), "{error}");

    // A blob the guest's memory cannot hold is refused before it is read.
    let error = error_of(&call(&client, "hostile__blob_get", json!({"hash": big})).await?);
    assert!(error.contains("cannot be read whole"), "{error}");

    // The host still serves.
    let ok = call(&client, "hostile__noop", json!({})).await?;
    assert_eq!(first_text(&ok), "ok");
    client.cancel().await?;
    server.stop().await?;

    // A 1 MiB tool description: the plugin is refused at load, with why.
    let huge = format!("{config}\n[plugins.hostile.config]\nhuge_description = true\n");
    let layout = self::layout(&huge)?;
    let output = std::process::Command::new(BIN)
        .args(args(&layout))
        .args(["plugin", "list"])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("REFUSED") && stdout.contains("description is 1048576 bytes"),
        "{stdout}"
    );
    Ok(())
}

/// Input the JSON-RPC layer cannot parse gets `-32700 Parse error` with
/// `id: null` (not silence), and the session goes on.
#[tokio::test]
async fn unparsable_input_is_answered_with_a_parse_error() -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let layout = layout(CONFIG)?;
    let mut child = tokio::process::Command::new(BIN)
        .args(args(&layout))
        .arg("serve")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let deep = format!("{}{}\n", "[".repeat(200), "]".repeat(200));
    stdin.write_all(b"this is not json\n\xff\xfe\n").await?;
    stdin.write_all(deep.as_bytes()).await?;
    stdin
        .write_all(br#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#)
        .await?;
    stdin.write_all(b"\n").await?;
    let (mut parse_errors, mut initialized) = (0, false);
    while parse_errors < 3 || !initialized {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await??
            .expect("a line");
        let message: Value = serde_json::from_str(&line)?;
        if message["error"]["code"] == -32700 {
            assert_eq!(message["id"], Value::Null, "{line}");
            parse_errors += 1;
        } else if message["id"] == 7 {
            assert!(message["result"]["serverInfo"].is_object(), "{line}");
            initialized = true;
        }
    }
    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    Ok(())
}

/// Plugins load at the same time: three that each take 2 s to load delay
/// the start by about 2 s, not 6.
#[tokio::test(flavor = "multi_thread")]
async fn plugins_load_at_the_same_time() -> anyhow::Result<()> {
    let layout = slow_plugins(&[("slow-a", 2000), ("slow-b", 2000), ("slow-c", 2000)])?;
    let started = Instant::now();
    let client = start(&layout, ()).await?;
    let took = started.elapsed();
    for name in ["slow-a", "slow-b", "slow-c"] {
        let ok = call(&client, &format!("{name}__noop"), json!({})).await?;
        assert_eq!(first_text(&ok), "ok", "{name}");
    }
    assert!(took >= Duration::from_secs(2), "the hooks ran ({took:?})");
    assert!(
        took < Duration::from_secs(6),
        "three 2 s loads took {took:?}: not in parallel"
    );
    client.cancel().await?;
    Ok(())
}

/// Copies of the hostile plugin named as given, each sleeping that many
/// milliseconds in its load hook, under a deadline that lets them.
fn slow_plugins(plugins: &[(&str, u64)]) -> anyhow::Result<Layout> {
    let mut config = String::from("[levels.untrusted]\ntimeout_ms = 20000\n");
    let layout = layout("")?;
    std::fs::remove_dir_all(layout.host.plugins_dir().join("hostile"))?;
    for (name, sleep_ms) in plugins {
        let dir = layout.host.add_plugin(&test_plugin("hostile"), name)?;
        let manifest = std::fs::read_to_string(dir.join("plugin.toml"))?
            .replace("name = \"hostile\"", &format!("name = \"{name}\""));
        std::fs::write(dir.join("plugin.toml"), manifest)?;
        config.push_str(&format!(
            "[plugins.{name}.config]\nsleep_on_load_ms = {sleep_ms}\n"
        ));
    }
    std::fs::write(&layout.config, config)?;
    Ok(layout)
}

/// The load phase is bounded: a plugin that stalls past
/// `startup_wait_ms` does not hold the host back. Clients are answered
/// with what is ready, and the late plugin's tools arrive with
/// `list_changed`.
#[tokio::test]
async fn a_stalling_plugin_does_not_hold_back_the_start() -> anyhow::Result<()> {
    let layout = slow_plugins(&[("quick", 0), ("stalling", 8000)])?;
    let watcher = toolmesh_test_support::ListWatcher::default();
    let started = Instant::now();
    let mut cmd = serve_command(Path::new(BIN), &args(&layout));
    cmd.env("TOOLMESH_STARTUP_WAIT_MS", "1000");
    let client = connect_command(watcher.clone(), cmd).await?;
    let answered = started.elapsed();
    let seen = watcher.changes();
    let tools = client.list_all_tools().await?;
    let listed = |name: &str| tools.iter().any(|t| t.name == name);
    assert!(listed("quick__noop"), "the ready plugin serves at once");
    assert!(
        !listed("stalling__noop"),
        "answered after {answered:?}, yet the stalling plugin (8 s in its hook) was listed: the \
         start waited for it"
    );
    let ok = call(&client, "quick__noop", json!({})).await?;
    assert_eq!(first_text(&ok), "ok");
    watcher
        .changed_after(seen, Duration::from_secs(60))
        .await
        .ok_or_else(|| anyhow::anyhow!("no list_changed for the late plugin"))?;
    let tools = client.list_all_tools().await?;
    assert!(tools.iter().any(|t| t.name == "stalling__noop"));
    let ok = call(&client, "stalling__noop", json!({})).await?;
    assert_eq!(first_text(&ok), "ok");
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "the late plugin's hook ran to its end"
    );
    client.cancel().await?;
    Ok(())
}
