//! What the benchmarks share: a multi-threaded runtime and an in-process
//! host with the bundled plugins, its data in a temporary directory.

use tempfile::TempDir;
use toolmesh::app::Stack;
use toolmesh::config::Config;

/// A runtime, an in-process host on it, and the host's data directory
/// (kept alive with it).
pub struct BenchHost {
    /// The runtime the host runs on.
    pub rt: tokio::runtime::Runtime,
    /// The host.
    pub host: Stack,
    /// Its data directory.
    pub _data: TempDir,
}

/// Starts a host with the bundled plugins and default settings.
pub fn bench_host() -> BenchHost {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let data = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: Some(data.path().to_owned()),
        ..Config::default()
    };
    let host = rt.block_on(Stack::start(&config)).expect("host");
    BenchHost {
        rt,
        host,
        _data: data,
    }
}
