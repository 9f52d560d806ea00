//! The dashboard in a real headless Chromium (npm `playwright-core` driving
//! Debian's `/usr/bin/chromium`), against the real host with a real MCP
//! client connected over HTTP: wrong keys refused, sign in, a call made by
//! the MCP client appears on the overview within a second, a tool run from
//! the tool runner, a plugin disabled and enabled from the plugins view
//! while the MCP client hears `list_changed`, CSRF refused, and a
//! screenshot of every view (in `target/tmp/dashboard-screenshots`).
//!
//! The browser script (`tests/browser/dashboard.mjs`) and this test speak
//! JSON lines: it prints `{"wait": …}` and reads one line back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use toolmesh_test_support::http::{HttpHost, add_client};
use toolmesh_test_support::{ListWatcher, TempHost, call, first_text};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn node() -> PathBuf {
    let root = std::env::var_os("TOOLMESH_NPM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("tests/npm"));
    let node = root.join("browser/node_modules/.bin/node");
    assert!(
        node.exists() && root.join("browser/node_modules/playwright-core").exists(),
        "{} is not installed: run the tests with `cargo xtask test` (npm ci in tests/npm/*)",
        root.join("browser").display()
    );
    node
}

fn chromium() -> PathBuf {
    let path = PathBuf::from(
        std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()),
    );
    assert!(
        path.exists(),
        "{} is missing: `cargo xtask test` installs Debian's chromium",
        path.display()
    );
    path
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_in_a_real_browser() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    host.add_plugin(
        &Path::new(toolmesh::plugin::bundled::BUNDLED_DIR).join("hello"),
        "hello",
    )?;
    let args = host.args_with_config("[monitor]\nrollup_s = 1\n")?;
    let admin_key = add_client(Path::new(BIN), &args, "ops", "operator", &["--scope", "admin"])?;
    let tools_key = add_client(Path::new(BIN), &args, "agent", "alice", &[])?;
    let server = HttpHost::start(Path::new(BIN), &args, &[]).await?;
    let watcher = ListWatcher::default();
    let agent = server.connect(watcher.clone(), Some(&tools_key)).await?;
    let first = call(&agent, "hello__greet", json!({"name": "warm-up"})).await?;
    assert_eq!(first_text(&first), "Hello, warm-up!");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots)?;
    let mut browser = Command::new(node())
        .arg(workspace().join("tests/browser/dashboard.mjs"))
        .env("TOOLMESH_URL", format!("http://{}", server.addr))
        .env("TOOLMESH_ADMIN_KEY", &admin_key)
        .env("TOOLMESH_TOOLS_KEY", &tools_key)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", chromium())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut to_browser = browser.stdin.take().expect("stdin");
    let mut lines = BufReader::new(browser.stdout.take().expect("stdout")).lines();
    let mut measures = serde_json::Map::new();
    let mut done = false;
    let mut steps = Vec::new();
    let mut baseline = watcher.changes();
    while let Some(line) =
        tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await??
    {
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            eprintln!("[browser stdout] {line}");
            continue;
        };
        eprintln!("[browser] {message}");
        if let Some(name) = message["measure"].as_str() {
            measures.insert(name.to_owned(), message["value"].clone());
        }
        if let Some(ok) = message["ok"].as_str() {
            steps.push(ok.to_owned());
            if ok == "runner" {
                // The plugins view comes next: changes from here on are its.
                baseline = watcher.changes();
            }
        }
        if message["done"] == true {
            done = true;
        }
        let answer = match message["wait"].as_str() {
            None => continue,
            Some("call") => {
                let result = call(&agent, "hello__greet", json!({"name": "dashboard probe"})).await?;
                assert_eq!(first_text(&result), "Hello, dashboard probe!");
                json!({"called_at_ms": now_ms()})
            }
            Some("disabled") => {
                watcher
                    .changed_after(baseline, Duration::from_secs(5))
                    .await
                    .expect("the MCP client heard list_changed when the plugin was disabled");
                baseline = watcher.changes();
                let names = tool_names(&agent).await;
                assert!(!names.contains(&"hello__greet".to_owned()), "{names:?}");
                json!({})
            }
            Some("enabled") => {
                watcher
                    .changed_after(baseline, Duration::from_secs(5))
                    .await
                    .expect("the MCP client heard list_changed when the plugin was enabled");
                let seen = watcher.changes();
                let mut listed = false;
                for _ in 0..200 {
                    if tool_names(&agent).await.contains(&"hello__greet".to_owned()) {
                        listed = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                assert!(listed, "hello__greet is back after enable ({seen} changes)");
                json!({})
            }
            Some(other) => anyhow::bail!("the browser waits for `{other}`, unknown to the test"),
        };
        let mut reply = serde_json::to_vec(&answer)?;
        reply.push(b'\n');
        to_browser.write_all(&reply).await?;
        to_browser.flush().await?;
    }
    let status = tokio::time::timeout(Duration::from_secs(30), browser.wait()).await??;
    assert!(status.success(), "the browser script failed ({status}); see its log above");
    assert!(done, "the browser script ended before its last step");
    for step in ["wrong_keys_refused", "cookie_flags", "runner", "lifecycle", "csrf_refused"] {
        assert!(steps.iter().any(|s| s == step), "step {step} in {steps:?}");
    }
    let to_screen = measures["call_to_screen_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(to_screen < 1_000.0, "a call reached the overview in {to_screen} ms");
    std::fs::write(
        shots.join("measures.json"),
        serde_json::to_vec_pretty(&Value::Object(measures.clone()))?,
    )?;
    eprintln!("dashboard measures: {}", Value::Object(measures));
    for view in [
        "overview", "runner", "plugins", "history", "mesh", "permissions", "budgets",
        "discovery", "events", "alerts", "config",
    ] {
        assert!(shots.join(format!("{view}.png")).exists(), "{view}.png");
    }
    agent.cancel().await?;
    server.stop().await
}

async fn tool_names(
    agent: &rmcp::service::RunningService<rmcp::RoleClient, ListWatcher>,
) -> Vec<String> {
    agent
        .list_all_tools()
        .await
        .map(|tools| tools.into_iter().map(|t| t.name.to_string()).collect())
        .unwrap_or_default()
}
