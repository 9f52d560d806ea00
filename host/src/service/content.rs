//! What plugins say, as MCP says it: content blocks (with the resource URIs
//! they embed put in the plugin's namespace), resource contents, prompt
//! messages and completions, from the WIT types to rmcp's.

use base64::Engine as _;
use rmcp::model::{
    Annotations, CompletionInfo, ContentBlock, GetPromptResult, PromptMessage, Resource,
    ResourceContents, Role,
};

use crate::plugin::resource::Namespace;
use crate::wit::{
    self, Completion, ContentBlock as GuestContent, PromptResult, ResourceBody,
    ResourceContents as GuestContents,
};

/// `data` as standard base64, as MCP carries binary content.
pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A plugin's content block, for the client.
pub fn block(ns: &Namespace, block: GuestContent) -> ContentBlock {
    match block {
        GuestContent::Text(text) => ContentBlock::text(text),
        GuestContent::Image(media) => ContentBlock::image(b64(&media.data), media.mime_type),
        GuestContent::Audio(media) => ContentBlock::audio(b64(&media.data), media.mime_type),
        GuestContent::Resource(contents) => ContentBlock::resource(self::contents(ns, contents)),
        GuestContent::ResourceLink(link) => {
            let mut resource = Resource::new(ns.public_uri(&link.uri), link.name);
            resource.description = link.description;
            resource.mime_type = link.mime_type;
            ContentBlock::resource_link(resource)
        }
    }
}

/// A plugin's resource contents, for the client.
pub fn contents(ns: &Namespace, contents: GuestContents) -> ResourceContents {
    let uri = ns.public_uri(&contents.uri);
    let mut out = match contents.body {
        ResourceBody::Text(text) => ResourceContents::TextResourceContents {
            uri,
            mime_type: None,
            text,
            meta: None,
        },
        ResourceBody::Blob(bytes) => ResourceContents::BlobResourceContents {
            uri,
            mime_type: None,
            blob: b64(&bytes),
            meta: None,
        },
    };
    if let Some(mime) = contents.mime_type {
        out = out.with_mime_type(mime);
    }
    out
}

/// A role, for the client.
pub fn role(role: wit::Role) -> Role {
    match role {
        wit::Role::User => Role::User,
        wit::Role::Assistant => Role::Assistant,
    }
}

/// A plugin's resource annotations, for the client.
pub fn annotations(a: wit::Annotations) -> Annotations {
    let mut out = Annotations::default();
    if !a.audience.is_empty() {
        out.audience = Some(a.audience.into_iter().map(role).collect());
    }
    out.priority = a.priority.map(|p| p.clamp(0.0, 1.0) as f32);
    out.last_modified = a.last_modified;
    out
}

/// A filled-in prompt, for the client.
pub fn prompt(ns: &Namespace, prompt: PromptResult) -> GetPromptResult {
    let messages = prompt
        .messages
        .into_iter()
        .map(|m| PromptMessage::new(role(m.role), block(ns, m.content)))
        .collect();
    let result = GetPromptResult::new(messages);
    match prompt.description {
        Some(description) => result.with_description(description),
        None => result,
    }
}

/// A plugin's completion, for the client (at most 100 values, as MCP
/// allows).
pub fn completion(completion: Completion) -> CompletionInfo {
    let mut values = completion.values;
    let cut = values.len() > CompletionInfo::MAX_VALUES;
    values.truncate(CompletionInfo::MAX_VALUES);
    let total = completion.total.or(cut.then_some(u32::MAX));
    CompletionInfo::with_pagination(values, total, completion.has_more || cut).unwrap_or_default()
}
