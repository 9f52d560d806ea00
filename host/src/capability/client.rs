//! The `client` interface: a call asks the connected client for the user's
//! input (`elicitation`), a completion from its model (`sampling`) or its
//! roots (`roots`). Each is a capability granted by manifest and level, and
//! each works only when the client declared the feature; a call may ask at
//! most its level's `client_requests` questions. The transport answers
//! through a [`ClientLink`] (a server-to-client request on the 2025-11-25
//! wire, an input-required round on 2026-07-28); the wait counts against the
//! call's deadline, which the runtime enforces around the whole call.

use std::sync::Arc;

use futures::future::BoxFuture;
use wasmtime::component::Linker;

use super::{CallCapability, CallData, CallScope, Capability, HostStores, PluginScope};
use crate::wit::ClientFeature;
use crate::wit::toolmesh::plugin::client::{
    self, ClientError, ElicitAction, ElicitRequest, InputRequest, InputResponse, Root,
    SamplingRequest, SamplingResult,
};

/// What a transport offers a call for talking back to its client.
pub trait ClientLink: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the client declared `feature`.
    fn declared(&self, feature: ClientFeature) -> bool;

    /// Asks the client `requests` (each of a declared feature, under its
    /// key) and waits for the answers, in the order asked.
    fn ask(
        &self,
        requests: Vec<(String, InputRequest)>,
    ) -> BoxFuture<'static, Vec<Result<InputResponse, ClientError>>>;
}

/// The capability a question needs.
fn capability_of(feature: ClientFeature) -> Capability {
    match feature {
        ClientFeature::Elicitation => Capability::Elicitation,
        ClientFeature::Sampling => Capability::Sampling,
        ClientFeature::Roots => Capability::Roots,
    }
}

/// The client feature a question needs.
pub fn feature_of(request: &InputRequest) -> ClientFeature {
    match request {
        InputRequest::Elicit(_) => ClientFeature::Elicitation,
        InputRequest::Sample(_) => ClientFeature::Sampling,
        InputRequest::ListRoots => ClientFeature::Roots,
    }
}

/// The feature's name as MCP spells it in client capabilities.
pub fn feature_name(feature: ClientFeature) -> &'static str {
    match feature {
        ClientFeature::Elicitation => "elicitation",
        ClientFeature::Sampling => "sampling",
        ClientFeature::Roots => "roots",
    }
}

/// A call's way to its client.
pub struct ClientCtx {
    plugin: Arc<str>,
    level: String,
    granted: [bool; 3],
    link: Option<Arc<dyn ClientLink>>,
    left: u32,
}

/// Longest question key.
const MAX_KEY_BYTES: usize = 128;

/// Most questions one `ask` may hold (the host checks each against the
/// others; a level allows far fewer anyway).
pub const MAX_QUESTIONS_PER_ASK: usize = 64;

impl ClientCtx {
    /// `Ok` if this call may ask `request` now (and counts it), else why not.
    fn admit(&mut self, key: &str, request: &InputRequest) -> Result<(), ClientError> {
        let feature = feature_of(request);
        let name = feature_name(feature);
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(ClientError::Denied(format!(
                "a question's key must be 1 to {MAX_KEY_BYTES} bytes"
            )));
        }
        if !self.granted[feature as usize] {
            return Err(ClientError::Denied(format!(
                "plugin `{}` was not granted the `{name}` capability (its manifest must ask \
                 for it, and its level allow it)",
                self.plugin
            )));
        }
        let Some(link) = &self.link else {
            return Err(ClientError::Unsupported(format!(
                "this call has no client to ask ({name} needs an MCP client)"
            )));
        };
        if !link.declared(feature) {
            return Err(ClientError::Unsupported(format!(
                "the client did not declare the `{name}` capability"
            )));
        }
        if self.left == 0 {
            return Err(ClientError::Denied(format!(
                "this call asked its client as often as the `{}` level allows \
                 (`client_requests`)",
                self.level
            )));
        }
        self.left -= 1;
        Ok(())
    }

    /// Asks the admitted ones of `requests`, answering the others with
    /// their refusal; answers in the order asked.
    async fn ask_all(
        &mut self,
        requests: Vec<(String, InputRequest)>,
    ) -> Vec<Result<InputResponse, ClientError>> {
        if requests.len() > MAX_QUESTIONS_PER_ASK {
            let refused = format!(
                "{} questions in one ask; at most {MAX_QUESTIONS_PER_ASK} are allowed",
                requests.len()
            );
            return requests
                .iter()
                .map(|_| Err(ClientError::Denied(refused.clone())))
                .collect();
        }
        let mut answers: Vec<Option<Result<InputResponse, ClientError>>> =
            Vec::with_capacity(requests.len());
        let mut asked: Vec<(String, InputRequest)> = Vec::new();
        for (key, request) in requests {
            let duplicate = asked.iter().any(|(k, _)| *k == key);
            let admitted = if duplicate {
                Err(ClientError::Denied(format!(
                    "question key `{}` is used twice",
                    crate::text::truncate(&key, 64)
                )))
            } else {
                self.admit(&key, &request)
            };
            match admitted {
                Ok(()) => {
                    answers.push(None);
                    asked.push((key, request));
                }
                Err(refused) => answers.push(Some(Err(refused))),
            }
        }
        let mut replies = match (&self.link, asked.is_empty()) {
            (Some(link), false) => link.ask(asked).await.into_iter(),
            _ => Vec::new().into_iter(),
        };
        answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    replies.next().unwrap_or_else(|| {
                        Err(ClientError::Failed("the client gave no answer".into()))
                    })
                })
            })
            .collect()
    }

    async fn ask_one(
        &mut self,
        key: String,
        request: InputRequest,
    ) -> Result<InputResponse, ClientError> {
        self.ask_all(vec![(key, request)])
            .await
            .pop()
            .unwrap_or_else(|| Err(ClientError::Failed("the client gave no answer".into())))
    }
}

fn unexpected() -> ClientError {
    ClientError::Failed("the client answered a different question".into())
}

impl CallCapability for ClientCtx {
    fn add_to_linker<T: CallData>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self,
    ) -> wasmtime::Result<()> {
        client::add_to_linker::<T, wasmtime::component::HasSelf<Self>>(linker, get)
    }

    fn for_call(
        _: &HostStores,
        plugin: &PluginScope<'_>,
        call: &CallScope,
    ) -> anyhow::Result<Self> {
        let granted = |feature| plugin.access.has(capability_of(feature));
        Ok(Self {
            plugin: plugin.name.clone(),
            level: plugin.level.name.clone(),
            granted: [
                granted(ClientFeature::Elicitation),
                granted(ClientFeature::Sampling),
                granted(ClientFeature::Roots),
            ],
            link: call.client.clone(),
            left: plugin.level.client_requests,
        })
    }
}

impl client::Host for ClientCtx {
    fn supports(&mut self, feature: ClientFeature) -> bool {
        self.granted[feature as usize] && self.link.as_ref().is_some_and(|l| l.declared(feature))
    }

    async fn elicit(
        &mut self,
        key: String,
        request: ElicitRequest,
    ) -> Result<ElicitAction, ClientError> {
        match self.ask_one(key, InputRequest::Elicit(request)).await? {
            InputResponse::Elicit(action) => Ok(action),
            _ => Err(unexpected()),
        }
    }

    async fn create_message(
        &mut self,
        key: String,
        request: SamplingRequest,
    ) -> Result<SamplingResult, ClientError> {
        match self.ask_one(key, InputRequest::Sample(request)).await? {
            InputResponse::Sample(result) => Ok(result),
            _ => Err(unexpected()),
        }
    }

    async fn list_roots(&mut self, key: String) -> Result<Vec<Root>, ClientError> {
        match self.ask_one(key, InputRequest::ListRoots).await? {
            InputResponse::ListRoots(roots) => Ok(roots),
            _ => Err(unexpected()),
        }
    }

    async fn ask(
        &mut self,
        requests: Vec<(String, InputRequest)>,
    ) -> Vec<Result<InputResponse, ClientError>> {
        self.ask_all(requests).await
    }
}
