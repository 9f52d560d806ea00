//! A plugin's resources, templates and prompts as the host serves them:
//! checked at load (sizes, names, URIs), and namespaced by plugin like its
//! tools so that two plugins never collide. Plugin `p`'s URIs in its own
//! scheme, `p://rest`, are served as `toolmesh://p/rest`; any other URI `u`
//! as `toolmesh://p/u` (`toolmesh://p/test://static-text`). A prompt `name`
//! is served as `p__name`. A plugin served without its prefix keeps its
//! URIs and names as they are.

use crate::wit::{Annotations, PromptSpec, ResourceSpec, TemplateSpec};

use super::tool::{MAX_QUALIFIED_NAME, NAMESPACE_SEPARATOR};

/// Longest URI or URI template.
pub const MAX_URI_BYTES: usize = 1024;
/// Longest name.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest title.
pub const MAX_TITLE_BYTES: usize = 256;
/// Longest description.
pub const MAX_DESCRIPTION_BYTES: usize = 8 * 1024;
/// Most resources, templates or prompts one plugin may offer (each).
pub const MAX_ITEMS: usize = 256;
/// Most arguments one prompt may take.
pub const MAX_PROMPT_ARGUMENTS: usize = 32;

/// The scheme of the URIs the host serves plugins' resources under.
const HOST_SCHEME: &str = "toolmesh://";

/// How one plugin's names and URIs are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    plugin: String,
    prefixed: bool,
}

impl Namespace {
    /// The namespace of `plugin`, served with its prefix or not.
    pub fn new(plugin: &str, prefixed: bool) -> Self {
        Self {
            plugin: plugin.to_owned(),
            prefixed,
        }
    }

    /// The URI (or URI template) clients see for the plugin's `uri`.
    pub fn public_uri(&self, uri: &str) -> String {
        if !self.prefixed {
            return uri.to_owned();
        }
        let own = split_scheme(uri)
            .filter(|(scheme, _)| *scheme == self.plugin)
            .and_then(|(_, rest)| rest.strip_prefix("//"))
            .filter(|rest| !first_segment(rest).contains(':'));
        match own {
            Some(rest) => format!("{HOST_SCHEME}{}/{rest}", self.plugin),
            None => format!("{HOST_SCHEME}{}/{uri}", self.plugin),
        }
    }

    /// The plugin's own URI for `public`, if `public` is in this namespace.
    pub fn plugin_uri(&self, public: &str) -> Option<String> {
        if !self.prefixed {
            return Some(public.to_owned());
        }
        let tail = public
            .strip_prefix(HOST_SCHEME)?
            .strip_prefix(self.plugin.as_str())?
            .strip_prefix('/')?;
        if tail.is_empty() {
            return None;
        }
        if first_segment(tail).contains(':') {
            split_scheme(tail)?;
            Some(tail.to_owned())
        } else {
            Some(format!("{}://{tail}", self.plugin))
        }
    }

    /// The name clients see for the plugin's prompt `name`.
    pub fn public_name(&self, name: &str) -> String {
        if self.prefixed {
            format!("{}{NAMESPACE_SEPARATOR}{name}", self.plugin)
        } else {
            name.to_owned()
        }
    }
}

/// What comes before the first `/` of `path`.
fn first_segment(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// `scheme` and what follows `scheme:`, if `uri` starts with a valid scheme.
fn split_scheme(uri: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = uri.split_once(':')?;
    valid_scheme(scheme).then_some((scheme, rest))
}

/// RFC 3986: a letter, then letters, digits, `+`, `-` and `.`.
fn valid_scheme(scheme: &str) -> bool {
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

fn check_text(what: &str, text: &str, min: usize, max: usize) -> Result<(), String> {
    if text.len() < min || text.len() > max {
        return Err(format!(
            "{what} is {} bytes; it must be {min} to {max}",
            text.len()
        ));
    }
    Ok(())
}

fn check_optional(what: &str, text: &Option<String>, max: usize) -> Result<(), String> {
    text.as_deref()
        .map_or(Ok(()), |t| check_text(what, t, 0, max))
}

fn check_uri(what: &str, uri: &str) -> Result<(), String> {
    check_text(what, uri, 1, MAX_URI_BYTES)?;
    if split_scheme(uri).is_none() {
        return Err(format!(
            "{what} `{uri}` is not an absolute URI (`scheme:...`, the scheme a letter then \
             letters, digits, `+`, `-` or `.`)"
        ));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{what} `{uri}` contains whitespace"));
    }
    Ok(())
}

/// What resources and templates say about themselves, checked: `uri` (or
/// the template) absolute, each text within its bound.
struct About<'a> {
    uri: &'a str,
    name: &'a str,
    title: &'a Option<String>,
    description: &'a Option<String>,
    mime_type: &'a Option<String>,
    annotations: &'a Option<Annotations>,
}

impl About<'_> {
    fn check(&self, what: &str) -> Result<(), String> {
        check_uri(what, self.uri)?;
        check_text(&format!("{what}: the name"), self.name, 1, MAX_NAME_BYTES)?;
        check_optional(&format!("{what}: the title"), self.title, MAX_TITLE_BYTES)?;
        check_optional(
            &format!("{what}: the description"),
            self.description,
            MAX_DESCRIPTION_BYTES,
        )?;
        check_optional(&format!("{what}: the MIME type"), self.mime_type, 256)?;
        if let Some(a) = self.annotations {
            check_optional(&format!("{what}: lastModified"), &a.last_modified, 64)?;
            if a.audience.len() > 2 {
                return Err(format!(
                    "{what}: the audience names more than the two roles"
                ));
            }
        }
        Ok(())
    }
}

/// A plugin's fixed resource, checked and namespaced.
#[derive(Debug, Clone)]
pub struct PluginResource {
    /// The URI clients see.
    pub public_uri: String,
    /// What the plugin said (its own URI).
    pub spec: ResourceSpec,
}

impl PluginResource {
    /// Checks `spec` and serves it in `namespace`.
    pub fn new(namespace: &Namespace, spec: ResourceSpec) -> Result<Self, String> {
        let what = format!("resource `{}`", crate::text::truncate(&spec.uri, 128));
        About {
            uri: &spec.uri,
            name: &spec.name,
            title: &spec.title,
            description: &spec.description,
            mime_type: &spec.mime_type,
            annotations: &spec.annotations,
        }
        .check(&what)?;
        Ok(Self {
            public_uri: namespace.public_uri(&spec.uri),
            spec,
        })
    }
}

/// A plugin's resource template, checked, parsed and namespaced.
#[derive(Debug, Clone)]
pub struct PluginTemplate {
    /// The URI template clients see.
    pub public_template: String,
    /// What the plugin said (its own template).
    pub spec: TemplateSpec,
    template: UriTemplate,
}

impl PluginTemplate {
    /// Checks `spec` and serves it in `namespace`.
    pub fn new(namespace: &Namespace, spec: TemplateSpec) -> Result<Self, String> {
        let what = format!(
            "resource template `{}`",
            crate::text::truncate(&spec.uri_template, 128)
        );
        About {
            uri: &spec.uri_template,
            name: &spec.name,
            title: &spec.title,
            description: &spec.description,
            mime_type: &spec.mime_type,
            annotations: &spec.annotations,
        }
        .check(&what)?;
        let template =
            UriTemplate::parse(&spec.uri_template).map_err(|e| format!("{what}: {e}"))?;
        Ok(Self {
            public_template: namespace.public_uri(&spec.uri_template),
            spec,
            template,
        })
    }

    /// The variables, if the plugin's `uri` matches this template.
    pub fn matches(&self, uri: &str) -> Option<Vec<(String, String)>> {
        self.template.matches(uri)
    }

    /// The template's variable names.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.template.variables()
    }
}

/// A plugin's prompt, checked and namespaced.
#[derive(Debug, Clone)]
pub struct PluginPrompt {
    /// The name clients see.
    pub public_name: String,
    /// What the plugin said.
    pub spec: PromptSpec,
}

impl PluginPrompt {
    /// Checks `spec` and serves it in `namespace`.
    pub fn new(namespace: &Namespace, spec: PromptSpec) -> Result<Self, String> {
        super::tool::check_tool_name(&spec.name).map_err(|e| format!("prompt: {e}"))?;
        let what = format!("prompt `{}`", spec.name);
        let public_name = namespace.public_name(&spec.name);
        if public_name.len() > MAX_QUALIFIED_NAME {
            return Err(format!(
                "{what}: the qualified name `{public_name}` is longer than {MAX_QUALIFIED_NAME} \
                 characters"
            ));
        }
        check_optional(&format!("{what}: the title"), &spec.title, MAX_TITLE_BYTES)?;
        check_optional(
            &format!("{what}: the description"),
            &spec.description,
            MAX_DESCRIPTION_BYTES,
        )?;
        if spec.arguments.len() > MAX_PROMPT_ARGUMENTS {
            return Err(format!(
                "{what} takes {} arguments; at most {MAX_PROMPT_ARGUMENTS} are allowed",
                spec.arguments.len()
            ));
        }
        for (i, argument) in spec.arguments.iter().enumerate() {
            check_text(
                &format!("{what}: an argument's name"),
                &argument.name,
                1,
                MAX_NAME_BYTES,
            )?;
            if spec.arguments[..i].iter().any(|a| a.name == argument.name) {
                return Err(format!(
                    "{what}: argument `{}` is listed twice",
                    argument.name
                ));
            }
            check_optional(
                &format!("{what}: argument `{}`'s description", argument.name),
                &argument.description,
                MAX_DESCRIPTION_BYTES,
            )?;
            check_optional(
                &format!("{what}: argument `{}`'s title", argument.name),
                &argument.title,
                MAX_TITLE_BYTES,
            )?;
        }
        Ok(Self { public_name, spec })
    }
}

/// One part of a URI template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `{name}`: one or more characters up to the next `/`, `?` or `#`.
    Segment(String),
    /// `{+name}`: one or more characters, `/` included.
    Reserved(String),
}

/// An RFC 6570 level 1-2 URI template (`{var}` and `{+var}`), for matching
/// URIs against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    parts: Vec<Part>,
}

impl UriTemplate {
    /// Parses `template`. The scheme must be literal.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or("an expression `{...` is not closed")?;
                    let expression = &rest[1..end];
                    let (reserved, name) = match expression.strip_prefix('+') {
                        Some(name) => (true, name),
                        None => (false, expression),
                    };
                    let valid = !name.is_empty()
                        && name.len() <= 64
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return Err(format!(
                            "`{{{expression}}}` is not a supported expression (`{{name}}` or \
                             `{{+name}}`, the name of letters, digits and `_`)"
                        ));
                    }
                    if matches!(parts.last(), Some(Part::Segment(_) | Part::Reserved(_))) {
                        return Err("two expressions must be separated by literal text".into());
                    }
                    let name = name.to_owned();
                    parts.push(if reserved {
                        Part::Reserved(name)
                    } else {
                        Part::Segment(name)
                    });
                    rest = &rest[end + 1..];
                }
                found => {
                    let end = found.unwrap_or(rest.len());
                    if rest[..end].contains('}') {
                        return Err("a `}` without its `{`".into());
                    }
                    parts.push(Part::Literal(rest[..end].to_owned()));
                    rest = &rest[end..];
                }
            }
        }
        match parts.first() {
            Some(Part::Literal(first)) if split_scheme(first).is_some() => Ok(Self { parts }),
            _ => Err("the template must start with a literal scheme (`scheme:`)".into()),
        }
    }

    /// The variable names, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Segment(name) | Part::Reserved(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The variables' values, if `uri` matches. A URI longer than any a
    /// plugin may name matches nothing, and the search for where each
    /// expression ends gives up after [`MATCH_STEPS`] tries, so a client's
    /// URI cannot make matching slow.
    pub fn matches(&self, uri: &str) -> Option<Vec<(String, String)>> {
        if uri.len() > MAX_URI_BYTES {
            return None;
        }
        let mut values = Vec::new();
        let mut steps = MATCH_STEPS;
        match_parts(&self.parts, uri, &mut values, &mut steps).then_some(values)
    }
}

/// Most tries one match may take (each a candidate end of an expression).
const MATCH_STEPS: usize = 16 * 1024;

fn match_parts(
    parts: &[Part],
    uri: &str,
    values: &mut Vec<(String, String)>,
    steps: &mut usize,
) -> bool {
    let Some((part, rest)) = parts.split_first() else {
        return uri.is_empty();
    };
    match part {
        Part::Literal(literal) => uri
            .strip_prefix(literal.as_str())
            .is_some_and(|tail| match_parts(rest, tail, values, steps)),
        Part::Segment(name) | Part::Reserved(name) => {
            let reserved = matches!(part, Part::Reserved(_));
            let limit = if reserved {
                uri.len()
            } else {
                uri.find(['/', '?', '#']).unwrap_or(uri.len())
            };
            // Expressions are separated by literals: try each end, longest
            // first, that lets the rest match.
            for end in (1..=limit).rev().filter(|&end| uri.is_char_boundary(end)) {
                if *steps == 0 {
                    return false;
                }
                *steps -= 1;
                let mark = values.len();
                values.push((name.clone(), uri[..end].to_owned()));
                if match_parts(rest, &uri[end..], values, steps) {
                    return true;
                }
                values.truncate(mark);
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_through_the_namespace() {
        let ns = Namespace::new("budget", true);
        for uri in [
            "budget://budgets",
            "budget://budgets/{id}",
            "budget://a:b/c",
            "test://template/{id}/data",
            "urn:x:y",
        ] {
            let public = ns.public_uri(uri);
            assert!(public.starts_with("toolmesh://budget/"), "{public}");
            assert_eq!(ns.plugin_uri(&public).as_deref(), Some(uri), "{public}");
        }
        assert_eq!(
            ns.public_uri("budget://budgets"),
            "toolmesh://budget/budgets"
        );
        assert_eq!(
            ns.public_uri("test://static-text"),
            "toolmesh://budget/test://static-text"
        );
        assert_eq!(ns.plugin_uri("toolmesh://other/budget/budgets"), None);
        assert_eq!(ns.plugin_uri("toolmesh://budgetx/a/b"), None);
        assert_eq!(ns.plugin_uri("toolmesh://budget/"), None);
        let bare = Namespace::new("conformance", false);
        assert_eq!(bare.public_uri("test://static-text"), "test://static-text");
        assert_eq!(bare.public_name("p"), "p");
        assert_eq!(ns.public_name("p"), "budget__p");
    }

    #[test]
    fn templates_match_segments_and_reserved_expansions() {
        let t = UriTemplate::parse("test://template/{id}/data").unwrap();
        assert_eq!(
            t.matches("test://template/123/data"),
            Some(vec![("id".into(), "123".into())])
        );
        assert_eq!(t.matches("test://template/1/2/data"), None);
        assert_eq!(t.matches("test://template//data"), None);
        let r = UriTemplate::parse("file:///{+path}").unwrap();
        assert_eq!(
            r.matches("file:///a/b/c.txt"),
            Some(vec![("path".into(), "a/b/c.txt".into())])
        );
        assert_eq!(r.variables().collect::<Vec<_>>(), ["path"]);
        for bad in [
            "{id}://x",
            "test://{a}{b}",
            "test://{a",
            "test://a}",
            "test://{a-b}",
        ] {
            assert!(UriTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
