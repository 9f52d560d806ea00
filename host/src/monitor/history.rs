//! Usage history: every [`Settings::rollup`] (a minute by default) the
//! usage aggregates are read and what changed since the last reading is
//! rolled up: calls, errors, quota hits, fuel, and p50/p99 from the
//! latency histograms' difference, in all and per tool. Rollups are
//! appended to `<data>/history/YYYY-MM-DD.jsonl` (UTC days), read back at
//! start, and days older than the retention are deleted, so trends survive
//! restarts. Nothing is recorded on the call path: the aggregates are
//! there anyway.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::audit::{day_of, unix_ms};
use crate::plugin::tool::Tool;
use crate::usage::Outcome;

/// The history's directory under the data directory.
pub const DIR: &str = "history";

/// How history is kept.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where (none: in memory only).
    pub dir: Option<PathBuf>,
    /// How often a rollup is made.
    pub rollup: Duration,
    /// How long rollups are kept.
    pub retention: Duration,
}

/// One tool's share of a rollup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolPoint {
    /// The tool.
    pub tool: String,
    /// Its plugin.
    pub plugin: String,
    /// Calls.
    pub calls: u64,
    /// Calls that did not end `ok`.
    pub errors: u64,
    /// Calls a quota ended.
    pub quota_hits: u64,
    /// Fuel.
    pub fuel: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
}

/// What happened in one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// When the interval began (Unix ms).
    pub t_ms: u64,
    /// Its length, s.
    pub step_s: u64,
    /// Calls.
    pub calls: u64,
    /// Calls that did not end `ok`.
    pub errors: u64,
    /// Calls a quota ended.
    pub quota_hits: u64,
    /// Fuel.
    pub fuel: u64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
    /// Tools that were called.
    pub tools: Vec<ToolPoint>,
}

/// A point of a queried range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// When its step began (Unix ms).
    pub t_ms: u64,
    /// Calls.
    pub calls: u64,
    /// Calls that did not end `ok`.
    pub errors: u64,
    /// Quota hits.
    pub quota_hits: u64,
    /// Fuel.
    pub fuel: u64,
    /// Median latency, µs (the calls-weighted mean of the rollups' medians).
    pub p50_us: u64,
    /// 99th percentile, µs (the highest of the rollups' p99s).
    pub p99_us: u64,
}

/// A tool's totals over a queried range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopTool {
    /// The tool.
    pub tool: String,
    /// Calls.
    pub calls: u64,
    /// Errors.
    pub errors: u64,
}

/// A queried range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Range {
    /// `hour`, `day` or `week`.
    pub range: String,
    /// Each point's step, s.
    pub step_s: u64,
    /// The points, oldest first (steps without calls are left out).
    pub points: Vec<Point>,
    /// The most called tools, at most 10.
    pub top_tools: Vec<TopTool>,
}

/// A tool's aggregates at the last reading.
struct Reading {
    calls: u64,
    ok: u64,
    quota_hits: u64,
    fuel: u64,
    latency: Histogram<u64>,
}

impl Reading {
    /// `tool`'s aggregates now.
    fn of(tool: &Tool) -> Self {
        let c = tool.usage.counters(&[]);
        Self {
            calls: c.calls,
            ok: c.outcomes[Outcome::Ok as usize],
            quota_hits: c.quota_hits.iter().sum(),
            fuel: c.fuel,
            latency: tool.usage.latency(),
        }
    }
}

/// The history.
pub struct History {
    settings: Settings,
    state: Mutex<State>,
}

struct State {
    last: HashMap<String, Reading>,
    last_at_ms: u64,
    rollups: VecDeque<Rollup>,
}

impl History {
    /// The history kept as `settings` say, with what is on disk read back.
    pub fn open(settings: Settings) -> Self {
        let now = unix_ms(SystemTime::now());
        let mut rollups = VecDeque::new();
        if let Some(dir) = &settings.dir {
            let horizon = now.saturating_sub(settings.retention.as_millis() as u64);
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            files.sort();
            for file in files {
                let Ok(text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                // A torn last line (a crash mid-write) is skipped.
                rollups.extend(
                    text.lines()
                        .filter_map(|l| serde_json::from_str::<Rollup>(l).ok())
                        .filter(|r| r.t_ms >= horizon),
                );
            }
        }
        Self {
            settings,
            state: Mutex::new(State {
                last: HashMap::new(),
                last_at_ms: now,
                rollups,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// How often rollups are made.
    pub fn interval(&self) -> Duration {
        self.settings.rollup
    }

    /// Reads `tools`' aggregates and rolls up what changed since the last
    /// reading (appended to the day's file, if there were calls).
    pub fn roll(&self, tools: &[Arc<Tool>]) -> Rollup {
        let now = unix_ms(SystemTime::now());
        let mut state = self.lock();
        let mut rollup = Rollup {
            t_ms: state.last_at_ms,
            step_s: (now.saturating_sub(state.last_at_ms) / 1000).max(1),
            calls: 0,
            errors: 0,
            quota_hits: 0,
            fuel: 0,
            p50_us: 0,
            p99_us: 0,
            tools: Vec::new(),
        };
        let mut total: Option<Histogram<u64>> = None;
        let mut seen = HashMap::with_capacity(tools.len());
        for tool in tools {
            let reading = Reading::of(tool);
            let before = state.last.get(&tool.qualified_name);
            // Counters only grow; a smaller reading is a new tool of the same name.
            let before = before.filter(|b| b.calls <= reading.calls);
            let calls = reading.calls - before.map_or(0, |b| b.calls);
            if calls > 0 {
                let ok = reading.ok.saturating_sub(before.map_or(0, |b| b.ok));
                let mut delta = reading.latency.clone();
                if let Some(b) = before {
                    let _ = delta.subtract(&b.latency);
                }
                let point = ToolPoint {
                    tool: tool.qualified_name.clone(),
                    plugin: tool.namespace.clone(),
                    calls,
                    errors: calls.saturating_sub(ok),
                    quota_hits: reading
                        .quota_hits
                        .saturating_sub(before.map_or(0, |b| b.quota_hits)),
                    fuel: reading.fuel.saturating_sub(before.map_or(0, |b| b.fuel)),
                    p99_us: delta.value_at_quantile(0.99),
                };
                rollup.calls += point.calls;
                rollup.errors += point.errors;
                rollup.quota_hits += point.quota_hits;
                rollup.fuel += point.fuel;
                rollup.tools.push(point);
                match &mut total {
                    Some(t) => {
                        let _ = t.add(&delta);
                    }
                    None => total = Some(delta),
                }
            }
            seen.insert(tool.qualified_name.clone(), reading);
        }
        if let Some(t) = &total {
            rollup.p50_us = t.value_at_quantile(0.50);
            rollup.p99_us = t.value_at_quantile(0.99);
        }
        state.last = seen;
        state.last_at_ms = now;
        let horizon = now.saturating_sub(self.settings.retention.as_millis() as u64);
        while state.rollups.front().is_some_and(|r| r.t_ms < horizon) {
            state.rollups.pop_front();
        }
        if rollup.calls > 0 {
            state.rollups.push_back(rollup.clone());
            drop(state);
            if let Err(e) = self.append(&rollup) {
                tracing::warn!("cannot write the usage history: {e}");
            }
            self.expire(horizon);
        }
        rollup
    }

    /// Sets the baseline without recording (at start: calls made before
    /// the history began are not the first interval's).
    pub fn baseline(&self, tools: &[Arc<Tool>]) {
        {
            let mut state = self.lock();
            state.last.clear();
            for tool in tools {
                state
                    .last
                    .insert(tool.qualified_name.clone(), Reading::of(tool));
            }
            state.last_at_ms = unix_ms(SystemTime::now());
        }
    }

    fn append(&self, rollup: &Rollup) -> std::io::Result<()> {
        let Some(dir) = &self.settings.dir else {
            return Ok(());
        };
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.jsonl", day_of(rollup.t_ms)));
        let mut line = serde_json::to_vec(rollup).map_err(std::io::Error::other)?;
        line.push(b'\n');
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(&line)
    }

    /// Deletes day files wholly older than `horizon`.
    fn expire(&self, horizon: u64) {
        let Some(dir) = &self.settings.dir else {
            return;
        };
        // A day file is kept while its day (or the day after: a file holds
        // one UTC day) may hold a rollup at or after the horizon.
        let oldest_kept = day_of(horizon.saturating_sub(86_400_000));
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(day) = name.strip_suffix(".jsonl")
                && day.len() == 10
                && day < oldest_kept.as_str()
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The rollups of the last hour, day or week, in steps of a minute
    /// (or the rollup interval, if shorter), ten minutes or an hour.
    pub fn range(&self, range: &str) -> Result<Range, String> {
        let (span_s, step_s) = match range {
            "hour" => (3_600, self.settings.rollup.as_secs().clamp(1, 60)),
            "day" => (86_400, 600),
            "week" => (7 * 86_400, 3_600),
            other => {
                return Err(format!(
                    "unknown range `{}` (hour, day or week)",
                    crate::text::truncate(other, 32)
                ));
            }
        };
        let now = unix_ms(SystemTime::now());
        let from = now.saturating_sub(span_s * 1000);
        let step_ms = step_s * 1000;
        let state = self.lock();
        let mut steps: BTreeMap<u64, (Point, u64)> = BTreeMap::new();
        let mut tools: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for r in state.rollups.iter().filter(|r| r.t_ms >= from) {
            let t = r.t_ms - r.t_ms % step_ms;
            let (point, weighted_p50) = steps.entry(t).or_insert((
                Point {
                    t_ms: t,
                    calls: 0,
                    errors: 0,
                    quota_hits: 0,
                    fuel: 0,
                    p50_us: 0,
                    p99_us: 0,
                },
                0,
            ));
            point.calls += r.calls;
            point.errors += r.errors;
            point.quota_hits += r.quota_hits;
            point.fuel += r.fuel;
            point.p99_us = point.p99_us.max(r.p99_us);
            *weighted_p50 += r.p50_us * r.calls;
            for tool in &r.tools {
                let entry = tools.entry(tool.tool.clone()).or_default();
                entry.0 += tool.calls;
                entry.1 += tool.errors;
            }
        }
        let points = steps
            .into_values()
            .map(|(mut p, weighted)| {
                p.p50_us = weighted / p.calls.max(1);
                p
            })
            .collect();
        let mut top: Vec<TopTool> = tools
            .into_iter()
            .map(|(tool, (calls, errors))| TopTool {
                tool,
                calls,
                errors,
            })
            .collect();
        top.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.tool.cmp(&b.tool)));
        top.truncate(10);
        Ok(Range {
            range: range.to_owned(),
            step_s,
            points,
            top_tools: top,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::usage::{CallUsage, QuotaKind};
    use crate::wit::{ToolHints, ToolSpec};

    fn tool(name: &str) -> Arc<Tool> {
        let spec = ToolSpec {
            name: name.into(),
            title: None,
            description: "t".into(),
            input_schema: r#"{"type":"object"}"#.into(),
            output_schema: None,
            hints: ToolHints {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
            needs: Vec::new(),
        };
        Arc::new(Tool::from_spec("p", spec).unwrap())
    }

    fn call(tool: &Tool, outcome: Outcome, micros: u64) {
        tool.usage.record(&CallUsage {
            fuel: 10,
            peak_memory_bytes: 0,
            wall: Duration::from_micros(micros),
            bytes_in: 0,
            bytes_out: 0,
            outcome,
            quota: (outcome == Outcome::Quota).then_some(QuotaKind::Fuel),
        });
    }

    #[test]
    fn rollups_hold_what_changed_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            dir: Some(dir.path().join(DIR)),
            rollup: Duration::from_secs(60),
            retention: Duration::from_secs(7 * 86_400),
        };
        let a = tool("a");
        let b = tool("b");
        call(&a, Outcome::Ok, 100);
        let history = History::open(settings.clone());
        history.baseline(&[a.clone(), b.clone()]);
        for _ in 0..9 {
            call(&a, Outcome::Ok, 1_000);
        }
        call(&b, Outcome::Quota, 50_000);
        let first = history.roll(&[a.clone(), b.clone()]);
        assert_eq!((first.calls, first.errors, first.quota_hits), (10, 1, 1));
        assert_eq!(first.fuel, 100);
        assert_eq!(first.tools.len(), 2);
        assert!(first.p99_us >= 49_000, "{first:?}");
        // Nothing new: no rollup is kept.
        assert_eq!(history.roll(&[a.clone(), b.clone()]).calls, 0);
        let again = History::open(settings);
        let hour = again.range("hour").unwrap();
        assert_eq!(hour.points.len(), 1);
        assert_eq!(hour.points[0].calls, 10);
        assert_eq!(hour.top_tools[0].tool, "p__a");
        assert_eq!(hour.top_tools[0].calls, 9);
        assert!(again.range("year").is_err());
    }
}
