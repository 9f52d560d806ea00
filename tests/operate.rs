//! Operating a running host, through the real binary with real MCP clients:
//! hot reload of the plugin directory (drop in, replace with a broken
//! build, remove), lifecycle from the CLI (control socket), admin tools and
//! HTTP (pause, resume, disable, enable, reload; state kept across a
//! restart), circuit breakers, load hooks, and the admin scope.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::service::RunningService;
use serde_json::{Value, json};
use toolmesh_test_support::http::{HttpHost, dashboard_sign_in, operator_and_agent_keys};
use toolmesh_test_support::mesh::cli;
use toolmesh_test_support::{
    ListWatcher, TempHost, call, connect_command, first_text, serve_command,
};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

fn hello_dir() -> PathBuf {
    Path::new(toolmesh::plugin::bundled::BUNDLED_DIR).join("hello")
}

type Session = RunningService<RoleClient, ListWatcher>;

async fn start(host: &TempHost, config: &str) -> anyhow::Result<(Session, ListWatcher)> {
    let mut args = host.args_with_config(config)?;
    args.push("--no-bundled".into());
    let watcher = ListWatcher::default();
    let session = connect_command(watcher.clone(), serve_command(Path::new(BIN), &args)).await?;
    Ok((session, watcher))
}

async fn tool_names(session: &Session) -> Vec<String> {
    session
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// The structured result of admin tool `tool`.
async fn admin(session: &Session, tool: &str, arguments: Value) -> Value {
    let result = call(session, tool, arguments).await.expect("call");
    assert_ne!(
        result.is_error,
        Some(true),
        "{tool}: {}",
        first_text(&result)
    );
    result.structured_content.expect("structured")
}

async fn events(session: &Session) -> Vec<(String, String, String)> {
    let listed = admin(session, "admin__events", json!({"limit": 100})).await;
    listed["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["plugin"].as_str().unwrap_or_default().to_owned(),
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Copies a directory's files into `to` (created), like an operator's `cp -r`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_reload_adds_keeps_the_old_version_when_a_new_one_is_broken_and_removes()
-> anyhow::Result<()> {
    let host = TempHost::new()?;
    let (session, watcher) = start(&host, "").await?;
    assert!(
        !tool_names(&session)
            .await
            .contains(&"hello__greet".to_owned())
    );

    // Dropped in: listed, with list_changed, and callable.
    let seen = watcher.changes();
    let dropped = Instant::now();
    copy_dir(&hello_dir(), &host.plugins_dir().join("hello"));
    let took = watcher
        .changed_after(seen, Duration::from_secs(10))
        .await
        .expect("list_changed after the plugin was dropped in");
    eprintln!(
        "drop to list_changed: {took:?} ({:?} since the copy began)",
        dropped.elapsed()
    );
    let mut listed = false;
    for _ in 0..200 {
        if tool_names(&session)
            .await
            .contains(&"hello__greet".to_owned())
        {
            listed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(listed, "hello__greet is listed after the drop");
    let hi = call(&session, "hello__greet", json!({"name": "Ada"})).await?;
    assert_eq!(first_text(&hi), "Hello, Ada!");

    // Replaced by a broken build: the old version keeps serving, the error is recorded.
    let wasm = host.plugins_dir().join("hello/hello.wasm");
    std::fs::write(&wasm, b"\0asm not really a component")?;
    let failed = async {
        for _ in 0..400 {
            let found = events(&session)
                .await
                .into_iter()
                .find(|(p, kind, _)| p == "hello" && kind == "failed");
            if let Some(found) = found {
                return Some(found);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    }
    .await
    .expect("a failed event for the broken build");
    assert!(
        failed.2.contains("hash mismatch") && failed.2.contains("keeps serving"),
        "{failed:?}"
    );
    let still = call(&session, "hello__greet", json!({"name": "Bo"})).await?;
    assert_eq!(
        first_text(&still),
        "Hello, Bo!",
        "the loaded version serves"
    );
    let plugins = admin(&session, "admin__plugins", json!({})).await;
    let hello = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hello")
        .expect("hello in admin__plugins");
    assert!(
        hello["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("hash mismatch")),
        "{hello}"
    );

    // Removed: gone, with list_changed.
    let seen = watcher.changes();
    std::fs::remove_dir_all(host.plugins_dir().join("hello"))?;
    watcher
        .changed_after(seen, Duration::from_secs(10))
        .await
        .expect("list_changed after removal");
    let gone = call(&session, "hello__greet", json!({"name": "Cy"})).await;
    assert!(gone.is_err(), "an unknown tool after removal: {gone:?}");
    let kinds: Vec<String> = events(&session).await.into_iter().map(|e| e.1).collect();
    assert!(kinds.contains(&"removed".to_owned()), "{kinds:?}");

    // `toolmesh plugin install` into the running host's directory: no restart.
    let seen = watcher.changes();
    let mut install: Vec<String> = host.args();
    install.extend(["--no-bundled", "plugin", "install"].map(String::from));
    install.push(hello_dir().display().to_string());
    let args: Vec<&str> = install.iter().map(String::as_str).collect();
    cli(Path::new(BIN), &args)?;
    watcher
        .changed_after(seen, Duration::from_secs(10))
        .await
        .expect("list_changed after install");
    let mut answered = None;
    for _ in 0..200 {
        let result = call(&session, "hello__greet", json!({"name": "Di"})).await;
        if let Ok(result) = result
            && result.is_error != Some(true)
        {
            answered = Some(first_text(&result).to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(answered.as_deref(), Some("Hello, Di!"));
    session.cancel().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_from_the_cli_holds_calls_unlists_tools_and_survives_a_restart()
-> anyhow::Result<()> {
    let host = TempHost::new()?;
    host.add_plugin(&hello_dir(), "hello")?;
    let mut cli_args: Vec<String> = host.args();
    cli_args.push("--no-bundled".into());
    let run = |extra: &[&str]| {
        let args: Vec<&str> = cli_args
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
            .collect();
        cli(Path::new(BIN), &args)
    };
    let (session, watcher) = start(&host, "").await?;

    let said = run(&["plugin", "pause", "hello", "--reason", "maintenance"])?;
    assert!(said.contains("paused"), "{said}");
    assert!(
        tool_names(&session)
            .await
            .contains(&"hello__greet".to_owned())
    );
    let held = call(&session, "hello__greet", json!({"name": "A"})).await?;
    assert_eq!(held.is_error, Some(true));
    assert!(
        first_text(&held).contains("paused by the operator (maintenance"),
        "{}",
        first_text(&held)
    );
    run(&["plugin", "resume", "hello"])?;
    let ok = call(&session, "hello__greet", json!({"name": "A"})).await?;
    assert_eq!(first_text(&ok), "Hello, A!");

    let seen = watcher.changes();
    run(&["plugin", "disable", "hello", "--reason", "not needed"])?;
    watcher
        .changed_after(seen, Duration::from_secs(10))
        .await
        .expect("list_changed after disable");
    assert!(
        !tool_names(&session)
            .await
            .contains(&"hello__greet".to_owned())
    );
    let unknown = run(&["plugin", "pause", "nosuch"]).unwrap_err().to_string();
    assert!(unknown.contains("no plugin `nosuch`"), "{unknown}");
    session.cancel().await?;

    // The state survives a restart: still disabled, until enabled.
    let (session, watcher) = start(&host, "").await?;
    assert!(
        !tool_names(&session)
            .await
            .contains(&"hello__greet".to_owned())
    );
    let seen = watcher.changes();
    run(&["plugin", "enable", "hello"])?;
    watcher
        .changed_after(seen, Duration::from_secs(10))
        .await
        .expect("list_changed after enable");
    let back = call(&session, "hello__greet", json!({"name": "B"})).await?;
    assert_eq!(first_text(&back), "Hello, B!");
    let seen = watcher.changes();
    run(&["plugin", "reload", "hello"])?;
    watcher
        .changed_after(seen, Duration::from_secs(10))
        .await
        .expect("list_changed after reload");
    let history = run(&["plugin", "events", "--plugin", "hello"])?;
    for kind in [
        "paused", "resumed", "disabled", "enabled", "reloaded", "loaded",
    ] {
        assert!(
            history.contains(&format!("\"{kind}\"")),
            "{kind} in {history}"
        );
    }
    assert!(history.contains("not needed"), "{history}");
    session.cancel().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_breaker_opens_on_traps_refuses_at_once_then_a_probe_closes_it() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    host.add_plugin(&toolmesh_test_support::test_plugin("hostile"), "hostile")?;
    let config = "[monitor]\nrollup_s = 1\n\
        [levels.untrusted.breaker]\nfailures = 3\nwindow_ms = 60000\nratio = 0.25\ncooldown_ms = 1500\n\
        [[alerts]]\nname = \"breakers\"\nkind = \"breaker_opened\"\n\
        [[alerts]]\nname = \"errors\"\nkind = \"error_ratio\"\nthreshold = 0.5\nmin_calls = 5\n";
    let (session, _) = start(&host, config).await?;

    // Tool errors the plugin returns on purpose do not count (six of them
    // would open it if they did); three traps in ten calls (30%) do.
    for _ in 0..6 {
        let denied = call(&session, "hostile__deny", json!({})).await?;
        assert_eq!(denied.is_error, Some(true));
    }
    let fine = call(&session, "hostile__noop", json!({})).await?;
    assert_ne!(fine.is_error, Some(true), "{}", first_text(&fine));

    for _ in 0..3 {
        let crashed = call(&session, "hostile__panic", json!({"message": "boom"})).await?;
        assert!(
            first_text(&crashed).contains("crashed"),
            "{}",
            first_text(&crashed)
        );
    }
    let refused_at = Instant::now();
    let refused = call(&session, "hostile__noop", json!({})).await?;
    let refusal = first_text(&refused).to_owned();
    assert_eq!(refused.is_error, Some(true));
    assert!(
        refusal.contains("circuit breaker is open")
            && refusal.contains("lets a call through again in"),
        "{refusal}"
    );
    assert!(
        refused_at.elapsed() < Duration::from_millis(500),
        "refused at once"
    );

    // After the cool-down one call probes; its success closes the breaker.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let probe = call(&session, "hostile__noop", json!({})).await?;
    assert_ne!(probe.is_error, Some(true), "{}", first_text(&probe));
    let after = call(&session, "hostile__noop", json!({})).await?;
    assert_ne!(after.is_error, Some(true));
    let kinds: Vec<String> = events(&session)
        .await
        .into_iter()
        .filter(|e| e.0 == "hostile")
        .map(|e| e.1)
        .collect();
    for kind in ["breaker_opened", "breaker_half_open", "breaker_closed"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
    }

    // The alert rules saw it: the breaker opening at once, the error ratio
    // at the next rollup; acknowledging one closes it.
    let mut rules = Vec::new();
    for _ in 0..200 {
        let alerts = admin(&session, "admin__alerts", json!({})).await;
        rules = alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["rule"].as_str().unwrap_or_default().to_owned(),
                    a["id"].as_u64().unwrap_or(0),
                )
            })
            .collect::<Vec<_>>();
        if rules.iter().any(|(r, _)| r == "errors") && rules.iter().any(|(r, _)| r == "breakers") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, id) = rules
        .iter()
        .find(|(r, _)| r == "breakers")
        .cloned()
        .unwrap_or_else(|| panic!("a breaker alert in {rules:?}"));
    assert!(
        rules.iter().any(|(r, _)| r == "errors"),
        "an error-ratio alert in {rules:?}"
    );
    let acked = admin(&session, "admin__ack_alert", json!({"id": id})).await;
    assert_eq!(acked["alert"]["acknowledged"], true);
    session.cancel().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_hook_refuses_with_its_reason_and_cannot_stall_the_host() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    host.add_plugin(&toolmesh_test_support::test_plugin("hostile"), "hostile")?;
    host.add_plugin(&hello_dir(), "hello")?;
    let config = "[plugins.hostile.config]\nrefuse_load = \"the api_url setting is missing\"\n";
    let (session, _) = start(&host, config).await?;
    let names = tool_names(&session).await;
    assert!(names.contains(&"hello__greet".to_owned()));
    assert!(
        !names.iter().any(|n| n.starts_with("hostile__")),
        "{names:?}"
    );
    let failed = events(&session)
        .await
        .into_iter()
        .find(|e| e.0 == "hostile" && e.1 == "failed")
        .expect("a failed event");
    assert!(
        failed.2.contains("load hook refused") && failed.2.contains("api_url setting is missing"),
        "{failed:?}"
    );
    session.cancel().await?;

    let spin =
        "[levels.untrusted]\ntimeout_ms = 500\n[plugins.hostile.config]\nspin_on_load = true\n";
    let started = Instant::now();
    let (session, _) = start(&host, spin).await?;
    let names = tool_names(&session).await;
    assert!(names.contains(&"hello__greet".to_owned()));
    let failed = events(&session)
        .await
        .into_iter()
        .find(|e| e.0 == "hostile" && e.1 == "failed")
        .expect("a failed event");
    assert!(
        failed.2.contains("load hook")
            && (failed.2.contains("deadline") || failed.2.contains("fuel")),
        "{failed:?}"
    );
    eprintln!("start with a spinning load hook: {:?}", started.elapsed());
    session.cancel().await?;

    // The unload hook runs when the plugin stops serving (here: disabled).
    let (session, _) = start(&host, "").await?;
    let before = call(&session, "hostile__kv_get", json!({"key": "unloaded"})).await?;
    assert_eq!(first_text(&before), "(unset)");
    admin(
        &session,
        "admin__plugin",
        json!({"plugin": "hostile", "action": "disable"}),
    )
    .await;
    admin(
        &session,
        "admin__plugin",
        json!({"plugin": "hostile", "action": "enable"}),
    )
    .await;
    let mut marked = String::new();
    for _ in 0..200 {
        let after = call(&session, "hostile__kv_get", json!({"key": "unloaded"})).await?;
        marked = first_text(&after).to_owned();
        if marked != "(unset)" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(marked, "by the unload hook");
    session.cancel().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_actions_need_the_admin_scope_over_http() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    host.add_plugin(&hello_dir(), "hello")?;
    let mut args = host.args();
    args.push("--no-bundled".into());
    let (ops_key, agent_key) = operator_and_agent_keys(Path::new(BIN), &args)?;
    let server = HttpHost::start(Path::new(BIN), &args, &[]).await?;

    let agent = server.connect((), Some(&agent_key)).await?;
    let listed: Vec<String> = agent
        .list_all_tools()
        .await?
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(listed.contains(&"hello__greet".to_owned()));
    assert!(
        !listed.iter().any(|n| n.starts_with("admin__")),
        "{listed:?}"
    );
    let refused = call(
        &agent,
        "admin__plugin",
        json!({"plugin": "hello", "action": "pause"}),
    )
    .await?;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        first_text(&refused).contains("lacks the admin scope"),
        "{}",
        first_text(&refused)
    );
    let still = call(&agent, "hello__greet", json!({"name": "A"})).await?;
    assert_eq!(
        first_text(&still),
        "Hello, A!",
        "the refused pause did nothing"
    );

    let http = reqwest::Client::new();
    let login = http
        .post(server.url_of("/api/login"))
        .json(&json!({"key": agent_key}))
        .send()
        .await?;
    assert_eq!(login.status(), 403, "a key without admin cannot sign in");
    let wrong = http
        .post(server.url_of("/api/login"))
        .json(&json!({"key": "tm_forged"}))
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    let anonymous = http.get(server.url_of("/api/plugins")).send().await?;
    assert_eq!(anonymous.status(), 401);
    let scrape = http
        .get(server.url_of("/metrics"))
        .bearer_auth(&agent_key)
        .send()
        .await?;
    assert_eq!(scrape.status(), 403);

    // The admin pauses over MCP and over the dashboard's API.
    let ops = server.connect((), Some(&ops_key)).await?;
    let paused = call(
        &ops,
        "admin__plugin",
        json!({"plugin": "hello", "action": "pause", "reason": "ops"}),
    )
    .await?;
    assert_ne!(paused.is_error, Some(true), "{}", first_text(&paused));
    let held = call(&agent, "hello__greet", json!({"name": "A"})).await?;
    assert!(
        first_text(&held).contains("paused by the operator"),
        "{}",
        first_text(&held)
    );

    let (_, csrf) = dashboard_sign_in(&server, &ops_key).await?;
    let (session_cookie, csrf_of_session) = dashboard_sign_in(&server, &ops_key).await?;
    assert_ne!(csrf, csrf_of_session, "each session has its own token");
    let forged = http
        .post(server.url_of("/api/plugins/hello/resume"))
        .header("cookie", &session_cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await?;
    assert_eq!(
        forged.status(),
        403,
        "another session's CSRF token is refused"
    );
    let resumed = http
        .post(server.url_of("/api/plugins/hello/resume"))
        .header("cookie", &session_cookie)
        .header("x-csrf-token", &csrf_of_session)
        .json(&json!({"reason": "done"}))
        .send()
        .await?;
    assert_eq!(resumed.status(), 200, "{}", resumed.text().await?);
    let ok = call(&agent, "hello__greet", json!({"name": "A"})).await?;
    assert_eq!(first_text(&ok), "Hello, A!");
    agent.cancel().await?;
    ops.cancel().await?;
    server.stop().await
}
