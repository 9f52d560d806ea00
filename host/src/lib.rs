//! # toolmesh
//!
//! A host that loads MCP tools as sandboxed WebAssembly components (defined
//! by the WIT package in `wit/`) and serves them to agents over MCP.
//!
//! The data flow is one way: a request enters [`mcp`], the [`plugin`]
//! registry resolves the tool to a loaded plugin, the [`runtime`] runs the
//! call in a fresh store, and the result flows back.
//!
//! - [`config`] reads `toolmesh.toml`.
//! - [`capability`] holds what a plugin may be granted: kv, blobs, progress,
//!   files and environment, and how a grant is decided.
//! - [`level`] defines security levels and their per-call quotas.
//! - [`runtime`] holds the engine, linker, compile cache, one store per call.
//! - [`plugin`] holds manifests, loading, the registry, bundled plugins, install.
//! - [`mcp`] holds the tool-call semantics and the rmcp server.
//! - [`p2p`] links hosts into a mesh that shares plugins and weights.
//! - [`stats`] keeps a running host's usage in its data directory.
//! - [`usage`] records what each call consumed and aggregates it.
//! - [`host`] wires it all together from a configuration.

pub mod capability;
pub mod config;
pub mod content_hash;
pub mod fs;
pub mod host;
pub mod level;
pub mod mcp;
pub mod p2p;
pub mod plugin;
pub mod runtime;
pub mod stats;
pub mod usage;
