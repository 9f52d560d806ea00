//! The files of one plugin directory (manifest, component, signature,
//! provenance), read through a `cap-std` handle on that directory: a file
//! planted there as a symlink out of it is refused, not followed, so a
//! plugin directory cannot make the host read (or hash, or serve, or pass
//! to a peer) a file from elsewhere. The component's name in the manifest
//! is a plain file name already (the manifest parser checks it).

use std::path::{Path, PathBuf};

use super::loader::LoadError;
use super::manifest::MANIFEST_FILE;
use crate::fs::Confined;

/// One plugin directory, opened.
pub struct PluginFiles {
    dir: Confined,
}

impl PluginFiles {
    /// Opens plugin directory `dir` (it must exist).
    pub fn open(dir: &Path) -> Result<Self, LoadError> {
        let dir = Confined::open_existing(dir).map_err(|source| LoadError::Read {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Self { dir })
    }

    /// The directory's handle.
    pub fn confined(&self) -> &Confined {
        &self.dir
    }

    /// Where file `name` is, for messages.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.display(Path::new(name))
    }

    /// File `name`'s bytes.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, LoadError> {
        self.dir
            .read(Path::new(name))
            .map_err(|source| self.error(name, source))
    }

    /// File `name`'s text.
    pub fn read_text(&self, name: &str) -> Result<String, LoadError> {
        let bytes = self.read(name)?;
        self.text(name, bytes)
    }

    /// File `name`'s text, `None` if there is no such file (a link planted
    /// out of the directory is an error, not an absence).
    pub fn optional_text(&self, name: &str) -> Result<Option<String>, LoadError> {
        match self.dir.read(Path::new(name)) {
            Ok(bytes) => self.text(name, bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.error(name, source)),
        }
    }

    fn text(&self, name: &str, bytes: Vec<u8>) -> Result<String, LoadError> {
        String::from_utf8(bytes).map_err(|e| {
            let invalid = std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error());
            self.error(name, invalid)
        })
    }

    /// The manifest's text.
    pub fn manifest_text(&self) -> Result<String, LoadError> {
        self.read_text(MANIFEST_FILE)
    }

    fn error(&self, name: &str, source: std::io::Error) -> LoadError {
        LoadError::Read {
            path: self.path(name),
            source: escape_explained(source),
        }
    }
}

/// `source`, with the reason spelled out when it is cap-std's refusal of a
/// path that leads out of its directory.
pub fn escape_explained(source: std::io::Error) -> std::io::Error {
    if source.kind() == std::io::ErrorKind::PermissionDenied
        && source.to_string().contains("outside")
    {
        return std::io::Error::new(
            source.kind(),
            format!("{source} (a symlink out of the directory is not followed)"),
        );
    }
    source
}
