//! The bundled `neural` plugin through the real binary and rmcp's MCP
//! client: create, train with progress notifications, run, test, export and
//! import `.net` text, stored data sets, weights by hash, persistence across
//! a restart, and training that hits the call's fuel quota or its own time
//! limit.

use std::path::Path;

use rmcp::RoleClient;
use serde_json::{Value, json};
use toolmesh_test_support::{
    ProgressLog, TempHost, call, connect_command, first_text, serve_command,
};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

type Client = rmcp::service::RunningService<RoleClient, ProgressLog>;

async fn start(host: &TempHost, config: &str, progress: ProgressLog) -> anyhow::Result<Client> {
    let mut args = host.args();
    let path = host.data_dir().with_file_name("toolmesh.toml");
    std::fs::write(&path, config)?;
    args.extend(["--config".into(), path.display().to_string()]);
    connect_command(progress, serve_command(Path::new(BIN), &args)).await
}

fn ok(result: &rmcp::model::CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "{}", first_text(result));
    result.structured_content.clone().unwrap_or(Value::Null)
}

fn xor() -> Value {
    json!({"inputs": [[-1, -1], [-1, 1], [1, -1], [1, 1]], "outputs": [[-1], [1], [1], [-1]]})
}

#[tokio::test]
async fn create_train_run_and_share_networks() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let progress = ProgressLog::default();
    let client = start(&host, "", progress.clone()).await?;

    ok(&call(
        &client,
        "neural__create",
        json!({"name": "xor", "layers": [2, 3, 1], "seed": 3}),
    )
    .await?);
    let trained = ok(&call(
        &client,
        "neural__train",
        json!({"name": "xor", "data": xor(), "max_epochs": 500, "desired_error": 0.001}),
    )
    .await?);
    assert_eq!(trained["stopped"], "reached", "{trained}");
    assert!(trained["mse"].as_f64().unwrap_or(1.0) < 0.001);
    let reports = progress.wait_for(1).await;
    assert!(!reports.is_empty(), "training reported progress");
    assert!(reports.iter().all(|p| p.total == Some(500.0)));

    let out = ok(&call(
        &client,
        "neural__run",
        json!({"name": "xor", "inputs": [[1, -1], [1, 1]]}),
    )
    .await?);
    assert!(out["outputs"][0][0].as_f64().unwrap_or(0.0) > 0.8, "{out}");
    assert!(out["outputs"][1][0].as_f64().unwrap_or(0.0) < -0.8, "{out}");

    // .net text out and back in: the same weights, so the same hash.
    let text = call(&client, "neural__export", json!({"name": "xor"})).await?;
    let net = first_text(&text).to_owned();
    assert!(net.starts_with("FANN_FLO_2.1\n"));
    let copy = ok(&call(
        &client,
        "neural__import",
        json!({"name": "copy", "net": net}),
    )
    .await?);
    assert_eq!(copy["entry"]["weights"], trained["entry"]["weights"]);

    // Weights by hash into a fresh network of the same shape.
    ok(&call(
        &client,
        "neural__create",
        json!({"name": "fresh", "layers": [2, 3, 1], "seed": 77}),
    )
    .await?);
    let loaded = ok(&call(
        &client,
        "neural__load_weights",
        json!({"name": "fresh", "weights": trained["entry"]["weights"]}),
    )
    .await?);
    assert_eq!(loaded["entry"]["weights"], trained["entry"]["weights"]);
    let wrong_shape = ok(&call(
        &client,
        "neural__create",
        json!({"name": "big", "layers": [2, 5, 1]}),
    )
    .await?);
    let refused = call(
        &client,
        "neural__load_weights",
        json!({"name": "big", "weights": trained["entry"]["weights"]}),
    )
    .await?;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        first_text(&refused).contains("topology"),
        "{}",
        first_text(&refused)
    );
    assert_ne!(
        wrong_shape["entry"]["topology"],
        trained["entry"]["topology"]
    );

    // Cascade2 grows a shortcut network.
    ok(&call(
        &client,
        "neural__create",
        json!({"name": "grown", "layers": [2, 1], "kind": "shortcut", "seed": 2}),
    )
    .await?);
    let grown = ok(&call(
        &client,
        "neural__cascade_train",
        json!({"name": "grown", "data": xor(), "max_neurons": 8, "desired_error": 0.001}),
    )
    .await?);
    assert!(grown["neurons"].as_u64().unwrap_or(0) >= 1, "{grown}");
    assert!(grown["mse"].as_f64().unwrap_or(1.0) < 0.001, "{grown}");

    // Stored data sets in FANN's format.
    let stored = ok(&call(
        &client,
        "neural__store_data",
        json!({"name": "xor-set", "fann_data": "4 2 1\n-1 -1\n-1\n-1 1\n1\n1 -1\n1\n1 1\n-1\n"}),
    )
    .await?);
    assert_eq!(stored["pairs"], 4);
    let tested = ok(&call(
        &client,
        "neural__test",
        json!({"name": "fresh", "data_set": "xor-set"}),
    )
    .await?);
    assert!(tested["mse"].as_f64().unwrap_or(1.0) < 0.001, "{tested}");
    client.cancel().await?;

    // Everything survives a restart.
    let client = start(&host, "", ProgressLog::default()).await?;
    let listed = ok(&call(&client, "neural__list", json!({})).await?);
    let names: Vec<&str> = listed["networks"]
        .as_array()
        .map(|n| n.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["big", "copy", "fresh", "grown", "xor"]);
    let described = ok(&call(&client, "neural__describe", json!({"name": "xor"})).await?);
    assert_eq!(described["entry"]["weights"], trained["entry"]["weights"]);
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn training_stops_cleanly_at_the_quota_or_its_time_limit() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let client = start(
        &host,
        "[levels.standard]\nfuel = 200000000\n",
        ProgressLog::default(),
    )
    .await?;
    ok(&call(
        &client,
        "neural__create",
        json!({"name": "big", "layers": [8, 64, 64, 4]}),
    )
    .await?);
    let before = ok(&call(&client, "neural__describe", json!({"name": "big"})).await?);
    let inputs: Vec<Vec<f32>> = (0..64).map(|i| vec![(i as f32 / 64.0) - 0.5; 8]).collect();
    let outputs: Vec<Vec<f32>> = (0..64)
        .map(|i| vec![((i % 7) as f32 / 7.0) - 0.5; 4])
        .collect();
    let data = json!({"inputs": inputs, "outputs": outputs});
    let starved = call(
        &client,
        "neural__train",
        json!({"name": "big", "data": data, "max_epochs": 1000000, "desired_error": 0.0}),
    )
    .await?;
    assert_eq!(starved.is_error, Some(true));
    assert!(
        first_text(&starved).contains("fuel exhausted: 200000000 units"),
        "{}",
        first_text(&starved)
    );
    let after = ok(&call(&client, "neural__describe", json!({"name": "big"})).await?);
    assert_eq!(
        after["entry"], before["entry"],
        "an interrupted training saves nothing"
    );
    client.cancel().await?;

    // With its own time limit, training stops in time and keeps its progress.
    let client = start(&host, "", ProgressLog::default()).await?;
    let timed = ok(&call(
        &client,
        "neural__train",
        json!({"name": "big", "data": data, "max_epochs": 1000000, "desired_error": 0.0, "max_ms": 300}),
    )
    .await?);
    assert_eq!(timed["stopped"], "time_limit");
    assert!(timed["epochs"].as_u64().unwrap_or(0) > 0);
    assert_ne!(timed["entry"]["weights"], before["entry"]["weights"]);
    client.cancel().await?;
    Ok(())
}
