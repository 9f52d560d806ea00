//! Keys: the host's persistent ed25519 identity (its libp2p peer id, and the
//! key `toolmesh plugin sign` uses by default), and publisher keys.
//!
//! A key file holds the 32-byte ed25519 secret as 64 hex digits and a
//! newline, readable by its owner only. It is created on first use and
//! never rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use libp2p::identity::{Keypair, ed25519};

use crate::fs::Confined;

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

/// The host key, kept in the mesh's state directory `p2p_dir`
/// (`<data>/p2p`, opened through the data directory) and created there on
/// first use.
pub fn host_key(p2p_dir: &Path) -> anyhow::Result<ed25519::Keypair> {
    let dir = open_state_dir(p2p_dir)?;
    Ok(load_or_create_in(&dir, HOST_KEY_FILE)?)
}

/// The mesh's state directory `p2p_dir`, opened through its parent (the
/// data directory): a `p2p` planted there as a link out is refused.
pub fn open_state_dir(p2p_dir: &Path) -> anyhow::Result<Confined> {
    Confined::open_through_parent(p2p_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the mesh's state directory {}: {}",
            p2p_dir.display(),
            crate::plugin::files::escape_explained(e)
        )
    })
}

/// The key in file `name` of the confined directory `dir` (the mesh's
/// state directory), created there if there is none. A `name` planted as
/// a symlink out of `dir` is refused, not followed.
pub fn load_or_create_in(dir: &Confined, name: &str) -> Result<ed25519::Keypair, KeyError> {
    let rel = Path::new(name);
    let io = |source| KeyError::Io {
        path: dir.display(rel),
        source,
    };
    let keypair = ed25519::Keypair::generate();
    let text = format!("{}\n", hex::encode(keypair.secret().as_ref()));
    match dir.create_new(rel, text.as_bytes(), 0o600) {
        Ok(()) => {
            tracing::info!(path = %dir.display(rel).display(), "created a new host key");
            Ok(keypair)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = dir.read(rel).map_err(io)?;
            std::str::from_utf8(&bytes)
                .ok()
                .and_then(parse)
                .ok_or_else(|| KeyError::Malformed(dir.display(rel)))
        }
        Err(e) => Err(io(crate::plugin::files::escape_explained(e))),
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
        let first = host_key(&dir.path().join("p2p")).unwrap();
        let again = host_key(&dir.path().join("p2p")).unwrap();
        assert_eq!(first.public(), again.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(load(&path), Err(KeyError::Malformed(_))));
        assert!(host_key(&dir.path().join("p2p")).is_err());
    }

    #[test]
    fn a_state_dir_planted_as_a_link_out_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), data.path().join("p2p")).unwrap();
        let refused = host_key(&data.path().join("p2p")).unwrap_err().to_string();
        assert!(refused.contains("not followed"), "{refused}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // A key file planted as a link out of the state directory, likewise.
        std::fs::remove_file(data.path().join("p2p")).unwrap();
        std::fs::create_dir(data.path().join("p2p")).unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, "not yours").unwrap();
        std::os::unix::fs::symlink(&secret, data.path().join("p2p").join(HOST_KEY_FILE)).unwrap();
        let refused = host_key(&data.path().join("p2p")).unwrap_err().to_string();
        assert!(refused.contains(HOST_KEY_FILE), "{refused}");
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "not yours");
    }
}
