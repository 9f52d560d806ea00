//! The core plugins (permission, discovery, budget) through the real binary
//! and rmcp's MCP client: as tools in their own right, and as the
//! authorities behind the host's enforcement (grants for protected tools,
//! metering against budgets). State survives a restart; concurrent updates
//! are never lost; bad input is refused and changes nothing.

use std::path::Path;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, ReadResourceRequestParams};
use serde_json::{Value, json};
use toolmesh_test_support::{Client, TempHost, call, connect, first_text, test_plugin};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

const POLICY: &str = r#"
[plugins.permission.config]
min_justification_chars = 5
max_duration_s = 3600

[plugins.permission.config.resource_types.greeting]
[plugins.permission.config.resource_types.secrets]
min_trust = 2

[plugins.permission.config.roles.greeter]
permissions = ["greeting"]
trust = 1

[plugins.permission.config.roles.keeper]
inherits = ["greeter"]
permissions = ["secrets"]
trust = 2

[plugins.permission.config.agents.alice]
roles = ["keeper"]

[plugins.permission.config.agents.bob]
roles = ["greeter"]

[permissions.requires]
hello__greet = "greeting"

[plugins.discovery.config]
ttl_s = 2
"#;

/// A host with the bundled plugins and a copy of `hostile` whose `noop`
/// needs a `secrets` grant by its manifest.
fn host(extra_config: &str) -> anyhow::Result<(TempHost, Vec<String>)> {
    let host = TempHost::new()?;
    let dir = host.add_plugin(&test_plugin("hostile"), "hostile")?;
    let manifest = std::fs::read_to_string(dir.join("plugin.toml"))?;
    std::fs::write(
        dir.join("plugin.toml"),
        format!("{manifest}\n[tools.noop]\nrequires = \"secrets\"\n"),
    )?;
    let config = host.data_dir().with_file_name("toolmesh.toml");
    std::fs::write(&config, format!("{POLICY}\n{extra_config}"))?;
    let mut args = host.args();
    args.extend(["--config".into(), config.display().to_string()]);
    Ok((host, args))
}

/// Calls `tool` with `_meta` entries.
async fn call_meta(
    client: &Client,
    tool: &str,
    arguments: Value,
    meta: &[(&str, &str)],
) -> anyhow::Result<CallToolResult> {
    let mut params = CallToolRequestParams::new(tool.to_owned())
        .with_arguments(arguments.as_object().cloned().unwrap_or_default());
    let mut request_meta = rmcp::model::RequestMetaObject::default();
    for (key, value) in meta {
        request_meta
            .0
            .0
            .insert((*key).to_owned(), Value::String((*value).to_owned()));
    }
    params.meta = Some(request_meta);
    Ok(client.call_tool(params).await?)
}

fn structured(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "{}", first_text(result));
    result.structured_content.clone().unwrap_or(Value::Null)
}

async fn read_resource(client: &Client, uri: &str) -> anyhow::Result<Value> {
    let read = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await?;
    let rmcp::model::ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        anyhow::bail!("{uri} is not text");
    };
    Ok(serde_json::from_str(text)?)
}

async fn grant(client: &Client, agent: &str, resource: &str, secs: u64) -> anyhow::Result<String> {
    let decision = structured(
        &call(
            client,
            "permission__request",
            json!({"agent": agent, "resource": resource,
                   "justification": "integration test", "duration_s": secs}),
        )
        .await?,
    );
    assert_eq!(decision["granted"], true, "{decision}");
    Ok(decision["token"].as_str().unwrap_or_default().to_owned())
}

fn events(trail: &Value) -> Vec<String> {
    trail["records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| r["event"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn grant_validate_call_revoke_and_the_audit_trail() -> anyhow::Result<()> {
    let (_host, args) = host("")?;
    let client = connect(Path::new(BIN), &args).await?;

    // Without a token the protected tool is refused, and says how to get one.
    let bare = call(&client, "hello__greet", json!({"name": "x"})).await?;
    assert_eq!(bare.is_error, Some(true));
    assert!(
        first_text(&bare).contains("needs a permission grant for `greeting`"),
        "{}",
        first_text(&bare)
    );

    let token = grant(&client, "bob", "greeting", 600).await?;
    let valid = structured(
        &call(
            &client,
            "permission__validate",
            json!({"token": token, "agent": "bob", "resource": "greeting"}),
        )
        .await?,
    );
    assert_eq!(valid["valid"], true);
    let meta = [
        ("toolmesh/agent", "bob"),
        ("toolmesh/token", token.as_str()),
    ];
    let allowed = call_meta(&client, "hello__greet", json!({"name": "Bob"}), &meta).await?;
    assert_eq!(first_text(&allowed), "Hello, Bob!");

    // Someone else's token does not work for them.
    let stolen = call_meta(
        &client,
        "hello__greet",
        json!({"name": "Eve"}),
        &[
            ("toolmesh/agent", "alice"),
            ("toolmesh/token", token.as_str()),
        ],
    )
    .await?;
    assert!(
        first_text(&stolen).contains("not for agent `alice`"),
        "{}",
        first_text(&stolen)
    );

    let revoked = structured(&call(&client, "permission__revoke", json!({"token": token})).await?);
    assert_eq!(revoked["revoked"], true);
    let after = call_meta(&client, "hello__greet", json!({"name": "Bob"}), &meta).await?;
    assert_eq!(after.is_error, Some(true));
    assert!(
        first_text(&after).contains("the grant was revoked"),
        "{}",
        first_text(&after)
    );

    // A manifest-declared requirement: hostile__noop needs `secrets`, which
    // bob's trust (1) cannot get and alice's (2) can.
    let refused = structured(
        &call(
            &client,
            "permission__request",
            json!({"agent": "bob", "resource": "secrets",
                   "justification": "integration test", "duration_s": 60}),
        )
        .await?,
    );
    assert_eq!(refused["granted"], false);
    assert!(
        refused["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no role that permits")
    );
    let secret = grant(&client, "alice", "secrets", 60).await?;
    let noop = call_meta(
        &client,
        "hostile__noop",
        json!({}),
        &[
            ("toolmesh/agent", "alice"),
            ("toolmesh/token", secret.as_str()),
        ],
    )
    .await?;
    assert_eq!(first_text(&noop), "ok");

    // A token that has expired is refused.
    let short = grant(&client, "bob", "greeting", 1).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = call_meta(
        &client,
        "hello__greet",
        json!({"name": "late"}),
        &[
            ("toolmesh/agent", "bob"),
            ("toolmesh/token", short.as_str()),
        ],
    )
    .await?;
    assert!(
        first_text(&expired).contains("the grant has expired"),
        "{}",
        first_text(&expired)
    );

    let trail = read_resource(&client, "toolmesh://permission/audit").await?;
    assert_eq!(
        events(&trail),
        [
            "granted",
            "validated",
            "validated",
            "invalid",
            "revoked",
            "invalid",
            "refused",
            "granted",
            "validated",
            "granted",
            "expired"
        ]
    );
    let grants = read_resource(&client, "toolmesh://permission/grants").await?;
    let active: Vec<&str> = grants["grants"]
        .as_array()
        .map(|g| g.iter().filter_map(|g| g["agent"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(active, ["alice"], "{grants}");
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn state_survives_a_restart() -> anyhow::Result<()> {
    let (_host, args) = host("")?;
    let client = connect(Path::new(BIN), &args).await?;
    let token = grant(&client, "bob", "greeting", 600).await?;
    structured(
        &call(
            &client,
            "budget__set_budget",
            json!({"id": "t", "limit": 50}),
        )
        .await?,
    );
    structured(
        &call(
            &client,
            "budget__report_spending",
            json!({"id": "t", "amount": 20}),
        )
        .await?,
    );
    structured(
        &call(
            &client,
            "discovery__register",
            json!({"id": "a1", "capabilities": ["x"]}),
        )
        .await?,
    );
    client.cancel().await?;

    let client = connect(Path::new(BIN), &args).await?;
    let meta = [
        ("toolmesh/agent", "bob"),
        ("toolmesh/token", token.as_str()),
    ];
    let allowed = call_meta(&client, "hello__greet", json!({"name": "again"}), &meta).await?;
    assert_eq!(first_text(&allowed), "Hello, again!");
    let status = structured(&call(&client, "budget__status", json!({"id": "t"})).await?);
    assert_eq!(
        (status["spent"].as_u64(), status["remaining"].as_u64()),
        (Some(20), Some(30))
    );
    let trail = read_resource(&client, "toolmesh://permission/audit").await?;
    assert_eq!(events(&trail), ["granted", "validated"]);
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn discovery_finds_by_capability_and_forgets_silent_agents() -> anyhow::Result<()> {
    let (_host, args) = host("")?;
    let client = connect(Path::new(BIN), &args).await?;
    for (id, caps, trust) in [("a", vec!["search"], 1), ("b", vec!["search", "code"], 5)] {
        structured(
            &call(
                &client,
                "discovery__register",
                json!({"id": id, "capabilities": caps, "trust": trust,
                       "endpoint": format!("stdio://{id}"), "metadata": {"team": "x"}}),
            )
            .await?,
        );
    }
    let found = structured(
        &call(
            &client,
            "discovery__discover",
            json!({"capability": "search", "min_trust": 2}),
        )
        .await?,
    );
    assert_eq!(found["agents"][0]["id"], "b");
    assert_eq!(found["agents"].as_array().map(Vec::len), Some(1));
    // The TTL is 2 s: a heartbeat keeps `a` alive, `b` goes silent. Each
    // check has 0.7 s of slack for a slow machine.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    structured(&call(&client, "discovery__heartbeat", json!({"id": "a"})).await?);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let listed = read_resource(&client, "toolmesh://discovery/agents").await?;
    let ids: Vec<&str> = listed["agents"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["a"]);
    let gone = call(&client, "discovery__heartbeat", json!({"id": "b"})).await?;
    assert_eq!(gone.is_error, Some(true));
    assert!(
        first_text(&gone).contains("unknown agent `b`"),
        "{}",
        first_text(&gone)
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn budgets_refuse_past_limits_and_alert_at_the_threshold() -> anyhow::Result<()> {
    let (_host, args) = host("")?;
    let client = connect(Path::new(BIN), &args).await?;
    structured(
        &call(
            &client,
            "budget__set_budget",
            json!({"id": "task-1", "limit": 100, "daily_limit": 95}),
        )
        .await?,
    );
    let s = structured(
        &call(
            &client,
            "budget__report_spending",
            json!({"id": "task-1", "amount": 79}),
        )
        .await?,
    );
    assert_eq!(s["alerted"], false);
    let s = structured(
        &call(
            &client,
            "budget__report_spending",
            json!({"id": "task-1", "amount": 1}),
        )
        .await?,
    );
    assert_eq!(s["alerted"], true, "80% crossed");
    let over = call(
        &client,
        "budget__report_spending",
        json!({"id": "task-1", "amount": 16}),
    )
    .await?;
    assert_eq!(over.is_error, Some(true));
    assert!(
        first_text(&over).contains("would bring `task-1`'s spending today to 96 of its 95"),
        "{}",
        first_text(&over)
    );
    let alerts = read_resource(&client, "toolmesh://budget/alerts").await?;
    assert_eq!(alerts["alerts"].as_array().map(Vec::len), Some(1));
    assert_eq!(alerts["alerts"][0]["budget"], "task-1");
    let budgets = read_resource(&client, "toolmesh://budget/budgets").await?;
    assert_eq!(budgets["budgets"][0]["spent"], 80);
    client.cancel().await?;
    Ok(())
}

/// 16 concurrent callers each report spending 10 times: the total is exact.
#[tokio::test]
async fn concurrent_spending_adds_up_exactly() -> anyhow::Result<()> {
    let (_host, args) = host("")?;
    let client = connect(Path::new(BIN), &args).await?;
    structured(
        &call(
            &client,
            "budget__set_budget",
            json!({"id": "shared", "limit": 1000000}),
        )
        .await?,
    );
    let callers = (0..16u64).map(|caller| {
        let client = &client;
        async move {
            for i in 0..10u64 {
                let amount = caller * 10 + i + 1;
                let result = call(
                    client,
                    "budget__report_spending",
                    json!({"id": "shared", "amount": amount}),
                )
                .await?;
                anyhow::ensure!(result.is_error != Some(true), "{}", first_text(&result));
            }
            anyhow::Ok(())
        }
    });
    for outcome in futures::future::join_all(callers).await {
        outcome?;
    }
    let status = structured(&call(&client, "budget__status", json!({"id": "shared"})).await?);
    // 1 + 2 + ... + 160
    assert_eq!(status["spent"], 160 * 161 / 2);
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() -> anyhow::Result<()> {
    let (_host, args) = host("")?;
    let client = connect(Path::new(BIN), &args).await?;
    structured(
        &call(
            &client,
            "budget__set_budget",
            json!({"id": "b", "limit": 10}),
        )
        .await?,
    );
    let cases = [
        (
            "permission__request",
            json!({"agent": "mallory", "resource": "greeting", "justification": "let me in", "duration_s": 60}),
            "unknown agent `mallory`",
        ),
        (
            "permission__validate",
            json!({"token": "tm_guess", "agent": "bob", "resource": "greeting"}),
            "malformed token",
        ),
        (
            "budget__report_spending",
            json!({"id": "b", "amount": -5}),
            "invalid arguments",
        ),
        (
            "budget__report_spending",
            json!({"id": "b", "amount": 1_000_000_000_000_000_000u64}),
            "must be 1 to 1000000000000000",
        ),
        (
            "discovery__register",
            json!({"id": "big", "capabilities": [], "metadata": {"blob": "x".repeat(10_000)}}),
            "at most 4096 are kept",
        ),
        (
            "budget__report_spending",
            json!({"id": "nobody", "amount": 1}),
            "unknown budget `nobody`",
        ),
    ];
    for (tool, arguments, expected) in cases {
        let result = call(&client, tool, arguments).await?;
        assert_eq!(result.is_error, Some(true), "{tool}");
        assert!(
            first_text(&result).contains(expected),
            "{tool}: {}",
            first_text(&result)
        );
    }
    let status = structured(&call(&client, "budget__status", json!({"id": "b"})).await?);
    assert_eq!(status["spent"], 0);
    let trail = read_resource(&client, "toolmesh://permission/audit").await?;
    assert_eq!(trail["last"], 0, "{trail}");
    let agents = structured(&call(&client, "discovery__list", json!({})).await?);
    assert_eq!(agents["agents"], json!([]));
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn metering_charges_each_call_and_refuses_when_the_budget_is_spent() -> anyhow::Result<()> {
    let (_host, args) = host(
        "[metering]\nenabled = true\nfuel_per_unit = 1000\n[metering.prices]\nhello__greet = 10\n",
    )?;
    let client = connect(Path::new(BIN), &args).await?;
    let token = grant(&client, "bob", "greeting", 600).await?;
    structured(
        &call(
            &client,
            "budget__set_budget",
            json!({"id": "bob", "limit": 25}),
        )
        .await?,
    );
    let meta = [
        ("toolmesh/agent", "bob"),
        ("toolmesh/token", token.as_str()),
    ];
    for _ in 0..2 {
        let ok = call_meta(&client, "hello__greet", json!({"name": "paid"}), &meta).await?;
        assert_eq!(first_text(&ok), "Hello, paid!");
    }
    let refused = call_meta(&client, "hello__greet", json!({"name": "broke"}), &meta).await?;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        first_text(&refused)
            .contains("over budget: `bob` has 5 remaining; `hello__greet` costs 10"),
        "{}",
        first_text(&refused)
    );
    // Fuel-priced: hello__add is charged its fuel / 1000, at least 1 unit.
    let add = call_meta(&client, "hello__add", json!({"a": 1, "b": 2}), &meta).await?;
    assert_eq!(add.is_error, Some(false));
    let status = structured(&call(&client, "budget__status", json!({"id": "bob"})).await?);
    let spent = status["spent"].as_u64().unwrap_or(0);
    assert!(spent > 20, "fuel was charged: {status}");
    // Without an identity, a metered call is refused before it runs.
    let anonymous = call(&client, "hello__add", json!({"a": 1, "b": 2})).await?;
    assert!(
        first_text(&anonymous).contains("metering is on"),
        "{}",
        first_text(&anonymous)
    );
    client.cancel().await?;
    Ok(())
}
