//! The host's own file handling, confined: a [`Confined`] directory is a
//! `cap-std` handle on a root (the data directory, the blob store, the
//! plugin directory), and every path given to it is resolved beneath that
//! root, never above it. `..` cannot climb out, an absolute path is
//! refused, and a symlink planted inside that points outside is not
//! followed (symlinks that stay inside are). So no name from a manifest, a
//! peer or a client, and no link put in the data directory, can make the
//! host read or write elsewhere.
//!
//! Writes that replace a file go through a synced temporary file renamed
//! over it, so a reader (or a restart after a crash) sees the old file or
//! the new one, never half of it.

use std::io::Write;
use std::path::{Path, PathBuf};

use cap_std::fs::{Dir, OpenOptions};

/// A directory the host confines its file operations to.
#[derive(Debug)]
pub struct Confined {
    root: Dir,
    path: PathBuf,
}

impl Confined {
    /// Opens `path` (created if missing) as a confinement root. The root
    /// itself is the operator's choice and may be anywhere.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(path)?;
        let root = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Self {
            root,
            path: path.to_owned(),
        })
    }

    /// Opens the existing directory `path` as a confinement root (a plugin
    /// directory: nothing is created).
    pub fn open_existing(path: &Path) -> std::io::Result<Self> {
        let root = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(Self {
            root,
            path: path.to_owned(),
        })
    }

    /// Directory `path` (created if missing), opened through its parent
    /// (also created): a last component planted as a symlink out of the
    /// parent is refused (the mesh's `<data>/p2p`).
    pub fn open_through_parent(path: &Path) -> std::io::Result<Self> {
        let parent = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().ok_or_else(|| {
            std::io::Error::other(format!("{} names no directory", path.display()))
        })?;
        Self::open(parent)?.subdir(Path::new(name))
    }

    /// Directory `rel` beneath the root (created if missing) as a root of
    /// its own: a `rel` planted as a symlink out of this root is refused.
    pub fn subdir(&self, rel: &Path) -> std::io::Result<Self> {
        let root = match self.root.open_dir(rel) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.root.create_dir_all(rel)?;
                self.root.open_dir(rel)?
            }
            opened => opened?,
        };
        Ok(Self {
            root,
            path: self.path.join(rel),
        })
    }

    /// A new, empty directory in the root named `prefix` and a random
    /// suffix (an install's or a download's staging area).
    pub fn create_unique_dir(&self, prefix: &str) -> std::io::Result<PathBuf> {
        loop {
            let name = PathBuf::from(format!("{prefix}{:012x}", rand_u64() >> 16));
            match self.root.create_dir(&name) {
                Ok(()) => return Ok(name),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes directory `rel` and everything in it (a symlink is removed,
    /// not followed).
    pub fn remove_dir_all(&self, rel: &Path) -> std::io::Result<()> {
        match self.root.symlink_metadata(rel) {
            Ok(meta) if meta.is_dir() => self.root.remove_dir_all(rel),
            Ok(_) => self.root.remove_file(rel),
            Err(e) => Err(e),
        }
    }

    /// Whether `rel` is a directory beneath the root (a symlink out of it
    /// is not).
    pub fn is_dir(&self, rel: &Path) -> bool {
        self.root.metadata(rel).is_ok_and(|m| m.is_dir())
    }

    /// Whether there is an entry `rel` at all (a symlink counts, wherever
    /// it points).
    pub fn exists(&self, rel: &Path) -> bool {
        self.root.symlink_metadata(rel).is_ok()
    }

    /// Whether `rel` is a file beneath the root.
    pub fn is_file(&self, rel: &Path) -> bool {
        self.root.metadata(rel).is_ok_and(|m| m.is_file())
    }

    /// Copies file `from` in this root to `to` in `dest`, and syncs the copy.
    pub fn copy_to(&self, from: &Path, dest: &Confined, to: &Path) -> std::io::Result<()> {
        self.root.copy(from, &dest.root, to)?;
        dest.root.open(to)?.into_std().sync_all()
    }

    /// Writes `bytes` to a new file `rel` (it must not exist), synced, with
    /// permission bits `mode` (a key file is `0o600`).
    pub fn create_new(&self, rel: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
        use cap_std::fs::OpenOptionsExt;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(mode);
        let mut file = self.root.open_with(rel, &options)?.into_std();
        file.write_all(bytes)?;
        file.sync_all()
    }

    /// Swaps entries `a` and `b` of the root in one step
    /// (`renameat2(RENAME_EXCHANGE)`): each name then holds what the other
    /// held. Fails with `EINVAL` or `ENOSYS` where the file system cannot.
    pub fn exchange(&self, a: &Path, b: &Path) -> std::io::Result<()> {
        use rustix::fs::{RenameFlags, renameat_with};
        renameat_with(&self.root, a, &self.root, b, RenameFlags::EXCHANGE)?;
        Ok(())
    }

    /// Makes the root's entries durable (after a rename in it).
    pub fn sync(&self) -> std::io::Result<()> {
        self.root.try_clone()?.into_std_file().sync_all()
    }

    /// The root's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `rel` is, for messages.
    pub fn display(&self, rel: &Path) -> PathBuf {
        self.path.join(rel)
    }

    /// Reads file `rel` whole.
    pub fn read(&self, rel: &Path) -> std::io::Result<Vec<u8>> {
        self.root.read(rel)
    }

    /// Opens file `rel` for reading.
    pub fn open_file(&self, rel: &Path) -> std::io::Result<std::fs::File> {
        Ok(self.root.open(rel)?.into_std())
    }

    /// Opens file `rel` for reading and writing, creating it if missing.
    pub fn open_or_create(&self, rel: &Path) -> std::io::Result<std::fs::File> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        Ok(self.root.open_with(rel, &options)?.into_std())
    }

    /// The size of file `rel`, `None` if there is none.
    pub fn size(&self, rel: &Path) -> std::io::Result<Option<u64>> {
        match self.root.metadata(rel) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates directory `rel` and its parents.
    pub fn create_dir_all(&self, rel: &Path) -> std::io::Result<()> {
        self.root.create_dir_all(rel)
    }

    /// Removes file `rel`.
    pub fn remove_file(&self, rel: &Path) -> std::io::Result<()> {
        self.root.remove_file(rel)
    }

    /// The names in directory `rel` (none if it does not exist).
    pub fn names(&self, rel: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
        let dir = match self.root.open_dir(rel) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        dir.entries()?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    /// Appends `bytes` to file `rel` (created, with its directory, if missing).
    pub fn append(&self, rel: &Path, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir_all(parent)?;
        }
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        let mut file = self.root.open_with(rel, &options)?;
        file.write_all(bytes)
    }

    /// Renames file `from` to `to`, both inside the root.
    pub fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.root.rename(from, &self.root, to)
    }

    /// A new, empty temporary file in directory `rel_dir` (created if
    /// missing), removed when dropped unless [`Confined::persist`] moves it.
    pub fn stage(&self, rel_dir: &Path) -> std::io::Result<Staged> {
        self.create_dir_all(rel_dir)?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        loop {
            let name = rel_dir.join(format!(".tmp-{:016x}", rand_u64()));
            match self.root.open_with(&name, &options) {
                Ok(file) => {
                    return Ok(Staged {
                        root: self.root.try_clone()?,
                        root_path: self.path.clone(),
                        file: file.into_std(),
                        name: Some(name),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves the staged file (synced first) to `rel`, replacing what is there.
    pub fn persist(&self, mut staged: Staged, rel: &Path) -> std::io::Result<()> {
        staged.file.sync_data()?;
        let from = staged.name.take().unwrap_or_default();
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.create_dir_all(parent)?;
        }
        if let Err(e) = self.root.rename(&from, &self.root, rel) {
            let _ = self.root.remove_file(&from);
            return Err(e);
        }
        Ok(())
    }

    /// Writes `bytes` to file `rel` so that a reader sees the old file or
    /// the new one, never half of it.
    pub fn write_atomically(&self, rel: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let dir = rel.parent().unwrap_or(Path::new(""));
        let mut staged = self.stage(dir)?;
        staged.file.write_all(bytes)?;
        self.persist(staged, rel)
    }
}

/// One file under a [`Confined`] root: the state and log files of the
/// data directory are these.
#[derive(Debug, Clone)]
pub struct ConfinedFile {
    root: std::sync::Arc<Confined>,
    rel: PathBuf,
}

impl ConfinedFile {
    /// File `rel` under `root`.
    pub fn new(root: std::sync::Arc<Confined>, rel: impl Into<PathBuf>) -> Self {
        Self {
            root,
            rel: rel.into(),
        }
    }

    /// File `path`, confined to its directory.
    pub fn beside(path: &Path) -> std::io::Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
        Ok(Self::new(std::sync::Arc::new(Confined::open(dir)?), name))
    }

    /// Where it is, for messages.
    pub fn display(&self) -> PathBuf {
        self.root.display(&self.rel)
    }

    /// Opens it for reading and writing, creating it if missing.
    pub fn open_or_create(&self) -> std::io::Result<std::fs::File> {
        self.root.open_or_create(&self.rel)
    }

    /// Its contents.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        self.root.read(&self.rel)
    }

    /// Its size, `None` if it does not exist.
    pub fn size(&self) -> std::io::Result<Option<u64>> {
        self.root.size(&self.rel)
    }

    /// Replaces its contents whole (see [`Confined::write_atomically`]).
    pub fn write_atomically(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.root.write_atomically(&self.rel, bytes)
    }

    /// Appends `bytes`.
    pub fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.root.append(&self.rel, bytes)
    }

    /// Renames it to its name with `suffix` added (rotation).
    pub fn rotate(&self, suffix: &str) -> std::io::Result<()> {
        let mut to = self.rel.clone().into_os_string();
        to.push(suffix);
        self.root.rename(&self.rel, Path::new(&to))
    }
}

impl std::fmt::Display for ConfinedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.display().display())
    }
}

/// A temporary file inside a [`Confined`] root (it holds its own handle
/// on the root, so it may outlive the borrow it came from).
pub struct Staged {
    root: Dir,
    root_path: PathBuf,
    file: std::fs::File,
    name: Option<PathBuf>,
}

impl Staged {
    /// The open file.
    pub fn as_file(&self) -> &std::fs::File {
        &self.file
    }

    /// Its path, for messages.
    pub fn display(&self) -> PathBuf {
        self.root_path
            .join(self.name.as_deref().unwrap_or(Path::new("")))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            let _ = self.root.remove_file(name);
        }
    }
}

/// A random 64-bit number (for temporary names).
fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // The clock is unique enough for a name retried on collision.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        return nanos ^ u64::from(std::process::id()) << 32;
    }
    u64::from_le_bytes(bytes)
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new
/// one, never half of it, confined to `path`'s directory (a symlink there
/// is replaced, never written through). Creates the directory if needed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    ConfinedFile::beside(path)?.write_atomically(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let confined = Confined::open(root.path()).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("f"), root.path().join("link")).unwrap();
        std::fs::write(outside.path().join("f"), b"outside").unwrap();
        for rel in ["../f", "/etc/hostname", "out/f", "link"] {
            assert!(confined.read(Path::new(rel)).is_err(), "read {rel}");
        }
        for rel in ["../g", "out/g", "out/sub/g"] {
            assert!(
                confined.write_atomically(Path::new(rel), b"x").is_err(),
                "write {rel}"
            );
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        // Inside is fine, through an inner link too.
        confined
            .write_atomically(Path::new("a/b.txt"), b"in")
            .unwrap();
        std::os::unix::fs::symlink("a", root.path().join("inner")).unwrap();
        assert_eq!(confined.read(Path::new("inner/b.txt")).unwrap(), b"in");
    }

    #[test]
    fn a_staged_file_not_persisted_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let confined = Confined::open(root.path()).unwrap();
        drop(confined.stage(Path::new("tmp")).unwrap());
        assert!(confined.names(Path::new("tmp")).unwrap().is_empty());
    }
}
