//! What operating a host costs, and how fast it answers (issue 14):
//!
//! - per call: what the tool service adds for operations (the lifecycle
//!   check, the breaker, the live feed) with and without a live viewer;
//!   metrics and history record nothing per call (they read the usage
//!   aggregates when scraped or rolled up), so this is their whole cost;
//! - per scrape and rollup: rendering `/metrics` and one history rollup
//!   with the bundled plugins loaded;
//! - hot reload: a plugin directory dropped into (and removed from) a
//!   running host's plugin directory, to `notifications/tools/list_changed`
//!   at a connected MCP client (stdio);
//! - the dashboard over loopback: its initial load as raw HTTP (the page,
//!   its assets and first reads) and in headless Chromium (until the
//!   overview shows data), and the latency from an MCP call's result to its
//!   row on the overview.
//!
//! Run: `cargo bench -p toolmesh --bench operate` (the browser part needs
//! `cargo xtask test` to have installed Chromium and the Node tools).

use std::path::Path;

#[path = "common/mod.rs"]
mod common;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use toolmesh::monitor::history::{History, Settings};
use toolmesh::monitor::metrics::{HttpCounters, Metrics, Sources};
use toolmesh::ops::Operations;
use toolmesh::ops::breaker::BreakerPolicy;
use toolmesh::ops::feed::CallEvent;
use toolmesh::usage::Outcome;
use toolmesh_test_support::browser::drive_dashboard;
use toolmesh_test_support::http::{HttpHost, dashboard_sign_in, operator_and_agent_keys};
use toolmesh_test_support::{ListWatcher, TempHost, connect_command, serve_command};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

fn event() -> CallEvent {
    CallEvent {
        seq: 0,
        time_ms: 0,
        tool: "hello__add".into(),
        plugin: "hello".into(),
        client: Some("agent".into()),
        agent: Some("alice".into()),
        outcome: Outcome::Ok,
        micros: 12,
        fuel: 11_700,
        peak_memory_bytes: 1 << 20,
        bytes_in: 13,
        bytes_out: 11,
    }
}

fn bench_per_call(c: &mut Criterion) {
    let ops = Operations::in_memory();
    ops.track("hello", BreakerPolicy::default());
    let mut group = c.benchmark_group("operate");
    group.bench_function("per_call/admit_finish_feed", |b| {
        b.iter(|| {
            let admission = ops.admit("hello").expect("enabled");
            ops.finish(admission, Outcome::Ok);
            ops.feed.push(event());
        });
    });
    // A dashboard open: every call is also broadcast to it.
    let mut viewer = ops.feed.subscribe();
    group.bench_function("per_call/admit_finish_feed_with_a_viewer", |b| {
        b.iter(|| {
            let admission = ops.admit("hello").expect("enabled");
            ops.finish(admission, Outcome::Ok);
            ops.feed.push(event());
            while viewer.try_recv().is_ok() {}
        });
    });

    // The host's runtime keeps its tasks alive while the figures are taken.
    let common::BenchHost { rt: _rt, host, .. } = &common::bench_host();
    let metrics = Metrics::new(Sources {
        service: host.service.clone(),
        control: host.control.clone(),
        mesh: None,
        http: Arc::new(HttpCounters::default()),
    });
    let text = metrics.render().expect("metrics");
    eprintln!(
        "operate: /metrics is {} bytes, {} series, for {} tools",
        text.len(),
        text.lines().filter(|l| !l.starts_with('#')).count(),
        host.service.tools().len()
    );
    group.bench_function("scrape/metrics_render", |b| {
        b.iter(|| metrics.render().expect("metrics"));
    });
    let history = History::open(Settings {
        dir: None,
        rollup: Duration::from_secs(60),
        retention: Duration::from_secs(7 * 86_400),
    });
    let tools = host.service.tools();
    group.bench_function("rollup/history_roll", |b| {
        b.iter(|| history.roll(&tools));
    });
    group.finish();
}

/// Drop-to-`list_changed` and remove-to-`list_changed`, `rounds` times.
async fn reload_times(rounds: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let host = TempHost::new()?;
    let mut args = host.args();
    args.push("--no-bundled".into());
    let watcher = ListWatcher::default();
    let session = connect_command(watcher.clone(), serve_command(Path::new(BIN), &args)).await?;
    let hello = Path::new(toolmesh::plugin::bundled::BUNDLED_DIR).join("hello");
    let staging = tempfile::tempdir()?;
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        // Copied beside the directory, then renamed in: what an installer does.
        let copy = staging.path().join("hello");
        std::fs::create_dir_all(&copy)?;
        for entry in std::fs::read_dir(&hello)? {
            let entry = entry?;
            std::fs::copy(entry.path(), copy.join(entry.file_name()))?;
        }
        let seen = watcher.changes();
        let started = Instant::now();
        std::fs::rename(&copy, host.plugins_dir().join("hello"))?;
        watcher
            .changed_after(seen, Duration::from_secs(10))
            .await
            .ok_or_else(|| anyhow::anyhow!("no list_changed after the drop"))?;
        added.push(started.elapsed());
        let seen = watcher.changes();
        let started = Instant::now();
        std::fs::remove_dir_all(host.plugins_dir().join("hello"))?;
        watcher
            .changed_after(seen, Duration::from_secs(10))
            .await
            .ok_or_else(|| anyhow::anyhow!("no list_changed after the removal"))?;
        removed.push(started.elapsed());
    }
    session.cancel().await?;
    Ok((added, removed))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

/// The page, its assets, the session and the overview, as the browser asks
/// for them at load (assets in parallel), `rounds` times; milliseconds.
async fn http_load_times(
    server: &HttpHost,
    admin_key: &str,
    rounds: usize,
) -> anyhow::Result<Vec<f64>> {
    let http = reqwest::Client::new();
    let (cookie, _) = dashboard_sign_in(server, admin_key).await?;
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let page = http.get(server.url_of("/")).send().await?.bytes().await?;
        anyhow::ensure!(!page.is_empty(), "no page");
        let get = |path: &str| {
            http.get(server.url_of(path))
                .header("cookie", &cookie)
                .send()
        };
        let (js, css, session, overview) = tokio::join!(
            get("/assets/app.js"),
            get("/assets/app.css"),
            get("/api/session"),
            get("/api/overview")
        );
        for response in [js?, css?, session?, overview?] {
            anyhow::ensure!(response.status().is_success(), "{}", response.status());
            response.bytes().await?;
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

fn bench_live(_c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let (added, removed) = reload_times(10).await.expect("reload");
        let ms = |d: &[Duration]| d.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>();
        let (mut a, mut r) = (ms(&added), ms(&removed));
        eprintln!(
            "operate/hot_reload: drop to list_changed median {:.0} ms (max {:.0}); removal to \
             list_changed median {:.0} ms (max {:.0}); 10 rounds, settle {} ms included",
            median(&mut a),
            max(&a),
            median(&mut r),
            max(&r),
            toolmesh::ops::watch::SETTLE.as_millis()
        );

        let host = TempHost::new().expect("host");
        host.add_plugin(
            &Path::new(toolmesh::plugin::bundled::BUNDLED_DIR).join("hello"),
            "hello",
        )
        .expect("hello");
        let args = host.args();
        let (admin, agent) = operator_and_agent_keys(Path::new(BIN), &args).expect("keys");
        let server = HttpHost::start(Path::new(BIN), &args, &[])
            .await
            .expect("serve");
        let mut load = http_load_times(&server, &admin, 50)
            .await
            .expect("http load");
        eprintln!(
            "operate/dashboard_http_load: page + assets + session + overview, median {:.1} ms \
             (max {:.1}), 50 rounds",
            median(&mut load),
            max(&load)
        );
        let shots = tempfile::tempdir().expect("tempdir");
        match drive_dashboard(&server, &admin, &agent, shots.path(), 10).await {
            Ok(run) => {
                let mut initial = run.values("initial_load_ms");
                let mut to_screen = run.values("call_to_screen_ms");
                eprintln!(
                    "operate/dashboard_browser: initial load median {:.0} ms (max {:.0}); call \
                     to screen median {:.0} ms (max {:.0}); 10 rounds in headless Chromium",
                    median(&mut initial),
                    max(&initial),
                    median(&mut to_screen),
                    max(&to_screen)
                );
            }
            Err(e) => eprintln!("operate/dashboard_browser: not measured: {e}"),
        }
        server.stop().await.expect("stop");
    });
}

criterion_group!(benches, bench_per_call, bench_live);
criterion_main!(benches);
