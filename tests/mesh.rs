//! The mesh, with real host processes on 127.0.0.1 (TCP and QUIC, noise,
//! yamux) driven through rmcp's MCP client, and the CLI for keys and
//! signatures: a signed plugin published on A becomes callable on B and C;
//! unsigned, untrusted and tampered plugins are listed but refused; a
//! 10 MiB weights blob trained on A runs to the same outputs on B; a fetch
//! survives its provider being killed; corrupt chunks are caught and the
//! blob still arrives intact.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use toolmesh_test_support::mesh::{
    MeshNode as Node, add_hello_copy, cli, eventually, mesh_config as config, put_blob,
    weights_blob,
};
use toolmesh_test_support::{TempHost, call, first_text};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

fn toolmesh(args: &[&str]) -> anyhow::Result<String> {
    cli(Path::new(BIN), args)
}

fn publisher_key(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, String)> {
    toolmesh_test_support::mesh::publisher_key(Path::new(BIN), dir, name)
}

fn add_hello(host: &TempHost, name: &str, key: Option<&Path>) -> anyhow::Result<PathBuf> {
    add_hello_copy(Path::new(BIN), host, &hello_dir(), name, key)
}

fn hello_dir() -> PathBuf {
    Path::new(toolmesh::plugin::bundled::BUNDLED_DIR).join("hello")
}

fn status_of(offers: &Value, name: &str) -> String {
    offers["offered"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["name"] == name)
        .and_then(|o| o["status"].as_str())
        .unwrap_or("")
        .to_owned()
}

const PATIENCE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

async fn status(node: &Node, name: &str) -> anyhow::Result<String> {
    Ok(status_of(
        &node.call("mesh__offers", json!({})).await?,
        name,
    ))
}

async fn wait_for_status(node: &Node, name: &str, prefix: &str) -> anyhow::Result<String> {
    let found = eventually(PATIENCE, POLL, || async {
        Ok(Some(status(node, name).await?).filter(|s| s.starts_with(prefix)))
    })
    .await?;
    match found {
        Some(status) => Ok(status),
        None => anyhow::bail!(
            "`{name}` status is `{}`, not `{prefix}…`",
            status(node, name).await?
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_plugins_spread_and_everything_else_is_refused() -> anyhow::Result<()> {
    let keys = tempfile::tempdir()?;
    let (trusted_file, trusted) = publisher_key(keys.path(), "trusted.key")?;
    let (stranger_file, _) = publisher_key(keys.path(), "stranger.key")?;
    let config = config(&[&trusted]);

    let a_host = TempHost::new()?;
    add_hello(&a_host, "greeter", Some(&trusted_file))?;
    add_hello(&a_host, "loner", None)?;
    add_hello(&a_host, "stranger", Some(&stranger_file))?;
    let a = Node::start(Path::new(BIN), a_host, &config, &[], false, true).await?;
    let b = Node::join(Path::new(BIN), &config, &[&a]).await?;

    // Published while B is connected: B hears of it by gossip.
    b.wait_connected(&a.info.peer_id).await?;
    for plugin in ["greeter", "loner", "stranger"] {
        a.call("mesh__publish", json!({"plugin": plugin})).await?;
    }
    // C joins later and learns it from A's catalog.
    let c = Node::join(Path::new(BIN), &config, &[&a]).await?;
    for node in [&b, &c] {
        let tools = wait_for_tools(node, "greeter__greet").await?;
        assert!(
            !tools
                .iter()
                .any(|t| t.starts_with("loner__") || t.starts_with("stranger__")),
            "{tools:?}"
        );
        let result = call(&node.client, "greeter__greet", json!({"name": "mesh"})).await?;
        assert_eq!(first_text(&result), "Hello, mesh!");
        let status = wait_for_status(node, "greeter", "installed").await?;
        assert!(
            status.contains("at level `standard`"),
            "peer ceiling: {status}"
        );
        wait_for_status(node, "loner", "not installed: unsigned").await?;
        wait_for_status(node, "stranger", "not installed").await?;
    }
    // Asked for explicitly, the unsigned one is fetched but not installed.
    let refused = call(&b.client, "mesh__fetch", json!({"target": "loner"})).await?;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        first_text(&refused).contains("unsigned"),
        "{}",
        first_text(&refused)
    );
    let refused = call(&b.client, "mesh__fetch", json!({"target": "stranger"})).await?;
    assert!(
        first_text(&refused).contains("not a trusted publisher"),
        "{}",
        first_text(&refused)
    );

    // The installed plugin survives a restart of B, still at the peer level.
    let listed = toolmesh(
        &{
            let mut args: Vec<String> = b.host.args();
            args.extend(["--no-bundled".into(), "--config".into()]);
            args.push(
                b.host
                    .data_dir()
                    .with_file_name("toolmesh.toml")
                    .display()
                    .to_string(),
            );
            args.extend(["plugin".into(), "list".into()]);
            args
        }
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    )?;
    assert!(listed.contains("greeter 0.1.0 [standard]"), "{listed}");
    assert!(listed.contains("from peer"), "{listed}");

    // A tampered bundle: the signed manifest, edited to ask for more.
    let rogue = rogue_peer(&a, &trusted).await?;
    let offer = tampered_bundle(&rogue.0, &trusted_file, &trusted)?;
    rogue.1.provide(offer).await.map_err(anyhow::Error::msg)?;
    let status = wait_for_status(&a, "greeter-tampered", "not installed: tampered").await?;
    assert!(status.contains("changed after it was signed"), "{status}");
    let peers = a.call("mesh__peers", json!({})).await?;
    let rogue_id = rogue.1.peer_id().to_string();
    let entry = peers["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["id"] == rogue_id.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert!(entry["strikes"].as_u64().unwrap_or(0) >= 1, "{peers}");
    assert!(
        !a.tool_names()
            .await
            .iter()
            .any(|t| t.starts_with("greeter-tampered"))
    );
    drop(c);
    Ok(())
}

async fn wait_for_tools(node: &Node, tool: &str) -> anyhow::Result<Vec<String>> {
    let found = eventually(PATIENCE, POLL, || async {
        let tools = node.tool_names().await;
        Ok(tools.iter().any(|t| t == tool).then_some(tools))
    })
    .await?;
    found.ok_or_else(|| anyhow::anyhow!("no `{tool}` in the tool list"))
}

/// A peer in this test process (the real mesh code, on its own data
/// directory) that will offer whatever the test puts in its store.
async fn rogue_peer(
    target: &Node,
    trusted: &str,
) -> anyhow::Result<(
    Arc<toolmesh::capability::blobs::BlobStore>,
    Arc<toolmesh::p2p::Mesh>,
)> {
    let dir = tempfile::tempdir()?.keep();
    let mut config: toolmesh::config::Config = toml::from_str(&config(&[trusted]))?;
    config.data_dir = Some(dir.clone());
    config.bundled_plugins = false;
    config.p2p.bootstrap = vec![target.info.addresses[0].parse()?];
    let stack = toolmesh::app::Stack::start(&config).await?;
    let blobs = stack
        .loader
        .runtime()
        .stores()
        .blobs
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the blob store did not open"))?;
    let mesh = toolmesh::p2p::Mesh::start(
        &config.p2p,
        stack.loader.clone(),
        stack.registry.clone(),
        toolmesh::p2p::mesh::MeshPaths {
            state_dir: config.p2p_dir(),
            plugins_dir: config.plugins_dir(),
        },
        false,
    )
    .await?;
    target.wait_connected(&mesh.peer_id().to_string()).await?;
    Ok((blobs, mesh))
}

/// Greeter's signed bundle with its manifest edited after signing, stored
/// in `blobs`, and the offer that claims the trusted publisher.
fn tampered_bundle(
    blobs: &toolmesh::capability::blobs::BlobStore,
    key_file: &Path,
    key: &str,
) -> anyhow::Result<toolmesh::p2p::protocol::Offer> {
    let host = TempHost::new()?;
    let dir = add_hello(&host, "greeter-tampered", Some(key_file))?;
    let mut bundle = toolmesh::p2p::bundle::Bundle::read_dir(&dir)?;
    bundle.manifest_text.push_str("\n# edited after signing\n");
    let bytes = bundle.encode();
    let hash = blobs.put(&bytes)?;
    Ok(toolmesh::p2p::protocol::Offer::Plugin {
        name: "greeter-tampered".into(),
        version: "0.1.0".into(),
        publisher: Some(key.to_owned()),
        hash: hash.to_string(),
        size: bytes.len() as u64,
    })
}

async fn provider_count(node: &Node, name: &str) -> anyhow::Result<usize> {
    let offers = node.call("mesh__offers", json!({})).await?;
    Ok(offers["offered"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["network"] == name || o["name"] == name)
        .and_then(|o| o["providers"].as_array().map(Vec::len))
        .unwrap_or(0))
}

async fn wait_for_providers(node: &Node, name: &str, count: usize) -> anyhow::Result<()> {
    let found = eventually(PATIENCE, POLL, || async {
        Ok((provider_count(node, name).await? >= count).then_some(()))
    })
    .await?;
    match found {
        Some(()) => Ok(()),
        None => anyhow::bail!(
            "`{name}` has {} providers, not {count}",
            provider_count(node, name).await?
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trained_weights_fetched_by_hash_run_the_same() -> anyhow::Result<()> {
    // A 2.6-million-weight network is far beyond what `standard` allows a
    // call by default (its `.net` text alone is 60 MB): raise the quotas.
    let config = config(&[])
        + "\n[levels.standard]\nfuel = 2_000_000_000_000\nmemory_bytes = 1_073_741_824\n";
    let a = Node::start(Path::new(BIN), TempHost::new()?, &config, &[], true, true).await?;
    let b = Node::start(Path::new(BIN), TempHost::new()?, &config, &[&a], true, true).await?;
    // 257 × 4096 + 4097 × 384 weights: 10.5 MB as TMNW.
    let layers = json!([256, 4096, 384]);
    a.call(
        "neural__create",
        json!({"name": "big", "layers": layers, "seed": 1}),
    )
    .await?;
    let input: Vec<f64> = (0..256).map(|i| f64::from(i % 7) / 7.0 - 0.5).collect();
    let target: Vec<f64> = (0..384)
        .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
        .collect();
    let trained = a
        .call(
            "neural__train",
            json!({"name": "big", "data": {"inputs": [input], "outputs": [target]}, "max_epochs": 2, "desired_error": 0.0}),
        )
        .await?;
    let weights = trained["entry"]["weights"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let published = a
        .call(
            "mesh__publish",
            json!({"weights": weights, "network": "big"}),
        )
        .await?;
    assert!(
        published["published"]["size"].as_u64().unwrap_or(0) >= 10 << 20,
        "{published}"
    );

    wait_for_providers(&b, "big", 1).await?;
    let fetched = b.call("mesh__fetch", json!({"target": "big"})).await?;
    assert_eq!(fetched["fetched"]["hash"], weights.as_str(), "{fetched}");
    assert!(b.has_blob(&weights));
    assert!(
        !b.progress.wait_for(1).await.is_empty(),
        "the transfer reported progress"
    );

    b.call(
        "neural__create",
        json!({"name": "copy", "layers": layers, "seed": 99}),
    )
    .await?;
    b.call(
        "neural__load_weights",
        json!({"name": "copy", "weights": weights}),
    )
    .await?;
    let on_a = a
        .call("neural__run", json!({"name": "big", "inputs": [input]}))
        .await?;
    let on_b = b
        .call("neural__run", json!({"name": "copy", "inputs": [input]}))
        .await?;
    assert_eq!(on_a["outputs"], on_b["outputs"]);
    assert!(
        on_a["outputs"][0]
            .as_array()
            .is_some_and(|o| o.len() == 384)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_survives_a_dying_provider_and_a_lying_one() -> anyhow::Result<()> {
    let config = config(&[]);
    let big = weights_blob(64 << 20, 7);
    let small = weights_blob(24 << 20, 9);
    let (a_host, c_host) = (TempHost::new()?, TempHost::new()?);
    let mut hashes = Vec::new();
    let mut a_small_path = PathBuf::new();
    for blob in [&big, &small] {
        let (path, hash) = put_blob(&a_host, blob)?;
        put_blob(&c_host, blob)?;
        if blob.len() == small.len() {
            a_small_path = path;
        }
        hashes.push(hash);
    }
    let (big_hash, small_hash) = (hashes[0].clone(), hashes[1].clone());
    let a = Node::start(Path::new(BIN), a_host, &config, &[], false, true).await?;
    let c = Node::start(Path::new(BIN), c_host, &config, &[], false, true).await?;
    for node in [&a, &c] {
        node.call(
            "mesh__publish",
            json!({"weights": big_hash, "network": "big"}),
        )
        .await?;
        node.call(
            "mesh__publish",
            json!({"weights": small_hash, "network": "small"}),
        )
        .await?;
    }
    let b = Node::join(Path::new(BIN), &config, &[&a, &c]).await?;
    wait_for_providers(&b, "big", 2).await?;
    wait_for_providers(&b, "small", 2).await?;

    // A's copy of `small` rots on disk after A listed its chunks: every
    // chunk A serves is wrong.
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&a_small_path)?;
        for chunk in 0..24u64 {
            file.write_all_at(b"\xff\xfe", chunk * (1 << 20) + 100)?;
        }
    }
    let fetched = b.call("mesh__fetch", json!({"target": small_hash})).await?;
    assert!(b.has_blob(&small_hash), "{fetched}");
    let a_id = a.info.peer_id.as_str();
    let dropped = fetched["fetched"]["dropped"].to_string();
    assert!(
        dropped.contains(a_id) && dropped.contains("does not match"),
        "{fetched}"
    );
    let peers = b.call("mesh__peers", json!({})).await?;
    let strikes = peers["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["id"] == a_id)
        .and_then(|p| p["strikes"].as_u64())
        .unwrap_or(0);
    assert!(strikes >= 1, "{peers}");

    // Kill A as soon as the fetch of `big` has begun: C finishes it.
    b.progress.clear();
    let fetch = {
        let b = &b;
        let big_hash = big_hash.clone();
        async move { b.call("mesh__fetch", json!({"target": big_hash})).await }
    };
    let kill = async {
        b.progress.wait_for(1).await;
        a.kill();
    };
    let (fetched, ()) = tokio::join!(fetch, kill);
    let fetched = fetched?;
    assert!(b.has_blob(&big_hash), "{fetched}");
    let from = &fetched["fetched"]["from"];
    assert!(
        from[c.info.peer_id.as_str()].as_u64().unwrap_or(0) > 0,
        "{fetched}"
    );
    assert!(
        fetched["fetched"]["dropped"].to_string().contains(a_id),
        "A died mid-transfer: {fetched}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_dropped_after_the_ttl() -> anyhow::Result<()> {
    let config = config(&[]).replace("peer_ttl_secs = 60", "peer_ttl_secs = 2");
    let a = Node::join(Path::new(BIN), &config, &[]).await?;
    let b = Node::join(Path::new(BIN), &config, &[&a]).await?;
    let a_id = a.info.peer_id.as_str();
    // B dials its bootstrap peer in the background: wait for the link.
    b.wait_connected(a_id).await?;
    // Freeze A: its connection stays open but it answers nothing.
    StdCommand::new("kill")
        .args(["-STOP", &a.info.pid.to_string()])
        .status()?;
    let started = Instant::now();
    let dropped = eventually(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async { Ok((!b.knows(a_id, false).await?).then_some(())) },
    )
    .await?
    .is_some();
    StdCommand::new("kill")
        .args(["-CONT", &a.info.pid.to_string()])
        .status()?;
    assert!(dropped, "B still lists A after {:?}", started.elapsed());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "dropped before the TTL could pass: {:?}",
        started.elapsed()
    );
    Ok(())
}

/// Mesh tools take the tool service's one path, like plugin tools: their
/// arguments are checked against their schemas before anything runs, and
/// the operator's `[permissions.requires]` gates them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_tools_are_validated_and_gated_like_plugin_tools() -> anyhow::Result<()> {
    let config = config(&[]) + "\n[permissions.requires]\nmesh__connect = \"mesh-admin\"\n";
    let node = Node::join(Path::new(BIN), &config, &[]).await?;
    for (tool, arguments, problem) in [
        ("mesh__peers", json!({"bogus": 1}), "bogus"),
        ("mesh__fetch", json!({}), "target"),
        ("mesh__fetch", json!({"target": 7}), "7"),
        (
            "mesh__publish",
            json!({"plugin": "x", "extra": true}),
            "extra",
        ),
    ] {
        let result = call(&node.client, tool, arguments.clone()).await?;
        assert_eq!(result.is_error, Some(true), "{tool} {arguments}");
        let text = first_text(&result);
        assert!(
            text.starts_with(&format!("invalid arguments for `{tool}`")) && text.contains(problem),
            "{tool} {arguments}: {text}"
        );
    }
    let gated = call(
        &node.client,
        "mesh__connect",
        json!({"address": "/ip4/127.0.0.1/tcp/1"}),
    )
    .await?;
    assert_eq!(gated.is_error, Some(true));
    assert!(
        first_text(&gated).contains("`mesh__connect` needs a permission grant for `mesh-admin`"),
        "{}",
        first_text(&gated)
    );
    let peers = node.call("mesh__peers", json!({})).await?;
    assert_eq!(peers["peer_id"], json!(node.info.peer_id));
    Ok(())
}
