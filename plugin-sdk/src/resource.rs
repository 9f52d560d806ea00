//! Resources a plugin serves (read by URI), resource templates (families
//! of URIs, RFC 6570 `{name}` and `{+name}`), prompts (messages a user
//! fills in) and completions of their arguments.
//!
//! ```
//! use toolmesh_sdk::{Plugin, Prompt, PromptMessage, Resource, ResourceContents, Template};
//!
//! let plugin = Plugin::new()
//!     .resource(
//!         Resource::new("notes://today", "today", |_ctx| {
//!             Ok(vec![ResourceContents::text("notes://today", "Buy milk.")])
//!         })
//!         .mime_type("text/plain"),
//!     )
//!     .template(Template::new("notes://day/{date}", "day", |_ctx, uri, vars| {
//!         Ok(vec![ResourceContents::text(uri, format!("Notes of {}.", vars.get("date")?))])
//!     }))
//!     .prompt(
//!         Prompt::new("summarise", "Summarise a day's notes.", |_ctx, args| {
//!             Ok(vec![PromptMessage::user(format!("Summarise {}.", args.get("date")?))])
//!         })
//!         .argument("date", "The day, as YYYY-MM-DD.", true),
//!     );
//! # let _ = plugin;
//! ```

use crate::tool::{CallContext, ToolError};

/// The body of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceBody {
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Blob(Vec<u8>),
}

/// What a resource holds at one URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceContents {
    /// The URI, as this plugin names it.
    pub uri: String,
    /// Its media type, if known.
    pub mime_type: Option<String>,
    /// The body.
    pub body: ResourceBody,
}

impl ResourceContents {
    /// Text contents at `uri`.
    pub fn text(uri: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            uri: uri.into(),
            mime_type: None,
            body: ResourceBody::Text(text.into()),
        }
    }

    /// Binary contents at `uri`.
    pub fn blob(uri: impl Into<String>, data: Vec<u8>) -> Self {
        Self {
            uri: uri.into(),
            mime_type: None,
            body: ResourceBody::Blob(data),
        }
    }

    /// JSON contents at `uri` (`application/json`).
    pub fn json(
        uri: impl Into<String>,
        value: &impl serde::Serialize,
    ) -> Result<Self, ResourceError> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| ResourceError::Failed(format!("cannot encode as JSON: {e}")))?;
        Ok(Self::text(uri, text).with_mime_type("application/json"))
    }

    /// With media type `mime_type`.
    pub fn with_mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }
}

/// Why a resource could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceError {
    /// There is nothing at this URI.
    NotFound(String),
    /// The caller may not read it.
    Denied(String),
    /// Reading it failed.
    Failed(String),
}

impl From<ToolError> for ResourceError {
    fn from(e: ToolError) -> Self {
        match e {
            ToolError::InvalidArguments(m) => Self::NotFound(m),
            ToolError::Denied(m) => Self::Denied(m),
            ToolError::Failed(m) => Self::Failed(m),
        }
    }
}

/// Named values: a template's variables, or a prompt's arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values(pub(crate) Vec<(String, String)>);

impl Values {
    /// The value of `name`; an invalid-arguments error naming it if there is
    /// none (a not-found error in a resource handler, through `?`).
    pub fn get(&self, name: &str) -> Result<&str, ToolError> {
        self.optional(name)
            .ok_or_else(|| ToolError::invalid_arguments(format!("`{name}` is missing")))
    }

    /// The value of `name`, if given.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every name and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl From<Vec<(String, String)>> for Values {
    fn from(values: Vec<(String, String)>) -> Self {
        Self(values)
    }
}

/// Descriptive fields shared by resources and templates.
#[derive(Debug, Clone, Default)]
pub(crate) struct About {
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    pub priority: Option<f64>,
}

type ReadHandler = Box<dyn Fn(&CallContext) -> Result<Vec<ResourceContents>, ResourceError>>;
type TemplateHandler =
    Box<dyn Fn(&CallContext, &str, &Values) -> Result<Vec<ResourceContents>, ResourceError>>;

macro_rules! about_builders {
    () => {
        /// A human-readable title.
        pub fn title(mut self, title: impl Into<String>) -> Self {
            self.about.title = Some(title.into());
            self
        }

        /// What it holds.
        pub fn description(mut self, description: impl Into<String>) -> Self {
            self.about.description = Some(description.into());
            self
        }

        /// The media type of its body.
        pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
            self.about.mime_type = Some(mime_type.into());
            self
        }

        /// How important it is, from 0 to 1 (an annotation for clients).
        pub fn priority(mut self, priority: f64) -> Self {
            self.about.priority = Some(priority);
            self
        }
    };
}

/// A resource at a fixed URI.
pub struct Resource {
    pub(crate) uri: String,
    pub(crate) name: String,
    pub(crate) about: About,
    pub(crate) handler: ReadHandler,
}

impl Resource {
    /// The resource at `uri` (absolute, `scheme:...`) called `name`, read by
    /// `handler`.
    pub fn new<F>(uri: impl Into<String>, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(&CallContext) -> Result<Vec<ResourceContents>, ResourceError> + 'static,
    {
        Self {
            uri: uri.into(),
            name: name.into(),
            about: About::default(),
            handler: Box::new(handler),
        }
    }

    about_builders!();

    /// Its size in bytes, if known in advance.
    pub fn size(mut self, size: u64) -> Self {
        self.about.size = Some(size);
        self
    }
}

/// A family of resources named by a URI template.
pub struct Template {
    pub(crate) uri_template: String,
    pub(crate) name: String,
    pub(crate) about: About,
    pub(crate) handler: TemplateHandler,
}

impl Template {
    /// The resources `uri_template` names (`{name}` matches one path
    /// segment, `{+name}` the rest), read by `handler` with the URI and the
    /// values the host matched.
    pub fn new<F>(uri_template: impl Into<String>, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(&CallContext, &str, &Values) -> Result<Vec<ResourceContents>, ResourceError>
            + 'static,
    {
        Self {
            uri_template: uri_template.into(),
            name: name.into(),
            about: About::default(),
            handler: Box::new(handler),
        }
    }

    about_builders!();
}

/// Who says a prompt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The user.
    User,
    /// The model.
    Assistant,
}

/// One message of a filled-in prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptMessage {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: crate::Content,
}

impl PromptMessage {
    /// The user says `text`.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: crate::Content::Text(text.into()),
        }
    }

    /// The model says `text`.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: crate::Content::Text(text.into()),
        }
    }

    /// `role` says `content` (an image, an embedded resource, ...).
    pub fn new(role: Role, content: crate::Content) -> Self {
        Self { role, content }
    }
}

pub(crate) struct Argument {
    pub name: String,
    pub description: String,
    pub required: bool,
}

type PromptHandler = Box<dyn Fn(&CallContext, &Values) -> Result<Vec<PromptMessage>, ToolError>>;

/// A prompt: messages a user picks and fills in with arguments.
pub struct Prompt {
    pub(crate) name: &'static str,
    pub(crate) title: Option<String>,
    pub(crate) description: String,
    pub(crate) arguments: Vec<Argument>,
    pub(crate) handler: PromptHandler,
}

impl Prompt {
    /// A prompt named `name` (like a tool's name) whose messages `handler`
    /// writes from the arguments.
    pub fn new<F>(name: &'static str, description: impl Into<String>, handler: F) -> Self
    where
        F: Fn(&CallContext, &Values) -> Result<Vec<PromptMessage>, ToolError> + 'static,
    {
        Self {
            name,
            title: None,
            description: description.into(),
            arguments: Vec::new(),
            handler: Box::new(handler),
        }
    }

    /// A human-readable title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Takes argument `name` (a string); the host refuses a request
    /// without it when it is `required`.
    pub fn argument(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        required: bool,
    ) -> Self {
        self.arguments.push(Argument {
            name: name.into(),
            description: description.into(),
            required,
        });
        self
    }
}

/// What a completion is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionTarget {
    /// An argument of this prompt.
    Prompt(String),
    /// A variable of the template with this URI template.
    Template(String),
}

/// A request for candidate values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionRequest {
    /// The prompt or template.
    pub target: CompletionTarget,
    /// The argument's or variable's name.
    pub argument: String,
    /// What the user typed so far.
    pub value: String,
    /// Arguments already filled in.
    pub context: Values,
}

/// Candidate values, best first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// At most 100 values.
    pub values: Vec<String>,
    /// How many there are in all, if known.
    pub total: Option<u32>,
    /// Whether there are more than `values`.
    pub has_more: bool,
}

impl Completion {
    /// The candidates among `options` that start with `typed`.
    pub fn matching<'a>(options: impl IntoIterator<Item = &'a str>, typed: &str) -> Self {
        let values: Vec<String> = options
            .into_iter()
            .filter(|o| o.starts_with(typed))
            .map(str::to_owned)
            .collect();
        Self {
            total: Some(values.len() as u32),
            values,
            has_more: false,
        }
    }
}

pub(crate) type Completer = Box<dyn Fn(&CompletionRequest) -> Result<Completion, ToolError>>;
