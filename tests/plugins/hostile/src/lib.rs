//! `hostile`: a plugin whose tools misbehave on purpose. The host's tests run
//! them and check that each misbehaviour ends the call with a clear error and
//! leaves the host serving.

use schemars::JsonSchema;
use serde::Deserialize;
use toolmesh_sdk::{Plugin, Tool, ToolError};

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

/// The plugin's tools.
pub fn plugin() -> Plugin {
    Plugin::new()
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
            "handles",
            "Opens `count` stream handles and keeps them.",
            handles,
        ))
}

toolmesh_sdk::export_plugin!(plugin);
