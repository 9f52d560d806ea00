//! Plugins that speak all of MCP, through rmcp's client over stdio against
//! the real binary: resources, templates and prompts of the `conformance`
//! test plugin (served unprefixed), completions, plugin logs at the level
//! the client set, an elicitation and a sampling request answered by the
//! client, the clear error when the client lacks the feature, a budget
//! alert reaching a subscribed client, a plugin built against the 0.1 WIT,
//! and the hostile cases: an oversized resource, a flood of change
//! announcements, an elicitation never answered, sampling past the
//! per-call count.

#![allow(deprecated)] // rmcp's logging, sampling and subscribe types: legacy, still 2025-11-25's

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequestParams, ElicitResult, ElicitationAction, GetPromptRequestParams, Implementation,
    ListRootsResult, LoggingLevel, LoggingMessageNotificationParam, ReadResourceRequestParams,
    ResourceContents, ResourceUpdatedNotificationParam, Root, SamplingMessage,
    SetLevelRequestParams, SubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::{Value, json};
use toolmesh_test_support::{
    TempHost, call, connect_command, first_text, serve_command, test_plugin,
};

const BIN: &str = env!("CARGO_BIN_EXE_toolmesh");

/// How the test client answers the host's questions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answers {
    /// Elicitation, sampling and roots, answered at once.
    All,
    /// No client features declared.
    None,
    /// Elicitation declared, and never answered.
    Never,
}

/// A client that records what the host tells it and answers its questions.
#[derive(Clone)]
struct TestClient {
    answers: Answers,
    logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    updates: Arc<Mutex<Vec<String>>>,
    samplings: Arc<Mutex<u32>>,
}

impl TestClient {
    fn new(answers: Answers) -> Self {
        Self {
            answers,
            logs: Arc::default(),
            updates: Arc::default(),
            samplings: Arc::default(),
        }
    }

    /// What `read` returns once `done` holds, or after five seconds.
    async fn wait<T: Clone>(&self, read: impl Fn(&Self) -> T, done: impl Fn(&T) -> bool) -> T {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let value = read(self);
            if done(&value) || Instant::now() > deadline {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        let capabilities: ClientCapabilities = match self.answers {
            Answers::All => serde_json::from_value(
                json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": false}}),
            ),
            Answers::None => serde_json::from_value(json!({})),
            Answers::Never => serde_json::from_value(json!({"elicitation": {}})),
        }
        .expect("valid capabilities");
        ClientConfig::new(capabilities, Implementation::new("features-test", "1.0.0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if self.answers == Answers::Never {
            std::future::pending::<()>().await;
        }
        let ElicitRequestParams::FormElicitationParams { message, .. } = request else {
            return Err(ErrorData::invalid_params("form mode expected", None));
        };
        let mut result = ElicitResult::new(ElicitationAction::Accept);
        result.content =
            Some(json!({"username": "ada", "email": format!("ada@{}", message.len())}));
        Ok(result)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        *self.samplings.lock().unwrap() += 1;
        let asked = params
            .messages
            .first()
            .and_then(|m| serde_json::to_value(&m.content).ok())
            .map(|c| c.to_string())
            .unwrap_or_default();
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text(format!("the model read {} bytes", asked.len())),
            "test-model".into(),
        ))
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(vec![Root::new("file:///work")]))
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.updates.lock().unwrap().push(params.uri);
    }
}

/// A host with the conformance plugin (unprefixed), the legacy 0.1 plugin,
/// the hostile plugin and the bundled plugins, and a client answering as
/// `answers` says.
async fn start(
    host: &TempHost,
    answers: Answers,
) -> anyhow::Result<(RunningService<RoleClient, TestClient>, TestClient)> {
    for plugin in ["conformance", "legacy", "hostile"] {
        if !host.plugins_dir().join(plugin).exists() {
            host.add_plugin(&test_plugin(plugin), plugin)?;
        }
    }
    let args = host.args_with_config(
        "[plugins.conformance]\nprefix = false\n\
         [levels.untrusted]\ntimeout_ms = 1500\nclient_requests = 3\n\
         capabilities = [\"log\", \"kv\", \"blobs\", \"progress\", \"elicitation\", \"sampling\"]\n",
    )?;
    let handler = TestClient::new(answers);
    let client = connect_command(handler.clone(), serve_command(Path::new(BIN), &args)).await?;
    Ok((client, handler))
}

fn text(contents: &ResourceContents) -> &str {
    match contents {
        ResourceContents::TextResourceContents { text, .. } => text,
        _ => "",
    }
}

#[tokio::test]
async fn plugin_resources_templates_prompts_and_completions() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let (client, _) = start(&host, Answers::All).await?;
    let resources = client.list_all_resources().await?;
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(uris.contains(&"test://static-text"), "{uris:?}");
    // Namespaced: a plugin's own scheme becomes its place under toolmesh://.
    assert!(uris.contains(&"toolmesh://budget/alerts"), "{uris:?}");
    assert!(uris.contains(&"toolmesh://hostile/watched"), "{uris:?}");

    let read = client
        .read_resource(ReadResourceRequestParams::new("test://static-text"))
        .await?;
    assert_eq!(
        text(&read.contents[0]),
        "This is the content of the static text resource."
    );
    let binary = client
        .read_resource(ReadResourceRequestParams::new("test://static-binary"))
        .await?;
    assert!(matches!(
        &binary.contents[0],
        ResourceContents::BlobResourceContents { mime_type: Some(m), .. } if m == "image/png"
    ));
    let templates = client.list_all_resource_templates().await?;
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "test://template/{id}/data"),
        "{templates:?}"
    );
    let templated = client
        .read_resource(ReadResourceRequestParams::new("test://template/123/data"))
        .await?;
    let body: Value = serde_json::from_str(text(&templated.contents[0]))?;
    assert_eq!(body["id"], "123");
    let missing = client
        .read_resource(ReadResourceRequestParams::new("test://nothing-here"))
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("test://nothing-here"), "{missing}");

    let prompts = client.list_all_prompts().await?;
    assert!(
        prompts
            .iter()
            .any(|p| p.name == "permission__request_access")
    );
    let mut get = GetPromptRequestParams::new("test_prompt_with_arguments");
    get.arguments = Some(
        json!({"arg1": "first", "arg2": "second"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    let prompt = client.get_prompt(get).await?;
    let said = serde_json::to_string(&prompt.messages)?;
    assert!(
        said.contains("arg1='first'") && said.contains("arg2='second'"),
        "{said}"
    );
    let lacking = client
        .get_prompt(GetPromptRequestParams::new("test_prompt_with_arguments"))
        .await
        .unwrap_err()
        .to_string();
    assert!(lacking.contains("needs argument `arg1`"), "{lacking}");
    let values = client
        .complete_prompt_simple("test_prompt_with_arguments", "arg1", "test")
        .await?;
    assert_eq!(values, ["testValue1", "testValue2"]);
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn logs_elicitation_and_sampling_reach_the_client() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let (client, handler) = start(&host, Answers::All).await?;
    // No level set: no records.
    call(&client, "test_tool_with_logging", json!({})).await?;
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await?;
    let logged = call(&client, "test_tool_with_logging", json!({})).await?;
    assert_eq!(
        first_text(&logged),
        "Tool with logging executed successfully"
    );
    let logs = handler
        .wait(|h| h.logs.lock().unwrap().clone(), |l| l.len() >= 3)
        .await;
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert_eq!(logs[0].logger.as_deref(), Some("conformance"));
    assert_eq!(logs[0].data, "Tool execution started");
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Error))
        .await?;
    call(&client, "test_tool_with_logging", json!({})).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        handler.logs.lock().unwrap().len(),
        3,
        "below the level: none"
    );

    let elicited = call(&client, "test_elicitation", json!({"message": "Who?"})).await?;
    assert!(
        first_text(&elicited).contains(r#""username":"ada""#),
        "{}",
        first_text(&elicited)
    );
    let sampled = call(&client, "test_sampling", json!({"prompt": "Hi"})).await?;
    assert!(
        first_text(&sampled).starts_with("LLM response: the model read"),
        "{}",
        first_text(&sampled)
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn a_client_without_the_feature_gets_an_error_naming_it() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let (client, _) = start(&host, Answers::None).await?;
    let sampled = call(&client, "test_sampling", json!({"prompt": "Hi"})).await?;
    assert_eq!(sampled.is_error, Some(true));
    assert!(
        first_text(&sampled).contains("did not declare the `sampling` capability"),
        "{}",
        first_text(&sampled)
    );
    let needs = call(&client, "test_missing_capability", json!({})).await?;
    assert_eq!(needs.is_error, Some(true));
    assert!(
        first_text(&needs).contains("sampling"),
        "{}",
        first_text(&needs)
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn a_budget_alert_notifies_a_subscribed_client() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let (client, handler) = start(&host, Answers::All).await?;
    client
        .subscribe(SubscribeRequestParams::new("toolmesh://budget/alerts"))
        .await?;
    let set = json!({"id": "team", "limit": 100, "alert_threshold": 0.5});
    assert_ne!(
        call(&client, "budget__set_budget", set).await?.is_error,
        Some(true)
    );
    let spend = json!({"id": "team", "amount": 40});
    assert_ne!(
        call(&client, "budget__report_spending", spend.clone())
            .await?
            .is_error,
        Some(true)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        handler.updates.lock().unwrap().is_empty(),
        "below the threshold: no alert"
    );
    assert_ne!(
        call(&client, "budget__report_spending", spend)
            .await?
            .is_error,
        Some(true)
    );
    let updates = handler
        .wait(|h| h.updates.lock().unwrap().clone(), |u| !u.is_empty())
        .await;
    assert_eq!(updates, ["toolmesh://budget/alerts"]);
    let alerts = client
        .read_resource(ReadResourceRequestParams::new("toolmesh://budget/alerts"))
        .await?;
    let body: Value = serde_json::from_str(text(&alerts.contents[0]))?;
    assert_eq!(body["alerts"][0]["budget"], "team");
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn a_plugin_built_against_wit_0_1_loads_and_works() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let (client, _) = start(&host, Answers::All).await?;
    call(&client, "legacy__count", json!({})).await?;
    let second = call(&client, "legacy__count", json!({})).await?;
    assert_eq!(
        first_text(&second),
        "count 2",
        "kv persisted through the 0.1 import"
    );
    let media = call(&client, "legacy__media", json!({})).await?;
    assert_eq!(media.content.len(), 3);
    assert!(media.content[1].as_image().is_some());
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn hostile_resource_notify_elicitation_and_sampling_are_bounded() -> anyhow::Result<()> {
    let host = TempHost::new()?;
    let (client, handler) = start(&host, Answers::All).await?;
    let big = client
        .read_resource(ReadResourceRequestParams::new("toolmesh://hostile/big"))
        .await
        .unwrap_err()
        .to_string();
    assert!(big.contains("output too large"), "{big}");

    client
        .subscribe(SubscribeRequestParams::new("toolmesh://hostile/watched"))
        .await?;
    let flood = call(&client, "hostile__notify_flood", json!({"count": 100000})).await?;
    assert_eq!(first_text(&flood), "announced 100000 times");
    // The first announcement arrives (however busy the machine); then
    // nothing but the one trailing change may follow.
    handler
        .wait(|h| h.updates.lock().unwrap().len(), |n| *n > 0)
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let heard = handler.updates.lock().unwrap().len();
    assert!(
        (1..=3).contains(&heard),
        "100000 announcements must reach the client coalesced, not {heard} times"
    );

    let many = call(&client, "hostile__sample_many", json!({"count": 10})).await?;
    assert_eq!(many.is_error, Some(true));
    assert!(
        first_text(&many).contains("question 4") && first_text(&many).contains("client_requests"),
        "{}",
        first_text(&many)
    );
    assert_eq!(
        *handler.samplings.lock().unwrap(),
        3,
        "the client was asked 3 times"
    );
    client.cancel().await?;

    let (client, _) = start(&host, Answers::Never).await?;
    let started = Instant::now();
    let forever = call(&client, "hostile__ask_forever", json!({})).await?;
    assert_eq!(forever.is_error, Some(true));
    assert!(
        first_text(&forever).contains("deadline exceeded"),
        "{}",
        first_text(&forever)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let next = call(&client, "hello__greet", json!({"name": "after"})).await?;
    assert_eq!(first_text(&next), "Hello, after!");
    client.cancel().await?;
    Ok(())
}
