//! Tell clients that something this plugin serves changed: one of its
//! resources (subscribed clients get `notifications/resources/updated` and
//! read it again), or its lists of tools, resources and prompts. Cheap: the
//! host coalesces repeats, so call it on every change.
//!
//! ```no_run
//! toolmesh_sdk::notify::resource_updated("budget://alerts");
//! ```

/// Resource `uri` (as this plugin names it) changed. Outside a WebAssembly
/// host this does nothing.
pub fn resource_updated(uri: &str) {
    #[cfg(target_family = "wasm")]
    crate::bindings::toolmesh::plugin::notify::resource_updated(uri);
    #[cfg(not(target_family = "wasm"))]
    let _ = uri;
}

/// This plugin's tools, resources or prompts changed: once the call ends,
/// the host lists them again and tells clients. Outside a WebAssembly host
/// this does nothing.
pub fn list_changed() {
    #[cfg(target_family = "wasm")]
    crate::bindings::toolmesh::plugin::notify::list_changed();
}
