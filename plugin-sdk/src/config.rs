//! The operator's configuration for this plugin: the `[plugins.<name>.config]`
//! table of the host's `toolmesh.toml`, decoded into your type. Always
//! available (no capability needed); a plugin without configuration gets an
//! empty object, so give your type defaults.
//!
//! ```no_run
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, Default)]
//! #[serde(default)]
//! struct Settings {
//!     ttl_seconds: u64,
//! }
//!
//! let settings: Settings = toolmesh_sdk::config::get()?;
//! # Ok::<(), toolmesh_sdk::ToolError>(())
//! ```
//!
//! Outside a WebAssembly host (in a native unit test), the configuration is
//! what [`set_for_tests`] last set on this thread, or `{}`.

use serde::de::DeserializeOwned;

use crate::ToolError;

/// The configuration as JSON text.
pub fn json() -> String {
    #[cfg(target_family = "wasm")]
    {
        crate::bindings::toolmesh::plugin::config::get()
    }
    #[cfg(not(target_family = "wasm"))]
    {
        native::CONFIG.with(|c| c.borrow().clone())
    }
}

/// The configuration decoded into `T`. A configuration that does not match
/// `T` is the operator's mistake: the error says what is wrong.
pub fn get<T: DeserializeOwned>() -> Result<T, ToolError> {
    serde_json::from_str(&json())
        .map_err(|e| ToolError::failed(format!("the plugin's configuration is invalid: {e}")))
}

/// Sets the configuration native code sees on this thread (for unit tests).
#[cfg(not(target_family = "wasm"))]
pub fn set_for_tests(json: &str) {
    native::CONFIG.with(|c| *c.borrow_mut() = json.to_owned());
}

#[cfg(not(target_family = "wasm"))]
mod native {
    use std::cell::RefCell;

    thread_local! {
        pub static CONFIG: RefCell<String> = RefCell::new("{}".to_owned());
    }
}
