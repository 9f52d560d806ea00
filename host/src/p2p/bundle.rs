//! A plugin as one blob, the way it travels between peers: its manifest text,
//! its signature file (if signed) and its component.
//!
//! ```text
//! "TMPLUG1\n" | header length u32 LE | header JSON | component bytes
//! ```
//!
//! The header is `{"manifest": "...", "signature": "..." | null,
//! "component_bytes": n}`. Decoding checks the shape only; whether the
//! plugin may be installed is for the loader and the trust policy to say.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fs::Confined;
use crate::plugin::files::PluginFiles;
use crate::plugin::manifest::{MANIFEST_FILE, Manifest};
use crate::plugin::trust::{PROVENANCE_FILE, Provenance, SIGNATURE_FILE};

const MAGIC: &[u8; 8] = b"TMPLUG1\n";
const MAX_HEADER_BYTES: usize = 1 << 20;

/// A plugin's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// `plugin.toml`, byte for byte (the signature covers these bytes).
    pub manifest_text: String,
    /// `plugin.sig`, if the plugin is signed.
    pub signature_text: Option<String>,
    /// The component.
    pub component: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    manifest: String,
    signature: Option<String>,
    component_bytes: u64,
}

/// Why a bundle is not usable.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bytes are not a bundle.
    #[error("not a plugin bundle: {0}")]
    Format(String),
    /// The plugin directory's files cannot be read.
    #[error(transparent)]
    Plugin(crate::plugin::LoadError),
    /// Writing its files failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> BundleError {
    move |source| BundleError::Io { what, source }
}

impl Bundle {
    /// The bundle of the plugin in directory `dir`.
    pub fn read_dir(dir: &Path) -> Result<Self, BundleError> {
        let files = PluginFiles::open(dir).map_err(BundleError::Plugin)?;
        let manifest_text = files.manifest_text().map_err(BundleError::Plugin)?;
        let manifest = Manifest::parse(&manifest_text).map_err(BundleError::Format)?;
        let signature_text = files
            .optional_text(SIGNATURE_FILE)
            .map_err(BundleError::Plugin)?;
        let component = files
            .read(&manifest.component)
            .map_err(BundleError::Plugin)?;
        Ok(Self {
            manifest_text,
            signature_text,
            component,
        })
    }

    /// Whether `head` (a blob's first bytes) starts a bundle.
    pub fn is_bundle(head: &[u8]) -> bool {
        head.starts_with(MAGIC)
    }

    /// The bundle's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&Header {
            manifest: self.manifest_text.clone(),
            signature: self.signature_text.clone(),
            component_bytes: self.component.len() as u64,
        })
        .unwrap_or_default();
        let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + header.len() + self.component.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&self.component);
        bytes
    }

    /// Reads a bundle's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, BundleError> {
        let bad = |why: &str| BundleError::Format(why.to_owned());
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| bad("wrong magic"))?;
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("truncated header length"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > MAX_HEADER_BYTES || len > rest.len() {
            return Err(bad("header length out of range"));
        }
        let (header, component) = rest.split_at(len);
        let header: Header = serde_json::from_slice(header)
            .map_err(|e| BundleError::Format(format!("bad header: {e}")))?;
        if header.component_bytes != component.len() as u64 {
            return Err(bad("the component is not the length the header says"));
        }
        Ok(Self {
            manifest_text: header.manifest,
            signature_text: header.signature,
            component: component.to_vec(),
        })
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> Result<Manifest, BundleError> {
        Manifest::parse(&self.manifest_text).map_err(BundleError::Format)
    }

    /// Writes the plugin's files into `dir` (which exists and is empty),
    /// with `provenance` saying where it came from.
    pub fn write_dir(&self, dir: &Confined, provenance: &Provenance) -> Result<(), BundleError> {
        let manifest = self.manifest()?;
        let write = |name: &str, bytes: &[u8]| {
            dir.write_atomically(Path::new(name), bytes)
                .map_err(io(format!(
                    "cannot write {}",
                    dir.display(Path::new(name)).display()
                )))
        };
        write(MANIFEST_FILE, self.manifest_text.as_bytes())?;
        // The manifest parser allows only a plain file name here.
        write(&manifest.component, &self.component)?;
        if let Some(signature) = &self.signature_text {
            write(SIGNATURE_FILE, signature.as_bytes())?;
        }
        let provenance = toml::to_string(provenance)
            .map_err(|e| BundleError::Format(format!("cannot encode provenance: {e}")))?;
        write(PROVENANCE_FILE, provenance.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Bundle {
        Bundle {
            manifest_text: "name = \"x\"\n".into(),
            signature_text: Some("publisher = \"k\"\n".into()),
            component: vec![0, 97, 115, 109, 1, 2, 3],
        }
    }

    #[test]
    fn bundles_round_trip_and_damage_is_refused() {
        let b = bundle();
        let bytes = b.encode();
        assert_eq!(Bundle::decode(&bytes).unwrap(), b);
        assert!(
            Bundle::decode(&bytes[..bytes.len() - 1]).is_err(),
            "short component"
        );
        assert!(Bundle::decode(&bytes[..10]).is_err(), "short header");
        let mut wrong_magic = bytes.clone();
        wrong_magic[0] = b'X';
        assert!(Bundle::decode(&wrong_magic).is_err());
        let mut huge_header = bytes.clone();
        huge_header[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Bundle::decode(&huge_header).is_err());
        assert!(Bundle::decode(b"").is_err());
    }
}
