//! # toolmesh
//!
//! A host that loads MCP tools as sandboxed WebAssembly components (defined
//! by the WIT package in `wit/`) and serves them to agents over MCP.
//!
//! The data flow is one way: a request enters a transport ([`mcp`] on stdio
//! or, behind the [`http`] edge, over Streamable HTTP; the [`control`]
//! socket), which fixes the caller's [`identity`] and hands it to the
//! [`service`]; the service
//! resolves the tool to a provider (the [`plugin`] registry, the mesh),
//! validates, gates, runs it (plugin tools in the [`runtime`], a fresh store
//! per call) and records its usage; the result flows back.
//!
//! Layers, lower never importing higher:
//!
//! - [`wit`]: the `bindgen!` output (a leaf);
//! - [`capability`]: what a plugin may be granted, one file each, one table;
//!   with [`level`], the security levels (quotas, and which capabilities
//!   each may grant), one layer: the two name each other's types;
//! - [`runtime`]: the engine, the linker, the compile cache, calls;
//! - [`plugin`]: manifests, trust, access, the loader, the registry, install;
//! - [`p2p`]: the mesh that shares plugins and weights between hosts;
//! - [`ops`]: what the operator steers and watches (lifecycle states,
//!   breakers, events, the live call feed, alerts; the plugin control and
//!   the directory watch);
//! - [`service`]: the tool service, its gate and its providers;
//! - [`monitor`]: metrics, usage history and alert rules, read from the
//!   service and operations;
//! - [`mcp`], [`http`], [`control`]: transports ([`http`] authenticates,
//!   limits and audits at the edge, then serves [`mcp`]'s handler and the
//!   operator's [`dashboard`]);
//! - [`app`]: the host stack from a configuration, `serve` and `call`.
//!
//! Beside them: [`config`] reads `toolmesh.toml` (the edge: it names every
//! layer's settings, and only [`app`] reads it whole); [`usage`] and
//! [`stats`] keep what calls consumed; [`audit`] keeps what HTTP clients
//! asked; [`identity`] (a leaf) says who is calling; [`content_hash`],
//! [`fs`] and [`text`] are small shared helpers.

pub mod app;
pub mod audit;
pub mod capability;
pub mod config;
pub mod content_hash;
pub mod control;
pub mod dashboard;
pub mod fs;
pub mod http;
pub mod identity;
pub mod level;
pub mod mcp;
pub mod monitor;
pub mod ops;
pub mod p2p;
pub mod plugin;
pub mod runtime;
pub mod service;
pub mod stats;
pub mod text;
pub mod usage;
pub mod wit;
