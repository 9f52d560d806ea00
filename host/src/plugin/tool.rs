//! A plugin's tools as the host serves them: checked names, parsed schemas and
//! compiled validators, namespaced as `<plugin>__<tool>` so that names from
//! different plugins never collide and fit MCP's `^[a-zA-Z0-9_-]{1,64}$`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::resource::Namespace;
use super::resource::{MAX_DESCRIPTION_BYTES, MAX_TITLE_BYTES};
use crate::usage::ToolUsage;
use crate::wit::{ClientFeature, ToolSpec};

/// Separates the plugin name from the tool name in a qualified tool name.
/// Plugin names cannot contain `_`, so the first `__` always splits correctly.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// Longest qualified tool name every common MCP client accepts.
pub const MAX_QUALIFIED_NAME: usize = 64;

/// Most tools one plugin may offer.
pub const MAX_TOOLS: usize = 256;

/// Largest schema (as JSON text) a tool may declare.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;

/// Most bytes of one plugin's whole tool list (names, titles, descriptions,
/// schemas): what every `tools/list` carries for it.
pub const MAX_CATALOG_BYTES: usize = 2 << 20;

/// Behaviour hints, as the plugin declared them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// Does not change its environment.
    pub read_only: bool,
    /// May destroy things.
    pub destructive: bool,
    /// Repeating a call has no further effect.
    pub idempotent: bool,
    /// Talks to the outside world.
    pub open_world: bool,
}

/// One tool, ready to serve.
pub struct Tool {
    /// `<plugin>__<tool>`: the name agents call.
    pub qualified_name: String,
    /// Whose tool it is: the plugin's name (or `mesh` for the host's mesh
    /// tools), the part of the qualified name before the separator.
    pub namespace: String,
    /// The name inside the plugin, passed to the guest.
    pub name: String,
    /// How the plugin's URIs are served (for resources its results embed).
    pub uris: Namespace,
    /// A human-readable title.
    pub title: Option<String>,
    /// What the tool does.
    pub description: String,
    /// Behaviour hints.
    pub hints: Hints,
    /// The arguments' JSON Schema.
    pub input_schema: Arc<Map<String, Value>>,
    /// The structured result's JSON Schema, if any.
    pub output_schema: Option<Arc<Map<String, Value>>>,
    /// The resource type a permission grant must be for, if calling it
    /// needs one.
    pub requires: Option<String>,
    /// Client features every call needs (refused up front without them).
    pub needs: Vec<ClientFeature>,
    /// Aggregates of its calls.
    pub usage: Arc<ToolUsage>,
    input_validator: jsonschema::Validator,
    output_validator: Option<jsonschema::Validator>,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("qualified_name", &self.qualified_name)
            .finish_non_exhaustive()
    }
}

impl Tool {
    /// Checks a spec from plugin (or host namespace) `plugin` and compiles
    /// its schemas.
    pub fn from_spec(plugin: &str, spec: ToolSpec) -> Result<Self, String> {
        Self::from_spec_named(plugin, spec, true)
    }

    /// As [`Tool::from_spec`]; with `prefixed` false, agents see the tool
    /// by its bare name.
    pub fn from_spec_named(plugin: &str, spec: ToolSpec, prefixed: bool) -> Result<Self, String> {
        check_tool_name(&spec.name)?;
        let qualified_name = if prefixed {
            format!("{plugin}{NAMESPACE_SEPARATOR}{}", spec.name)
        } else {
            spec.name.clone()
        };
        if qualified_name.len() > MAX_QUALIFIED_NAME {
            return Err(format!(
                "tool `{}`: the qualified name `{qualified_name}` is longer than \
                 {MAX_QUALIFIED_NAME} characters; shorten the plugin or tool name",
                spec.name
            ));
        }
        let context = |what: &str| format!("tool `{}`: {what}", spec.name);
        if spec
            .title
            .as_ref()
            .is_some_and(|t| t.len() > MAX_TITLE_BYTES)
        {
            return Err(context(&format!(
                "the title is over {MAX_TITLE_BYTES} bytes"
            )));
        }
        if spec.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(context(&format!(
                "the description is {} bytes, over the {MAX_DESCRIPTION_BYTES}-byte limit",
                spec.description.len()
            )));
        }
        let (input_schema, input_validator) = compile_schema(&spec.input_schema)
            .map_err(|e| context(&format!("input schema {e}")))?;
        let output = spec
            .output_schema
            .as_deref()
            .map(compile_schema)
            .transpose()
            .map_err(|e| context(&format!("output schema {e}")))?;
        let (output_schema, output_validator) = match output {
            Some((schema, validator)) => (Some(schema), Some(validator)),
            None => (None, None),
        };
        Ok(Self {
            qualified_name,
            namespace: plugin.to_owned(),
            uris: Namespace::new(plugin, prefixed),
            name: spec.name,
            title: spec.title,
            description: spec.description,
            hints: Hints {
                read_only: spec.hints.read_only,
                destructive: spec.hints.destructive,
                idempotent: spec.hints.idempotent,
                open_world: spec.hints.open_world,
            },
            input_schema,
            output_schema,
            requires: None,
            needs: spec.needs,
            usage: Arc::default(),
            input_validator,
            output_validator,
        })
    }

    /// Checks arguments against the input schema. The error lists up to five
    /// problems, each with where in the arguments it is.
    pub fn validate_arguments(&self, arguments: &Value) -> Result<(), String> {
        validate(&self.input_validator, arguments)
    }

    /// Checks a structured result against the output schema. A tool with no
    /// output schema accepts anything.
    pub fn validate_output(&self, output: &Value) -> Result<(), String> {
        match &self.output_validator {
            Some(validator) => validate(validator, output),
            None => Ok(()),
        }
    }
}

fn validate(validator: &jsonschema::Validator, value: &Value) -> Result<(), String> {
    if validator.is_valid(value) {
        return Ok(());
    }
    const SHOWN: usize = 5;
    let mut problems: Vec<String> = Vec::new();
    let mut total = 0;
    for error in validator.iter_errors(value) {
        total += 1;
        if problems.len() < SHOWN {
            let path = error.instance_path().to_string();
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            problems.push(format!("at `{path}`: {error}"));
        }
    }
    if total > SHOWN {
        problems.push(format!("and {} more", total - SHOWN));
    }
    Err(problems.join("; "))
}

pub(super) fn check_tool_name(name: &str) -> Result<(), String> {
    check_simple_name("tool", name)
}

/// Checks a name that ends up in tool names or URIs: 1 to 64 characters of
/// a-z, A-Z, 0-9, `_` and `-` (what every common MCP client accepts).
pub(crate) fn check_simple_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_QUALIFIED_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name `{}` must be 1 to {MAX_QUALIFIED_NAME} characters of a-z, A-Z, 0-9, `_` and `-`",
            name.escape_debug()
        ))
    }
}

/// Parses a schema, checks it describes an object (MCP requires it for both
/// arguments and structured results), and compiles it.
/// Largest compiled regex of a schema's patterns, and its lazy DFA cache.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// A validator for a schema from outside the host (a plugin's, or one it
/// hands to a client): every `pattern` and `patternProperties` regex runs on
/// the `regex` crate's engine, which matches in time linear in the input
/// and has no backreferences or lookaround, so a pattern built to backtrack
/// (`^(a|a)*\1b$`) is refused here rather than stalling validation later;
/// compiled regexes are bounded in size. `Err` says why the schema is
/// refused.
pub fn validator_for(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_pattern_options(
            jsonschema::PatternOptions::regex()
                .size_limit(MAX_REGEX_BYTES)
                .dfa_size_limit(MAX_REGEX_BYTES),
        )
        .build(schema)
        .map_err(|e| {
            let e = e.to_string();
            let hint = if e.contains("regex") || e.contains("pattern") {
                " (patterns must be regexes that run in linear time: no backreferences or \
                 lookaround)"
            } else {
                ""
            };
            format!("is not a valid JSON Schema: {e}{hint}")
        })
}

fn compile_schema(text: &str) -> Result<(Arc<Map<String, Value>>, jsonschema::Validator), String> {
    if text.len() > MAX_SCHEMA_BYTES {
        return Err(format!(
            "is {} bytes, over the {MAX_SCHEMA_BYTES}-byte limit",
            text.len()
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
    let Value::Object(map) = &value else {
        return Err("is not a JSON object".into());
    };
    if map.get("type") != Some(&Value::String("object".into())) {
        return Err("must have `\"type\": \"object\"`".into());
    }
    let validator = validator_for(&value)?;
    let Value::Object(map) = value else {
        unreachable!("checked above")
    };
    Ok((Arc::new(map), validator))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::ToolHints;

    fn spec(name: &str, input: &str, output: Option<&str>) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            title: None,
            description: "d".into(),
            input_schema: input.into(),
            output_schema: output.map(Into::into),
            hints: ToolHints {
                read_only: true,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
            needs: Vec::new(),
        }
    }

    const ADD: &str = r#"{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}"#;

    #[test]
    fn qualifies_and_validates() {
        let tool = Tool::from_spec("hello", spec("add", ADD, Some(ADD))).unwrap();
        assert_eq!(tool.qualified_name, "hello__add");
        assert!(
            tool.validate_arguments(&serde_json::json!({"a": 1, "b": 2}))
                .is_ok()
        );
        let err = tool
            .validate_arguments(&serde_json::json!({"a": "x"}))
            .unwrap_err();
        assert!(err.contains("at `/a`"), "{err}");
        assert!(err.contains("\"b\" is a required property"), "{err}");
        assert!(tool.validate_output(&serde_json::json!({"a": 1})).is_err());
    }

    #[test]
    fn refuses_bad_specs() {
        let cases = [
            (spec("add tool", ADD, None), "tool name `add tool`"),
            (spec(&"x".repeat(60), ADD, None), "longer than 64"),
            (spec("add", "[1]", None), "is not a JSON object"),
            (spec("add", "{", None), "is not JSON"),
            (
                spec("add", r#"{"type":"string"}"#, None),
                "\"type\": \"object\"",
            ),
            (
                spec("add", r#"{"type":"object","minProperties":"x"}"#, None),
                "not a valid JSON Schema",
            ),
            (spec("add", ADD, Some("{}")), "output schema must have"),
        ];
        for (spec, expected) in cases {
            let err = Tool::from_spec("hello", spec).unwrap_err();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn patterns_run_in_linear_time_and_backtracking_ones_are_refused() {
        let backtracking =
            r#"{"type":"object","properties":{"s":{"type":"string","pattern":"^(a|a)*\\1b$"}}}"#;
        let refused = Tool::from_spec("p", spec("t", backtracking, None)).unwrap_err();
        assert!(refused.contains("linear time"), "{refused}");
        // A pattern that backtracks exponentially under a backtracking
        // engine runs at once here.
        let tool = Tool::from_spec(
            "p",
            spec(
                "t",
                r#"{"type":"object","properties":{"s":{"type":"string","pattern":"^(a|aa)*$"}}}"#,
                None,
            ),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let long = format!("{}b", "a".repeat(100_000));
        assert!(
            tool.validate_arguments(&serde_json::json!({"s": long}))
                .is_err()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn titles_and_descriptions_are_bounded() {
        let mut long = spec("t", r#"{"type":"object"}"#, None);
        long.description = "d".repeat(MAX_DESCRIPTION_BYTES + 1);
        assert!(
            Tool::from_spec("p", long)
                .unwrap_err()
                .contains("description")
        );
        let mut titled = spec("t", r#"{"type":"object"}"#, None);
        titled.title = Some("t".repeat(MAX_TITLE_BYTES + 1));
        assert!(Tool::from_spec("p", titled).unwrap_err().contains("title"));
    }
}
