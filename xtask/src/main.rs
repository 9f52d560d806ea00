//! `cargo xtask`: the project's own set-up and test commands, so that a fresh
//! machine with only the Rust toolchain and Python needs nothing else.
//!
//! - `cargo xtask test`: formatting (`cargo fmt --check`), every test (the
//!   Rust workspace: unit, integration through a real rmcp client, doc
//!   tests; then the Python MCP client tests against the real binary, in a
//!   virtualenv this command creates), and clippy with `-D warnings`.
//! - `cargo xtask bench`: the criterion benchmarks.
//!
//! The `wasm32-wasip2` target is installed by `rust-toolchain.toml` (and, as a
//! fallback, by the host's build script).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The Python MCP client and test runner the Python tests use.
const PYTHON_PACKAGES: &[&str] = &[
    "mcp==2.3.0",
    "pytest==8.4.2",
    "pytest-timeout==2.4.0",
    "prometheus-client==0.26.0",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 test   run every test (Rust workspace, then the Python MCP client tests)\n  \
                 bench  run the criterion benchmarks (extra arguments go to cargo bench)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ is in the workspace")
        .to_owned()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed ({status})", cmd.get_program()))
    }
}

/// Test hosts wait for every plugin before they serve: a cold compile on a
/// busy machine can outlast the 5 s default, and tests list tools at once.
/// The test of the bounded load phase sets its own bound.
const STARTUP_WAIT: (&str, &str) = ("TOOLMESH_STARTUP_WAIT_MS", "600000");

fn test(extra: &[String]) -> Result<(), String> {
    let root = workspace_root();
    run(cargo().args(["fmt", "--all", "--check"]))?;
    ensure_apt(
        "libfann-dev",
        "/usr/include/fann.h",
        "the neural tests compare against libfann",
    )?;
    ensure_apt(
        "chromium",
        "/usr/bin/chromium",
        "the dashboard tests run it headless",
    )?;
    run(cargo().args(["build", "--locked", "-p", "toolmesh", "--bin", "toolmesh"]))?;
    let npm = npm_tools(&root)?;
    run(cargo()
        .args(["test", "--locked", "--workspace", "--all-targets"])
        .env("TOOLMESH_NPM_DIR", &npm)
        .env(STARTUP_WAIT.0, STARTUP_WAIT.1)
        .args(extra))?;
    // Doc tests of the crates that have them (plugin cdylibs do not link natively as doc-test libraries).
    run(cargo().args([
        "test",
        "--locked",
        "--doc",
        "-p",
        "toolmesh-sdk",
        "-p",
        "toolmesh",
        "-p",
        "neural-core",
    ]))?;
    let python = python_env(&root)?;
    let binary = root.join("target/debug/toolmesh");
    run(Command::new(python)
        .current_dir(&root)
        .env("TOOLMESH_BIN", binary)
        .env(STARTUP_WAIT.0, STARTUP_WAIT.1)
        .args(["-m", "pytest", "-v", "tests/python"]))?;
    run(cargo().args([
        "clippy",
        "--locked",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

/// Debian package `package` (found by `probe`, a file it installs),
/// installed with apt if missing; `why` says what needs it.
fn ensure_apt(package: &str, probe: &str, why: &str) -> Result<(), String> {
    if Path::new(probe).exists() {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    eprintln!("xtask: installing {package} ({why})");
    if run(&mut apt(&["install", "-y", "-q", package])).is_err() {
        run(&mut apt(&["update", "-q"]))?;
        run(&mut apt(&["install", "-y", "-q", package]))
            .map_err(|e| format!("{e}: install Debian's {package} ({why})"))?;
    }
    Ok(())
}

fn bench(extra: &[String]) -> Result<(), String> {
    run(cargo()
        .args(["bench", "--locked", "-p", "toolmesh"])
        .args(extra))
}

/// The Node tools the HTTP tests run (the MCP conformance suite, 0.1 and
/// 0.2, and the MCP Inspector, each with Node 22 from npm), pinned by the
/// lockfiles in `tests/npm/*`, installed with `npm ci` when a lockfile
/// changes. Returns `tests/npm`.
fn npm_tools(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join("tests/npm");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let tool = entry.path();
        let Ok(lock) = std::fs::read(tool.join("package-lock.json")) else {
            continue;
        };
        let stamp = tool.join("node_modules/.toolmesh-lock");
        if std::fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
            continue;
        }
        eprintln!("xtask: installing the Node tools in {}", tool.display());
        run(Command::new("npm").current_dir(&tool).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]))
        .map_err(|e| format!("{e}: the HTTP tests need npm (Node.js) and the npm registry"))?;
        std::fs::write(&stamp, &lock).map_err(|e| format!("write {}: {e}", stamp.display()))?;
    }
    Ok(dir)
}

/// A virtualenv at `.venv` with [`PYTHON_PACKAGES`]; created on first use.
fn python_env(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join(".venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let system = ["python3", "python"]
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .ok_or("no python3 on PATH: the Python MCP client tests need it")?;
        run(Command::new(system).arg("-m").arg("venv").arg(&venv))?;
    }
    let stamp = venv.join(".toolmesh-packages");
    let wanted = PYTHON_PACKAGES.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PYTHON_PACKAGES))?;
        std::fs::write(&stamp, wanted).map_err(|e| format!("write {}: {e}", stamp.display()))?;
    }
    Ok(python)
}
