//! Test support for toolmesh: the test plugins (built by this crate's build
//! script), temporary plugin and data directories, and a real MCP client
//! (rmcp) connected to a `toolmesh serve` child process.

pub mod browser;
pub mod http;
pub mod mesh;
pub mod rng;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject, ProgressNotificationParam};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use tokio::process::Command;

/// The directory holding each test plugin as `<name>/{plugin.toml, <name>.wasm}`.
pub fn test_plugins_dir() -> PathBuf {
    PathBuf::from(env!("TOOLMESH_TEST_PLUGINS_DIR"))
}

/// A test plugin's staged directory.
pub fn test_plugin(name: &str) -> PathBuf {
    test_plugins_dir().join(name)
}

/// The compile cache test hosts share: entries are keyed by content and
/// engine and written atomically, so concurrent hosts can share it.
pub fn shared_cache_dir() -> PathBuf {
    std::env::temp_dir().join("toolmesh-test-compile-cache")
}

/// A temporary data directory with an (initially empty) plugin directory.
pub struct TempHost {
    dir: tempfile::TempDir,
}

impl TempHost {
    /// A fresh temporary host directory.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("plugins"))?;
        Ok(Self { dir })
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The plugin directory.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Copies the plugin directory `from` into the plugin directory as `name`
    /// and returns the copy's path, for tests to modify.
    pub fn add_plugin(&self, from: &Path, name: &str) -> anyhow::Result<PathBuf> {
        let to = self.plugins_dir().join(name);
        std::fs::create_dir_all(&to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
        Ok(to)
    }

    /// [`TempHost::args`], and `--config` for a `toolmesh.toml` (in this
    /// host's directory) holding `toml`.
    pub fn args_with_config(&self, toml: &str) -> anyhow::Result<Vec<String>> {
        let mut args = self.args();
        args.extend(http::config_args(self.dir.path(), toml)?);
        Ok(args)
    }

    /// The arguments that point `toolmesh` at this host's directories, and
    /// at a compile cache shared by every test host (so each test does not
    /// compile the bundled plugins again).
    pub fn args(&self) -> Vec<String> {
        vec![
            "--data-dir".into(),
            self.data_dir().display().to_string(),
            "--plugins".into(),
            self.plugins_dir().display().to_string(),
            "--cache-dir".into(),
            shared_cache_dir().display().to_string(),
        ]
    }
}

/// An MCP client session with a `toolmesh serve` child process.
pub type Client = RunningService<RoleClient, ()>;

/// The command `binary <args> serve`.
pub fn serve_command(binary: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(args).arg("serve");
    cmd
}

/// Starts `binary serve` with `args` and connects rmcp's client to it over
/// stdio (initialize included). The server's log goes to the test's stderr.
pub async fn connect(binary: &Path, args: &[String]) -> anyhow::Result<Client> {
    connect_command((), serve_command(binary, args)).await
}

/// Starts `cmd` (a `toolmesh ... serve` command) and connects rmcp's client
/// to it with `handler` receiving the server's notifications.
pub async fn connect_command<H: ClientHandler>(
    handler: H,
    cmd: Command,
) -> anyhow::Result<RunningService<RoleClient, H>> {
    let (transport, _stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(handler.serve(transport).await?)
}

/// Calls `tool` with `arguments` (a JSON object).
pub async fn call<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    arguments: serde_json::Value,
) -> anyhow::Result<CallToolResult> {
    let arguments: JsonObject = match arguments {
        serde_json::Value::Object(map) => map,
        other => anyhow::bail!("arguments must be an object, not {other}"),
    };
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
    Ok(client.call_tool(params).await?)
}

/// CPU time consumed by a process's threads (user and system, nanosecond
/// precision, from `/proc/<pid>/task/*/schedstat`; zero where /proc is not
/// available). It remembers every thread it has seen, so a thread that exits
/// (an idle blocking-pool thread, say) keeps counting what it had used when
/// last read, and the total never goes down.
pub struct CpuMeter {
    pid: u32,
    seen: Mutex<std::collections::HashMap<std::ffi::OsString, u64>>,
}

impl CpuMeter {
    /// A meter for process `pid`.
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            seen: Mutex::default(),
        }
    }

    /// CPU time the process has consumed so far.
    pub fn total(&self) -> Duration {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) {
            for task in tasks.flatten() {
                // schedstat: time on CPU (ns), time waiting (ns), timeslices.
                if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat"))
                    && let Some(ns) = stat
                        .split_whitespace()
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                {
                    let entry = seen.entry(task.file_name()).or_default();
                    *entry = (*entry).max(ns);
                }
            }
        }
        Duration::from_nanos(seen.values().sum())
    }
}

/// The text of a result's first content block.
pub fn first_text(result: &CallToolResult) -> &str {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.as_str())
        .unwrap_or("")
}

/// A client handler that records every `notifications/progress` it gets.
#[derive(Clone, Default)]
pub struct ProgressLog(Arc<Mutex<Vec<ProgressNotificationParam>>>);

impl ClientHandler for ProgressLog {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.0.lock().expect("not poisoned").push(params);
    }
}

impl ProgressLog {
    /// The reports once at least `n` have arrived, or all that arrived
    /// within five seconds. The host sends a call's notifications before
    /// its result, but rmcp's client hands them to the handler on tasks of
    /// their own, so they may trail the result by a moment.
    pub async fn wait_for(&self, n: usize) -> Vec<ProgressNotificationParam> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.0.lock().expect("not poisoned").len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.0.lock().expect("not poisoned").clone()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.0.lock().expect("not poisoned").clear();
    }
}

/// An MCP client handler that counts `notifications/tools/list_changed`
/// (and speaks 2025-11-25, where they come unasked).
#[derive(Clone, Default)]
pub struct ListWatcher {
    list_changes: Arc<std::sync::atomic::AtomicUsize>,
}

impl ListWatcher {
    /// How many arrived so far.
    pub fn changes(&self) -> usize {
        self.list_changes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until more than `seen` arrived; how long that took, or `None`
    /// after `within`.
    pub async fn changed_after(&self, seen: usize, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.changes() > seen {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    }
}

impl ClientHandler for ListWatcher {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::default(),
            rmcp::model::Implementation::new("toolmesh-tests", "1.0.0"),
        )
        .with_protocol_version(rmcp::model::ProtocolVersion::V_2025_11_25)
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
