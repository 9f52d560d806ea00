//! The control socket: how `toolmesh plugin enable|disable|pause|resume|reload`,
//! `toolmesh plugin events`, `toolmesh alerts`, `toolmesh peer …`,
//! `toolmesh plugin fetch` and `toolmesh publish` reach the host serving
//! from the same data directory. A transport like MCP stdio: every call
//! goes through the [`ToolService`], so it is validated and recorded the
//! same way. It serves the admin and mesh tools only, and its caller is the
//! operator (the socket is the data directory owner's alone), whom the gate
//! does not ask for grants or budgets.
//!
//! A Unix socket at `<data>/p2p/control.sock`, reachable by the data
//! directory's owner. A client writes one JSON line, `{"tool": "mesh__…",
//! "arguments": {…}}`; the host answers with `{"progress": …}` lines while
//! the tool runs and one last line, `{"result": …}` or `{"error": "…"}`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::capability::progress;
use crate::plugin::tool::NAMESPACE_SEPARATOR;
use crate::service::mesh_tools::NAMESPACE;
use crate::service::{CallMeta, ToolService, admin_tools, result};

/// The socket's file name in `<data>/p2p`.
pub const SOCKET_FILE: &str = "control.sock";

/// Longest request line.
const MAX_REQUEST_BYTES: u64 = 64 << 10;

#[derive(Serialize, Deserialize)]
struct ControlRequest {
    tool: String,
    #[serde(default)]
    arguments: serde_json::Map<String, Value>,
}

/// One line of the answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlLine {
    /// Progress of a long call.
    Progress {
        /// Work done.
        done: f64,
        /// Work in all, if known.
        total: Option<f64>,
        /// What is happening.
        message: Option<String>,
    },
    /// The tool's result.
    Result(Value),
    /// Why the call failed.
    Error(String),
}

/// Serves the control socket at `path` until the process ends.
pub async fn serve(service: ToolService, path: PathBuf) {
    // A socket file left by a host that died is removed; a live one is not.
    if path.exists() {
        if UnixStream::connect(&path).await.is_ok() {
            tracing::warn!(path = %path.display(), "another host serves this data directory's control socket");
            return;
        }
        let _ = std::fs::remove_file(&path);
    }
    let listener = match UnixListener::bind(&path) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(path = %path.display(), "control socket not available: {e}");
            return;
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(answer(service.clone(), stream));
            }
            Err(e) => {
                tracing::warn!("control socket: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn write_line(stream: &mut (impl AsyncWriteExt + Unpin), line: &ControlLine) -> bool {
    let Ok(mut bytes) = serde_json::to_vec(line) else {
        return false;
    };
    bytes.push(b'\n');
    stream.write_all(&bytes).await.is_ok()
}

async fn answer(service: ToolService, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST_BYTES));
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    let request: ControlRequest = match serde_json::from_str(&line) {
        Ok(request) => request,
        Err(e) => {
            write_line(&mut write, &ControlLine::Error(format!("bad request: {e}"))).await;
            return;
        }
    };
    let served = [NAMESPACE, admin_tools::NAMESPACE]
        .map(|namespace| format!("{namespace}{NAMESPACE_SEPARATOR}"));
    if !served.iter().any(|prefix| request.tool.starts_with(prefix)) {
        let refusal = format!(
            "the control socket serves the admin and mesh tools (`{}*`, `{}*`), not `{}`",
            served[0],
            served[1],
            crate::text::truncate(&request.tool, 128)
        );
        write_line(&mut write, &ControlLine::Error(refusal)).await;
        return;
    }
    let (sink, mut reports) = progress::channel();
    let meta = CallMeta {
        request_id: "control".into(),
        client: Some("toolmesh-cli".into()),
        progress: Some(sink),
        operator: true,
        ..CallMeta::default()
    };
    let cancel = CancellationToken::new();
    let call = async {
        match service
            .call(&request.tool, Some(request.arguments), meta, &cancel)
            .await
        {
            Ok(result) => result::into_value(&result),
            Err(unknown) => Err(unknown.to_string()),
        }
    };
    let forward = async {
        while let Some(report) = reports.recv().await {
            let line = ControlLine::Progress {
                done: report.done,
                total: report.total,
                message: report.message,
            };
            if !write_line(&mut write, &line).await {
                break;
            }
        }
    };
    let (outcome, ()) = tokio::join!(call, forward);
    let last = match outcome {
        Ok(value) => ControlLine::Result(value),
        Err(e) => ControlLine::Error(e),
    };
    write_line(&mut write, &last).await;
}

/// Calls tool `tool` on the host serving from the data directory whose
/// socket is `path`; `on_progress` sees each progress line.
pub async fn call(
    path: &Path,
    tool: &str,
    arguments: serde_json::Map<String, Value>,
    mut on_progress: impl FnMut(f64, Option<f64>, Option<String>),
) -> anyhow::Result<Value> {
    let stream = UnixStream::connect(path).await.map_err(|e| {
        anyhow::anyhow!(
            "no running host on this data directory ({}: {e}); start one with `toolmesh \
             serve` (with `--p2p` for the mesh commands)",
            path.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    let mut request = serde_json::to_vec(&ControlRequest {
        tool: tool.to_owned(),
        arguments,
    })?;
    request.push(b'\n');
    write.write_all(&request).await?;
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str::<ControlLine>(&line)? {
            ControlLine::Progress {
                done,
                total,
                message,
            } => on_progress(done, total, message),
            ControlLine::Result(value) => return Ok(value),
            ControlLine::Error(message) => anyhow::bail!("{message}"),
        }
    }
    anyhow::bail!("the host closed the control connection without an answer")
}
