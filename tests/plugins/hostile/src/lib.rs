//! `hostile`: a plugin whose tools misbehave on purpose. The host's tests run
//! them and check that each misbehaviour ends the call with a clear error and
//! leaves the host serving.

use schemars::JsonSchema;
use serde::Deserialize;
use toolmesh_sdk::client::{self, Elicited};
use toolmesh_sdk::{Plugin, Resource, ResourceContents, Tool, ToolError, notify};

/// No arguments.
#[derive(Deserialize, JsonSchema)]
pub struct Nothing {}

/// A message to panic with.
#[derive(Deserialize, JsonSchema)]
pub struct Message {
    /// The panic message.
    pub message: String,
}

/// A size in mebibytes.
#[derive(Deserialize, JsonSchema)]
pub struct Size {
    /// How many MiB.
    pub mib: u32,
}

/// A duration in milliseconds.
#[derive(Deserialize, JsonSchema)]
pub struct Millis {
    /// How many milliseconds.
    pub ms: u64,
}

fn alloc(args: Size) -> Result<String, ToolError> {
    // Touch every page so the memory is really used, one MiB at a time.
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    for i in 0..args.mib {
        blocks.push(vec![i as u8; 1 << 20]);
    }
    Ok(format!(
        "allocated {} MiB",
        std::hint::black_box(blocks).len()
    ))
}

fn output(args: Size) -> Result<String, ToolError> {
    Ok("x".repeat((args.mib as usize) << 20))
}

fn sleep(args: Millis) -> Result<String, ToolError> {
    // Waits in a host call: no fuel is used, only wall time.
    std::thread::sleep(std::time::Duration::from_millis(args.ms));
    Ok("slept".into())
}

/// How much work to do.
#[derive(Deserialize, JsonSchema)]
pub struct Rounds {
    /// Rounds of a xorshift generator.
    pub rounds: u64,
}

fn burn(args: Rounds) -> Result<String, ToolError> {
    // CPU-bound and finite: the benchmark for fuel metering's cost.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..args.rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    Ok(format!("{x:016x}"))
}

/// How many handles to open.
#[derive(Deserialize, JsonSchema)]
pub struct Count {
    /// How many.
    pub count: u32,
}

fn handles(args: Count) -> Result<String, ToolError> {
    // Each call hands the guest a new stream resource; keeping them all open
    // fills the host's resource table until the handle quota refuses one.
    #[cfg(target_family = "wasm")]
    {
        let mut open = Vec::new();
        for _ in 0..args.count {
            open.push(wasi::cli::stdout::get_stdout());
        }
        Ok(format!("holding {} handles", open.len()))
    }
    #[cfg(not(target_family = "wasm"))]
    {
        Err(ToolError::failed(format!(
            "cannot open {} handles outside WebAssembly",
            args.count
        )))
    }
}

/// A kv key.
#[derive(Deserialize, JsonSchema)]
pub struct Key {
    /// The key.
    pub key: String,
}

fn kv_fill(args: Size) -> Result<String, ToolError> {
    // Writes 64 KiB values until the kv quota refuses one.
    let value = vec![7u8; 64 << 10];
    for i in 0..(args.mib * 16) {
        toolmesh_sdk::kv::set(&format!("fill/{i}"), &value)?;
    }
    Ok(format!("wrote {} MiB", args.mib))
}

fn kv_incr(args: Key) -> Result<String, ToolError> {
    loop {
        let current = toolmesh_sdk::kv::get(&args.key)?;
        let n: u64 = current
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let next = (n + 1).to_string();
        if toolmesh_sdk::kv::compare_and_swap(&args.key, current.as_deref(), Some(next.as_bytes()))?
        {
            return Ok(next);
        }
    }
}

fn kv_get(args: Key) -> Result<String, ToolError> {
    let value = toolmesh_sdk::kv::get(&args.key)?;
    Ok(value.map_or_else(
        || "(unset)".to_owned(),
        |v| String::from_utf8_lossy(&v).into_owned(),
    ))
}

/// How deep to recurse.
#[derive(Deserialize, JsonSchema)]
pub struct Depth {
    /// Frames.
    pub depth: u64,
}

#[inline(never)]
fn dive(depth: u64, parent: &mut [u8; 256]) -> u64 {
    // A frame with an address-taken local, so both the wasm stack and the
    // shadow stack in linear memory grow with every level.
    let mut local = [0u8; 256];
    local[0] = parent[0].wrapping_add(1);
    if depth == 0 {
        return u64::from(local[0]);
    }
    let below = dive(depth - 1, std::hint::black_box(&mut local));
    below + u64::from(std::hint::black_box(&local)[1])
}

fn recurse(args: Depth) -> Result<String, ToolError> {
    let mut root = [0u8; 256];
    Ok(format!("reached {}", dive(args.depth, &mut root)))
}

/// A path in the guest's file system.
#[derive(Deserialize, JsonSchema)]
pub struct FilePath {
    /// The path.
    pub path: String,
}

fn read_file(args: FilePath) -> Result<String, ToolError> {
    std::fs::read_to_string(&args.path)
        .map_err(|e| ToolError::failed(format!("cannot read {}: {e}", args.path)))
}

/// A path and text to write there.
#[derive(Deserialize, JsonSchema)]
pub struct FileWrite {
    /// The path.
    pub path: String,
    /// What to write.
    pub text: String,
}

fn write_file(args: FileWrite) -> Result<String, ToolError> {
    std::fs::write(&args.path, &args.text)
        .map_err(|e| ToolError::failed(format!("cannot write {}: {e}", args.path)))?;
    Ok(format!("wrote {} bytes", args.text.len()))
}

/// An environment variable's name.
#[derive(Deserialize, JsonSchema)]
pub struct EnvName {
    /// The name.
    pub name: String,
}

fn env(args: EnvName) -> Result<String, ToolError> {
    Ok(std::env::var(&args.name).unwrap_or_else(|_| "(unset)".to_owned()))
}

fn env_count(_: Nothing) -> Result<String, ToolError> {
    Ok(std::env::vars().count().to_string())
}

/// Text to store as a blob.
#[derive(Deserialize, JsonSchema)]
pub struct Text {
    /// The text.
    pub text: String,
}

fn blob_put(args: Text) -> Result<String, ToolError> {
    Ok(toolmesh_sdk::blobs::put(args.text.as_bytes())?)
}

/// A blob hash.
#[derive(Deserialize, JsonSchema)]
pub struct Hash {
    /// `blake3:<hex>`.
    pub hash: String,
}

fn blob_get(args: Hash) -> Result<String, ToolError> {
    let blob = toolmesh_sdk::blobs::get(&args.hash)?;
    Ok(blob.map_or_else(
        || "(absent)".to_owned(),
        |b| String::from_utf8_lossy(&b).into_owned(),
    ))
}

fn blob_fill(args: Size) -> Result<String, ToolError> {
    // Distinct 1 MiB blobs until the blob quota refuses one.
    for i in 0..args.mib {
        let mut block = vec![0u8; 1 << 20];
        block[..4].copy_from_slice(&i.to_le_bytes());
        toolmesh_sdk::blobs::put(&block)?;
    }
    Ok(format!("stored {} MiB", args.mib))
}

/// Steps of work with a pause between.
#[derive(Deserialize, JsonSchema)]
pub struct Steps {
    /// How many steps.
    pub steps: u32,
    /// Milliseconds per step.
    pub ms: u64,
}

fn progress(args: Steps) -> Result<String, ToolError> {
    for step in 1..=args.steps {
        std::thread::sleep(std::time::Duration::from_millis(args.ms));
        toolmesh_sdk::progress::report(
            f64::from(step),
            Some(f64::from(args.steps)),
            Some(&format!("step {step}")),
        );
    }
    Ok(format!("did {} steps", args.steps))
}

/// A network address.
#[derive(Deserialize, JsonSchema)]
pub struct Address {
    /// `host:port`.
    pub address: String,
}

fn connect(args: Address) -> Result<String, ToolError> {
    std::net::TcpStream::connect(&args.address)
        .map(|_| format!("connected to {}", args.address))
        .map_err(|e| ToolError::failed(format!("cannot connect to {}: {e}", args.address)))
}

fn noop(_: Nothing) -> Result<String, ToolError> {
    Ok("ok".into())
}

fn spin(_: Nothing) -> Result<String, ToolError> {
    // An infinite loop the optimiser cannot remove: only an interrupt ends it.
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn panic(args: Message) -> Result<String, ToolError> {
    panic!("{}", args.message)
}

fn deny(_: Nothing) -> Result<String, ToolError> {
    Err(ToolError::denied("this tool refuses everyone"))
}

fn notify_flood(args: Count) -> Result<String, ToolError> {
    for _ in 0..args.count {
        notify::resource_updated(WATCHED);
    }
    // And many distinct URIs, past the per-call cap.
    for i in 0..1000 {
        notify::resource_updated(&format!("hostile://flood/{i}"));
    }
    Ok(format!("announced {} times", args.count))
}

fn ask_forever(_: Nothing) -> Result<String, ToolError> {
    let schema = r#"{"type":"object","properties":{"x":{"type":"string"}}}"#;
    match client::elicit("forever", "Answer me", schema)? {
        Elicited::Accept(v) => Ok(format!("answered {v}")),
        _ => Ok("not answered".into()),
    }
}

fn sample_many(args: Count) -> Result<String, ToolError> {
    let request = client::sampling_request("again", 10);
    for i in 0..args.count {
        client::create_message(&format!("q{i}"), &request)
            .map_err(|e| ToolError::failed(format!("question {}: {e}", i + 1)))?;
    }
    Ok(format!("asked {} times", args.count))
}

/// The resource the flood announces.
const WATCHED: &str = "hostile://watched";

/// The plugin's tools.
/// A count of things.
#[derive(Deserialize, JsonSchema)]
pub struct Many {
    /// How many.
    pub count: u32,
}

/// Writes `count` log records of 4 KiB each (the per-call log budget must
/// stop them reaching the host's log).
fn log_flood(args: Many) -> Result<String, ToolError> {
    let record = "x".repeat(4096);
    for _ in 0..args.count {
        toolmesh_sdk::log(toolmesh_sdk::LogLevel::Info, &record);
    }
    Ok(format!("wrote {} records", args.count))
}

/// Fails with a message of `mib` MiB (errors count against the output limit).
fn huge_error(args: Size) -> Result<String, ToolError> {
    Err(ToolError::failed("e".repeat((args.mib as usize) << 20)))
}

/// Answers `count` empty text blocks (each costs its framing).
fn empty_blocks(args: Many) -> Result<toolmesh_sdk::ToolOutput, ToolError> {
    Ok(toolmesh_sdk::ToolOutput {
        content: (0..args.count)
            .map(|_| toolmesh_sdk::Content::Text(String::new()))
            .collect(),
        structured: None,
    })
}

/// Appends to `count` new kv logs, deleting each entry: only the logs'
/// sequence rows stay, and they are charged.
fn kv_new_logs(args: Many) -> Result<String, ToolError> {
    for i in 0..args.count {
        let log = format!("l{i:07}");
        let seq = toolmesh_sdk::kv::append(&log, b"", 0)
            .map_err(|e| ToolError::failed(format!("after {i} logs: {e:?}")))?;
        toolmesh_sdk::kv::delete(&format!("{log}{seq:020}"))
            .map_err(|e| ToolError::failed(format!("{e:?}")))?;
    }
    Ok(format!("{} logs", args.count))
}

/// What the operator's configuration asks of the load hook.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct LoadSettings {
    /// Refuse to load, with this message.
    refuse_load: Option<String>,
    /// Loop forever in the load hook (the deadline must end it).
    spin_on_load: bool,
    /// List a tool with a 1 MiB description (the host must refuse it).
    huge_description: bool,
    /// Sleep this long in the load hook (plugins load at the same time).
    sleep_on_load_ms: u64,
}

/// The load hook: refuses, or spins, as configured.
fn on_load() -> Result<(), ToolError> {
    let settings: LoadSettings = toolmesh_sdk::config::get()?;
    if let Some(message) = settings.refuse_load {
        return Err(ToolError::invalid_arguments(message));
    }
    if settings.sleep_on_load_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(settings.sleep_on_load_ms));
    }
    if settings.spin_on_load {
        let mut x = 1u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    Ok(())
}

/// The unload hook: leaves a mark in kv, for the test to read back.
fn on_unload() {
    let _ = toolmesh_sdk::kv::set("unloaded", b"by the unload hook");
}

pub fn plugin() -> Plugin {
    let settings: LoadSettings = toolmesh_sdk::config::get().unwrap_or_default();
    let plugin = if settings.huge_description {
        // Leaked once per instance: a test plugin's way to a description
        // made at run time.
        let description: &'static str = Box::leak("d".repeat(1 << 20).into_boxed_str());
        Plugin::new().tool(Tool::new("described", description, noop))
    } else {
        Plugin::new()
    };
    plugin
        .on_load(on_load)
        .on_unload(on_unload)
        .tool(Tool::new(
            "log_flood",
            "Writes `count` log records of 4 KiB.",
            log_flood,
        ))
        .tool(Tool::new(
            "huge_error",
            "Fails with a `mib` MiB message.",
            huge_error,
        ))
        .tool(Tool::new(
            "empty_blocks",
            "Answers `count` empty text blocks.",
            empty_blocks,
        ))
        .tool(Tool::new(
            "kv_new_logs",
            "Appends to `count` new kv logs.",
            kv_new_logs,
        ))
        .resource(Resource::new(WATCHED, "watched", |_| {
            Ok(vec![ResourceContents::text(WATCHED, "watched")])
        }))
        .resource(Resource::new("hostile://big", "big", |_| {
            // 4 MiB: past the untrusted level's 1 MiB output limit.
            Ok(vec![ResourceContents::text(
                "hostile://big",
                "x".repeat(4 << 20),
            )])
        }))
        .tool(Tool::new(
            "notify_flood",
            "Announces a resource change `count` times, and 1000 distinct URIs.",
            notify_flood,
        ))
        .tool(Tool::new(
            "ask_forever",
            "Asks the user, and waits.",
            ask_forever,
        ))
        .tool(Tool::new(
            "sample_many",
            "Asks the client's model `count` times.",
            sample_many,
        ))
        .tool(Tool::new("noop", "Does nothing.", noop))
        .tool(Tool::new("connect", "Opens a TCP connection.", connect))
        .tool(Tool::new("spin", "Loops forever.", spin))
        .tool(Tool::new("panic", "Panics with the given message.", panic))
        .tool(Tool::new("deny", "Refuses with a denial.", deny))
        .tool(Tool::new(
            "alloc",
            "Allocates and touches `mib` MiB.",
            alloc,
        ))
        .tool(Tool::new("output", "Returns `mib` MiB of text.", output))
        .tool(Tool::new("sleep", "Sleeps for `ms` milliseconds.", sleep))
        .tool(Tool::new("burn", "Runs `rounds` rounds of xorshift.", burn))
        .tool(Tool::new("kv_fill", "Writes `mib` MiB into kv.", kv_fill))
        .tool(Tool::new(
            "kv_incr",
            "Increments a kv counter atomically.",
            kv_incr,
        ))
        .tool(Tool::new("kv_get", "Reads a kv value as text.", kv_get))
        .tool(Tool::new(
            "recurse",
            "Recurses `depth` frames deep.",
            recurse,
        ))
        .tool(Tool::new("read_file", "Reads a file as text.", read_file))
        .tool(Tool::new(
            "write_file",
            "Writes text to a file.",
            write_file,
        ))
        .tool(Tool::new("env", "Reads an environment variable.", env))
        .tool(Tool::new(
            "env_count",
            "Counts the environment variables it sees.",
            env_count,
        ))
        .tool(Tool::new("blob_put", "Stores text as a blob.", blob_put))
        .tool(Tool::new("blob_get", "Reads a blob as text.", blob_get))
        .tool(Tool::new(
            "blob_fill",
            "Stores `mib` distinct 1 MiB blobs.",
            blob_fill,
        ))
        .tool(Tool::new(
            "progress",
            "Reports progress for `steps` steps of `ms` ms.",
            progress,
        ))
        .tool(Tool::new(
            "handles",
            "Opens `count` stream handles and keeps them.",
            handles,
        ))
}

toolmesh_sdk::export_plugin!(plugin);
