//! The usage snapshot a serving host keeps in its data directory
//! (`usage.json`), so that `toolmesh stats` can show a running host's figures
//! from another shell. The host rewrites it (atomically: temporary file and
//! rename) about once a second while calls happen, and once more when it
//! stops; it costs nothing while the host is idle.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::service::ToolService;
use crate::usage::UsageReport;

/// The snapshot's file name inside the data directory.
pub const FILE: &str = "usage.json";

/// How often a serving host rewrites the snapshot while calls happen.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What the file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageSnapshot {
    /// The serving host's process id.
    pub pid: u32,
    /// When the snapshot was written, in milliseconds since the Unix epoch.
    pub written_at_ms: u64,
    /// The usage aggregates.
    pub report: UsageReport,
}

/// Why the snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// There is no snapshot: no host has served from this data directory.
    #[error("no usage snapshot at {0}: no host has served calls from this data directory yet")]
    Missing(PathBuf),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a snapshot.
    #[error("{path} is not a usage snapshot: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes `service`'s current usage to `path`, atomically.
pub fn write(service: &ToolService, path: &Path) -> std::io::Result<()> {
    let snapshot = UsageSnapshot {
        pid: std::process::id(),
        written_at_ms: now_ms(),
        report: service.usage_report(),
    };
    crate::fs::write_atomically(path, &serde_json::to_vec_pretty(&snapshot)?)
}

/// Rewrites the snapshot every [`INTERVAL`] while the number of recorded
/// calls changes. Runs until the task is dropped.
pub async fn keep_written(service: ToolService, path: PathBuf) {
    let mut last_calls = None;
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let calls = service.plugins().total_calls();
        if last_calls == Some(calls) {
            continue;
        }
        last_calls = Some(calls);
        if let Err(e) = write(&service, &path) {
            tracing::warn!(path = %path.display(), "cannot write the usage snapshot: {e}");
        }
    }
}

/// Reads the snapshot at `path`.
pub fn read(path: &Path) -> Result<UsageSnapshot, StatsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StatsError::Missing(path.to_owned()));
        }
        Err(source) => {
            return Err(StatsError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_str(&text).map_err(|source| StatsError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Whether process `pid` is alive.
pub fn is_running(pid: u32) -> bool {
    let pid = sysinfo::Pid::from_u32(pid);
    let Ok(mut system) = sysinfo::System::new() else {
        return false;
    };
    system.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), false) == 1
}

/// The snapshot as a table for people.
pub fn render(snapshot: &UsageSnapshot, running: bool) -> String {
    let mut out = String::new();
    let age_s = now_ms().saturating_sub(snapshot.written_at_ms) as f64 / 1000.0;
    let _ = write!(
        out,
        "host pid {} ({}), snapshot {age_s:.1} s old",
        snapshot.pid,
        if running { "running" } else { "not running" }
    );
    if let Some(p) = &snapshot.report.process {
        let _ = write!(
            out,
            "; rss {}, cpu {:.1} %, up {} s",
            mib(p.rss_bytes as f64),
            p.cpu_percent,
            p.uptime_s
        );
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<40} {:<10} {:>8} {:>7} {:>9} {:>9} {:>9} {:>14} {:>10}",
        "TOOL", "LEVEL", "CALLS", "ERRORS", "P50 us", "P99 us", "MAX us", "FUEL", "PEAK MEM"
    );
    for plugin in &snapshot.report.plugins {
        for (name, t) in &plugin.tools {
            let _ = writeln!(
                out,
                "{:<40} {:<10} {:>8} {:>7} {:>9} {:>9} {:>9} {:>14} {:>10}",
                name,
                plugin.level,
                t.calls,
                t.errors,
                t.latency_us.p50,
                t.latency_us.p99,
                t.latency_us.max,
                t.fuel_total,
                mib(t.peak_memory_bytes as f64)
            );
        }
    }
    out
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_garbage_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("no usage snapshot"), "{err}");
        std::fs::write(&path, "{not json").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("is not a usage snapshot"), "{err}");
    }

    #[test]
    fn this_process_is_running() {
        assert!(is_running(std::process::id()));
    }
}
