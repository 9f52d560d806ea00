//! Drives the dashboard's browser script (`tests/browser/dashboard.mjs`:
//! npm `playwright-core` and Debian's Chromium, headless) against a running
//! HTTP host, with a real MCP client (rmcp over HTTP) making the calls the
//! script waits for and checking the `list_changed` it should hear. The
//! script and this driver speak JSON lines: it prints `{"wait": …}` and
//! reads one line back. Used by the browser test and the dashboard
//! benchmark.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::http::HttpHost;
use crate::{ListWatcher, call, first_text};

/// What a run of the script reported.
#[derive(Debug, Default)]
pub struct DashboardRun {
    /// Each `{"measure": name, "value": ms}`, in order.
    pub measures: Vec<(String, f64)>,
    /// Each `{"ok": step}`, in order.
    pub steps: Vec<String>,
}

impl DashboardRun {
    /// The values of measure `name`.
    pub fn values(&self, name: &str) -> Vec<f64> {
        self.measures
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .collect()
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The pinned Node (npm `node`, with `playwright-core` beside it).
pub fn node() -> PathBuf {
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

/// Debian's Chromium.
pub fn chromium() -> PathBuf {
    let path =
        PathBuf::from(std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
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

async fn tool_names(
    agent: &rmcp::service::RunningService<rmcp::RoleClient, ListWatcher>,
) -> Vec<String> {
    agent
        .list_all_tools()
        .await
        .map(|tools| tools.into_iter().map(|t| t.name.to_string()).collect())
        .unwrap_or_default()
}

/// Runs the script against `server` (which serves the `hello` plugin),
/// signing in with `admin_key`, trying `tools_key` (no admin scope) to be
/// refused, saving screenshots in `shots`, repeating the timed steps
/// `rounds` times. `Err` if the script or a check on this side fails.
pub async fn drive_dashboard(
    server: &HttpHost,
    admin_key: &str,
    tools_key: &str,
    shots: &Path,
    rounds: usize,
) -> anyhow::Result<DashboardRun> {
    let watcher = ListWatcher::default();
    let agent = server.connect(watcher.clone(), Some(tools_key)).await?;
    let first = call(&agent, "hello__greet", json!({"name": "warm-up"})).await?;
    anyhow::ensure!(
        first_text(&first) == "Hello, warm-up!",
        "the warm-up call failed"
    );
    std::fs::create_dir_all(shots)?;
    let mut browser = Command::new(node())
        .arg(workspace().join("tests/browser/dashboard.mjs"))
        .env("TOOLMESH_URL", format!("http://{}", server.addr))
        .env("TOOLMESH_ADMIN_KEY", admin_key)
        .env("TOOLMESH_TOOLS_KEY", tools_key)
        .env("SCREENSHOT_DIR", shots)
        .env("CHROMIUM", chromium())
        .env("ROUNDS", rounds.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut to_browser = browser.stdin.take().expect("piped stdin");
    let mut lines = BufReader::new(browser.stdout.take().expect("piped stdout")).lines();
    let mut run = DashboardRun::default();
    let mut done = false;
    let mut baseline = watcher.changes();
    while let Some(line) =
        tokio::time::timeout(Duration::from_secs(180), lines.next_line()).await??
    {
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            eprintln!("[browser stdout] {line}");
            continue;
        };
        eprintln!("[browser] {message}");
        if let (Some(name), Some(value)) = (message["measure"].as_str(), message["value"].as_f64())
        {
            run.measures.push((name.to_owned(), value));
        }
        if let Some(ok) = message["ok"].as_str() {
            run.steps.push(ok.to_owned());
            if ok == "runner" {
                // The plugins view comes next: changes from here on are its.
                baseline = watcher.changes();
            }
        }
        done |= message["done"] == true;
        let answer = match message["wait"].as_str() {
            None => continue,
            Some("call") => {
                let result =
                    call(&agent, "hello__greet", json!({"name": "dashboard probe"})).await?;
                anyhow::ensure!(
                    first_text(&result) == "Hello, dashboard probe!",
                    "probe failed"
                );
                json!({"called_at_ms": now_ms()})
            }
            Some(state @ ("disabled" | "enabled")) => {
                watcher
                    .changed_after(baseline, Duration::from_secs(5))
                    .await
                    .ok_or_else(|| {
                        anyhow::anyhow!("the MCP client heard no list_changed after `{state}`")
                    })?;
                baseline = watcher.changes();
                let want = state == "enabled";
                let mut listed = !want;
                for _ in 0..200 {
                    listed = tool_names(&agent)
                        .await
                        .contains(&"hello__greet".to_owned());
                    if listed == want {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                anyhow::ensure!(
                    listed == want,
                    "hello__greet listed: {listed} after `{state}`"
                );
                json!({})
            }
            Some(other) => anyhow::bail!("the browser waits for `{other}`, unknown to the driver"),
        };
        let mut reply = serde_json::to_vec(&answer)?;
        reply.push(b'\n');
        to_browser.write_all(&reply).await?;
        to_browser.flush().await?;
    }
    let status = tokio::time::timeout(Duration::from_secs(30), browser.wait()).await??;
    anyhow::ensure!(
        status.success(),
        "the browser script failed ({status}); see its log"
    );
    anyhow::ensure!(done, "the browser script ended before its last step");
    agent.cancel().await?;
    Ok(run)
}
