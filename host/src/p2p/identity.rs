//! Keys: the host's persistent ed25519 identity (its libp2p peer id, and the
//! key `toolmesh plugin sign` uses by default), and publisher keys.
//!
//! A key file holds the 32-byte ed25519 secret as 64 hex digits and a
//! newline, readable by its owner only. It is created on first use and
//! never rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use libp2p::identity::{Keypair, ed25519};

/// The host key's file name inside the data directory's `p2p/` folder.
pub const HOST_KEY_FILE: &str = "host.key";

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a key.
    #[error("key file {0} does not hold an ed25519 secret key (64 hex digits)")]
    Malformed(PathBuf),
}

/// Reads the ed25519 key in `path`.
pub fn load(path: &Path) -> Result<ed25519::Keypair, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).ok_or_else(|| KeyError::Malformed(path.to_owned()))
}

/// The key a key file's text holds, if it holds one.
pub fn parse(text: &str) -> Option<ed25519::Keypair> {
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).ok()?;
    let secret = ed25519::SecretKey::try_from_bytes(secret).ok()?;
    Some(ed25519::Keypair::from(secret))
}

/// Creates a new key in `path`, which must not exist.
pub fn create(path: &Path) -> Result<ed25519::Keypair, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let keypair = ed25519::Keypair::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    writeln!(file, "{}", hex::encode(keypair.secret().as_ref()))
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    Ok(keypair)
}

/// The key in `path`, created there if there is none.
pub fn load_or_create(path: &Path) -> Result<ed25519::Keypair, KeyError> {
    match create(path) {
        Ok(keypair) => {
            tracing::info!(path = %path.display(), "created a new host key");
            Ok(keypair)
        }
        Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
            load(path)
        }
        Err(e) => Err(e),
    }
}

/// The libp2p identity of `keypair`.
pub fn libp2p_keypair(keypair: &ed25519::Keypair) -> Keypair {
    Keypair::from(keypair.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_and_then_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p2p").join(HOST_KEY_FILE);
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.public(), again.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(load(&path), Err(KeyError::Malformed(_))));
    }
}
