//! Prometheus metrics at `/metrics`, in the OpenMetrics text format
//! (`prometheus-client`). Nothing is recorded for them on the call path:
//! a scrape reads the aggregates the tool service keeps anyway (each
//! tool's counters and latency histogram), the operations' states and
//! breakers, the HTTP edge's counters, the mesh's traffic and the process.
//!
//! Families (all prefixed `toolmesh_`): `tool_calls_total{plugin,tool,outcome}`,
//! `tool_call_duration_seconds{plugin,tool}` (histogram), `tool_fuel_total`,
//! `tool_peak_memory_bytes`, `tool_bytes_in_total`, `tool_bytes_out_total`,
//! `tool_quota_hits_total{plugin,tool,quota}`, `plugin_state{plugin,state}`,
//! `plugin_breaker_state{plugin,state}`, `http_requests_total{status,client}`,
//! `http_rate_limited_total{client}`, `mesh_peers`, `mesh_peers_connected`,
//! `mesh_bytes_total{direction}`, `mesh_transfers`, `alerts_open`,
//! `process_resident_memory_bytes`, `process_cpu_seconds_total`,
//! `process_uptime_seconds`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::ops::breaker::Position;
use crate::ops::control::PluginControl;
use crate::ops::state::PluginState;
use crate::p2p::Mesh;
use crate::service::ToolService;
use crate::usage::{Outcome, QuotaKind};

/// The labels of a family with one series.
const NO_LABELS: [(&str, &str); 0] = [];

/// Latency histogram bounds, µs (100 µs to 60 s).
const BOUNDS_US: [u64; 18] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Requests the HTTP edge answered, by status and client, and its
/// rate-limit refusals by client. One short mutex per request.
#[derive(Debug, Default)]
pub struct HttpCounters {
    requests: Mutex<HashMap<(u16, String), u64>>,
    rate_limited: Mutex<HashMap<String, u64>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl HttpCounters {
    /// Counts a request answered with `status` for `client` (`-` if unknown).
    pub fn answered(&self, status: u16, client: &str) {
        let mut requests = locked(&self.requests);
        match requests.get_mut(&(status, client.to_owned())) {
            Some(n) => *n += 1,
            None => {
                requests.insert((status, client.to_owned()), 1);
            }
        }
    }

    /// Counts a request refused by `client`'s rate limit.
    pub fn rate_limited(&self, client: &str) {
        *locked(&self.rate_limited)
            .entry(client.to_owned())
            .or_default() += 1;
    }
}

/// What the metrics are read from.
#[derive(Clone)]
pub struct Sources {
    /// The tool service (every provider's tools and the process).
    pub service: ToolService,
    /// The plugin control (states and breakers of every known plugin).
    pub control: Arc<PluginControl>,
    /// The mesh, if it runs.
    pub mesh: Option<Arc<Mesh>>,
    /// The HTTP edge's counters.
    pub http: Arc<HttpCounters>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

/// The metrics endpoint's registry.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Metrics read from `sources`.
    pub fn new(sources: Sources) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(sources));
        Self { registry }
    }

    /// The exposition, as `/metrics` serves it.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(16 << 10);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: impl IntoIterator<Item = (impl EncodeLabelSet, u64)>,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for (labels, value) in rows {
        family
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: impl IntoIterator<Item = (impl EncodeLabelSet, V)>,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for (labels, value) in rows {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

impl Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let e = &mut encoder;
        let tools: Vec<_> = self
            .service
            .tools()
            .into_iter()
            .map(|t| {
                let c = t.usage.counters(&BOUNDS_US);
                (t, c)
            })
            .collect();
        let id = |t: &crate::plugin::tool::Tool| {
            [
                ("plugin", t.namespace.clone()),
                ("tool", t.qualified_name.clone()),
            ]
        };
        counter(
            e,
            "toolmesh_tool_calls",
            "Tool calls, by how they ended.",
            None,
            tools.iter().flat_map(|(t, c)| {
                Outcome::ALL.iter().enumerate().map(move |(i, o)| {
                    let [plugin, tool] = id(t);
                    (
                        [plugin, tool, ("outcome", o.name().to_owned())],
                        c.outcomes[i],
                    )
                })
            }),
        )?;
        {
            let mut family = e.encode_descriptor(
                "toolmesh_tool_call_duration",
                "Tool call wall time, as the host saw it.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (t, c) in &tools {
                // The encoder sums the buckets up itself: hand it each
                // bucket's own count (the aggregates' are cumulative).
                let mut buckets: Vec<(f64, u64)> = Vec::with_capacity(BOUNDS_US.len() + 1);
                let mut below = 0;
                for (&bound, &cumulative) in BOUNDS_US.iter().zip(&c.latency_buckets) {
                    buckets.push((bound as f64 / 1e6, cumulative.saturating_sub(below)));
                    below = below.max(cumulative);
                }
                buckets.push((f64::INFINITY, c.calls.saturating_sub(below)));
                family
                    .encode_family(&id(t))?
                    .encode_histogram::<NoLabelSet>(
                        c.latency_sum_us as f64 / 1e6,
                        c.calls,
                        &buckets,
                        None,
                    )?;
            }
        }
        counter(
            e,
            "toolmesh_tool_fuel",
            "Fuel consumed by tool calls (about one unit per WebAssembly instruction).",
            None,
            tools.iter().map(|(t, c)| (id(t), c.fuel)),
        )?;
        gauge(
            e,
            "toolmesh_tool_peak_memory",
            "The largest linear memory any call of the tool had.",
            Some(&Unit::Bytes),
            tools
                .iter()
                .map(|(t, c)| (id(t), c.peak_memory_bytes as u64)),
        )?;
        counter(
            e,
            "toolmesh_tool_bytes_in",
            "Argument bytes of tool calls.",
            None,
            tools.iter().map(|(t, c)| (id(t), c.bytes_in)),
        )?;
        counter(
            e,
            "toolmesh_tool_bytes_out",
            "Result bytes of tool calls.",
            None,
            tools.iter().map(|(t, c)| (id(t), c.bytes_out)),
        )?;
        counter(
            e,
            "toolmesh_tool_quota_hits",
            "Tool calls ended by a quota, by quota.",
            None,
            tools.iter().flat_map(|(t, c)| {
                QuotaKind::ALL.iter().enumerate().map(move |(i, q)| {
                    let [plugin, tool] = id(t);
                    (
                        [plugin, tool, ("quota", q.name().to_owned())],
                        c.quota_hits[i],
                    )
                })
            }),
        )?;
        let ops = self.control.operations();
        let known: Vec<String> = self.control.known().into_keys().collect();
        gauge(
            e,
            "toolmesh_plugin_state",
            "Each plugin's lifecycle state (1 for the state it is in).",
            None,
            known.iter().flat_map(|name| {
                let state = ops.states.get(name).state;
                [
                    PluginState::Enabled,
                    PluginState::Paused,
                    PluginState::Disabled,
                ]
                .map(|s| {
                    (
                        [("plugin", name.clone()), ("state", s.name().to_owned())],
                        i64::from(s == state),
                    )
                })
            }),
        )?;
        gauge(
            e,
            "toolmesh_plugin_breaker_state",
            "Each plugin's circuit breaker (1 for the position it is in).",
            None,
            known
                .iter()
                .filter_map(|name| Some((name, ops.breaker(name)?)))
                .flat_map(|(name, view)| {
                    [
                        (Position::Closed, "closed"),
                        (Position::Open, "open"),
                        (Position::HalfOpen, "half_open"),
                    ]
                    .map(|(p, label)| {
                        (
                            [("plugin", name.clone()), ("state", label.to_owned())],
                            i64::from(p == view.state),
                        )
                    })
                }),
        )?;
        let requests: Vec<_> = locked(&self.http.requests)
            .iter()
            .map(|((status, client), n)| {
                (
                    [("status", status.to_string()), ("client", client.clone())],
                    *n,
                )
            })
            .collect();
        counter(
            e,
            "toolmesh_http_requests",
            "HTTP requests answered, by status and client.",
            None,
            requests,
        )?;
        let limited: Vec<_> = locked(&self.http.rate_limited)
            .iter()
            .map(|(client, n)| ([("client", client.clone())], *n))
            .collect();
        counter(
            e,
            "toolmesh_http_rate_limited",
            "HTTP requests refused by the client's rate limit.",
            None,
            limited,
        )?;
        if let Some(mesh) = &self.mesh {
            let peers = mesh.peers();
            let connected = peers.iter().filter(|p| p.connected).count();
            gauge(
                e,
                "toolmesh_mesh_peers",
                "Peers this host knows.",
                None,
                [(NO_LABELS, peers.len() as i64)],
            )?;
            gauge(
                e,
                "toolmesh_mesh_peers_connected",
                "Peers with an open connection.",
                None,
                [(NO_LABELS, connected as i64)],
            )?;
            let traffic = mesh.traffic();
            counter(
                e,
                "toolmesh_mesh",
                "Blob chunk bytes moved by the mesh (received: verified).",
                Some(&Unit::Bytes),
                [
                    ([("direction", "received")], traffic.received()),
                    ([("direction", "sent")], traffic.sent()),
                ],
            )?;
            gauge(
                e,
                "toolmesh_mesh_transfers",
                "Fetches in progress.",
                None,
                [(NO_LABELS, traffic.in_progress().len() as i64)],
            )?;
        }
        gauge(
            e,
            "toolmesh_alerts_open",
            "Unacknowledged alerts.",
            None,
            [(NO_LABELS, ops.alerts.open_alerts().len() as i64)],
        )?;
        if let Some(process) = self.service.process() {
            gauge(
                e,
                "toolmesh_process_resident_memory",
                "The host process's resident memory.",
                Some(&Unit::Bytes),
                [(NO_LABELS, process.rss_bytes)],
            )?;
            gauge(
                e,
                "toolmesh_process_uptime",
                "Since the host process started.",
                Some(&Unit::Seconds),
                [(NO_LABELS, process.uptime_s)],
            )?;
        }
        if let Some(cpu) = cpu_seconds() {
            let mut family = e.encode_descriptor(
                "toolmesh_process_cpu",
                "CPU time of the host process (user and system).",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?;
            family.encode_counter::<NoLabelSet, _, u64>(&cpu, None)?;
        }
        Ok(())
    }
}

/// This process's user and system CPU time, from `/proc/self/stat`
/// (Linux; its clock ticks are 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
