//! Plugins: manifests, signatures and trust, loading and verification, the registry of loaded
//! plugins, the bundled set, and installing into the plugin directory.

pub mod bundled;
pub mod install;
pub mod loader;
pub mod manifest;
pub mod registry;
pub mod tool;
pub mod trust;

pub use loader::{LoadError, LoadedPlugin, Source};
pub use registry::{LoadFailure, PluginSet, Registry, Snapshot, load_all};
