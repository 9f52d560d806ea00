//! `hostile`: a plugin whose tools misbehave on purpose. The host's tests run
//! them and check that each misbehaviour ends the call with a clear error and
//! leaves the host serving.

use schemars::JsonSchema;
use serde::Deserialize;
use toolmesh_sdk::{Plugin, Tool, ToolError};

/// No arguments.
#[derive(Deserialize, JsonSchema)]
pub struct Nothing {}

/// A message to panic with.
#[derive(Deserialize, JsonSchema)]
pub struct Message {
    /// The panic message.
    pub message: String,
}

fn spin(_: Nothing) -> Result<String, ToolError> {
    // An infinite loop the optimiser cannot remove: only an interrupt ends it.
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn panic(args: Message) -> Result<String, ToolError> {
    panic!("{}", args.message)
}

fn deny(_: Nothing) -> Result<String, ToolError> {
    Err(ToolError::denied("this tool refuses everyone"))
}

/// The plugin's tools.
pub fn plugin() -> Plugin {
    Plugin::new()
        .tool(Tool::new("spin", "Loops forever.", spin))
        .tool(Tool::new("panic", "Panics with the given message.", panic))
        .tool(Tool::new("deny", "Refuses with a denial.", deny))
}

toolmesh_sdk::export_plugin!(plugin);
