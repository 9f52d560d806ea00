//! `hello`: the smallest useful toolmesh plugin, written with `toolmesh-sdk`.
//!
//! - `greet {name}` answers with the text `Hello, <name>!`;
//! - `add {a, b}` answers with the structured result `{sum}`;
//! - the resource `hello://about` says what the plugin is;
//! - the prompt `introduce {name}` asks the model to introduce someone.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p hello`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolmesh_sdk::{
    LogLevel, Plugin, Prompt, PromptMessage, Resource, ResourceContents, Structured, Tool,
    ToolError,
};

/// Arguments of `greet`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GreetArgs {
    /// Who to greet.
    pub name: String,
}

/// Arguments of `add`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddArgs {
    /// The first addend.
    pub a: f64,
    /// The second addend.
    pub b: f64,
}

/// The result of `add`.
#[derive(Serialize, JsonSchema)]
pub struct Sum {
    /// `a + b`.
    pub sum: f64,
}

fn greet(args: GreetArgs) -> Result<String, ToolError> {
    toolmesh_sdk::log(LogLevel::Debug, &format!("greeting {}", args.name));
    Ok(format!("Hello, {}!", args.name))
}

fn add(args: AddArgs) -> Result<Structured<Sum>, ToolError> {
    let sum = args.a + args.b;
    if !sum.is_finite() {
        return Err(ToolError::invalid_arguments(
            "the sum is not a finite number",
        ));
    }
    Ok(Structured(Sum { sum }))
}

/// The plugin's tools, resource and prompt.
pub fn plugin() -> Plugin {
    Plugin::new()
        .resource(
            Resource::new("hello://about", "about", |_| {
                Ok(vec![
                    ResourceContents::text(
                        "hello://about",
                        "hello greets people and adds numbers.",
                    )
                    .with_mime_type("text/plain"),
                ])
            })
            .description("What this plugin is.")
            .mime_type("text/plain"),
        )
        .prompt(
            Prompt::new(
                "introduce",
                "Asks the model to introduce someone.",
                |_, args| {
                    let name = args.get("name")?;
                    Ok(vec![PromptMessage::user(format!(
                        "Introduce {name} in one friendly sentence."
                    ))])
                },
            )
            .argument("name", "Who to introduce.", true),
        )
        .tool(
            Tool::new("greet", "Greets someone by name.", greet)
                .title("Greet")
                .read_only()
                .idempotent()
                .closed_world(),
        )
        .tool(
            Tool::new("add", "Adds two numbers and returns their sum.", add)
                .title("Add")
                .read_only()
                .idempotent()
                .closed_world(),
        )
}

toolmesh_sdk::export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_and_adds() {
        let p = plugin();
        let hi = p.call_json("greet", r#"{"name":"Ada"}"#).unwrap();
        assert_eq!(
            hi.content,
            vec![toolmesh_sdk::Content::Text("Hello, Ada!".into())]
        );
        let sum = p.call_json("add", r#"{"a":1.5,"b":2}"#).unwrap();
        assert_eq!(sum.structured.as_deref(), Some(r#"{"sum":3.5}"#));
    }

    #[test]
    fn overflowing_sum_is_refused() {
        let err = plugin()
            .call_json("add", r#"{"a":1e308,"b":1e308}"#)
            .unwrap_err();
        assert!(matches!(err, ToolError::InvalidArguments(_)));
    }
}
