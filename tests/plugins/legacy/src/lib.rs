//! A plugin built against `toolmesh:plugin@0.1.0` (the copy of the old WIT
//! in `wit/compat/0.1.0/`), with wit-bindgen directly and no SDK: what a
//! plugin built before 0.2 looks like. It must keep loading and working:
//! `count` uses the 0.1 `kv` and `log` imports, `media` returns 0.1 content
//! blocks.

#![allow(missing_docs)]

#[cfg(target_family = "wasm")]
mod component {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../../wit/compat/0.1.0/plugin.wit",
    });

    use exports::toolmesh::plugin::tools::Guest;
    use toolmesh::plugin::types::{
        CallContext, ContentBlock, Media, ToolError, ToolHints, ToolOutput, ToolSpec,
    };
    use toolmesh::plugin::{kv, log};

    struct Legacy;

    fn spec(name: &str, description: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            title: None,
            description: description.into(),
            input_schema: r#"{"type":"object"}"#.into(),
            output_schema: None,
            hints: ToolHints {
                read_only: false,
                destructive: false,
                idempotent: false,
                open_world: false,
            },
        }
    }

    impl Guest for Legacy {
        fn list_tools() -> Vec<ToolSpec> {
            vec![
                spec("count", "Counts calls in kv and logs the count."),
                spec("media", "Returns text, an image and an audio clip."),
            ]
        }

        fn call(
            _ctx: CallContext,
            name: String,
            _arguments: String,
        ) -> Result<ToolOutput, ToolError> {
            match name.as_str() {
                "count" => {
                    let failed = |e: kv::KvError| ToolError::Failed(format!("{e:?}"));
                    let old = kv::get("count").map_err(failed)?;
                    let n = old
                        .as_deref()
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|s| s.parse::<u64>().ok())
                        .unwrap_or(0)
                        + 1;
                    kv::set("count", n.to_string().as_bytes()).map_err(failed)?;
                    log::log(log::Level::Info, &format!("count is {n}"));
                    Ok(ToolOutput {
                        content: vec![ContentBlock::Text(format!("count {n}"))],
                        structured: None,
                    })
                }
                "media" => Ok(ToolOutput {
                    content: vec![
                        ContentBlock::Text("legacy media".into()),
                        ContentBlock::Image(Media {
                            data: vec![1, 2, 3],
                            mime_type: "image/png".into(),
                        }),
                        ContentBlock::Audio(Media {
                            data: vec![4, 5],
                            mime_type: "audio/wav".into(),
                        }),
                    ],
                    structured: None,
                }),
                other => Err(ToolError::InvalidArguments(format!("no tool `{other}`"))),
            }
        }
    }

    export!(Legacy);
}
