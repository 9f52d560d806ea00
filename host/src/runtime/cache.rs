//! Compiled components on disk, keyed by the component's content hash and the
//! engine's compatibility hash, so a restart loads native code instead of
//! compiling again.
//!
//! Trust: a cached file is native code that the host maps and runs. The cache
//! lives in the operator's data directory; anyone who can write there can
//! already replace the host. A file that does not load (other engine, truncated
//! write) is recompiled and replaced.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::content_hash::ContentHash;

/// A directory of compiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

/// Where a component came from: compiled now or loaded from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled from wasm.
    Compiled,
    /// Loaded from the on-disk cache.
    Cached,
}

impl CompileCache {
    /// A cache in `dir` for `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
        }
    }

    fn path_for(&self, hash: &ContentHash) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hash.to_hex(), self.engine_key))
    }

    /// The component for `wasm` (whose hash is `hash`): from the cache when
    /// it holds a loadable copy, else compiled and stored.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        hash: &ContentHash,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, Origin)> {
        let path = self.path_for(hash);
        if path.exists() {
            // SAFETY: the file was written by `store` below from
            // `Component::serialize` for this engine configuration (the name
            // carries the engine's compatibility hash), in a directory only
            // the operator controls; wasmtime still checks the header and
            // refuses files from another engine or version.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, Origin::Cached)),
                Err(e) => {
                    tracing::debug!(path = %path.display(), "cached component unusable, recompiling: {e:#}");
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), "cannot cache the compiled component: {e:#}");
        }
        Ok((component, Origin::Compiled))
    }

    /// Writes atomically: to a temporary file in the same directory, then a
    /// rename, so a reader never sees half a file.
    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let bytes = component.serialize()?;
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(&bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path)?;
        Ok(())
    }
}
