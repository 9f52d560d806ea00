//! Plugins: manifests, signatures and trust, what a plugin may access, the
//! loader, the registry of loaded plugins, their tools, resources and
//! prompts, the bundled set, and installing into the plugin directory.

pub mod access;
pub mod bundled;
pub mod files;
pub mod install;
pub mod load_phase;
pub mod loader;
pub mod manifest;
pub mod registry;
pub mod resource;
pub mod tool;
pub mod trust;

pub use loader::{LoadError, LoadedPlugin, Loader, PluginSet, Source};
pub use registry::{LoadFailure, Registry, Snapshot};
