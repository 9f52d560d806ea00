//! The plugins built into the host binary by `build.rs`: each is a manifest
//! (with its hash) and a component, loaded through the same verifying loader
//! as a plugin directory.

/// A plugin embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct BundledPlugin {
    /// `plugin.toml`, with the hash filled in at build time.
    pub manifest: &'static str,
    /// The component's bytes.
    pub component: &'static [u8],
}

/// Every bundled plugin.
pub static BUNDLED: &[BundledPlugin] = include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

#[doc(hidden)]
/// A directory holding each bundled plugin as `<name>/{plugin.toml, <name>.wasm}`,
/// as staged by the build (for tests and benchmarks of this crate).
pub const BUNDLED_DIR: &str = env!("TOOLMESH_BUNDLED_DIR");
