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
    /// Refused: the operator paused the plugin.
    Paused,
    /// Refused: the plugin's circuit breaker is open.
    BreakerOpen,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 10] = [
        Outcome::Ok,
        Outcome::InvalidArguments,
        Outcome::Denied,
        Outcome::ToolError,
        Outcome::Quota,
        Outcome::Trap,
        Outcome::Cancelled,
        Outcome::HostError,
        Outcome::Paused,
        Outcome::BreakerOpen,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The outcome's name, as usage records and metrics give it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::InvalidArguments => "invalid_arguments",
            Outcome::Denied => "denied",
            Outcome::ToolError => "tool_error",
            Outcome::Quota => "quota",
            Outcome::Trap => "trap",
            Outcome::Cancelled => "cancelled",
            Outcome::HostError => "host_error",
            Outcome::Paused => "paused",
            Outcome::BreakerOpen => "breaker_open",
        }
    }
}

/// Which quota ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKind {
    /// Fuel per call.
    Fuel,
    /// Linear memory.
    Memory,
    /// Open handles.
    Handles,
    /// The wall-clock deadline.
    Deadline,
    /// Output bytes.
    Output,
}

impl QuotaKind {
    /// Every quota.
    pub const ALL: [QuotaKind; 5] = [
        QuotaKind::Fuel,
        QuotaKind::Memory,
        QuotaKind::Handles,
        QuotaKind::Deadline,
        QuotaKind::Output,
    ];

    /// The quota's name.
    pub fn name(self) -> &'static str {
        match self {
            QuotaKind::Fuel => "fuel",
            QuotaKind::Memory => "memory",
            QuotaKind::Handles => "handles",
            QuotaKind::Deadline => "deadline",
            QuotaKind::Output => "output",
        }
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
    /// The quota that ended it, if one did.
    pub quota: Option<QuotaKind>,
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
    latency_sum_us: u64,
    max_latency_us: u64,
    quota_hits: [u64; QuotaKind::ALL.len()],
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
    /// Calls ended by each quota (only quotas that were hit).
    #[serde(default)]
    pub quota_hits: Vec<(QuotaKind, u64)>,
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
                latency_sum_us: 0,
                max_latency_us: 0,
                quota_hits: [0; QuotaKind::ALL.len()],
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
        a.latency_sum_us = a.latency_sum_us.saturating_add(micros);
        a.max_latency_us = a.max_latency_us.max(micros);
        if let Some(quota) = usage.quota {
            a.quota_hits[quota as usize] += 1;
        }
    }

    /// The aggregates as counters: calls by outcome, quota hits by quota,
    /// fuel, the largest memory, and latency as a histogram with upper
    /// bounds `bounds_us` (cumulative counts) and its sum, in µs.
    pub fn counters(&self, bounds_us: &[u64]) -> Counters {
        let a = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let calls: u64 = a.outcomes.iter().sum();
        let buckets = bounds_us
            .iter()
            .map(|&bound| a.latency_us.count_between(1, bound.max(1)))
            .collect();
        Counters {
            outcomes: a.outcomes,
            quota_hits: a.quota_hits,
            fuel: a.fuel,
            peak_memory_bytes: a.peak_memory_bytes,
            bytes_in: a.bytes_in,
            bytes_out: a.bytes_out,
            calls,
            latency_buckets: buckets,
            latency_sum_us: a.latency_sum_us,
        }
    }

    /// A copy of the latency histogram (µs), for rollups.
    pub fn latency(&self) -> Histogram<u64> {
        let a = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        a.latency_us.clone()
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
            quota_hits: QuotaKind::ALL
                .iter()
                .map(|&q| (q, a.quota_hits[q as usize]))
                .filter(|&(_, n)| n > 0)
                .collect(),
        }
    }
}

/// A tool's aggregates as monotonic counters (for metrics and rollups).
#[derive(Debug, Clone, PartialEq)]
pub struct Counters {
    /// Calls by outcome, indexed as [`Outcome::ALL`].
    pub outcomes: [u64; Outcome::ALL.len()],
    /// Quota hits, indexed as [`QuotaKind::ALL`].
    pub quota_hits: [u64; QuotaKind::ALL.len()],
    /// Fuel of all calls.
    pub fuel: u64,
    /// The largest linear memory of any call.
    pub peak_memory_bytes: usize,
    /// Argument bytes.
    pub bytes_in: u64,
    /// Result bytes.
    pub bytes_out: u64,
    /// Calls.
    pub calls: u64,
    /// Cumulative counts at each asked-for bound.
    pub latency_buckets: Vec<u64>,
    /// Sum of latencies, µs.
    pub latency_sum_us: u64,
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
            quota: (outcome == Outcome::Quota).then_some(QuotaKind::Fuel),
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
        assert_eq!(s.quota_hits, vec![(QuotaKind::Fuel, 1)]);
        let c = tool.counters(&[10, 100, 10_000]);
        assert_eq!(c.latency_buckets, vec![10, 100, 101]);
        assert_eq!(c.latency_sum_us, 5_050 + 5_000);
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
