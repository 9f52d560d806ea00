//! Small file-system helpers shared by the host's modules.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` so that a reader sees the old file or the new
/// one, never half of it: a synced temporary file beside it, renamed over
/// it. Creates the directory if needed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_data()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
