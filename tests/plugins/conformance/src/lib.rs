//! `conformance`: the tools, resources, templates and prompts the official
//! MCP conformance suite (`@modelcontextprotocol/conformance`) asks for by
//! name, for serving with `[plugins.conformance] prefix = false`. Each
//! answers what the suite's server scenarios expect (`src/scenarios/server/`
//! there); the client features (logging, elicitation, sampling, roots) go
//! through the SDK like any plugin's, so the suite measures the host's
//! wiring of them on both protocol eras.

use schemars::JsonSchema;
use serde::Deserialize;
use toolmesh_sdk::client::{self, ClientFeature, Elicited, InputRequest, InputResponse};
use toolmesh_sdk::{
    Completion, Content, LogLevel, Plugin, Prompt, PromptMessage, Resource, ResourceContents, Role,
    Template, Tool, ToolError, ToolOutput,
};

/// No arguments.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xfc, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x05, 0x02, 0x00, 0x5f, 0xc8, 0xf1, 0xd2, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A WAV header with no samples (8 kHz, mono, 8 bit).
fn wav() -> Vec<u8> {
    let mut w = Vec::with_capacity(44);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&36u32.to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&0u32.to_le_bytes());
    w
}

fn image() -> Content {
    Content::Image {
        data: PNG.to_vec(),
        mime_type: "image/png".into(),
    }
}

fn simple_text(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text(
        "This is a simple text response for testing.",
    ))
}

fn image_content(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::default().with(image()))
}

fn audio_content(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::default().with(Content::Audio {
        data: wav(),
        mime_type: "audio/wav".into(),
    }))
}

fn error_handling(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Err(ToolError::failed(
        "This tool intentionally returns an error for testing",
    ))
}

fn with_progress(_: NoArgs) -> Result<ToolOutput, ToolError> {
    for done in [0.0, 50.0, 100.0] {
        toolmesh_sdk::progress::report(done, Some(100.0), Some("working"));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(ToolOutput::text("Progress test completed."))
}

fn logging_tool(_: NoArgs) -> Result<ToolOutput, ToolError> {
    // Records reach the client only at or above the level it asked for:
    // none unless it asked (the stateless scenario checks exactly that).
    toolmesh_sdk::log(LogLevel::Info, "logging tool ran");
    Ok(ToolOutput::text("Logging tool ran."))
}

fn tool_with_logging(_: NoArgs) -> Result<ToolOutput, ToolError> {
    for message in [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ] {
        toolmesh_sdk::log(LogLevel::Info, message);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(ToolOutput::text("Tool with logging executed successfully"))
}

fn streaming_elicitation(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text("No input was needed."))
}

fn embedded(uri: &str, mime: &str, text: &str) -> Content {
    Content::Resource(ResourceContents::text(uri, text).with_mime_type(mime))
}

fn embedded_resource(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::default().with(embedded(
        "test://embedded-resource",
        "text/plain",
        "This is an embedded resource content.",
    )))
}

fn multiple_content_types(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text("Multiple content types test:")
        .with(image())
        .with(embedded(
            "test://mixed-content-resource",
            "application/json",
            r#"{"test":"data","value":123}"#,
        )))
}

/// Arguments of `test_sampling`.
#[derive(Deserialize, JsonSchema)]
pub struct SamplingArgs {
    /// What to ask the model.
    pub prompt: String,
}

fn text_of(content: &client::SamplingResult) -> String {
    match &content.content {
        client::ContentBlock::Text(t) => t.clone(),
        _ => "(not text)".into(),
    }
}

fn sampling(args: SamplingArgs) -> Result<ToolOutput, ToolError> {
    let answer = client::create_message("sampling", &client::sampling_request(&args.prompt, 100))?;
    Ok(ToolOutput::text(format!(
        "LLM response: {}",
        text_of(&answer)
    )))
}

/// Arguments of `test_elicitation`.
#[derive(Deserialize, JsonSchema)]
pub struct ElicitationArgs {
    /// What to ask the user.
    pub message: String,
}

fn describe(elicited: &Elicited) -> String {
    match elicited {
        Elicited::Accept(content) => format!("action=accept, content={content}"),
        Elicited::Decline => "action=decline".into(),
        Elicited::Cancel => "action=cancel".into(),
    }
}

const USER_SCHEMA: &str = r#"{"type":"object","properties":{"username":{"type":"string","description":"User's response"},"email":{"type":"string","description":"User's email address"}},"required":["username","email"]}"#;

fn elicitation(args: ElicitationArgs) -> Result<ToolOutput, ToolError> {
    let answer = client::elicit("user", &args.message, USER_SCHEMA)?;
    Ok(ToolOutput::text(format!(
        "User response: {}",
        describe(&answer)
    )))
}

const DEFAULTS_SCHEMA: &str = r#"{"type":"object","properties":{
  "name":{"type":"string","description":"User name","default":"John Doe"},
  "age":{"type":"integer","description":"User age","default":30},
  "score":{"type":"number","description":"User score","default":95.5},
  "status":{"type":"string","description":"User status","enum":["active","inactive","pending"],"default":"active"},
  "verified":{"type":"boolean","description":"Verification status","default":true}},
  "required":[]}"#;

fn elicitation_defaults(_: NoArgs) -> Result<ToolOutput, ToolError> {
    let answer = client::elicit(
        "defaults",
        "Please review and update the form fields with defaults",
        DEFAULTS_SCHEMA,
    )?;
    Ok(ToolOutput::text(format!(
        "Elicitation completed: {}",
        describe(&answer)
    )))
}

const ENUMS_SCHEMA: &str = r#"{"type":"object","properties":{
  "untitledSingle":{"type":"string","description":"Select one option","enum":["option1","option2","option3"]},
  "titledSingle":{"type":"string","description":"Select one option with titles","oneOf":[{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]},
  "legacyEnum":{"type":"string","description":"Select one option (legacy)","enum":["opt1","opt2","opt3"],"enumNames":["Option One","Option Two","Option Three"]},
  "untitledMulti":{"type":"array","description":"Select multiple options","items":{"type":"string","enum":["option1","option2","option3"]}},
  "titledMulti":{"type":"array","description":"Select multiple options with titles","items":{"anyOf":[{"const":"value1","title":"First Choice"},{"const":"value2","title":"Second Choice"},{"const":"value3","title":"Third Choice"}]}}},
  "required":[]}"#;

fn elicitation_enums(_: NoArgs) -> Result<ToolOutput, ToolError> {
    let answer = client::elicit(
        "enums",
        "Please select options from the enum fields",
        ENUMS_SCHEMA,
    )?;
    Ok(ToolOutput::text(format!(
        "Elicitation completed: {}",
        describe(&answer)
    )))
}

fn missing_capability(_: NoArgs) -> Result<ToolOutput, ToolError> {
    Ok(ToolOutput::text("Success"))
}

fn trigger_tool_change(_: NoArgs) -> Result<ToolOutput, ToolError> {
    toolmesh_sdk::notify::list_changed();
    Ok(ToolOutput::text("Mutation triggered"))
}

fn schema_of(field: &str, kind: &str) -> String {
    format!(
        r#"{{"type":"object","properties":{{"{field}":{{"type":"{kind}"}}}},"required":["{field}"]}}"#
    )
}

fn field(elicited: &Elicited, name: &str) -> String {
    match elicited {
        Elicited::Accept(content) => match &content[name] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        other => describe(other),
    }
}

fn mrtr_elicitation(_: NoArgs) -> Result<ToolOutput, ToolError> {
    let answer = client::elicit(
        "user_name",
        "What is your name?",
        &schema_of("name", "string"),
    )?;
    Ok(ToolOutput::text(match &answer {
        Elicited::Accept(_) => format!("Hello, {}!", field(&answer, "name")),
        other => format!("No name given ({})", describe(other)),
    }))
}

fn mrtr_sampling(_: NoArgs) -> Result<ToolOutput, ToolError> {
    let request = client::sampling_request("What is the capital of France?", 100);
    let answer = client::create_message("capital_question", &request)?;
    Ok(ToolOutput::text(format!(
        "Sampling result: {}",
        text_of(&answer)
    )))
}

fn mrtr_list_roots(_: NoArgs) -> Result<ToolOutput, ToolError> {
    let roots = client::list_roots("client_roots")?;
    Ok(ToolOutput::text(format!("Found {} root(s)", roots.len())))
}

fn mrtr_request_state(_: NoArgs) -> Result<ToolOutput, ToolError> {
    client::elicit("confirm", "Please confirm", &schema_of("ok", "boolean"))?;
    Ok(ToolOutput::text("state-ok: requestState validated"))
}

fn mrtr_tampered_state(_: NoArgs) -> Result<ToolOutput, ToolError> {
    let answer = client::elicit("confirm", "Please confirm", &schema_of("ok", "boolean"))?;
    Ok(ToolOutput::text(format!(
        "Confirmed: {}",
        describe(&answer)
    )))
}

fn mrtr_multiple_inputs(_: NoArgs) -> Result<ToolOutput, ToolError> {
    let answers = client::ask(&[
        (
            "user_name".into(),
            client::elicit_request("What is your name?", &schema_of("name", "string")),
        ),
        (
            "greeting".into(),
            InputRequest::Sample(client::sampling_request("Generate a greeting", 50)),
        ),
        ("client_roots".into(), InputRequest::ListRoots),
    ]);
    let mut parts = Vec::new();
    for answer in answers {
        match answer? {
            InputResponse::Elicit(_) => {}
            InputResponse::Sample(result) => parts.push(format!("Greeting: {}", text_of(&result))),
            InputResponse::ListRoots(roots) => parts.push(format!("Roots: {}", roots.len())),
        }
    }
    Ok(ToolOutput::text(parts.join("; ")))
}

fn mrtr_multi_round(_: NoArgs) -> Result<ToolOutput, ToolError> {
    let name = client::elicit(
        "step1",
        "Step 1: What is your name?",
        &schema_of("name", "string"),
    )?;
    let color = client::elicit(
        "step2",
        "Step 2: What is your favorite color?",
        &schema_of("color", "string"),
    )?;
    Ok(ToolOutput::text(format!(
        "Multi-round complete for {} who likes {}",
        field(&name, "name"),
        field(&color, "color")
    )))
}

fn mrtr_capabilities(_: NoArgs) -> Result<ToolOutput, ToolError> {
    let mut asks = Vec::new();
    if client::supports(ClientFeature::Elicitation) {
        asks.push((
            "elicit_input".to_owned(),
            client::elicit_request("Provide input", &schema_of("value", "string")),
        ));
    }
    if client::supports(ClientFeature::Sampling) {
        asks.push((
            "sample_input".to_owned(),
            InputRequest::Sample(client::sampling_request("Sample request", 50)),
        ));
    }
    if client::supports(ClientFeature::Roots) {
        asks.push(("roots_input".to_owned(), InputRequest::ListRoots));
    }
    if asks.is_empty() {
        return Ok(ToolOutput::text("No supported capabilities declared"));
    }
    let answered = client::ask(&asks).into_iter().filter(Result::is_ok).count();
    Ok(ToolOutput::text(format!("{answered} input(s) received")))
}

fn static_resources() -> Vec<Resource> {
    vec![
        Resource::new("test://static-text", "static-text", |_| {
            Ok(vec![
                ResourceContents::text(
                    "test://static-text",
                    "This is the content of the static text resource.",
                )
                .with_mime_type("text/plain"),
            ])
        })
        .description("A static text resource.")
        .mime_type("text/plain"),
        Resource::new("test://static-binary", "static-binary", |_| {
            Ok(vec![
                ResourceContents::blob("test://static-binary", PNG.to_vec())
                    .with_mime_type("image/png"),
            ])
        })
        .description("A static binary resource (a 1x1 PNG).")
        .mime_type("image/png"),
        Resource::new("test://watched-resource", "watched-resource", |_| {
            Ok(vec![
                ResourceContents::text("test://watched-resource", "Watched resource content")
                    .with_mime_type("text/plain"),
            ])
        })
        .description("A resource to subscribe to.")
        .mime_type("text/plain"),
    ]
}

fn data_template() -> Template {
    Template::new("test://template/{id}/data", "template", |_, uri, vars| {
        let id = vars.get("id")?;
        let body = serde_json::json!({
            "id": id,
            "templateTest": true,
            "data": format!("Data for ID: {id}"),
        });
        Ok(vec![
            ResourceContents::text(uri, body.to_string()).with_mime_type("application/json"),
        ])
    })
    .description("Data for an id.")
    .mime_type("application/json")
}

fn prompts(plugin: Plugin) -> Plugin {
    plugin
        .prompt(Prompt::new(
            "test_simple_prompt",
            "A simple prompt without arguments.",
            |_, _| {
                Ok(vec![PromptMessage::user(
                    "This is a simple prompt for testing.",
                )])
            },
        ))
        .prompt(
            Prompt::new(
                "test_prompt_with_arguments",
                "A prompt with two required arguments.",
                |_, args| {
                    Ok(vec![PromptMessage::user(format!(
                        "Prompt with arguments: arg1='{}', arg2='{}'",
                        args.get("arg1")?,
                        args.get("arg2")?
                    ))])
                },
            )
            .argument("arg1", "First test argument", true)
            .argument("arg2", "Second test argument", true),
        )
        .prompt(
            Prompt::new(
                "test_prompt_with_embedded_resource",
                "A prompt that embeds a resource.",
                |_, args| {
                    let uri = args.get("resourceUri")?;
                    Ok(vec![
                        PromptMessage::new(
                            Role::User,
                            embedded(uri, "text/plain", "Embedded resource content for testing."),
                        ),
                        PromptMessage::user("Please process the embedded resource above."),
                    ])
                },
            )
            .argument("resourceUri", "The URI of the resource to embed.", true),
        )
        .prompt(Prompt::new(
            "test_prompt_with_image",
            "A prompt with an image.",
            |_, _| {
                Ok(vec![
                    PromptMessage::new(Role::User, image()),
                    PromptMessage::user("Please analyze the image above."),
                ])
            },
        ))
        .prompt(Prompt::new(
            "test_input_required_result_prompt",
            "MRTR: a prompt that asks the user for its context first.",
            |_, _| {
                let context = client::elicit(
                    "user_context",
                    "What context should the prompt use?",
                    &schema_of("context", "string"),
                )?;
                Ok(vec![PromptMessage::user(format!(
                    "Prompt with context: {}",
                    field(&context, "context")
                ))])
            },
        ))
        .completions(|request| {
            Ok(Completion::matching(
                ["testValue1", "testValue2", "other"],
                &request.value,
            ))
        })
}

/// The plugin's tools, resources and prompts.
pub fn plugin() -> Plugin {
    let tools: Vec<Tool> = vec![
        Tool::new(
            "test_simple_text",
            "Returns a simple text response.",
            simple_text,
        ),
        Tool::new(
            "test_image_content",
            "Returns a 1x1 PNG image.",
            image_content,
        ),
        Tool::new(
            "test_audio_content",
            "Returns a short WAV clip.",
            audio_content,
        ),
        Tool::new(
            "test_embedded_resource",
            "Returns an embedded resource.",
            embedded_resource,
        ),
        Tool::new(
            "test_multiple_content_types",
            "Returns text, an image and an embedded resource.",
            multiple_content_types,
        ),
        Tool::new(
            "test_error_handling",
            "Always fails, for testing error results.",
            error_handling,
        ),
        Tool::new(
            "test_tool_with_progress",
            "Reports progress three times, then answers.",
            with_progress,
        ),
        Tool::new(
            "test_tool_with_logging",
            "Logs three messages, then answers.",
            tool_with_logging,
        ),
        Tool::new(
            "test_logging_tool",
            "Logs one message at info, then answers.",
            logging_tool,
        ),
        Tool::new(
            "test_streaming_elicitation",
            "Answers without asking the client for input.",
            streaming_elicitation,
        ),
        Tool::new(
            "test_sampling",
            "Asks the client's model, and returns its answer.",
            sampling,
        ),
        Tool::new(
            "test_elicitation",
            "Asks the user, and returns the answer.",
            elicitation,
        ),
        Tool::new(
            "test_elicitation_sep1034_defaults",
            "Asks the user with a form whose fields have defaults.",
            elicitation_defaults,
        ),
        Tool::new(
            "test_elicitation_sep1330_enums",
            "Asks the user with enum fields of every kind.",
            elicitation_enums,
        ),
        Tool::new(
            "test_missing_capability",
            "Needs the client's sampling capability.",
            missing_capability,
        )
        .needs(ClientFeature::Sampling),
        Tool::new(
            "test_trigger_tool_change",
            "Tells clients the tool list changed.",
            trigger_tool_change,
        ),
        Tool::new(
            "test_input_required_result_elicitation",
            "MRTR: asks the user's name.",
            mrtr_elicitation,
        ),
        Tool::new(
            "test_input_required_result_sampling",
            "MRTR: asks the client's model.",
            mrtr_sampling,
        ),
        Tool::new(
            "test_input_required_result_list_roots",
            "MRTR: asks the client's roots.",
            mrtr_list_roots,
        ),
        Tool::new(
            "test_input_required_result_request_state",
            "MRTR: asks for a confirmation.",
            mrtr_request_state,
        ),
        Tool::new(
            "test_input_required_result_multiple_inputs",
            "MRTR: asks three questions at once.",
            mrtr_multiple_inputs,
        ),
        Tool::new(
            "test_input_required_result_multi_round",
            "MRTR: asks two questions, one after the other.",
            mrtr_multi_round,
        ),
        Tool::new(
            "test_input_required_result_tampered_state",
            "MRTR: asks for a confirmation.",
            mrtr_tampered_state,
        ),
        Tool::new(
            "test_input_required_result_capabilities",
            "MRTR: asks only what the client supports.",
            mrtr_capabilities,
        ),
    ];
    let mut plugin = tools.into_iter().fold(Plugin::new(), Plugin::tool);
    for resource in static_resources() {
        plugin = plugin.resource(resource);
    }
    prompts(plugin.template(data_template()))
}

toolmesh_sdk::export_plugin!(plugin);
