//! Shared by the build scripts that build plugins (`host/build.rs` for the
//! bundled set, `tests/support/build.rs` for the test plugins): build
//! workspace packages as `wasm32-wasip2` components with a nested cargo, and
//! stage each as a plugin directory with its manifest's hash filled in.
//!
//! The nested cargo gets its own `--target-dir` (one on the outer target dir
//! would wait forever on its lock) and none of the outer build's settings.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const WASM_TARGET: &str = "wasm32-wasip2";
pub const PROFILE: &str = "plugin";

/// A plugin to build: its cargo package and its crate directory, relative to
/// the workspace root (which holds its `plugin.toml`).
pub struct PluginCrate {
    pub package: &'static str,
    pub dir: &'static str,
}

/// The workspace root, for a build script of a crate `depth` levels below it.
pub fn workspace_root(depth: usize) -> PathBuf {
    let mut dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    for _ in 0..depth {
        dir = dir.parent().expect("inside the workspace").to_owned();
    }
    dir
}

/// Builds `plugins` and stages each as `<stage>/<package>/{plugin.toml, <package>.wasm}`.
/// Returns the staged directories, in order.
pub fn build_and_stage(workspace: &Path, plugins: &[PluginCrate], stage: &Path) -> Vec<PathBuf> {
    for watched in ["wit", "plugin-sdk", "Cargo.lock"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    for plugin in plugins {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(plugin.dir).display()
        );
    }
    ensure_wasm_target(workspace);
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm-plugins");
    build(workspace, plugins, &target_dir);
    plugins
        .iter()
        .map(|plugin| {
            let file = format!("{}.wasm", plugin.package.replace('-', "_"));
            let wasm = target_dir.join(WASM_TARGET).join(PROFILE).join(&file);
            let template = workspace.join(plugin.dir).join("plugin.toml");
            stage_plugin(&stage.join(plugin.package), &file, &wasm, &template)
        })
        .collect()
}

/// Installs the wasm target through rustup when the toolchain lacks it
/// (`rust-toolchain.toml` asks rustup for it too; this covers toolchains
/// selected some other way).
fn ensure_wasm_target(workspace: &Path) {
    let mut rustc = Command::new("rustc");
    workspace_toolchain(&mut rustc, workspace);
    let sysroot = rustc
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    let installed = sysroot
        .as_ref()
        .is_some_and(|root| root.join("lib/rustlib").join(WASM_TARGET).exists());
    if installed {
        return;
    }
    println!("cargo:warning=installing the {WASM_TARGET} target with rustup");
    let mut rustup = Command::new("rustup");
    workspace_toolchain(&mut rustup, workspace);
    let status = rustup.args(["target", "add", WASM_TARGET]).status();
    if !matches!(status, Ok(s) if s.success()) {
        panic!(
            "the {WASM_TARGET} target is missing and `rustup target add {WASM_TARGET}` failed; \
             install it and build again"
        );
    }
}

/// Lets `rust-toolchain.toml` choose the toolchain `cmd` runs: plugins
/// are built with the workspace's toolchain (which has the wasm target)
/// even when the host is built with another (`cargo +nightly fuzz`).
fn workspace_toolchain(cmd: &mut Command, workspace: &Path) {
    cmd.current_dir(workspace)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("CARGO");
}

fn build(workspace: &Path, plugins: &[PluginCrate], target_dir: &Path) {
    let mut cmd = Command::new("cargo");
    workspace_toolchain(&mut cmd, workspace);
    cmd.args([
        "build",
        "--locked",
        "--target",
        WASM_TARGET,
        "--profile",
        PROFILE,
    ])
    .arg("--target-dir")
    .arg(target_dir);
    for plugin in plugins {
        cmd.args(["-p", plugin.package]);
    }
    // The outer build's settings describe the host build, not this one.
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let cargo_setting = key.starts_with("CARGO_")
            && !key.starts_with("CARGO_HOME")
            && !key.starts_with("CARGO_NET_")
            && !key.starts_with("CARGO_REGISTRIES_")
            && !key.starts_with("CARGO_HTTP_");
        let build_script_env = matches!(
            key,
            "RUSTFLAGS"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "TARGET"
                | "HOST"
                | "PROFILE"
                | "OUT_DIR"
                | "OPT_LEVEL"
                | "DEBUG"
                | "NUM_JOBS"
                | "MAKEFLAGS"
                | "MFLAGS"
        );
        if cargo_setting || build_script_env {
            cmd.env_remove(key);
        }
    }
    let status = cmd.status().expect("run cargo for the wasm plugins");
    assert!(
        status.success(),
        "building plugins for {WASM_TARGET} failed ({status}); see the output above"
    );
}

/// Writes `<dir>/{plugin.toml, <file>}` with the manifest's hash filled in.
fn stage_plugin(dir: &Path, file: &str, wasm: &Path, template: &Path) -> PathBuf {
    let bytes = fs::read(wasm).unwrap_or_else(|e| panic!("read {}: {e}", wasm.display()));
    let manifest =
        fs::read_to_string(template).unwrap_or_else(|e| panic!("read {}: {e}", template.display()));
    assert!(
        !manifest.lines().any(|l| l.trim_start().starts_with("hash")),
        "{}: built plugins get their hash from the build; remove the `hash` line",
        template.display()
    );
    // Top-level keys must come before any table, so the hash goes first.
    let manifest = format!(
        "hash = \"blake3:{}\"\n{manifest}",
        blake3::hash(&bytes).to_hex()
    );
    fs::create_dir_all(dir).expect("create the staged plugin dir");
    write_if_changed(&dir.join("plugin.toml"), manifest.as_bytes());
    write_if_changed(&dir.join(file), &bytes);
    dir.to_owned()
}

fn write_if_changed(path: &Path, bytes: &[u8]) {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
