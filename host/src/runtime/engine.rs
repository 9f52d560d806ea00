//! The one shared `Engine`: component model, pooling allocator sized to the
//! call concurrency, epoch interruption for deadlines and cancellation, and
//! the thread that advances the epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. A running guest yields to the executor at
/// least this often, which bounds how late a deadline or a cancellation can
/// take effect.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances a Rust `wasm32-wasip2` component creates (its module plus
/// the adapter shims `wit-component` adds), with room to spare.
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;

/// How much of a linear memory (and of a table) is reset in place after a
/// call instead of being returned to the kernel. With Linux's PAGEMAP_SCAN
/// (6.7+, used when available) only the resident pages are reset, so the next
/// call into the slot takes no page faults on them; without it the lowest
/// bytes up to this size are reset whole. A Rust guest's 1 MiB stack plus a
/// small heap fits.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// Builds the engine for `concurrency` simultaneous stores whose linear
/// memories grow to at most `max_memory_bytes`, metering fuel if `fuel`.
pub fn new_engine(
    concurrency: u32,
    max_memory_bytes: usize,
    fuel: bool,
) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(concurrency)
        .total_core_instances(concurrency * CORE_INSTANCES_PER_COMPONENT)
        .total_memories(concurrency)
        .total_tables(concurrency * 4)
        .total_stacks(concurrency)
        .max_memories_per_component(1)
        .max_tables_per_component(4)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .pagemap_scan(Enabled::Auto)
        .max_memory_size(max_memory_bytes);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(fuel)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("toolmesh-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
