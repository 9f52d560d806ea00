//! The mesh between real host processes on loopback (TCP, noise, yamux):
//!
//! - `mesh_fetch/10MiB`, `mesh_fetch/100MiB`: B fetches a blob A provides,
//!   timed from B's MCP `mesh__fetch` call to its answer (every chunk
//!   verified, the whole hashed again and moved into the store). Before each
//!   fetch the blob is deleted from B's store.
//! - `mesh_publish/publish_to_callable`: a fresh B is connected to A; timed
//!   from A's `mesh__publish` of a signed plugin to B answering a call to it
//!   (gossip, fetch, signature check, install, compile with an empty cache,
//!   load).
//!
//! Targets (issue 6): 10 MiB <= 150 ms, >= 100 MiB/s sustained,
//! publish to callable <= 1 s.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use toolmesh_test_support::mesh::{
    MeshNode, add_hello_copy, blob_path, mesh_config, publisher_key, put_blob,
};
use toolmesh_test_support::{TempHost, call, first_text};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn fetch(c: &mut Criterion) {
    let rt = runtime();
    let config = mesh_config(&[]);
    let a_host = TempHost::new().expect("tempdir");
    let mut blobs = Vec::new();
    for (name, size) in [("10MiB", 10usize << 20), ("100MiB", 100 << 20)] {
        let bytes = toolmesh_test_support::mesh::weights_blob(size, size as u8);
        let (_, hash) = put_blob(&a_host, &bytes).expect("blob");
        blobs.push((name, size, hash));
    }
    let (a, b) = rt.block_on(async {
        let a = MeshNode::start(Path::new(BIN), a_host, &config, &[], false, true)
            .await
            .expect("A");
        for (name, _, hash) in &blobs {
            a.call("mesh__publish", json!({"weights": hash, "network": name}))
                .await
                .expect("publish");
        }
        let b = MeshNode::join(Path::new(BIN), &config, &[&a])
            .await
            .expect("B");
        (a, b)
    });
    let mut group = c.benchmark_group("mesh_fetch");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, size, hash) in &blobs {
        group.throughput(Throughput::Bytes(*size as u64));
        let stored: PathBuf = blob_path(&b.host, hash.trim_start_matches("blake3:"));
        group.bench_function(*name, |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let _ = std::fs::remove_file(&stored);
                    let started = Instant::now();
                    let result = rt
                        .block_on(b.call("mesh__fetch", json!({"target": hash})))
                        .expect("fetch");
                    total += started.elapsed();
                    assert_eq!(result["fetched"]["already_had"], false);
                }
                total
            });
        });
    }
    group.finish();
    drop((a, b));
}

fn publish_to_callable(c: &mut Criterion) {
    let rt = runtime();
    let keys = tempfile::tempdir().expect("tempdir");
    let (key_file, key) = publisher_key(Path::new(BIN), keys.path(), "publisher.key").expect("key");
    let config = mesh_config(&[&key]);
    let hello = Path::new(toolmesh::plugin::bundled::BUNDLED_DIR).join("hello");
    let mut group = c.benchmark_group("mesh_publish");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("publish_to_callable", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(async {
                    // A fresh pair, so that nothing was announced before: A
                    // with the signed plugin, B with an empty compile cache.
                    let a_host = TempHost::new().expect("tempdir");
                    add_hello_copy(Path::new(BIN), &a_host, &hello, "greeter", Some(&key_file))
                        .expect("plugin");
                    let a = MeshNode::start(Path::new(BIN), a_host, &config, &[], false, true)
                        .await
                        .expect("A");
                    let b = MeshNode::start(
                        Path::new(BIN),
                        TempHost::new().expect("tempdir"),
                        &config,
                        &[&a],
                        false,
                        false,
                    )
                    .await
                    .expect("B");
                    b.wait_connected(&a.info.peer_id).await.expect("connected");
                    let started = Instant::now();
                    a.call("mesh__publish", json!({"plugin": "greeter"}))
                        .await
                        .expect("publish");
                    loop {
                        // An unknown tool is a protocol error until it lands.
                        if let Ok(result) =
                            call(&b.client, "greeter__greet", json!({"name": "mesh"})).await
                            && result.is_error != Some(true)
                            && first_text(&result) == "Hello, mesh!"
                        {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    started.elapsed()
                });
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, fetch, publish_to_callable);
criterion_main!(benches);
