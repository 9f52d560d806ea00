//! The plugin: its tools, resources, templates, prompts and completer, and
//! the glue to the WIT exports (`tools`, `resources`, `prompts`,
//! `completions`) that [`export_plugin!`](crate::export_plugin) wires up.

use crate::bindings::exports::toolmesh::plugin::{completions, prompts, resources};
use crate::bindings::toolmesh::plugin::types as wit;
use crate::output::{Content, ToolOutput};
use crate::resource::{
    Completer, Completion, CompletionRequest, CompletionTarget, Prompt, PromptMessage, Resource,
    ResourceBody, ResourceContents, ResourceError, Role, Template, Values,
};
use crate::tool::{CallContext, Tool, ToolError};

/// Everything a plugin exports.
#[derive(Default)]
pub struct Plugin {
    tools: Vec<Tool>,
    resources: Vec<Resource>,
    templates: Vec<Template>,
    prompts: Vec<Prompt>,
    completer: Option<Completer>,
    on_load: Option<Box<dyn Fn() -> Result<(), ToolError>>>,
    on_unload: Option<Box<dyn Fn()>>,
}

impl Plugin {
    /// A plugin with nothing in it yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool.
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Adds a resource at a fixed URI.
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resources.push(resource);
        self
    }

    /// Adds a resource template.
    pub fn template(mut self, template: Template) -> Self {
        self.templates.push(template);
        self
    }

    /// Adds a prompt.
    pub fn prompt(mut self, prompt: Prompt) -> Self {
        self.prompts.push(prompt);
        self
    }

    /// Completes prompt arguments and template variables with `completer`.
    pub fn completions<F>(mut self, completer: F) -> Self
    where
        F: Fn(&CompletionRequest) -> Result<Completion, ToolError> + 'static,
    {
        self.completer = Some(Box::new(completer));
        self
    }

    /// Runs `hook` when the host loads this version of the plugin (at
    /// start, install, hot reload, reload, enable), before it serves; an
    /// error refuses the load with its message. Validate the plugin's
    /// configuration here. Runs under the plugin's quotas, like a call.
    pub fn on_load<F>(mut self, hook: F) -> Self
    where
        F: Fn() -> Result<(), ToolError> + 'static,
    {
        self.on_load = Some(Box::new(hook));
        self
    }

    /// Runs `hook` when the host stops serving this version (disabled,
    /// replaced or removed). Best effort: the host does not wait for it.
    pub fn on_unload<F>(mut self, hook: F) -> Self
    where
        F: Fn() + 'static,
    {
        self.on_unload = Some(Box::new(hook));
        self
    }

    /// Runs the load hook, as the host would.
    pub fn load(&self) -> Result<(), ToolError> {
        self.on_load.as_ref().map_or(Ok(()), |hook| hook())
    }

    /// Runs the unload hook, as the host would.
    pub fn unload(&self) {
        if let Some(hook) = &self.on_unload {
            hook();
        }
    }

    #[doc(hidden)]
    pub fn __wit_on_load(&self) -> Result<(), wit::ToolError> {
        self.load().map_err(tool_error_to_wit)
    }

    /// Runs tool `name` on JSON `arguments`, as the host would. Handy in
    /// native unit tests of a plugin.
    pub fn call_json(&self, name: &str, arguments: &str) -> Result<ToolOutput, ToolError> {
        self.call_with(&CallContext::default(), name, arguments)
    }

    /// Runs tool `name` on JSON `arguments` with a call context.
    pub fn call_with(
        &self,
        ctx: &CallContext,
        name: &str,
        arguments: &str,
    ) -> Result<ToolOutput, ToolError> {
        let tool = self
            .tools
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| ToolError::InvalidArguments(format!("no tool named `{name}`")))?;
        (tool.handler)(ctx, arguments)
    }

    /// Reads resource `uri` (a fixed one, or one of a template), as the
    /// host would.
    pub fn read(
        &self,
        ctx: &CallContext,
        uri: &str,
    ) -> Result<Vec<ResourceContents>, ResourceError> {
        if let Some(resource) = self.resources.iter().find(|r| r.uri == uri) {
            return (resource.handler)(ctx);
        }
        Err(ResourceError::NotFound(format!("no resource `{uri}`")))
    }

    /// Fills in prompt `name`, as the host would.
    pub fn get_prompt(
        &self,
        ctx: &CallContext,
        name: &str,
        arguments: Vec<(String, String)>,
    ) -> Result<Vec<PromptMessage>, ToolError> {
        let prompt = self
            .prompts
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ToolError::invalid_arguments(format!("no prompt named `{name}`")))?;
        (prompt.handler)(ctx, &Values(arguments))
    }

    #[doc(hidden)]
    pub fn __wit_list(&self) -> Vec<wit::ToolSpec> {
        self.tools.iter().map(Tool::spec).collect()
    }

    #[doc(hidden)]
    pub fn __wit_call(
        &self,
        ctx: wit::CallContext,
        name: &str,
        arguments: &str,
    ) -> Result<wit::ToolOutput, wit::ToolError> {
        match self.call_with(&context(ctx), name, arguments) {
            Ok(out) => Ok(wit::ToolOutput {
                content: out.content.into_iter().map(content_to_wit).collect(),
                structured: out.structured,
            }),
            Err(e) => Err(tool_error_to_wit(e)),
        }
    }

    #[doc(hidden)]
    pub fn __wit_list_resources(&self) -> Vec<resources::ResourceSpec> {
        self.resources
            .iter()
            .map(|r| resources::ResourceSpec {
                uri: r.uri.clone(),
                name: r.name.clone(),
                title: r.about.title.clone(),
                description: r.about.description.clone(),
                mime_type: r.about.mime_type.clone(),
                size: r.about.size,
                annotations: annotations(r.about.priority),
            })
            .collect()
    }

    #[doc(hidden)]
    pub fn __wit_list_templates(&self) -> Vec<resources::TemplateSpec> {
        self.templates
            .iter()
            .map(|t| resources::TemplateSpec {
                uri_template: t.uri_template.clone(),
                name: t.name.clone(),
                title: t.about.title.clone(),
                description: t.about.description.clone(),
                mime_type: t.about.mime_type.clone(),
                annotations: annotations(t.about.priority),
            })
            .collect()
    }

    #[doc(hidden)]
    pub fn __wit_read(
        &self,
        ctx: wit::CallContext,
        uri: &str,
        template: Option<String>,
        variables: Vec<(String, String)>,
    ) -> Result<Vec<wit::ResourceContents>, resources::ResourceError> {
        let ctx = context(ctx);
        let read = match template {
            Some(template) => match self.templates.iter().find(|t| t.uri_template == template) {
                Some(t) => (t.handler)(&ctx, uri, &Values(variables)),
                None => Err(ResourceError::NotFound(format!("no template `{template}`"))),
            },
            None => self.read(&ctx, uri),
        };
        match read {
            Ok(contents) => Ok(contents.into_iter().map(contents_to_wit).collect()),
            Err(ResourceError::NotFound(m)) => Err(resources::ResourceError::NotFound(m)),
            Err(ResourceError::Denied(m)) => Err(resources::ResourceError::Denied(m)),
            Err(ResourceError::Failed(m)) => Err(resources::ResourceError::Failed(m)),
        }
    }

    #[doc(hidden)]
    pub fn __wit_list_prompts(&self) -> Vec<prompts::PromptSpec> {
        self.prompts
            .iter()
            .map(|p| prompts::PromptSpec {
                name: p.name.to_owned(),
                title: p.title.clone(),
                description: Some(p.description.clone()),
                arguments: p
                    .arguments
                    .iter()
                    .map(|a| prompts::PromptArgument {
                        name: a.name.clone(),
                        title: None,
                        description: Some(a.description.clone()),
                        required: a.required,
                    })
                    .collect(),
            })
            .collect()
    }

    #[doc(hidden)]
    pub fn __wit_get_prompt(
        &self,
        ctx: wit::CallContext,
        name: &str,
        arguments: Vec<(String, String)>,
    ) -> Result<prompts::PromptResult, wit::ToolError> {
        let messages = self
            .get_prompt(&context(ctx), name, arguments)
            .map_err(tool_error_to_wit)?;
        Ok(prompts::PromptResult {
            description: None,
            messages: messages
                .into_iter()
                .map(|m| prompts::PromptMessage {
                    role: role_to_wit(m.role),
                    content: content_to_wit(m.content),
                })
                .collect(),
        })
    }

    #[doc(hidden)]
    pub fn __wit_complete(
        &self,
        request: completions::CompletionRequest,
    ) -> Result<completions::Completion, wit::ToolError> {
        let Some(completer) = &self.completer else {
            return Ok(completions::Completion {
                values: Vec::new(),
                total: Some(0),
                has_more: false,
            });
        };
        let request = CompletionRequest {
            target: match request.target {
                completions::CompletionRef::Prompt(name) => CompletionTarget::Prompt(name),
                completions::CompletionRef::ResourceTemplate(t) => CompletionTarget::Template(t),
            },
            argument: request.argument,
            value: request.value,
            context: Values(request.context),
        };
        let completion = completer(&request).map_err(tool_error_to_wit)?;
        Ok(completions::Completion {
            values: completion.values,
            total: completion.total,
            has_more: completion.has_more,
        })
    }
}

fn context(ctx: wit::CallContext) -> CallContext {
    CallContext {
        request_id: ctx.request_id,
        client: ctx.client,
    }
}

fn annotations(priority: Option<f64>) -> Option<resources::Annotations> {
    priority.map(|p| resources::Annotations {
        audience: Vec::new(),
        priority: Some(p),
        last_modified: None,
    })
}

fn role_to_wit(role: Role) -> wit::Role {
    match role {
        Role::User => wit::Role::User,
        Role::Assistant => wit::Role::Assistant,
    }
}

pub(crate) fn tool_error_to_wit(e: ToolError) -> wit::ToolError {
    match e {
        ToolError::InvalidArguments(m) => wit::ToolError::InvalidArguments(m),
        ToolError::Denied(m) => wit::ToolError::Denied(m),
        ToolError::Failed(m) => wit::ToolError::Failed(m),
    }
}

fn contents_to_wit(c: ResourceContents) -> wit::ResourceContents {
    wit::ResourceContents {
        uri: c.uri,
        mime_type: c.mime_type,
        body: match c.body {
            ResourceBody::Text(t) => wit::ResourceBody::Text(t),
            ResourceBody::Blob(b) => wit::ResourceBody::Blob(b),
        },
    }
}

pub(crate) fn content_to_wit(content: Content) -> wit::ContentBlock {
    match content {
        Content::Text(t) => wit::ContentBlock::Text(t),
        Content::Image { data, mime_type } => {
            wit::ContentBlock::Image(wit::Media { data, mime_type })
        }
        Content::Audio { data, mime_type } => {
            wit::ContentBlock::Audio(wit::Media { data, mime_type })
        }
        Content::Resource(contents) => wit::ContentBlock::Resource(contents_to_wit(contents)),
        Content::ResourceLink {
            uri,
            name,
            description,
            mime_type,
        } => wit::ContentBlock::ResourceLink(wit::ResourceLink {
            uri,
            name,
            description,
            mime_type,
        }),
    }
}
