//! Clients we did not write, over HTTP: the official MCP conformance suite
//! (`@modelcontextprotocol/conformance` 0.1.16 for the 2025-11-25
//! requirements, 0.2.0-alpha.12 for both eras) against `toolmesh serve
//! --http` with the `conformance` test plugin served unprefixed, and the
//! MCP Inspector's CLI (2.12) with a bearer key: tools, a plugin's resource
//! and prompt. The Node tools are pinned
//! in `tests/npm/*` and installed by `cargo xtask test`, which sets
//! `TOOLMESH_NPM_DIR`.
//!
//! Every scored server scenario must pass, with no warning: the baselines in
//! `tests/conformance/*.yml` list no expected failures (a baseline makes the
//! suite count a WARNING as a failure). Each run prints how many scenarios
//! it scored and passed.

use std::path::{Path, PathBuf};
use std::process::Command;

use toolmesh_test_support::http::{HttpHost, add_client};
use toolmesh_test_support::{TempHost, test_plugin};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `tests/npm/<tool>`, installed.
fn npm_tool(tool: &str) -> PathBuf {
    let root = std::env::var_os("TOOLMESH_NPM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("tests/npm"));
    let dir = root.join(tool);
    assert!(
        dir.join("node_modules/.bin/node").exists(),
        "{} is not installed: run the tests with `cargo xtask test`, which installs the \
         pinned Node tools (npm ci in tests/npm/*)",
        dir.display()
    );
    dir
}

/// A host serving the conformance plugin without prefixes and without
/// authentication (the suite sends no credentials), on loopback.
async fn conformance_host() -> (TempHost, HttpHost) {
    let host = TempHost::new().unwrap();
    host.add_plugin(&test_plugin("conformance"), "conformance")
        .unwrap();
    let args = host.args_with_config("bundled_plugins = false\n[http]\nauth = \"none\"\n[plugins.conformance]\nprefix = false\n").unwrap();
    let server = HttpHost::start(Path::new(BIN), &args, &[]).await.unwrap();
    (host, server)
}

/// Runs one conformance suite and returns its output; panics (with it) if
/// the suite fails.
fn run_suite(tool: &str, url: &str, expected: &str, extra: &[&str]) -> String {
    let dir = npm_tool(tool);
    let out_dir = tempfile::tempdir().unwrap();
    let output = Command::new(dir.join("node_modules/.bin/node"))
        .arg(dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args(["server", "--url", url])
        .args(extra)
        .arg("--expected-failures")
        .arg(workspace().join("tests/conformance").join(expected))
        .arg("-o")
        .arg(out_dir.path())
        .output()
        .expect("run the conformance suite");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the conformance suite ({tool} {extra:?}) failed: see its output above"
    );
    let passed = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('✓'))
        .count();
    let failed = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('✗'))
        .count();
    eprintln!("conformance {tool} {extra:?}: {passed} scenarios passed, {failed} failed");
    stdout
}

#[tokio::test]
async fn the_0_1_conformance_suite_passes_every_scenario() {
    let (_host, server) = conformance_host().await;
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        run_suite("conformance-0.1", &url, "expected-failures-0.1.yml", &[])
    })
    .await
    .unwrap();
    assert!(out.contains("tools-call-simple-text"), "{out}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_0_2_conformance_suite_passes_every_scored_scenario_of_both_eras() {
    let (_host, server) = conformance_host().await;
    let url = server.url();
    tokio::task::spawn_blocking(move || {
        run_suite(
            "conformance-0.2",
            &url,
            "expected-failures-0.2.yml",
            &["--requirements", "2025-11-25"],
        );
        run_suite(
            "conformance-0.2",
            &url,
            "expected-failures-0.2-stateless.yml",
            &["--requirements", "2026-07-28"],
        );
    })
    .await
    .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mcp_inspector_lists_and_calls_tools_over_http_with_a_key() {
    let host = TempHost::new().unwrap();
    let args = host.args();
    let key = add_client(Path::new(BIN), &args, "inspector", "insp", &[]).unwrap();
    let server = HttpHost::start(Path::new(BIN), &args, &[]).await.unwrap();
    let dir = npm_tool("inspector");
    // The Inspector keeps state under $HOME.
    let home = tempfile::tempdir().unwrap();
    let inspector = |method_args: &[&str], key: &str| {
        Command::new(dir.join("node_modules/.bin/node"))
            .env("HOME", home.path())
            .arg(dir.join("node_modules/.bin/mcp-inspector"))
            .args([
                "--cli",
                "--transport",
                "http",
                "--server-url",
                &server.url(),
            ])
            .args(["--header", &format!("Authorization: Bearer {key}")])
            .args(method_args)
            .output()
            .expect("run the MCP Inspector")
    };
    let url_key = key.clone();
    let list = tokio::task::block_in_place(|| inspector(&["--method", "tools/list"], &url_key));
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(stdout.contains("hello__greet"), "{stdout}");
    let call = tokio::task::block_in_place(|| {
        inspector(
            &[
                "--method",
                "tools/call",
                "--tool-name",
                "hello__greet",
                "--tool-arg",
                "name=Inspector",
            ],
            &url_key,
        )
    });
    let stdout = String::from_utf8_lossy(&call.stdout);
    assert!(
        call.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&call.stderr)
    );
    assert!(stdout.contains("Hello, Inspector!"), "{stdout}");
    // A plugin's resource and prompt, as the Inspector lists and reads them.
    for (args, expected) in [
        (
            &["--method", "resources/list"][..],
            "toolmesh://hello/about",
        ),
        (
            &[
                "--method",
                "resources/read",
                "--uri",
                "toolmesh://hello/about",
            ][..],
            "hello greets people and adds numbers.",
        ),
        (&["--method", "prompts/list"][..], "hello__introduce"),
    ] {
        let out = tokio::task::block_in_place(|| inspector(args, &url_key));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(expected), "{args:?}: {stdout}");
    }
    let refused =
        tokio::task::block_in_place(|| inspector(&["--method", "tools/list"], "tm_wrong"));
    assert!(!refused.status.success(), "a wrong key must not list tools");
    server.stop().await.unwrap();
}
