//! A `toolmesh serve --http` child process on a free loopback port, its
//! clients' API keys (made with `toolmesh client add`, as an operator
//! would), and rmcp's Streamable HTTP client connected to it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt, service::RunningService};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `toolmesh serve --http 127.0.0.1:0`.
pub struct HttpHost {
    child: Child,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Its log so far (stderr lines), shared with a reader task.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl HttpHost {
    /// Starts `binary <args> serve --http 127.0.0.1:0 <extra>` and waits
    /// until it answers `/readyz`.
    pub async fn start(binary: &Path, args: &[String], extra: &[&str]) -> anyhow::Result<Self> {
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .args(["serve", "--http", "127.0.0.1:0"])
            .args(extra)
            // Info for the listening line; rmcp logs every stateless request at info.
            .env("TOOLMESH_LOG", "info,rmcp=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("spawn toolmesh serve --http")?;
        let stderr = child.stderr.take().context("stderr")?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let lines = log.clone();
        tokio::spawn(async move {
            let mut addr_tx = Some(addr_tx);
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                eprintln!("[toolmesh] {line}");
                if line.contains("serving MCP over HTTP")
                    && let Some(addr) = field(&line, "addr=")
                    && let Some(tx) = addr_tx.take()
                {
                    let _ = tx.send(addr);
                }
                lines
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(120), addr_rx)
            .await
            .context("toolmesh did not start listening within 120 s")?
            .context("toolmesh exited before listening")?
            .parse()?;
        let host = Self { child, addr, log };
        host.wait_ready(Duration::from_secs(180)).await?;
        Ok(host)
    }

    /// `http://ADDR/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// `http://ADDR` + `path`.
    pub fn url_of(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(self.url_of("/readyz")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "/readyz never turned 200");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Connects rmcp's Streamable HTTP client with `key` as its bearer.
    pub async fn connect<H: ClientHandler>(
        &self,
        handler: H,
        key: Option<&str>,
    ) -> anyhow::Result<RunningService<RoleClient, H>> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url());
        if let Some(key) = key {
            config = config.auth_header(key.to_owned());
        }
        let transport = StreamableHttpClientTransport::from_config(config);
        Ok(handler.serve(transport).await?)
    }

    /// Stops the host with SIGTERM and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        Ok(())
    }
}

fn field(line: &str, key: &str) -> Option<String> {
    let start = line.find(key)? + key.len();
    let rest = &line[start..];
    Some(rest.split_whitespace().next()?.to_owned())
}

/// Runs `binary <args> client add NAME --agent AGENT <extra>` and returns
/// the key it printed on its last line.
pub fn add_client(
    binary: &Path,
    args: &[String],
    name: &str,
    agent: &str,
    extra: &[&str],
) -> anyhow::Result<String> {
    let out = std::process::Command::new(binary)
        .args(args)
        .args(["client", "add", name, "--agent", agent])
        .args(extra)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "client add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout)?;
    let key = stdout
        .lines()
        .last()
        .context("no output")?
        .trim()
        .to_owned();
    anyhow::ensure!(key.starts_with("tm_"), "not a key: {key}");
    Ok(key)
}

/// Writes `toml` as `toolmesh.toml` in `dir` and returns the `--config`
/// arguments for it.
pub fn config_args(dir: &Path, toml: &str) -> anyhow::Result<Vec<String>> {
    let path: PathBuf = dir.join("toolmesh.toml");
    std::fs::write(&path, toml)?;
    Ok(vec!["--config".into(), path.display().to_string()])
}

/// Adds two clients with the CLI, as an operator would: `ops` (agent
/// `operator`, the admin scope) and `agent` (agent `alice`, tools only).
/// Returns their keys, admin first.
pub fn operator_and_agent_keys(binary: &Path, args: &[String]) -> anyhow::Result<(String, String)> {
    let admin = add_client(binary, args, "ops", "operator", &["--scope", "admin"])?;
    let agent = add_client(binary, args, "agent", "alice", &[])?;
    Ok((admin, agent))
}

/// Signs in to `server`'s dashboard with `key`: the session cookie
/// (`name=value`, for a `Cookie` header) and the session's CSRF token.
pub async fn dashboard_sign_in(server: &HttpHost, key: &str) -> anyhow::Result<(String, String)> {
    let login = reqwest::Client::new()
        .post(server.url_of("/api/login"))
        .json(&serde_json::json!({"key": key}))
        .send()
        .await?;
    anyhow::ensure!(login.status().is_success(), "sign-in: {}", login.status());
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "the session cookie lacks HttpOnly or SameSite=Strict: {cookie}"
    );
    let body: serde_json::Value = login.json().await?;
    let csrf = body["csrf"].as_str().unwrap_or_default().to_owned();
    let pair = cookie.split(';').next().unwrap_or_default().to_owned();
    Ok((pair, csrf))
}
