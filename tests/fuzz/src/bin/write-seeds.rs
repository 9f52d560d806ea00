//! Writes every target's seeds and kept regressions into `DIR/<target>/`,
//! the corpus `cargo fuzz run` starts from:
//! `cargo run -p toolmesh-fuzz --bin write-seeds -- fuzz/corpus`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let regressions = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions");
    for &(name, _) in toolmesh_fuzz::TARGETS {
        let out = dir.join(name);
        std::fs::create_dir_all(&out)?;
        for (i, seed) in toolmesh_fuzz::seeds(name).iter().enumerate() {
            std::fs::write(out.join(format!("seed-{i}")), seed)?;
        }
        for entry in std::fs::read_dir(regressions.join(name))
            .into_iter()
            .flatten()
            .flatten()
        {
            std::fs::copy(entry.path(), out.join(entry.file_name()))?;
        }
    }
    Ok(())
}
