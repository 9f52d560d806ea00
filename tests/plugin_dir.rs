//! The plugin directory, through the real binary: broken plugins of every
//! kind are refused with a clear reason while the good ones serve; install
//! validates before copying and replaces only when told; `call` runs a tool
//! without MCP; the compile cache survives restarts and corruption.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use toolmesh_test_support::{TempHost, call, connect, first_text};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

fn hello_dir() -> PathBuf {
    Path::new(toolmesh::plugin::bundled::BUNDLED_DIR).join("hello")
}

fn toolmesh(host: &TempHost, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(host.args())
        .arg("--no-bundled")
        .args(args)
        .output()
        .expect("run toolmesh")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Rewrites a plugin's manifest hash to match its (modified) component.
fn rehash(dir: &Path, component: &str) {
    let wasm = std::fs::read(dir.join(component)).unwrap();
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
    let hash = format!("blake3:{}", blake3::hash(&wasm).to_hex());
    let manifest: String = manifest
        .lines()
        .map(|l| {
            if l.starts_with("hash") {
                format!("hash = \"{hash}\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("plugin.toml"), manifest).unwrap();
}

fn edit_manifest(dir: &Path, from: &str, to: &str) {
    let path = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// Every kind of broken plugin beside one good one.
fn broken_plugin_dir() -> anyhow::Result<TempHost> {
    let host = TempHost::new()?;
    host.add_plugin(&hello_dir(), "good")?;

    let dir = host.add_plugin(&hello_dir(), "bad-toml")?;
    std::fs::write(dir.join("plugin.toml"), "name = \"bad-toml\nversion = 1")?;

    let dir = host.add_plugin(&hello_dir(), "missing-file")?;
    edit_manifest(&dir, "name = \"hello\"", "name = \"missing-file\"");
    std::fs::remove_file(dir.join("hello.wasm"))?;

    let dir = host.add_plugin(&hello_dir(), "hash-mismatch")?;
    edit_manifest(&dir, "name = \"hello\"", "name = \"hash-mismatch\"");
    let mut wasm = std::fs::read(dir.join("hello.wasm"))?;
    let last = wasm.len() - 1;
    wasm[last] ^= 0xff;
    std::fs::write(dir.join("hello.wasm"), wasm)?;

    let dir = host.add_plugin(&hello_dir(), "core-module")?;
    edit_manifest(&dir, "name = \"hello\"", "name = \"core-module\"");
    // A valid, empty core module: WebAssembly, but not a component.
    std::fs::write(dir.join("hello.wasm"), b"\0asm\x01\0\0\0")?;
    rehash(&dir, "hello.wasm");

    let dir = host.add_plugin(&hello_dir(), "not-wasm")?;
    edit_manifest(&dir, "name = \"hello\"", "name = \"not-wasm\"");
    std::fs::write(dir.join("hello.wasm"), b"#!/bin/sh\necho not wasm\n")?;
    rehash(&dir, "hello.wasm");

    let dir = host.add_plugin(&hello_dir(), "wrong-wit")?;
    edit_manifest(&dir, "name = \"hello\"", "name = \"wrong-wit\"");
    // The same component, built "for" a future major version of our WIT: the
    // interface names carry the version, and renaming them keeps the binary valid.
    let wasm = std::fs::read(dir.join("hello.wasm"))?;
    let renamed = replace_all(
        &wasm,
        b"toolmesh:plugin/tools@0.2.0",
        b"toolmesh:plugin/tools@0.9.0",
    );
    assert_ne!(wasm, renamed);
    std::fs::write(dir.join("hello.wasm"), renamed)?;
    rehash(&dir, "hello.wasm");

    let dir = host.add_plugin(&hello_dir(), "no-log-grant")?;
    edit_manifest(&dir, "name = \"hello\"", "name = \"no-log-grant\"");
    edit_manifest(&dir, "capabilities = [\"log\"]", "capabilities = []");

    let dir = host.add_plugin(&hello_dir(), "unknown-level")?;
    edit_manifest(&dir, "name = \"hello\"", "name = \"unknown-level\"");
    edit_manifest(&dir, "level = \"untrusted\"", "level = \"root\"");

    // Same plugin name as `good`: the second one in name order is refused.
    host.add_plugin(&hello_dir(), "hello-again")?;

    // A directory with no manifest at all.
    std::fs::create_dir(host.plugins_dir().join("empty"))?;
    Ok(host)
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = haystack.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn plugin_list_reports_each_broken_plugin_and_loads_the_good_one() -> anyhow::Result<()> {
    let host = broken_plugin_dir()?;
    let out = toolmesh(&host, &["plugin", "list"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "refusals make the exit status 1:\n{text}"
    );
    assert!(text.contains("hello 0.1.0 [untrusted]"), "{text}");
    assert!(text.contains("hello__greet"), "{text}");
    assert!(
        text.contains("quotas: fuel 1000000000, memory 67108864 bytes, 64 handles, 10000 ms, output 1048576 bytes"),
        "{text}"
    );
    let expect = [
        ("bad-toml", "bad manifest: TOML parse error at line 1"),
        ("missing-file", "hello.wasm: No such file"),
        ("hash-mismatch", "hash mismatch: the manifest says blake3:"),
        ("core-module", "this is a core WebAssembly module"),
        ("not-wasm", "the file is not WebAssembly"),
        (
            "wrong-wit",
            "built for `toolmesh:plugin/tools@0.9.0`, but this host implements toolmesh:plugin 0.2.0",
        ),
        (
            "no-log-grant",
            "its manifest does not ask for the `log` capability",
        ),
        (
            "hello-again",
            "duplicate plugin name `hello`: already loaded from",
        ),
        ("empty", "plugin.toml: No such file"),
    ];
    for (dir, reason) in expect {
        let line = text
            .lines()
            .find(|l| l.starts_with("REFUSED") && l.contains(&format!("/{dir}")))
            .unwrap_or_else(|| panic!("no refusal for {dir}:\n{text}"));
        assert!(
            line.contains(reason),
            "{dir}: expected `{reason}` in `{line}`"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_directory_with_broken_plugins_still_serves_the_good_ones() -> anyhow::Result<()> {
    let host = broken_plugin_dir()?;
    let mut args = host.args();
    args.push("--no-bundled".into());
    let client = connect(Path::new(BIN), &args).await?;
    let tools = client.list_all_tools().await?;
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    // The local user on stdio is the operator: the admin tools are listed too.
    let (admin, plugins): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| n.starts_with("admin__"));
    assert_eq!(plugins, ["hello__add", "hello__greet"]);
    assert!(admin.contains(&"admin__plugin".to_owned()), "{admin:?}");
    let result = call(&client, "hello__greet", json!({"name": "survivor"})).await?;
    assert_eq!(first_text(&result), "Hello, survivor!");
    client.cancel().await?;
    Ok(())
}

#[test]
fn install_validates_copies_and_replaces_only_with_force() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let source = hello_dir();
    let out = toolmesh(&host, &["plugin", "install", source.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("installed hello 0.1.0"),
        "{}",
        stdout(&out)
    );
    let installed = host.plugins_dir().join("hello");
    assert!(installed.join("plugin.toml").is_file());
    assert_eq!(
        std::fs::read(installed.join("hello.wasm"))?,
        std::fs::read(source.join("hello.wasm"))?
    );

    let again = toolmesh(&host, &["plugin", "install", source.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already installed"),
        "{}",
        stderr(&again)
    );

    let forced = toolmesh(
        &host,
        &["plugin", "install", "--force", source.to_str().unwrap()],
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(stdout(&forced).starts_with("replaced hello 0.1.0"));

    // A tampered plugin is refused and nothing is copied.
    let scratch = tempfile::tempdir()?;
    let tampered = scratch.path().join("tampered");
    std::fs::create_dir(&tampered)?;
    for file in ["plugin.toml", "hello.wasm"] {
        std::fs::copy(source.join(file), tampered.join(file))?;
    }
    edit_manifest(&tampered, "name = \"hello\"", "name = \"tampered\"");
    let mut wasm = std::fs::read(tampered.join("hello.wasm"))?;
    wasm.push(0);
    std::fs::write(tampered.join("hello.wasm"), wasm)?;
    let refused = toolmesh(&host, &["plugin", "install", tampered.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("hash mismatch"),
        "{}",
        stderr(&refused)
    );
    let entries: Vec<_> = std::fs::read_dir(host.plugins_dir())?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["hello"], "nothing but the installed plugin");

    let list = toolmesh(&host, &["plugin", "list"]);
    assert!(list.status.success(), "{}", stdout(&list));
    Ok(())
}

#[test]
fn call_runs_a_tool_without_mcp() {
    let host = TempHost::new().unwrap();
    host.add_plugin(&hello_dir(), "hello").unwrap();
    let out = toolmesh(&host, &["call", "hello__add", r#"{"a": 20, "b": 22}"#]);
    assert!(out.status.success(), "{}", stderr(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["structuredContent"], json!({"sum": 42.0}));
    assert_eq!(result["isError"], json!(false));

    // A bare tool name works when only one plugin has it.
    let out = toolmesh(&host, &["call", "greet", r#"{"name": "cli"}"#]);
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["content"][0]["text"], "Hello, cli!");

    let bad = toolmesh(&host, &["call", "hello__add", r#"{"a": "x"}"#]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("invalid arguments"));

    let unknown = toolmesh(&host, &["call", "hello__nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("unknown tool `hello__nope`"),
        "{}",
        stderr(&unknown)
    );

    let not_json = toolmesh(&host, &["call", "hello__add", "{a:1"]);
    assert_eq!(not_json.status.code(), Some(2));
    assert!(stderr(&not_json).contains("not valid JSON"));
}

#[test]
fn the_compile_cache_is_reused_and_a_corrupt_entry_is_replaced() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    host.add_plugin(&hello_dir(), "hello")?;
    // This host's own cache, not the one test hosts share.
    let cache = host.data_dir().join("cache/components");
    let mut args = host.args();
    if let Some(i) = args.iter().position(|a| a == "--cache-dir") {
        args[i + 1] = cache.display().to_string();
    }
    let list = Command::new(BIN)
        .args(&args)
        .args(["--no-bundled", "plugin", "list"])
        .output()?;
    assert!(list.status.success());
    let entries: Vec<PathBuf> = std::fs::read_dir(&cache)?
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let cached = &entries[0];
    let hash = blake3::hash(&std::fs::read(hello_dir().join("hello.wasm"))?)
        .to_hex()
        .to_string();
    assert!(
        cached
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&hash)
    );

    let list_with_debug_log = || {
        Command::new(BIN)
            .args(&args)
            .args(["--no-bundled", "plugin", "list"])
            .env("TOOLMESH_LOG", "toolmesh=debug")
            .output()
    };
    let out = list_with_debug_log()?;
    assert!(out.status.success());
    assert!(!stderr(&out).contains("recompiling"), "{}", stderr(&out));

    std::fs::write(cached, b"garbage")?;
    let out = list_with_debug_log()?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cached component unusable, recompiling"),
        "{}",
        stderr(&out)
    );
    assert!(
        std::fs::read(cached)?.len() > 1000,
        "the entry was rewritten"
    );
    Ok(())
}

#[test]
fn signatures_are_checked_and_trust_caps_the_level() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let keys = tempfile::tempdir()?;
    let key = keys.path().join("publisher.key");
    let out = Command::new(BIN)
        .args(["key", "--generate", &key.display().to_string()])
        .output()?;
    assert!(out.status.success(), "{}", stderr(&out));
    let publisher = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("publisher key: ").map(str::to_owned))
        .expect("a publisher key");
    let sign = |dir: &Path| {
        let out = Command::new(BIN)
            .args(["plugin", "sign", &dir.display().to_string(), "--key"])
            .arg(&key)
            .output()
            .expect("run toolmesh");
        assert!(out.status.success(), "{}", stderr(&out));
    };
    // Signed by the trusted key, asking for `trusted`: runs at `trusted`.
    let signed = host.add_plugin(&hello_dir(), "signed")?;
    edit_manifest(&signed, "name = \"hello\"", "name = \"signed\"");
    edit_manifest(&signed, "level = \"untrusted\"", "level = \"trusted\"");
    sign(&signed);
    // Unsigned, asking for `trusted`: capped at the `unsigned` ceiling.
    let unsigned = host.add_plugin(&hello_dir(), "unsigned")?;
    edit_manifest(&unsigned, "name = \"hello\"", "name = \"unsigned\"");
    edit_manifest(&unsigned, "level = \"untrusted\"", "level = \"trusted\"");
    // Signed, then edited: tampered.
    let tampered = host.add_plugin(&hello_dir(), "tampered")?;
    edit_manifest(&tampered, "name = \"hello\"", "name = \"tampered\"");
    sign(&tampered);
    edit_manifest(&tampered, "level = \"untrusted\"", "level = \"trusted\"");

    let config = host.data_dir().with_file_name("toolmesh.toml");
    std::fs::write(
        &config,
        format!("[trust]\npublishers = [\"{publisher}\"]\nunsigned = \"untrusted\"\n"),
    )?;
    let config_arg = config.display().to_string();
    let out = toolmesh(&host, &["--config", &config_arg, "plugin", "list"]);
    let listed = stdout(&out);
    assert!(listed.contains("signed 0.1.0 [trusted]"), "{listed}");
    assert!(
        listed.contains(&format!("signed by trusted {publisher}")),
        "{listed}"
    );
    assert!(listed.contains("unsigned 0.1.0 [untrusted]"), "{listed}");
    assert!(listed.contains("local, unsigned"), "{listed}");
    assert!(
        listed.contains("REFUSED") && listed.contains("changed after it was signed"),
        "{listed}"
    );
    // `unsigned = "none"`: only signed plugins load.
    std::fs::write(
        &config,
        format!("[trust]\npublishers = [\"{publisher}\"]\nunsigned = \"none\"\n"),
    )?;
    let listed = stdout(&toolmesh(
        &host,
        &["--config", &config_arg, "plugin", "list"],
    ));
    assert!(listed.contains("signed 0.1.0 [trusted]"), "{listed}");
    assert!(
        listed.contains("refuses plugins without a trusted signature"),
        "{listed}"
    );
    // Install checks the signature too.
    let other = TempHost::new()?;
    let out = toolmesh(
        &other,
        &["plugin", "install", &tampered.display().to_string()],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("changed after it was signed"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

/// Links planted in the plugin directory that point out of it are not
/// followed: a component linked to a file elsewhere is refused with the
/// reason (the good plugin beside it loads), and an install over a plugin
/// name planted as a link to a directory elsewhere replaces the link and
/// writes nothing there.
#[test]
fn links_planted_in_the_plugin_directory_are_not_followed_out() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let outside = tempfile::tempdir()?;
    host.add_plugin(&hello_dir(), "good")?;
    let linked = host.add_plugin(&hello_dir(), "linked")?;
    edit_manifest(&linked, "name = \"hello\"", "name = \"linked\"");
    let elsewhere = outside.path().join("hello.wasm");
    std::fs::rename(linked.join("hello.wasm"), &elsewhere)?;
    std::os::unix::fs::symlink(&elsewhere, linked.join("hello.wasm"))?;
    let list = toolmesh(&host, &["plugin", "list"]);
    let listed = format!("{}{}", stdout(&list), stderr(&list));
    assert!(
        listed.contains("linked") && listed.contains("not followed"),
        "the linked component is refused with the reason: {listed}"
    );
    assert!(
        listed.contains("hello__greet"),
        "the good plugin loads: {listed}"
    );
    std::fs::remove_dir_all(&linked)?;

    // `plugins/hello` planted as a link to a directory elsewhere that
    // holds a plugin: `--force` swaps the link out and leaves that
    // directory as it was.
    let target = outside.path().join("planted");
    std::fs::create_dir(&target)?;
    for file in ["plugin.toml", "hello.wasm"] {
        std::fs::copy(hello_dir().join(file), target.join(file))?;
    }
    std::fs::remove_dir_all(host.plugins_dir().join("good"))?;
    std::os::unix::fs::symlink(&target, host.plugins_dir().join("hello"))?;
    let source = hello_dir();
    let forced = toolmesh(
        &host,
        &["plugin", "install", "--force", source.to_str().unwrap()],
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    let installed = host.plugins_dir().join("hello");
    assert!(
        !installed.symlink_metadata()?.file_type().is_symlink(),
        "the link was replaced by the plugin itself"
    );
    let mut left: Vec<_> = std::fs::read_dir(&target)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    left.sort();
    assert_eq!(left, ["hello.wasm", "plugin.toml"], "nothing written there");
    assert_eq!(
        std::fs::read(target.join("plugin.toml"))?,
        std::fs::read(hello_dir().join("plugin.toml"))?
    );
    let entries: Vec<_> = std::fs::read_dir(host.plugins_dir())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(entries, ["hello"], "no staging left behind");
    Ok(())
}
