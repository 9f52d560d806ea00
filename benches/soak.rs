//! Soak: mixed traffic through the in-process tool service for a bounded
//! number of calls: every core plugin (hello, permission, discovery,
//! budget, neural) with hostile calls mixed in (traps, fuel and memory
//! exhaustion, log floods, oversized errors) from the `hostile` test plugin
//! at `untrusted`. The host's RSS, open file descriptors and data
//! directory size are read after the first 10,000 calls and at the end.
//!
//! Target (issue 18): after 1M calls, RSS and open descriptors within 10%
//! of their values after 10k, and no growth in the data directory beyond
//! what the calls stored (they overwrite the same keys, so: none).
//!
//! `cargo bench -p toolmesh --bench soak` (`TOOLMESH_SOAK_CALLS`, default
//! 1,000,000; `TOOLMESH_SOAK_WORKERS`, default 4).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use toolmesh::app::Stack;
use toolmesh::config::Config;
use toolmesh::service::{CallMeta, ToolService};

/// One kind of call in the mix: its tool, arguments and weight (calls per
/// 10,000), and whether it must succeed.
struct Kind {
    tool: &'static str,
    arguments: fn(u64) -> Value,
    per_10k: u64,
    ok: bool,
}

const MIX: &[Kind] = &[
    Kind {
        tool: "hello__add",
        arguments: |i| json!({"a": i % 1000, "b": 1}),
        per_10k: 3000,
        ok: true,
    },
    Kind {
        tool: "hello__greet",
        arguments: |i| json!({"name": format!("agent-{}", i % 50)}),
        per_10k: 2000,
        ok: true,
    },
    Kind {
        tool: "hostile__noop",
        arguments: |_| json!({}),
        per_10k: 1400,
        ok: true,
    },
    Kind {
        tool: "neural__run",
        arguments: |i| json!({"name": "soak", "inputs": [[(i % 3) as f64 - 1.0, 0.5]]}),
        per_10k: 1500,
        ok: true,
    },
    Kind {
        tool: "discovery__discover",
        arguments: |_| json!({"capability": "search"}),
        per_10k: 800,
        ok: true,
    },
    Kind {
        tool: "budget__status",
        arguments: |_| json!({"id": "soak"}),
        per_10k: 500,
        ok: true,
    },
    Kind {
        tool: "permission__validate",
        arguments: |i| json!({"token": format!("tm_guess{i}"), "agent": "bob", "resource": "x"}),
        per_10k: 300,
        ok: false,
    },
    Kind {
        tool: "discovery__register",
        arguments: |i| json!({"id": format!("agent-{}", i % 20), "capabilities": ["search"]}),
        per_10k: 100,
        ok: true,
    },
    Kind {
        tool: "budget__report_spending",
        arguments: |_| json!({"id": "soak", "amount": 1, "allow_overdraft": true}),
        per_10k: 100,
        ok: true,
    },
    Kind {
        tool: "hostile__panic",
        arguments: |_| json!({"message": "soak"}),
        per_10k: 100,
        ok: false,
    },
    Kind {
        tool: "hostile__huge_error",
        arguments: |_| json!({"mib": 2}),
        per_10k: 60,
        ok: false,
    },
    Kind {
        tool: "hostile__log_flood",
        arguments: |_| json!({"count": 200}),
        per_10k: 60,
        ok: true,
    },
    Kind {
        tool: "hostile__alloc",
        arguments: |_| json!({"mib": 64}),
        per_10k: 40,
        ok: false,
    },
    Kind {
        tool: "hostile__spin",
        arguments: |_| json!({}),
        per_10k: 40,
        ok: false,
    },
];

/// The level hostile calls run at: small fuel so a spin ends in
/// milliseconds, and no breaker (the mix trips it on purpose).
const CONFIG: &str = r#"
[levels.untrusted]
fuel = 20000000
memory_bytes = 33554432
timeout_ms = 2000
capabilities = ["log", "kv"]

[levels.untrusted.breaker]
failures = 1000000
"#;

/// What is watched: resident memory, open descriptors, data bytes.
#[derive(Debug, Clone, Copy)]
struct Reading {
    rss_kib: u64,
    fds: u64,
    data_bytes: u64,
}

fn read(data: &Path) -> Reading {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    Reading {
        rss_kib,
        fds,
        data_bytes: dir_bytes(data),
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => dir_bytes(&path),
                Ok(_) => e.metadata().map_or(0, |m| m.len()),
                Err(_) => 0,
            }
        })
        .sum()
}

/// The kind of call number `i` (a fixed interleaving of the weights).
fn kind_of(i: u64) -> &'static Kind {
    let slot = (i.wrapping_mul(7919)) % 10_000;
    let mut at = 0;
    for kind in MIX {
        at += kind.per_10k;
        if slot < at {
            return kind;
        }
    }
    &MIX[0]
}

async fn call(service: &ToolService, i: u64, failures: &AtomicU64) {
    let kind = kind_of(i);
    let Value::Object(arguments) = (kind.arguments)(i) else {
        unreachable!("arguments are objects")
    };
    let cancel = CancellationToken::new();
    let result = service
        .call(kind.tool, Some(arguments), CallMeta::default(), &cancel)
        .await
        .expect("a known tool");
    if kind.ok && result.is_error == Some(true) {
        failures.fetch_add(1, Ordering::Relaxed);
        eprintln!("{} failed: {:?}", kind.tool, result.content.first());
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` runs this as a smoke
    // test of the mix, a few thousand calls.
    let benching = std::env::args().any(|a| a == "--bench");
    let warm_calls: u64 = if benching { 10_000 } else { 1_000 };
    let total: u64 = std::env::var("TOOLMESH_SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 3 * warm_calls });
    let workers: u64 = std::env::var("TOOLMESH_SOAK_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    let hostile = toolmesh_test_support::test_plugin("hostile");
    std::fs::create_dir_all(plugins.join("hostile")).expect("plugins");
    for entry in std::fs::read_dir(&hostile).expect("the hostile plugin") {
        let entry = entry.expect("entry");
        std::fs::copy(
            entry.path(),
            plugins.join("hostile").join(entry.file_name()),
        )
        .expect("copy");
    }
    let data = dir.path().join("data");
    let mut config = Config::parse(CONFIG).expect("config");
    config.data_dir = Some(data.clone());
    config.plugins_dir = Some(plugins);
    let host = rt.block_on(Stack::start(&config)).expect("host");
    let service = host.service.clone();
    rt.block_on(async {
        let setup = [
            (
                "neural__create",
                json!({"name": "soak", "layers": [2, 8, 1], "seed": 1}),
            ),
            (
                "budget__set_budget",
                json!({"id": "soak", "limit": 1_000_000_000u64}),
            ),
        ];
        for (tool, arguments) in setup {
            let Value::Object(arguments) = arguments else {
                unreachable!()
            };
            let result = service
                .call(
                    tool,
                    Some(arguments),
                    CallMeta::default(),
                    &CancellationToken::new(),
                )
                .await
                .expect("setup");
            assert_ne!(result.is_error, Some(true), "{tool}: {:?}", result.content);
        }
    });
    let failures = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let run_until = |limit: u64| {
        rt.block_on(async {
            let tasks: Vec<_> = (0..workers)
                .map(|_| {
                    let (service, next, failures) =
                        (service.clone(), next.clone(), failures.clone());
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= limit {
                                next.fetch_sub(1, Ordering::Relaxed);
                                return;
                            }
                            call(&service, i, &failures).await;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("a worker");
            }
        });
    };
    let started = Instant::now();
    run_until(warm_calls.min(total));
    let warm = read(&data);
    let warm_at = started.elapsed();
    run_until(total);
    let end = read(&data);
    let took = started.elapsed();
    let calls = next.load(Ordering::Relaxed);
    let ratio = |a: u64, b: u64| b as f64 / a.max(1) as f64;
    println!(
        "soak: {calls} calls in {:.1} s ({:.0} calls/s), {workers} workers, {} failures of calls that must succeed",
        took.as_secs_f64(),
        (calls - warm_calls.min(total)) as f64 / (took - warm_at).as_secs_f64(),
        failures.load(Ordering::Relaxed)
    );
    println!(
        "soak: after {warm_calls}: RSS {} KiB, {} fds, data {} bytes",
        warm.rss_kib, warm.fds, warm.data_bytes
    );
    println!(
        "soak: after {calls}: RSS {} KiB ({:.3}x), {} fds ({:.3}x), data {} bytes ({:+} bytes)",
        end.rss_kib,
        ratio(warm.rss_kib, end.rss_kib),
        end.fds,
        ratio(warm.fds, end.fds),
        end.data_bytes,
        end.data_bytes as i64 - warm.data_bytes as i64
    );
}
