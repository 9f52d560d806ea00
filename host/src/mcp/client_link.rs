//! The way back to the client for a call's questions (elicitation,
//! sampling, roots): what the client declared, the questions as MCP
//! requests, and its answers as the WIT types, checked.
//!
//! - [`PeerLink`]: the 2025-11-25 wire, a server-to-client request per
//!   question on the session (sent from the handler's task, so that rmcp
//!   routes it on the call's own stream).
//! - [`RoundLink`]: the 2026-07-28 wire, where the server may not send
//!   requests: a question is answered from what the client sent with the
//!   request (its `inputResponses`, and the answers of earlier rounds in its
//!   `requestState`), and one it has not answered yet ends the call with an
//!   input-required result (see [`mrtr`](super::mrtr)); the retry runs the
//!   call again.
//!
//! Requests and answers go through JSON: rmcp's sampling types are
//! deprecated and non-exhaustive, and the wire form is what both sides
//! agree on anyway.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::model::{ClientCapabilities, ServerRequest};
use rmcp::{Peer, RoleServer};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::capability::client::ClientLink;
use crate::service::content::b64;
use crate::wit::toolmesh::plugin::client::{
    ClientError, ElicitAction, InputRequest, InputResponse, Root, SamplingResult,
};
use crate::wit::{ClientFeature, ContentBlock, Media, Role};

/// The client features a client declared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declared {
    elicitation: bool,
    sampling: bool,
    roots: bool,
}

impl Declared {
    /// What `capabilities` declare (nothing, if there are none). A bare
    /// `elicitation: {}` means form mode; `{url: {}}` alone does not.
    #[allow(deprecated)] // sampling and roots: legacy in rmcp, declared by 2025-11-25 clients
    pub fn of(capabilities: Option<&ClientCapabilities>) -> Self {
        let Some(c) = capabilities else {
            return Self::default();
        };
        let elicitation = c
            .elicitation
            .as_ref()
            .is_some_and(|e| e.form.is_some() || e.url.is_none());
        Self {
            elicitation,
            sampling: c.sampling.is_some(),
            roots: c.roots.is_some(),
        }
    }

    /// Whether `feature` was declared.
    pub fn has(&self, feature: ClientFeature) -> bool {
        match feature {
            ClientFeature::Elicitation => self.elicitation,
            ClientFeature::Sampling => self.sampling,
            ClientFeature::Roots => self.roots,
        }
    }
}

/// The MCP method and params of a question.
pub fn encode(request: &InputRequest) -> Result<(&'static str, Value), ClientError> {
    match request {
        InputRequest::Elicit(elicit) => {
            let schema: Value = serde_json::from_str(&elicit.requested_schema).map_err(|e| {
                ClientError::Failed(format!("the elicitation schema is not JSON: {e}"))
            })?;
            let params = json!({
                "mode": "form",
                "message": elicit.message,
                "requestedSchema": schema,
            });
            // rmcp checks the schema is a flat form schema.
            serde_json::from_value::<rmcp::model::ElicitRequestParams>(params.clone()).map_err(
                |e| ClientError::Failed(format!("not a valid elicitation form schema: {e}")),
            )?;
            Ok(("elicitation/create", params))
        }
        InputRequest::Sample(sample) => {
            let messages = sample
                .messages
                .iter()
                .map(|m| {
                    Ok(json!({
                        "role": role_name(m.role),
                        "content": sampling_content(&m.content)?,
                    }))
                })
                .collect::<Result<Vec<_>, ClientError>>()?;
            let mut params = json!({ "messages": messages, "maxTokens": sample.max_tokens });
            if let Some(system) = &sample.system_prompt {
                params["systemPrompt"] = json!(system);
            }
            if let Some(t) = sample.temperature {
                params["temperature"] = json!(t);
            }
            if !sample.stop_sequences.is_empty() {
                params["stopSequences"] = json!(sample.stop_sequences);
            }
            if !sample.model_hints.is_empty() {
                let hints: Vec<Value> = sample
                    .model_hints
                    .iter()
                    .map(|name| json!({ "name": name }))
                    .collect();
                params["modelPreferences"] = json!({ "hints": hints });
            }
            Ok(("sampling/createMessage", params))
        }
        InputRequest::ListRoots => Ok(("roots/list", json!({}))),
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

fn sampling_content(block: &ContentBlock) -> Result<Value, ClientError> {
    Ok(match block {
        ContentBlock::Text(text) => json!({ "type": "text", "text": text }),
        ContentBlock::Image(m) => {
            json!({ "type": "image", "data": b64(&m.data), "mimeType": m.mime_type })
        }
        ContentBlock::Audio(m) => {
            json!({ "type": "audio", "data": b64(&m.data), "mimeType": m.mime_type })
        }
        ContentBlock::Resource(_) | ContentBlock::ResourceLink(_) => {
            return Err(ClientError::Failed(
                "sampling messages hold text, images or audio, not resources".into(),
            ));
        }
    })
}

/// The client's answer `value` to `request`, checked.
pub fn decode(request: &InputRequest, value: Value) -> Result<InputResponse, ClientError> {
    let bad = |what: &str| ClientError::Failed(format!("the client's answer is not {what}"));
    match request {
        InputRequest::Elicit(elicit) => {
            let action = match value.get("action").and_then(Value::as_str) {
                Some("accept") => {
                    let content = value.get("content").cloned().unwrap_or(json!({}));
                    if !content.is_object() {
                        return Err(bad("an accepted elicitation with object content"));
                    }
                    check_against(&elicit.requested_schema, &content)?;
                    ElicitAction::Accept(content.to_string())
                }
                Some("decline") => ElicitAction::Decline,
                Some("cancel") => ElicitAction::Cancel,
                _ => {
                    return Err(bad(
                        "an elicitation result (action accept, decline or cancel)",
                    ));
                }
            };
            Ok(InputResponse::Elicit(action))
        }
        InputRequest::Sample(_) => {
            let role = match value.get("role").and_then(Value::as_str) {
                Some("assistant") => Role::Assistant,
                Some("user") => Role::User,
                _ => return Err(bad("a sampling result (role)")),
            };
            // One block, or the first of several.
            let content = match value.get("content") {
                Some(Value::Array(blocks)) => blocks.first().cloned(),
                other => other.cloned(),
            }
            .ok_or_else(|| bad("a sampling result (content)"))?;
            let content = decode_block(&content).ok_or_else(|| bad("text, image or audio"))?;
            Ok(InputResponse::Sample(SamplingResult {
                role,
                content,
                model: value
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .chars()
                    .take(256)
                    .collect(),
                stop_reason: value
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .map(|s| s.chars().take(64).collect()),
            }))
        }
        InputRequest::ListRoots => {
            let roots = value
                .get("roots")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("a roots list"))?
                .iter()
                .filter_map(|root| {
                    Some(Root {
                        uri: root.get("uri")?.as_str()?.to_owned(),
                        name: root.get("name").and_then(Value::as_str).map(str::to_owned),
                    })
                })
                .collect();
            Ok(InputResponse::ListRoots(roots))
        }
    }
}

fn decode_block(block: &Value) -> Option<ContentBlock> {
    let text = |key: &str| block.get(key).and_then(Value::as_str);
    let media = || {
        let data = base64::engine::general_purpose::STANDARD
            .decode(text("data")?)
            .ok()?;
        Some(Media {
            data,
            mime_type: text("mimeType")?.to_owned(),
        })
    };
    match text("type")? {
        "text" => Some(ContentBlock::Text(text("text")?.to_owned())),
        "image" => Some(ContentBlock::Image(media()?)),
        "audio" => Some(ContentBlock::Audio(media()?)),
        _ => None,
    }
}

/// Checks an accepted elicitation's content against the schema the plugin
/// asked with: the client (and the user) are outside the sandbox too.
fn check_against(schema: &str, content: &Value) -> Result<(), ClientError> {
    let schema: Value = serde_json::from_str(schema)
        .map_err(|e| ClientError::Failed(format!("the elicitation schema is not JSON: {e}")))?;
    let validator = crate::plugin::tool::validator_for(&schema)
        .map_err(|e| ClientError::Failed(format!("the elicitation schema {e}")))?;
    let problems: Vec<String> = validator
        .iter_errors(content)
        .take(3)
        .map(|e| e.to_string())
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ClientError::Failed(format!(
            "the client's answer does not match the schema: {}",
            problems.join("; ")
        )))
    }
}

/// The 2025-11-25 wire: questions are requests on the session.
#[derive(Debug, Clone)]
pub struct PeerLink {
    peer: Peer<RoleServer>,
    declared: Declared,
}

impl PeerLink {
    /// Questions to `peer`, which declared `declared`.
    pub fn new(peer: Peer<RoleServer>, declared: Declared) -> Self {
        Self { peer, declared }
    }

    async fn ask_one(
        peer: Peer<RoleServer>,
        request: InputRequest,
    ) -> Result<InputResponse, ClientError> {
        let (method, params) = encode(&request)?;
        let request_json = json!({ "method": method, "params": params });
        let server_request: ServerRequest = serde_json::from_value(request_json)
            .map_err(|e| ClientError::Failed(format!("cannot form the {method} request: {e}")))?;
        let answer = peer
            .send_request(server_request)
            .await
            .map_err(|e| ClientError::Failed(format!("the client answered {method} with: {e}")))?;
        let value = serde_json::to_value(answer)
            .map_err(|e| ClientError::Failed(format!("unreadable answer: {e}")))?;
        decode(&request, value)
    }
}

impl ClientLink for PeerLink {
    fn declared(&self, feature: ClientFeature) -> bool {
        self.declared.has(feature)
    }

    fn ask(
        &self,
        requests: Vec<(String, InputRequest)>,
    ) -> BoxFuture<'static, Vec<Result<InputResponse, ClientError>>> {
        // The client capability checked each question (its feature is
        // declared) before it got here.
        let peer = self.peer.clone();
        async move {
            let mut answers = Vec::with_capacity(requests.len());
            for (_, request) in requests {
                answers.push(Self::ask_one(peer.clone(), request).await);
            }
            answers
        }
        .boxed()
    }
}

/// Why a call on the 2026-07-28 wire stopped to ask its client.
#[derive(Debug)]
pub enum RoundEnd {
    /// These questions are not answered yet.
    Unanswered(Vec<(String, InputRequest)>),
    /// The client's answer under this key does not answer its question.
    Malformed {
        /// The key.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// The 2026-07-28 wire: answers come with the request; a question without
/// one ends the call ([`RoundEnd`]).
#[derive(Debug)]
pub struct RoundLink {
    declared: Declared,
    given: BTreeMap<String, Value>,
    used: Mutex<BTreeMap<String, Value>>,
    end: mpsc::UnboundedSender<RoundEnd>,
}

impl RoundLink {
    /// A link for a client that declared `declared` and sent `given`
    /// answers, and where the reason it ends the call arrives.
    pub fn new(
        declared: Declared,
        given: BTreeMap<String, Value>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<RoundEnd>) {
        let (end, rx) = mpsc::unbounded_channel();
        let link = Self {
            declared,
            given,
            used: Mutex::default(),
            end,
        };
        (Arc::new(link), rx)
    }

    /// The answers the call used, by key (carried to the next round).
    pub fn used(&self) -> BTreeMap<String, Value> {
        match self.used.lock() {
            Ok(used) => used.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ClientLink for RoundLink {
    fn declared(&self, feature: ClientFeature) -> bool {
        self.declared.has(feature)
    }

    fn ask(
        &self,
        requests: Vec<(String, InputRequest)>,
    ) -> BoxFuture<'static, Vec<Result<InputResponse, ClientError>>> {
        let mut answers = Vec::with_capacity(requests.len());
        let mut unanswered = Vec::new();
        // The client capability checked each question (its feature is
        // declared) before it got here.
        for (key, request) in requests {
            let Some(value) = self.given.get(&key) else {
                unanswered.push((key, request));
                continue;
            };
            match decode(&request, value.clone()) {
                Ok(answer) => {
                    if let Ok(mut used) = self.used.lock() {
                        used.insert(key, value.clone());
                    }
                    answers.push(Ok(answer));
                }
                Err(ClientError::Failed(problem)) => {
                    let _ = self.end.send(RoundEnd::Malformed { key, problem });
                    return futures::future::pending().boxed();
                }
                Err(other) => answers.push(Err(other)),
            }
        }
        if unanswered.is_empty() {
            return futures::future::ready(answers).boxed();
        }
        // The call cannot go on without the client: the handler stops it
        // and asks. The guest waits here until then.
        let _ = self.end.send(RoundEnd::Unanswered(unanswered));
        futures::future::pending().boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::toolmesh::plugin::client::{ElicitRequest, SamplingMessage, SamplingRequest};

    #[test]
    fn questions_encode_and_answers_decode() {
        let elicit = InputRequest::Elicit(ElicitRequest {
            message: "Who?".into(),
            requested_schema:
                r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#
                    .into(),
        });
        let (method, params) = encode(&elicit).unwrap();
        assert_eq!(method, "elicitation/create");
        assert_eq!(params["requestedSchema"]["required"][0], "name");
        let accepted = decode(
            &elicit,
            json!({"action": "accept", "content": {"name": "Ada"}}),
        );
        assert!(
            matches!(accepted, Ok(InputResponse::Elicit(ElicitAction::Accept(c))) if c.contains("Ada"))
        );
        let wrong = decode(&elicit, json!({"action": "accept", "content": {"name": 5}}));
        assert!(matches!(wrong, Err(ClientError::Failed(m)) if m.contains("does not match")));
        assert!(matches!(
            decode(&elicit, json!({"action": "decline"})),
            Ok(InputResponse::Elicit(ElicitAction::Decline))
        ));

        let sample = InputRequest::Sample(SamplingRequest {
            messages: vec![SamplingMessage {
                role: Role::User,
                content: ContentBlock::Text("hi".into()),
            }],
            system_prompt: None,
            max_tokens: 10,
            temperature: None,
            stop_sequences: vec![],
            model_hints: vec!["claude".into()],
        });
        let (method, params) = encode(&sample).unwrap();
        assert_eq!(method, "sampling/createMessage");
        assert_eq!(params["modelPreferences"]["hints"][0]["name"], "claude");
        let answer = json!({"role": "assistant", "content": {"type": "text", "text": "yo"}, "model": "m", "stopReason": "endTurn"});
        assert!(matches!(
            decode(&sample, answer),
            Ok(InputResponse::Sample(SamplingResult { content: ContentBlock::Text(t), .. })) if t == "yo"
        ));
        assert!(decode(&sample, json!({"role": "assistant"})).is_err());
    }

    #[test]
    fn declared_features_follow_the_capabilities() {
        let caps: ClientCapabilities =
            serde_json::from_value(json!({"elicitation": {}, "roots": {"listChanged": true}}))
                .unwrap();
        let declared = Declared::of(Some(&caps));
        assert!(declared.has(ClientFeature::Elicitation));
        assert!(declared.has(ClientFeature::Roots));
        assert!(!declared.has(ClientFeature::Sampling));
        assert_eq!(Declared::of(None), Declared::default());
        let url_only: ClientCapabilities =
            serde_json::from_value(json!({"elicitation": {"url": {}}})).unwrap();
        assert!(!Declared::of(Some(&url_only)).has(ClientFeature::Elicitation));
    }
}
