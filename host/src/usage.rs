//! Resource tracking: every call yields a [`CallUsage`] record (fuel, peak
//! linear memory, wall time, bytes in and out, outcome); each tool keeps
//! running aggregates in a [`ToolUsage`] (count, errors by outcome, latency
//! percentiles, fuel, memory, bytes); [`ProcessView`] adds the host process as
//! sysinfo sees it. Recording is one uncontended mutex and a histogram
//! update: well under a microsecond (see `benches/call.rs`).

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A result.
    Ok,
    /// Arguments refused by the schema before the guest ran.
    InvalidArguments,
    /// Refused by the host's enforcement (no valid grant, over budget).
    Denied,
    /// The tool reported an error.
    ToolError,
    /// A quota ended the call (fuel, memory, deadline, output).
    Quota,
    /// The guest crashed.
    Trap,
    /// The client cancelled.
    Cancelled,
    /// The host failed, or the plugin broke its output contract.
    HostError,
}

impl Outcome {
    const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::InvalidArguments,
        Outcome::Denied,
        Outcome::ToolError,
        Outcome::Quota,
        Outcome::Trap,
        Outcome::Cancelled,
        Outcome::HostError,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// What one call consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CallUsage {
    /// Fuel units consumed.
    pub fuel: u64,
    /// The largest linear memory the guest had, in bytes.
    pub peak_memory_bytes: usize,
    /// Wall time of the whole call, as the host saw it.
    #[serde(serialize_with = "micros")]
    pub wall: Duration,
    /// Argument bytes.
    pub bytes_in: usize,
    /// Result bytes.
    pub bytes_out: usize,
    /// How it ended.
    pub outcome: Outcome,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// Running aggregates of one tool's calls.
#[derive(Debug)]
pub struct ToolUsage {
    inner: Mutex<Aggregate>,
}

#[derive(Debug)]
struct Aggregate {
    outcomes: [u64; Outcome::ALL.len()],
    fuel: u64,
    peak_memory_bytes: usize,
    bytes_in: u64,
    bytes_out: u64,
    latency_us: Histogram<u64>,
    max_latency_us: u64,
}

/// A tool's aggregates at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolUsageSummary {
    /// Calls recorded.
    pub calls: u64,
    /// Calls that did not end in `ok`.
    pub errors: u64,
    /// Calls by outcome (only outcomes that occurred).
    pub outcomes: Vec<(Outcome, u64)>,
    /// Wall-time percentiles, in microseconds (to 3 significant digits), and
    /// the exact maximum.
    pub latency_us: Percentiles,
    /// Fuel consumed by all calls.
    pub fuel_total: u64,
    /// The largest linear memory any call had.
    pub peak_memory_bytes: usize,
    /// Argument bytes of all calls.
    pub bytes_in: u64,
    /// Result bytes of all calls.
    pub bytes_out: u64,
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Slowest.
    pub max: u64,
}

impl Default for ToolUsage {
    fn default() -> Self {
        // 1 µs to 1 hour at 3 significant digits: a few tens of KiB per tool.
        let latency_us =
            Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("the bounds are valid");
        Self {
            inner: Mutex::new(Aggregate {
                outcomes: [0; Outcome::ALL.len()],
                fuel: 0,
                peak_memory_bytes: 0,
                bytes_in: 0,
                bytes_out: 0,
                latency_us,
                max_latency_us: 0,
            }),
        }
    }
}

impl ToolUsage {
    /// Adds one call.
    pub fn record(&self, usage: &CallUsage) {
        let mut a = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        a.outcomes[usage.outcome.index()] += 1;
        a.fuel = a.fuel.saturating_add(usage.fuel);
        a.peak_memory_bytes = a.peak_memory_bytes.max(usage.peak_memory_bytes);
        a.bytes_in = a.bytes_in.saturating_add(usage.bytes_in as u64);
        a.bytes_out = a.bytes_out.saturating_add(usage.bytes_out as u64);
        let micros = usage.wall.as_micros().max(1) as u64;
        a.latency_us.saturating_record(micros);
        a.max_latency_us = a.max_latency_us.max(micros);
    }

    /// Calls recorded so far.
    pub fn calls(&self) -> u64 {
        let a = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        a.outcomes.iter().sum()
    }

    /// The aggregates now.
    pub fn summary(&self) -> ToolUsageSummary {
        let a = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let calls: u64 = a.outcomes.iter().sum();
        let ok = a.outcomes[Outcome::Ok.index()];
        let latency_us = if calls == 0 {
            Percentiles::default()
        } else {
            Percentiles {
                p50: a.latency_us.value_at_quantile(0.50),
                p90: a.latency_us.value_at_quantile(0.90),
                p99: a.latency_us.value_at_quantile(0.99),
                max: a.max_latency_us,
            }
        };
        ToolUsageSummary {
            calls,
            errors: calls - ok,
            outcomes: Outcome::ALL
                .iter()
                .map(|&o| (o, a.outcomes[o.index()]))
                .filter(|&(_, n)| n > 0)
                .collect(),
            latency_us,
            fuel_total: a.fuel,
            peak_memory_bytes: a.peak_memory_bytes,
            bytes_in: a.bytes_in,
            bytes_out: a.bytes_out,
        }
    }
}

/// The host process, as sysinfo sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessSummary {
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// CPU use since the previous reading, in percent of one core.
    pub cpu_percent: f32,
    /// Seconds since the process started.
    pub uptime_s: u64,
}

/// Reads the host process's resource use through sysinfo.
pub struct ProcessView {
    system: Mutex<sysinfo::System>,
    pid: sysinfo::Pid,
}

impl ProcessView {
    /// A view of this process, if the platform supports one.
    pub fn new() -> Option<Self> {
        let pid = sysinfo::get_current_pid().ok()?;
        let system = sysinfo::System::new().ok()?;
        let view = Self {
            system: Mutex::new(system),
            pid,
        };
        view.read();
        Some(view)
    }

    /// The process now.
    pub fn read(&self) -> Option<ProcessSummary> {
        let mut system = match self.system.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        system.refresh_processes_specifics(
            sysinfo::ProcessesToUpdate::Some(&[self.pid]),
            false,
            sysinfo::ProcessRefreshKind::nothing()
                .with_memory()
                .with_cpu(),
        );
        let process = system.process(self.pid)?;
        Some(ProcessSummary {
            rss_bytes: process.memory(),
            cpu_percent: process.cpu_usage(),
            uptime_s: process.run_time(),
        })
    }
}

/// Usage aggregates, as served by the `toolmesh://usage` resource.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UsageReport {
    /// The host process (absent where sysinfo cannot read it).
    pub process: Option<ProcessSummary>,
    /// Each plugin's tools.
    pub plugins: Vec<PluginUsage>,
}

/// One plugin's usage.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginUsage {
    /// The plugin.
    pub plugin: String,
    /// Its security level.
    pub level: String,
    /// Each tool, by qualified name.
    pub tools: std::collections::BTreeMap<String, ToolUsageSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(outcome: Outcome, wall_us: u64, fuel: u64) -> CallUsage {
        CallUsage {
            fuel,
            peak_memory_bytes: fuel as usize,
            wall: Duration::from_micros(wall_us),
            bytes_in: 10,
            bytes_out: 20,
            outcome,
        }
    }

    #[test]
    fn aggregates_count_percentiles_and_maxima() {
        let tool = ToolUsage::default();
        for i in 1..=100 {
            tool.record(&usage(Outcome::Ok, i, 1_000));
        }
        tool.record(&usage(Outcome::Quota, 5_000, 7_000));
        let s = tool.summary();
        assert_eq!(s.calls, 101);
        assert_eq!(s.errors, 1);
        assert_eq!(s.outcomes, vec![(Outcome::Ok, 100), (Outcome::Quota, 1)]);
        assert_eq!(s.latency_us.p50, 51);
        assert_eq!(s.latency_us.p90, 91);
        assert_eq!(s.latency_us.max, 5_000);
        assert_eq!(s.fuel_total, 107_000);
        assert_eq!(s.peak_memory_bytes, 7_000);
        assert_eq!((s.bytes_in, s.bytes_out), (1_010, 2_020));
    }

    #[test]
    fn an_unused_tool_has_an_empty_summary() {
        let s = ToolUsage::default().summary();
        assert_eq!(
            (s.calls, s.errors, s.latency_us),
            (0, 0, Percentiles::default())
        );
    }

    #[test]
    fn the_process_view_reads_this_process() {
        let view = ProcessView::new().expect("Linux has a process view");
        let now = view.read().expect("this process exists");
        assert!(now.rss_bytes > 1 << 20, "{now:?}");
    }
}
