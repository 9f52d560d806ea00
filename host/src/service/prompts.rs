//! The prompts plugins export, and completions of their arguments (and of
//! resource template variables): listed from the registry, filled in and
//! completed by the plugin under its quotas as the caller.

use rmcp::model::{CompletionInfo, GetPromptResult, JsonObject, Prompt, PromptArgument, Reference};
use tokio_util::sync::CancellationToken;

use super::{CallMeta, ToolService, content};
use crate::runtime::CallError;
use crate::wit::{CompletionRef, CompletionRequest, ToolError};

/// Why a prompt could not be filled in.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// No such prompt.
    #[error("unknown prompt `{0}`; prompts/list shows the prompts")]
    NotFound(String),
    /// The arguments do not fit the prompt.
    #[error("{0}")]
    InvalidArguments(String),
    /// The caller may not use it.
    #[error("denied: {0}")]
    Denied(String),
    /// Filling it in failed.
    #[error("prompt `{name}` failed: {reason}")]
    Failed {
        /// The prompt.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Every prompt, for `prompts/list`.
pub fn list(service: &ToolService) -> Vec<Prompt> {
    let snapshot = service.plugins().registry().snapshot();
    snapshot
        .prompts()
        .map(|(_, prompt)| {
            let spec = &prompt.spec;
            let arguments = spec
                .arguments
                .iter()
                .map(|a| {
                    let mut argument =
                        PromptArgument::new(a.name.clone()).with_required(a.required);
                    argument.title = a.title.clone();
                    argument.description = a.description.clone();
                    argument
                })
                .collect::<Vec<_>>();
            let mut out = Prompt::new(
                prompt.public_name.clone(),
                spec.description.clone(),
                (!arguments.is_empty()).then_some(arguments),
            );
            out.title = spec.title.clone();
            out
        })
        .collect()
}

/// Fills in prompt `name` with `arguments` for the caller `meta` describes.
/// Every argument must be a string; the required ones must be there, and
/// no others.
pub async fn get(
    service: &ToolService,
    name: &str,
    arguments: Option<JsonObject>,
    meta: CallMeta,
    cancel: &CancellationToken,
) -> Result<GetPromptResult, PromptError> {
    let snapshot = service.plugins().registry().snapshot();
    let Some((plugin, prompt)) = snapshot.prompt(name) else {
        return Err(PromptError::NotFound(
            crate::text::truncate(name, 128).into_owned(),
        ));
    };
    let mut given = Vec::new();
    for (key, value) in arguments.unwrap_or_default() {
        let Some(value) = value.as_str() else {
            return Err(PromptError::InvalidArguments(format!(
                "argument `{key}` of prompt `{name}` must be a string"
            )));
        };
        if !prompt.spec.arguments.iter().any(|a| a.name == key) {
            return Err(PromptError::InvalidArguments(format!(
                "prompt `{name}` takes no argument `{}`",
                crate::text::truncate(&key, 64)
            )));
        }
        given.push((key, value.to_owned()));
    }
    if let Some(missing) = prompt
        .spec
        .arguments
        .iter()
        .find(|a| a.required && !given.iter().any(|(k, _)| *k == a.name))
    {
        return Err(PromptError::InvalidArguments(format!(
            "prompt `{name}` needs argument `{}`",
            missing.name
        )));
    }
    let (ctx, inputs) = meta.into_call().map_err(PromptError::Denied)?;
    let result = service
        .plugins()
        .get_prompt(plugin, &prompt.spec.name, &given, &ctx, inputs, cancel)
        .await
        .map_err(|e| match e {
            CallError::Tool(ToolError::InvalidArguments(m)) => PromptError::InvalidArguments(m),
            CallError::Tool(ToolError::Denied(m)) => PromptError::Denied(m),
            other => PromptError::Failed {
                name: name.to_owned(),
                reason: other.to_string(),
            },
        })?;
    Ok(content::prompt(&plugin.namespace, result))
}

/// Candidate values for argument `argument` (typed so far: `value`) of the
/// prompt or template `reference` names, given the `context` arguments
/// already filled in; `cancel` stops the plugin. Empty when the plugin does
/// not complete, or the reference names nothing.
pub async fn complete(
    service: &ToolService,
    reference: &Reference,
    argument: &str,
    value: &str,
    context: Vec<(String, String)>,
    cancel: &CancellationToken,
) -> Result<CompletionInfo, String> {
    let snapshot = service.plugins().registry().snapshot();
    let (plugin, target) = match reference {
        Reference::Prompt(prompt) => match snapshot.prompt(&prompt.name) {
            Some((plugin, prompt)) => (plugin, CompletionRef::Prompt(prompt.spec.name.clone())),
            None => return Ok(CompletionInfo::default()),
        },
        Reference::Resource(template) => match snapshot
            .templates()
            .find(|(_, t)| t.public_template == template.uri)
        {
            Some((plugin, t)) => (
                plugin,
                CompletionRef::ResourceTemplate(t.spec.uri_template.clone()),
            ),
            None => return Ok(CompletionInfo::default()),
        },
        _ => return Ok(CompletionInfo::default()),
    };
    if !plugin.completes {
        return Ok(CompletionInfo::default());
    }
    let request = CompletionRequest {
        target,
        argument: argument.to_owned(),
        value: value.to_owned(),
        context,
    };
    let completion = service
        .plugins()
        .complete(plugin, &request, cancel)
        .await
        .map_err(|e| e.to_string())?;
    Ok(content::completion(completion))
}
