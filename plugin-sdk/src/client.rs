//! Ask the connected client during a call: the user's input
//! ([`elicit`]), a completion from its model ([`create_message`]), or its
//! roots ([`list_roots`]). Each needs its capability in `plugin.toml`
//! (`capabilities = ["elicitation"]`, `"sampling"`, `"roots"`), a level that
//! allows it, and a client that declared the feature ([`supports`] says);
//! otherwise the call gets a [`ClientError`] saying which.
//!
//! Every question has a key. On the stateless 2026-07-28 protocol the host
//! cannot ask mid-call: a question without an answer ends the call, the
//! client answers, and the call runs again from the start, this time
//! getting the answer under the same key. So ask before changing anything,
//! and use the same keys on every run.
//!
//! ```no_run
//! use toolmesh_sdk::client::{self, Elicited};
//!
//! let schema = r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#;
//! match client::elicit("user_name", "What is your name?", schema) {
//!     Ok(Elicited::Accept(answer)) => println!("Hello, {}!", answer["name"]),
//!     Ok(_) => println!("no answer"),
//!     Err(e) => println!("cannot ask: {e}"),
//! }
//! ```

use crate::bindings::toolmesh::plugin::client as wit;
pub use crate::bindings::toolmesh::plugin::client::{
    ClientError, InputRequest, InputResponse, Root, SamplingMessage, SamplingRequest,
    SamplingResult,
};
pub use crate::bindings::toolmesh::plugin::types::{ClientFeature, ContentBlock, Role};

impl From<ClientError> for crate::ToolError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Denied(m) => crate::ToolError::Denied(m),
            other => crate::ToolError::Failed(other.to_string()),
        }
    }
}

/// What the user did with an elicitation.
#[derive(Debug, Clone, PartialEq)]
pub enum Elicited {
    /// Answered: a JSON object matching the schema (checked by the host).
    Accept(serde_json::Value),
    /// Declined.
    Decline,
    /// Dismissed.
    Cancel,
}

fn elicited(action: wit::ElicitAction) -> Result<Elicited, ClientError> {
    Ok(match action {
        wit::ElicitAction::Accept(json) => Elicited::Accept(
            serde_json::from_str(&json)
                .map_err(|e| ClientError::Failed(format!("the answer is not JSON: {e}")))?,
        ),
        wit::ElicitAction::Decline => Elicited::Decline,
        wit::ElicitAction::Cancel => Elicited::Cancel,
    })
}

/// An elicitation request (for [`ask`]).
pub fn elicit_request(message: &str, schema: &str) -> InputRequest {
    InputRequest::Elicit(wit::ElicitRequest {
        message: message.to_owned(),
        requested_schema: schema.to_owned(),
    })
}

/// A sampling request of one user message (for [`create_message`] and [`ask`]).
pub fn sampling_request(prompt: &str, max_tokens: u32) -> SamplingRequest {
    SamplingRequest {
        messages: vec![SamplingMessage {
            role: Role::User,
            content: ContentBlock::Text(prompt.to_owned()),
        }],
        system_prompt: None,
        max_tokens,
        temperature: None,
        stop_sequences: Vec::new(),
        model_hints: Vec::new(),
    }
}

/// Whether this call may ask for `feature` (granted, and declared by the
/// client). Outside a WebAssembly host: false.
pub fn supports(feature: ClientFeature) -> bool {
    #[cfg(target_family = "wasm")]
    return wit::supports(feature);
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = feature;
        false
    }
}

#[cfg(not(target_family = "wasm"))]
fn outside() -> ClientError {
    ClientError::Unsupported("not running in a toolmesh host".into())
}

/// Asks the user `message`, for an answer matching JSON Schema `schema`.
pub fn elicit(key: &str, message: &str, schema: &str) -> Result<Elicited, ClientError> {
    #[cfg(target_family = "wasm")]
    {
        let request = wit::ElicitRequest {
            message: message.to_owned(),
            requested_schema: schema.to_owned(),
        };
        return elicited(wit::elicit(key, &request)?);
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = (key, message, schema, elicited);
        Err(outside())
    }
}

/// Asks the client's model for a completion.
pub fn create_message(key: &str, request: &SamplingRequest) -> Result<SamplingResult, ClientError> {
    #[cfg(target_family = "wasm")]
    return wit::create_message(key, request);
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = (key, request);
        Err(outside())
    }
}

/// Asks the client for its roots.
pub fn list_roots(key: &str) -> Result<Vec<Root>, ClientError> {
    #[cfg(target_family = "wasm")]
    return wit::list_roots(key);
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = key;
        Err(outside())
    }
}

/// Asks several questions at once (one round trip on the stateless
/// protocol); the answers come in the order asked.
pub fn ask(requests: &[(String, InputRequest)]) -> Vec<Result<InputResponse, ClientError>> {
    #[cfg(target_family = "wasm")]
    return wit::ask(requests);
    #[cfg(not(target_family = "wasm"))]
    requests.iter().map(|_| Err(outside())).collect()
}

/// An accepted elicitation's content from an [`ask`] answer.
pub fn elicited_of(response: InputResponse) -> Result<Elicited, ClientError> {
    match response {
        InputResponse::Elicit(action) => elicited(action),
        _ => Err(ClientError::Failed("not an elicitation answer".into())),
    }
}
