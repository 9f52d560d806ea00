//! Storage under faults. Crash consistency: the host is killed with SIGKILL at random moments,
//! cycle after cycle, while a real MCP client increments a kv counter,
//! stores blobs and reports budget spending, and `toolmesh plugin install
//! --force` swaps a plugin's versions (killed at the same moment, as a
//! machine's crash would). After each restart every acknowledged write is
//! there (and at most the one in flight besides), the blob store verifies
//! file by file, the budget's total equals the acknowledged reports, the
//! installed plugin is one version or the other, whole, and no install's
//! leftovers remain.
//!
//! `TOOLMESH_CRASH_CYCLES` sets the number of kill cycles (default 20).
//!
//! And a full disk: a data directory on a small tmpfs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::json;
use toolmesh_test_support::rng::SplitMix64;
use toolmesh_test_support::{Client, TempHost, call, first_text, serve_command, test_plugin};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

const CONFIG: &str = r#"
[levels.untrusted]
timeout_ms = 20000
capabilities = ["log", "kv", "blobs"]
kv_bytes = 67108864
blob_bytes = 268435456

[levels.untrusted.breaker]
failures = 100000
"#;

/// What the client was told is stored, and what was in flight when the
/// host died.
#[derive(Debug, Default)]
struct Acknowledged {
    /// The counter's value as the last acknowledged increment returned it.
    counter: u64,
    /// An increment was sent and not answered.
    counter_in_flight: bool,
    /// Blobs stored: hash and text.
    blobs: Vec<(String, String)>,
    /// The spending acknowledged.
    spent: u64,
    /// A report sent and not answered (its amount).
    spend_in_flight: u64,
}

struct Host {
    client: Client,
    pid: u32,
}

async fn start(host: &TempHost, config: &Path) -> anyhow::Result<Host> {
    let mut args = host.args();
    args.extend(["--config".into(), config.display().to_string()]);
    let transport = TokioChildProcess::new(serve_command(Path::new(BIN), &args))?;
    let pid = transport
        .id()
        .ok_or_else(|| anyhow::anyhow!("no pid for the host"))?;
    let client = ().serve(transport).await?;
    Ok(Host { client, pid })
}

fn kill(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

/// Writes until the host dies: one operation at a time, each recorded as
/// in flight before it is sent and as acknowledged when answered.
async fn write_until_killed(client: &Client, acked: &Mutex<Acknowledged>, mut rng: SplitMix64) {
    let lock = || {
        acked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    for i in 0u64.. {
        match rng.below(3) {
            0 => {
                lock().counter_in_flight = true;
                let Ok(result) = call(client, "hostile__kv_incr", json!({"key": "counter"})).await
                else {
                    return;
                };
                if result.is_error == Some(true) {
                    return;
                }
                let Ok(value) = first_text(&result).parse::<u64>() else {
                    return;
                };
                let mut a = lock();
                a.counter = value;
                a.counter_in_flight = false;
            }
            1 => {
                // Up to 256 KiB: large enough that a kill lands mid-write.
                let text = format!("blob {i} {}", "x".repeat(rng.below(256 << 10)));
                let Ok(result) = call(client, "hostile__blob_put", json!({"text": text})).await
                else {
                    return;
                };
                if result.is_error == Some(true) {
                    return;
                }
                lock().blobs.push((first_text(&result).to_owned(), text));
            }
            _ => {
                let amount = 1 + rng.below(100) as u64;
                lock().spend_in_flight = amount;
                let arguments = json!({"id": "crash", "amount": amount});
                let Ok(result) = call(client, "budget__report_spending", arguments).await else {
                    return;
                };
                if result.is_error == Some(true) {
                    return;
                }
                let mut a = lock();
                a.spent += amount;
                a.spend_in_flight = 0;
            }
        }
    }
}

/// Installs the two versions of `extra` in turn, each with `--force`,
/// until killed.
async fn install_until_killed(
    host_args: Vec<String>,
    sources: [PathBuf; 2],
    pid: Arc<Mutex<Option<u32>>>,
) {
    for i in 0usize.. {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(&host_args)
            .args(["plugin", "install", "--force"])
            .arg(&sources[i % 2])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let Ok(mut child) = cmd.spawn() else { return };
        *pid.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = child.id();
        if child.wait().await.is_err() {
            return;
        }
    }
}

/// Every file in the blob store holds the bytes its name is the hash of.
fn verify_blob_files(dir: &Path) -> anyhow::Result<usize> {
    let mut files = 0;
    for shard in std::fs::read_dir(dir)? {
        let shard = shard?.path();
        let Some(name) = shard.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.len() != 2 || !shard.is_dir() {
            continue;
        }
        for blob in std::fs::read_dir(&shard)? {
            let blob = blob?.path();
            let hex = blob
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let bytes = std::fs::read(&blob)?;
            anyhow::ensure!(
                blake3::hash(&bytes).to_hex().as_str() == hex,
                "blob file {} does not hold its hash's bytes",
                blob.display()
            );
            files += 1;
        }
    }
    anyhow::ensure!(
        std::fs::read_dir(dir.join("tmp"))?.next().is_none(),
        "half-written blobs were left in {}/tmp",
        dir.display()
    );
    Ok(files)
}

/// The plugin `extra` as installed: one of the two versions, whole.
fn installed_version(plugins: &Path) -> anyhow::Result<Option<String>> {
    let dir = plugins.join("extra");
    if !dir.exists() {
        return Ok(None);
    }
    let manifest = std::fs::read_to_string(dir.join("plugin.toml"))?;
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .ok_or_else(|| anyhow::anyhow!("a manifest without a version: {manifest}"))?;
    let leftovers: Vec<String> = std::fs::read_dir(plugins)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    anyhow::ensure!(leftovers.is_empty(), "install leftovers: {leftovers:?}");
    Ok(Some(version))
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_at_random_moments() -> anyhow::Result<()> {
    let cycles: u64 = std::env::var("TOOLMESH_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let host = TempHost::new()?;
    host.add_plugin(&test_plugin("hostile"), "hostile")?;
    let config = host.data_dir().with_file_name("toolmesh.toml");
    std::fs::write(&config, CONFIG)?;
    // Two versions of a plugin to install over each other.
    let sources_dir = tempfile::tempdir()?;
    let sources = ["0.1.0", "0.2.0"].map(|version| {
        let dir = sources_dir.path().join(version);
        std::fs::create_dir_all(&dir).expect("a source directory");
        for entry in std::fs::read_dir(test_plugin("hostile")).expect("the hostile plugin") {
            let entry = entry.expect("an entry");
            std::fs::copy(entry.path(), dir.join(entry.file_name())).expect("a copy");
        }
        let manifest = std::fs::read_to_string(dir.join("plugin.toml")).expect("its manifest");
        let manifest = manifest
            .replace("name = \"hostile\"", "name = \"extra\"")
            .replacen(
                "version = \"0.1.0\"",
                &format!("version = \"{version}\""),
                1,
            );
        std::fs::write(dir.join("plugin.toml"), manifest).expect("a manifest");
        dir
    });
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let mut rng = SplitMix64(0x5eed_c0de);
    let mut versions_seen = std::collections::BTreeSet::new();
    let mut checked_blobs = 0;
    let started = Instant::now();
    let first = start(&host, &config).await?;
    let set = json!({"id": "crash", "limit": 1_000_000_000_000u64});
    let created = call(&first.client, "budget__set_budget", set).await?;
    assert_ne!(created.is_error, Some(true), "{}", first_text(&created));
    first.client.cancel().await?;
    for cycle in 0..cycles {
        let running = start(&host, &config).await?;
        let client = Arc::new(running.client);
        let writer = tokio::spawn({
            let (client, acked) = (client.clone(), acked.clone());
            let rng = SplitMix64(rng.next_u64());
            async move { write_until_killed(&client, &acked, rng).await }
        });
        let installer_pid = Arc::new(Mutex::new(None));
        let installer = tokio::spawn(install_until_killed(
            host.args(),
            sources.clone(),
            installer_pid.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(100 + rng.below(1200) as u64)).await;
        kill(running.pid);
        if let Some(pid) = *installer_pid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            kill(pid);
        }
        installer.abort();
        let _ = writer.await;
        // The next host: every acknowledged write is there.
        let restarted = start(&host, &config).await?;
        let client = &restarted.client;
        let (counter, counter_in_flight, blobs, spent, spend_in_flight) = {
            let a = acked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (
                a.counter,
                a.counter_in_flight,
                a.blobs.clone(),
                a.spent,
                a.spend_in_flight,
            )
        };
        let stored: u64 =
            first_text(&call(client, "hostile__kv_get", json!({"key": "counter"})).await?)
                .parse()
                .unwrap_or(0);
        assert!(
            stored == counter || (counter_in_flight && stored == counter + 1),
            "cycle {cycle}: the counter is {stored}, acknowledged {counter} (one in flight: {counter_in_flight})"
        );
        // Every acknowledged blob is on disk (each file's bytes are checked
        // against its name below); the ones new since the last restart are
        // also read back through a call (reading all of them every cycle
        // would grow with the square of the cycles).
        let blob_dir = host.data_dir().join("blobs");
        for (hash, _) in &blobs {
            let hex = hash.strip_prefix("blake3:").unwrap_or(hash);
            assert!(
                blob_dir.join(&hex[..2]).join(hex).is_file(),
                "cycle {cycle}: acknowledged blob {hash} is gone"
            );
        }
        for (hash, text) in &blobs[checked_blobs..] {
            let read = call(client, "hostile__blob_get", json!({"hash": hash})).await?;
            assert_eq!(
                first_text(&read).len(),
                text.len(),
                "cycle {cycle}: blob {hash}"
            );
            assert!(
                first_text(&read) == text,
                "cycle {cycle}: blob {hash} changed"
            );
        }
        checked_blobs = blobs.len();
        let status = call(client, "budget__status", json!({"id": "crash"})).await?;
        let status = status
            .structured_content
            .ok_or_else(|| anyhow::anyhow!("a status without structured content"))?;
        let total = status["spent"].as_u64().unwrap_or(u64::MAX);
        assert!(
            total == spent || (spend_in_flight > 0 && total == spent + spend_in_flight),
            "cycle {cycle}: the budget says {total} spent, acknowledged {spent} (in flight {spend_in_flight})"
        );
        {
            let mut a = acked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            a.counter = stored;
            a.counter_in_flight = false;
            a.spent = total;
            a.spend_in_flight = 0;
        }
        let files = verify_blob_files(&host.data_dir().join("blobs"))?;
        assert!(
            files >= blobs.len().min(1),
            "cycle {cycle}: the blob store is empty"
        );
        if let Some(version) = installed_version(&host.plugins_dir())? {
            let tools = client.list_all_tools().await?;
            assert!(
                tools.iter().any(|t| t.name == "extra__noop"),
                "cycle {cycle}: plugin extra {version} is installed but not served"
            );
            versions_seen.insert(version);
        }
        restarted.client.cancel().await?;
    }
    let a = acked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    eprintln!(
        "{cycles} kill cycles in {:.0} s: counter {}, {} blobs, {} spent, versions installed {versions_seen:?}",
        started.elapsed().as_secs_f64(),
        a.counter,
        a.blobs.len(),
        a.spent
    );
    assert!(
        a.counter > 0 && !a.blobs.is_empty() && a.spent > 0,
        "the writes made progress"
    );
    Ok(())
}

/// A tmpfs of `bytes` mounted at a new directory, unmounted on drop; `None`
/// (and the test says why it does not run) without the privilege to mount.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> anyhow::Result<Option<Self>> {
        let dir = tempfile::tempdir()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Ok(mounted.then_some(Self { dir }))
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l"])
            .arg(self.dir.path())
            .status();
    }
}

/// A data directory on a full disk: writes fail with an error that names
/// the cause, what is stored stays readable and whole, calls that need no
/// disk go on, and once space is freed writes succeed again, all in one
/// host that keeps running.
#[tokio::test]
async fn a_full_disk_fails_writes_clearly_and_damages_nothing() -> anyhow::Result<()> {
    let Some(disk) = SmallDisk::mount(16 << 20)? else {
        eprintln!("skipped: mounting a tmpfs needs root (CI runs as root)");
        return Ok(());
    };
    let host = TempHost::new()?;
    host.add_plugin(&test_plugin("hostile"), "hostile")?;
    let data = disk.path().join("data");
    let config = host.data_dir().with_file_name("toolmesh.toml");
    std::fs::write(&config, CONFIG)?;
    // Ballast, freed later to give the disk room again.
    let ballast = disk.path().join("ballast");
    std::fs::write(&ballast, vec![0u8; 2 << 20])?;
    let mut args = vec![
        "--data-dir".to_owned(),
        data.display().to_string(),
        "--plugins".into(),
        host.plugins_dir().display().to_string(),
        "--cache-dir".into(),
        toolmesh_test_support::shared_cache_dir()
            .display()
            .to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    let transport = TokioChildProcess::new(serve_command(Path::new(BIN), &args))?;
    let client = ().serve(transport).await?;
    args.clear();
    // Some writes that fit.
    let mut stored = Vec::new();
    for i in 0..3 {
        let text = format!("kept {i} {}", "k".repeat(100_000));
        let hash = first_text(&call(&client, "hostile__blob_put", json!({"text": text})).await?)
            .to_owned();
        stored.push((hash, text));
    }
    let incremented = call(&client, "hostile__kv_incr", json!({"key": "kept"})).await?;
    assert_eq!(first_text(&incremented), "1");
    // Fill the disk with blobs until a write is refused.
    let mut refusal = None;
    for i in 0..64 {
        let text = format!("filler {i} {}", "f".repeat(1 << 20));
        let result = call(&client, "hostile__blob_put", json!({"text": text})).await?;
        if result.is_error == Some(true) {
            refusal = Some(first_text(&result).to_owned());
            break;
        }
    }
    let refusal = refusal.ok_or_else(|| anyhow::anyhow!("64 MiB fitted on a 16 MiB disk"))?;
    assert!(
        refusal.contains("No space left on device"),
        "the refusal names the cause: {refusal}"
    );
    eprintln!("a blob write on the full disk: {refusal}");
    // kv writes fail too, and say why.
    let mut kv_refusal = None;
    for i in 0..64 {
        // Each call writes more keys than the one before.
        let result = call(&client, "hostile__kv_fill", json!({"mib": i + 1})).await?;
        if result.is_error == Some(true) {
            kv_refusal = Some(first_text(&result).to_owned());
            break;
        }
    }
    let kv_refusal = kv_refusal.ok_or_else(|| anyhow::anyhow!("kv never refused a write"))?;
    assert!(
        kv_refusal.contains("No space left on device") || kv_refusal.contains("quota"),
        "the kv refusal names the cause: {kv_refusal}"
    );
    eprintln!("a kv write on the full disk: {kv_refusal}");
    // What was stored is whole, and calls without disk go on.
    for (hash, text) in &stored {
        let read = call(&client, "hostile__blob_get", json!({"hash": hash})).await?;
        assert!(
            first_text(&read) == text,
            "blob {hash} survived the full disk"
        );
    }
    let kept = call(&client, "hostile__kv_get", json!({"key": "kept"})).await?;
    assert_eq!(first_text(&kept), "1", "kv reads on a full disk");
    let noop = call(&client, "hostile__noop", json!({})).await?;
    assert_eq!(first_text(&noop), "ok");
    // Room again: writes succeed in the same host.
    std::fs::remove_file(&ballast)?;
    let again = call(&client, "hostile__kv_incr", json!({"key": "kept"})).await?;
    assert_eq!(first_text(&again), "2", "kv writes once space is back");
    let blob = call(&client, "hostile__blob_put", json!({"text": "after"})).await?;
    assert_ne!(
        blob.is_error,
        Some(true),
        "blob writes once space is back: {}",
        first_text(&blob)
    );
    client.cancel().await?;
    verify_blob_files(&data.join("blobs"))?;
    Ok(())
}

/// Symlinks planted in the data directory that point out of it are not
/// followed: a blob shard, the kv database, the lifecycle directory. The
/// files they point at are never touched.
#[tokio::test]
async fn planted_symlinks_in_the_data_dir_are_not_followed_out() -> anyhow::Result<()> {
    let outside = tempfile::tempdir()?;
    let host = TempHost::new()?;
    host.add_plugin(&test_plugin("hostile"), "hostile")?;
    let config = host.data_dir().with_file_name("toolmesh.toml");
    std::fs::write(&config, CONFIG)?;
    let data = host.data_dir();
    // The blob a call will store, and its shard planted as a link out.
    let text = "a blob bound for a planted directory";
    let hex = blake3::hash(text.as_bytes()).to_hex();
    std::fs::create_dir_all(data.join("blobs"))?;
    std::os::unix::fs::symlink(outside.path(), data.join("blobs").join(&hex[..2]))?;
    // The kv database, planted as a link to a file outside.
    let victim = outside.path().join("victim.redb");
    std::fs::write(&victim, b"not yours")?;
    std::os::unix::fs::symlink(&victim, data.join("kv.redb"))?;
    let running = start(&host, &config).await?;
    let client = &running.client;
    let stored = call(client, "hostile__blob_put", json!({"text": text})).await?;
    assert_eq!(
        stored.is_error,
        Some(true),
        "stored through the link: {}",
        first_text(&stored)
    );
    let kv = call(client, "hostile__kv_incr", json!({"key": "k"})).await?;
    assert_eq!(
        kv.is_error,
        Some(true),
        "kv through the link: {}",
        first_text(&kv)
    );
    let noop = call(client, "hostile__noop", json!({})).await?;
    assert_eq!(first_text(&noop), "ok", "the host serves on");
    running.client.cancel().await?;
    assert_eq!(
        std::fs::read(&victim)?,
        b"not yours",
        "the file outside is untouched"
    );
    let names: Vec<_> = std::fs::read_dir(outside.path())?.collect();
    assert_eq!(names.len(), 1, "nothing was written outside");
    // A lifecycle directory planted as a link out: the host refuses to
    // start, naming it, rather than write through it.
    std::fs::remove_file(data.join("kv.redb"))?;
    let _ = std::fs::remove_dir_all(data.join("lifecycle"));
    std::os::unix::fs::symlink(outside.path(), data.join("lifecycle"))?;
    let mut args = host.args();
    args.extend([
        "--config".into(),
        config.display().to_string(),
        "plugin".into(),
        "list".into(),
    ]);
    let listed = std::process::Command::new(BIN).args(&args).output()?;
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(
        !listed.status.success() && stderr.contains("lifecycle"),
        "`plugin list` names the refused directory: {stderr}"
    );
    eprintln!("with a planted lifecycle link: {}", stderr.trim());
    let started = start(&host, &config).await;
    assert!(
        started.is_err(),
        "a host started with its lifecycle directory outside"
    );
    assert!(
        std::fs::read_dir(outside.path())?.count() == 1,
        "nothing was written through the lifecycle link ({stderr})"
    );
    Ok(())
}
