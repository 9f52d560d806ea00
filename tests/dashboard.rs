//! The dashboard in a real headless Chromium (npm `playwright-core` driving
//! Debian's `/usr/bin/chromium`), against the real host with a real MCP
//! client connected over HTTP: wrong keys refused, sign in, a call made by
//! the MCP client appears on the overview within a second, a tool run from
//! the tool runner, a plugin disabled and enabled from the plugins view
//! while the MCP client hears `list_changed`, CSRF refused, and a
//! screenshot of every view (in `target/tmp/dashboard-screenshots`).

use std::path::Path;

use toolmesh_test_support::TempHost;
use toolmesh_test_support::browser::drive_dashboard;
use toolmesh_test_support::http::{HttpHost, operator_and_agent_keys};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_in_a_real_browser() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    host.add_plugin(
        &Path::new(toolmesh::plugin::bundled::BUNDLED_DIR).join("hello"),
        "hello",
    )?;
    let args = host.args_with_config("[monitor]\nrollup_s = 1\n")?;
    let (admin_key, tools_key) = operator_and_agent_keys(Path::new(BIN), &args)?;
    let server = HttpHost::start(Path::new(BIN), &args, &[]).await?;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let run = drive_dashboard(&server, &admin_key, &tools_key, &shots, 1).await?;
    for step in [
        "wrong_keys_refused",
        "cookie_flags",
        "runner",
        "lifecycle",
        "csrf_refused",
    ] {
        assert!(
            run.steps.iter().any(|s| s == step),
            "step {step} in {:?}",
            run.steps
        );
    }
    let to_screen = run.values("call_to_screen_ms");
    assert!(
        !to_screen.is_empty() && to_screen.iter().all(|&ms| ms < 1_000.0),
        "a call reached the overview in {to_screen:?} ms"
    );
    for view in [
        "overview",
        "runner",
        "plugins",
        "history",
        "mesh",
        "permissions",
        "budgets",
        "discovery",
        "events",
        "alerts",
        "config",
    ] {
        assert!(shots.join(format!("{view}.png")).exists(), "{view}.png");
    }
    eprintln!("dashboard measures: {:?}", run.measures);
    server.stop().await
}
