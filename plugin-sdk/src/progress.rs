//! The `progress` capability: tell the agent how far a long call has got.
//! Ask for it in `plugin.toml` (`capabilities = ["progress"]`). Reports reach
//! the agent as MCP progress notifications when it asked for them; otherwise
//! they cost almost nothing and go nowhere. They never block the call.
//!
//! ```no_run
//! use toolmesh_sdk::progress;
//!
//! for epoch in 1..=100u32 {
//!     // ... train one epoch ...
//!     if epoch % 10 == 0 {
//!         progress::report(f64::from(epoch), Some(100.0), Some(&format!("epoch {epoch}")));
//!     }
//! }
//! ```

/// Reports that `done` units of work out of `total` (if known) are finished.
/// `done` should increase from one report to the next.
///
/// Outside a WebAssembly host (in a native unit test, say) this does nothing.
pub fn report(done: f64, total: Option<f64>, message: Option<&str>) {
    #[cfg(target_family = "wasm")]
    crate::bindings::toolmesh::plugin::progress::report(done, total, message);
    #[cfg(not(target_family = "wasm"))]
    let _ = (done, total, message);
}
