//! Input-required rounds (SEP-2322) on the stateless 2026-07-28 wire. A
//! call whose guest asks its client a question the request does not answer
//! is stopped, and answered with an input-required result: the questions
//! by key, and a `requestState` sealed by this host (HMAC, bound to the
//! client, the method and the target, expiring after [`STATE_TTL`]) that
//! carries the answers the call used so far. The client retries with its
//! answers in `inputResponses` and the state, and the call runs again from
//! the start, finding every answer under its key. No call waits in the
//! host between rounds.

use std::collections::BTreeMap;
use std::time::Duration;

use rmcp::ErrorData;
use rmcp::model::{
    InputRequest as McpInputRequest, InputRequests, InputRequiredResult, InputResponses,
};
use rmcp::model::{RequestStateCodec, SealOptions};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::client_link::{RoundEnd, RoundLink, encode};

/// How long a round's state may be brought back.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// Most bytes of answers one state may carry.
const MAX_STATE_ANSWERS_BYTES: usize = 256 * 1024;

/// Seals and opens round states, with a key made at start-up (a state
/// does not outlive the host process).
pub struct RoundStates {
    codec: RequestStateCodec,
}

impl std::fmt::Debug for RoundStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoundStates")
    }
}

/// What a round's state is bound to: who asks, and for what.
pub struct RoundScope<'a> {
    /// The client (its authenticated name, or the local user).
    pub owner: &'a str,
    /// The request's method.
    pub method: &'a str,
    /// The tool or prompt name, or the resource URI.
    pub target: &'a str,
}

impl RoundScope<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!("{}\n{}\n{}", self.owner, self.method, self.target).into_bytes()
    }
}

fn bad_state() -> ErrorData {
    ErrorData::invalid_params(
        "requestState integrity check failed: it was not issued by this host for this client \
         and request, was changed, or has expired (start the request again without it)",
        None,
    )
}

impl RoundStates {
    /// States sealed with a fresh random key.
    pub fn new() -> anyhow::Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| anyhow::anyhow!("cannot make a request-state key: {e}"))?;
        let codec = RequestStateCodec::try_new(key.to_vec())
            .map_err(|e| anyhow::anyhow!("cannot make a request-state key: {e}"))?;
        Ok(Self { codec })
    }

    fn seal(&self, scope: &RoundScope<'_>, answers: &BTreeMap<String, Value>) -> String {
        let payload = json!({ "answers": answers }).to_string();
        let ad = scope.associated_data();
        self.codec.seal_with(
            payload.as_bytes(),
            &SealOptions::new().associated_data(&ad).ttl(STATE_TTL),
        )
    }

    fn open(
        &self,
        scope: &RoundScope<'_>,
        state: &str,
    ) -> Result<BTreeMap<String, Value>, ErrorData> {
        let payload = self
            .codec
            .open_with(state, &scope.associated_data())
            .map_err(|_| bad_state())?;
        let value: Value = serde_json::from_slice(&payload).map_err(|_| bad_state())?;
        serde_json::from_value(value.get("answers").cloned().unwrap_or(json!({})))
            .map_err(|_| bad_state())
    }

    /// The answers a request brings: those sealed in its `request_state`
    /// (verified), then its `input_responses` over them.
    pub fn given(
        &self,
        scope: &RoundScope<'_>,
        input_responses: Option<&InputResponses>,
        request_state: Option<&str>,
    ) -> Result<BTreeMap<String, Value>, ErrorData> {
        let mut answers = match request_state {
            Some(state) => self.open(scope, state)?,
            None => BTreeMap::new(),
        };
        if let Some(responses) = input_responses {
            for (key, value) in responses {
                answers.insert(key.clone(), value.clone());
            }
        }
        Ok(answers)
    }
}

/// How a call on the 2026-07-28 wire ended.
pub enum Round<T> {
    /// It finished.
    Done(T),
    /// It needs the client's answers first.
    InputRequired(InputRequiredResult),
}

/// Runs `call` (whose guest asks through `link`) until it finishes or stops
/// to ask; a malformed answer is the client's error (-32602).
pub async fn run<T>(
    call: impl Future<Output = T>,
    link: &RoundLink,
    mut ended: mpsc::UnboundedReceiver<RoundEnd>,
    states: &RoundStates,
    scope: &RoundScope<'_>,
) -> Result<Round<T>, ErrorData> {
    let end = tokio::select! {
        biased;
        end = ended.recv() => end,
        outcome = call => return Ok(Round::Done(outcome)),
    };
    match end {
        Some(RoundEnd::Unanswered(questions)) => {
            let mut requests = InputRequests::new();
            for (key, question) in questions {
                let (method, params) = encode(&question)
                    .map_err(|e| ErrorData::internal_error(format!("{e:?}"), None))?;
                let request: McpInputRequest =
                    serde_json::from_value(json!({ "method": method, "params": params }))
                        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                requests.insert(key, request);
            }
            let used = link.used();
            if serde_json::to_vec(&used).map_or(0, |v| v.len()) > MAX_STATE_ANSWERS_BYTES {
                return Err(ErrorData::invalid_params(
                    format!(
                        "the answers so far take more than {MAX_STATE_ANSWERS_BYTES} bytes; \
                         answer with less"
                    ),
                    None,
                ));
            }
            let state = states.seal(scope, &used);
            Ok(Round::InputRequired(InputRequiredResult::new(
                Some(requests),
                Some(state),
            )))
        }
        Some(RoundEnd::Malformed { key, problem }) => Err(ErrorData::invalid_params(
            format!("inputResponses.{key} does not answer its question: {problem}"),
            Some(json!({ "key": key })),
        )),
        None => Err(ErrorData::internal_error(
            "the call stopped to ask without saying what",
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_bind_to_the_scope_and_reject_tampering() {
        let states = RoundStates::new().unwrap();
        let scope = RoundScope {
            owner: "alice",
            method: "tools/call",
            target: "t",
        };
        let answers = BTreeMap::from([("step1".to_owned(), json!({"action": "accept"}))]);
        let sealed = states.seal(&scope, &answers);
        assert_eq!(states.given(&scope, None, Some(&sealed)).unwrap(), answers);
        let tampered = format!("{sealed}-TAMPERED");
        assert!(states.given(&scope, None, Some(&tampered)).is_err());
        let other = RoundScope {
            owner: "bob",
            ..scope
        };
        assert!(states.given(&other, None, Some(&sealed)).is_err());
        let fresh = BTreeMap::from([("step2".to_owned(), json!(1))]);
        let merged = states.given(&scope, Some(&fresh), Some(&sealed)).unwrap();
        assert_eq!(merged.len(), 2);
    }
}
