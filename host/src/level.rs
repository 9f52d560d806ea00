//! Security levels: named sets of per-call quotas. A plugin's manifest asks
//! for a level; every call into it runs under that level's fuel, linear
//! memory, handle, wall-clock and output limits.
//!
//! A level also lists the capabilities a plugin at that level may be
//! granted at all; a plugin asking for more loads without them, and the host
//! says at load time what it refused.
//!
//! Three levels are built in; `toolmesh.toml` may override any of their
//! limits key by key, or define new levels (which start from `untrusted`):
//!
//! ```toml
//! [levels.untrusted]
//! timeout_ms = 2000
//!
//! [levels.batch]
//! fuel = 20_000_000_000
//! memory_bytes = 536_870_912
//! capabilities = ["log", "kv", "blobs", "progress", "fs-read", "env"]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::capability::Capability;

/// The quotas of one security level, as the runtime applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// The level's name.
    pub name: String,
    /// Fuel per call (about one unit per WebAssembly instruction).
    pub fuel: u64,
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Most open handles (WASI resources: streams, files, ...) at once.
    pub handles: usize,
    /// Wall-clock limit of one call.
    pub timeout: Duration,
    /// Largest result (text, media and structured JSON together), in bytes.
    pub max_output_bytes: usize,
    /// Most bytes (keys plus values) the plugin may keep in `kv`.
    pub kv_bytes: u64,
    /// Most bytes of blobs the plugin may store.
    pub blob_bytes: u64,
    /// Most questions (elicitations, samplings, roots) one call may ask its
    /// client.
    pub client_requests: u32,
    /// Most log records one call may write (the rest are dropped, counted).
    pub log_records: u32,
    /// Most log bytes one call may write.
    pub log_bytes: u64,
    /// The capabilities a plugin at this level may be granted.
    pub capabilities: BTreeSet<Capability>,
    /// When its plugins' circuit breaker opens.
    pub breaker: BreakerPolicy,
}

/// When a plugin's circuit breaker opens, and for how long (see
/// [`crate::ops::breaker`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Fewest failures in the window that open it.
    pub failures: u32,
    /// The window.
    pub window: Duration,
    /// Smallest share of failures among the window's calls that opens it (0..=1).
    pub ratio: f64,
    /// How long it stays open before a probe.
    pub cooldown: Duration,
}

// `ratio` is checked to lie in 0..=1 (never NaN), so equality is total.
impl Eq for BreakerPolicy {}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failures: 5,
            window: Duration::from_secs(30),
            ratio: 0.5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// `[levels.NAME.breaker]`: every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerOverrides {
    /// Fewest failures in the window that open it.
    pub failures: Option<u32>,
    /// The window, in milliseconds.
    pub window_ms: Option<u64>,
    /// Smallest share of failures (0..=1).
    pub ratio: Option<f64>,
    /// The cool-down, in milliseconds.
    pub cooldown_ms: Option<u64>,
}

impl Level {
    /// Whether this level allows no more than `other`: each quota no larger,
    /// and only capabilities `other` allows.
    pub fn within(&self, other: &Level) -> bool {
        self.fuel <= other.fuel
            && self.memory_bytes <= other.memory_bytes
            && self.handles <= other.handles
            && self.timeout <= other.timeout
            && self.max_output_bytes <= other.max_output_bytes
            && self.kv_bytes <= other.kv_bytes
            && self.blob_bytes <= other.blob_bytes
            && self.client_requests <= other.client_requests
            && self.log_records <= other.log_records
            && self.log_bytes <= other.log_bytes
            && self.capabilities.is_subset(&other.capabilities)
    }
}

/// A level as written in `toolmesh.toml`: every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelOverrides {
    /// Fuel per call.
    pub fuel: Option<u64>,
    /// Largest linear memory, in bytes.
    pub memory_bytes: Option<u64>,
    /// Most open handles.
    pub handles: Option<u64>,
    /// Wall-clock limit of one call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Largest result, in bytes.
    pub max_output_bytes: Option<u64>,
    /// Most kv bytes.
    pub kv_bytes: Option<u64>,
    /// Most blob bytes.
    pub blob_bytes: Option<u64>,
    /// Most questions one call may ask its client.
    pub client_requests: Option<u32>,
    /// Most log records one call may write.
    pub log_records: Option<u32>,
    /// Most log bytes one call may write.
    pub log_bytes: Option<u64>,
    /// When the level's plugins' circuit breaker opens.
    pub breaker: Option<BreakerOverrides>,
    /// The capabilities that may be granted (replaces the level's list).
    pub capabilities: Option<Vec<Capability>>,
}

/// The largest linear memory any level may allow (the pooling allocator
/// reserves this much address space per slot).
pub const MAX_MEMORY_BYTES: u64 = 4 << 30;

const MIB: usize = 1 << 20;

/// The built-in levels.
pub fn builtin() -> Vec<Level> {
    use Capability::*;
    // Every level may log, report progress, and keep kv and blobs (all under
    // quota) and read files the operator put in its own files directory.
    // Any may ask the user (elicitation); asking the client's model costs
    // the user money and roots name the user's directories: standard and up.
    const BASE: &[Capability] = &[Log, Progress, Kv, Blobs, FsRead, Elicitation];
    // (name, fuel, memory MiB, handles, timeout s, output MiB, kv MiB, blob MiB,
    //  client requests, more capabilities). Breakers: the less trusted, the sooner
    // they open and the longer they stay open.
    type Row = (
        &'static str,
        u64,
        usize,
        usize,
        u64,
        usize,
        u64,
        u64,
        u32,
        &'static [Capability],
    );
    let table: [Row; 3] = [
        ("untrusted", 1_000_000_000, 64, 64, 10, 1, 1, 16, 4, &[]),
        (
            "standard",
            10_000_000_000,
            256,
            1_024,
            60,
            8,
            64,
            1_024,
            16,
            &[FsWrite, Env, Sampling, Roots],
        ),
        (
            "trusted",
            100_000_000_000,
            2_048,
            16_384,
            600,
            64,
            1_024,
            16_384,
            64,
            &[FsWrite, Env, FsHost, Sampling, Roots],
        ),
    ];
    table
        .into_iter()
        .map(
            |(name, fuel, memory, handles, timeout, output, kv, blobs, asks, more)| Level {
                name: name.to_owned(),
                fuel,
                memory_bytes: memory * MIB,
                handles,
                timeout: Duration::from_secs(timeout),
                max_output_bytes: output * MIB,
                kv_bytes: kv * MIB as u64,
                blob_bytes: blobs * MIB as u64,
                client_requests: asks,
                // Log volume per call: a thousand records of 256 bytes at
                // untrusted, ten and a hundred times that above.
                log_records: match name {
                    "untrusted" => 1_000,
                    "standard" => 10_000,
                    _ => 100_000,
                },
                log_bytes: match name {
                    "untrusted" => 256 << 10,
                    "standard" => 4 << 20,
                    _ => 64 << 20,
                },
                capabilities: BASE.iter().chain(more).copied().collect(),
                breaker: match name {
                    "untrusted" => BreakerPolicy::default(),
                    "standard" => BreakerPolicy {
                        failures: 10,
                        window: Duration::from_secs(60),
                        ratio: 0.5,
                        cooldown: Duration::from_secs(15),
                    },
                    _ => BreakerPolicy {
                        failures: 20,
                        window: Duration::from_secs(60),
                        ratio: 0.5,
                        cooldown: Duration::from_secs(10),
                    },
                },
            },
        )
        .collect()
}

/// The levels in force: the built-ins with the configuration's overrides.
#[derive(Debug, Clone)]
pub struct Levels {
    levels: BTreeMap<String, Arc<Level>>,
}

impl Default for Levels {
    fn default() -> Self {
        Self::new(&BTreeMap::new()).expect("the built-in levels are valid")
    }
}

impl Levels {
    /// Applies `overrides` to the built-in levels; a name that is not built in
    /// defines a new level starting from `untrusted`.
    pub fn new(overrides: &BTreeMap<String, LevelOverrides>) -> Result<Self, String> {
        let mut levels: BTreeMap<String, Level> =
            builtin().into_iter().map(|l| (l.name.clone(), l)).collect();
        for (name, o) in overrides {
            let mut level = levels
                .get(name)
                .or_else(|| levels.get("untrusted"))
                .cloned()
                .expect("untrusted is built in");
            level.name = name.clone();
            let key = |k: &str| format!("levels.{name}.{k}");
            if let Some(fuel) = o.fuel {
                level.fuel = in_range(fuel, 1, u64::MAX, &key("fuel"))?;
            }
            if let Some(bytes) = o.memory_bytes {
                level.memory_bytes =
                    in_range(bytes, 65_536, MAX_MEMORY_BYTES, &key("memory_bytes"))? as usize;
            }
            if let Some(handles) = o.handles {
                level.handles = in_range(handles, 1, 1_000_000, &key("handles"))? as usize;
            }
            if let Some(ms) = o.timeout_ms {
                level.timeout =
                    Duration::from_millis(in_range(ms, 1, 86_400_000, &key("timeout_ms"))?);
            }
            if let Some(bytes) = o.kv_bytes {
                level.kv_bytes = in_range(bytes, 0, 1 << 40, &key("kv_bytes"))?;
            }
            if let Some(bytes) = o.blob_bytes {
                level.blob_bytes = in_range(bytes, 0, 1 << 50, &key("blob_bytes"))?;
            }
            if let Some(asks) = o.client_requests {
                level.client_requests =
                    in_range(asks.into(), 0, 10_000, &key("client_requests"))? as u32;
            }
            if let Some(records) = o.log_records {
                level.log_records =
                    in_range(records.into(), 0, 100_000_000, &key("log_records"))? as u32;
            }
            if let Some(bytes) = o.log_bytes {
                level.log_bytes = in_range(bytes, 0, 1 << 40, &key("log_bytes"))?;
            }
            if let Some(capabilities) = &o.capabilities {
                level.capabilities = capabilities.iter().copied().collect();
            }
            if let Some(b) = &o.breaker {
                if let Some(n) = b.failures {
                    level.breaker.failures =
                        in_range(n.into(), 1, 1_000_000, &key("breaker.failures"))? as u32;
                }
                if let Some(ms) = b.window_ms {
                    level.breaker.window = Duration::from_millis(in_range(
                        ms,
                        10,
                        86_400_000,
                        &key("breaker.window_ms"),
                    )?);
                }
                if let Some(ms) = b.cooldown_ms {
                    level.breaker.cooldown = Duration::from_millis(in_range(
                        ms,
                        1,
                        86_400_000,
                        &key("breaker.cooldown_ms"),
                    )?);
                }
                if let Some(ratio) = b.ratio {
                    if !(0.0..=1.0).contains(&ratio) {
                        return Err(format!(
                            "{} is {ratio}; it must be between 0 and 1",
                            key("breaker.ratio")
                        ));
                    }
                    level.breaker.ratio = ratio;
                }
            }
            if let Some(bytes) = o.max_output_bytes {
                level.max_output_bytes =
                    in_range(bytes, 1, 1 << 30, &key("max_output_bytes"))? as usize;
            }
            levels.insert(name.clone(), level);
        }
        Ok(Self {
            levels: levels.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        })
    }

    /// The level called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Level>, String> {
        self.levels.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.levels.keys().map(String::as_str).collect();
            format!(
                "unknown security level `{name}` (configured: {})",
                known.join(", ")
            )
        })
    }

    /// The level a plugin asking for `requested` gets under `ceiling`: the
    /// requested level if it is within the ceiling, the ceiling if that is
    /// within the request, and otherwise each quota's smaller value and the
    /// capabilities both allow (named `<requested>∧<ceiling>`).
    pub fn capped(&self, requested: &str, ceiling: Option<&str>) -> Result<Arc<Level>, String> {
        let requested = self.get(requested)?;
        let Some(ceiling) = ceiling else {
            return Ok(requested);
        };
        let ceiling = self.get(ceiling)?;
        if requested.within(&ceiling) {
            return Ok(requested);
        }
        if ceiling.within(&requested) {
            return Ok(ceiling);
        }
        let (r, c) = (&*requested, &*ceiling);
        Ok(Arc::new(Level {
            name: format!("{}∧{}", r.name, c.name),
            fuel: r.fuel.min(c.fuel),
            memory_bytes: r.memory_bytes.min(c.memory_bytes),
            handles: r.handles.min(c.handles),
            timeout: r.timeout.min(c.timeout),
            max_output_bytes: r.max_output_bytes.min(c.max_output_bytes),
            kv_bytes: r.kv_bytes.min(c.kv_bytes),
            blob_bytes: r.blob_bytes.min(c.blob_bytes),
            client_requests: r.client_requests.min(c.client_requests),
            log_records: r.log_records.min(c.log_records),
            log_bytes: r.log_bytes.min(c.log_bytes),
            capabilities: r
                .capabilities
                .intersection(&c.capabilities)
                .copied()
                .collect(),
            // The ceiling's breaker: the less trusted one.
            breaker: c.breaker,
        }))
    }

    /// The largest linear memory any level allows.
    pub fn max_memory_bytes(&self) -> usize {
        self.levels
            .values()
            .map(|l| l.memory_bytes)
            .max()
            .unwrap_or(MIB)
    }

    /// Every level, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Level>> {
        self.levels.values()
    }
}

fn in_range(value: u64, min: u64, max: u64, key: &str) -> Result<u64, String> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{key} must be {min} to {max}, not {value}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_key_by_key_and_new_levels_start_from_untrusted() {
        let overrides: BTreeMap<String, LevelOverrides> =
            toml::from_str("[untrusted]\ntimeout_ms = 250\n[batch]\nfuel = 5\n").unwrap();
        let levels = Levels::new(&overrides).unwrap();
        let untrusted = levels.get("untrusted").unwrap();
        assert_eq!(untrusted.timeout, Duration::from_millis(250));
        assert_eq!(untrusted.fuel, 1_000_000_000);
        let batch = levels.get("batch").unwrap();
        assert_eq!((batch.fuel, batch.memory_bytes), (5, 64 * MIB));
        assert_eq!(levels.max_memory_bytes(), 2_048 * MIB);
        assert!(!untrusted.capabilities.contains(&Capability::Env));
        assert!(
            levels
                .get("standard")
                .unwrap()
                .capabilities
                .contains(&Capability::Env)
        );
    }

    #[test]
    fn a_ceiling_caps_a_level_by_what_it_allows() {
        let overrides: BTreeMap<String, LevelOverrides> =
            toml::from_str("[wide]\nfuel = 1\ncapabilities = [\"env\"]\n").unwrap();
        let levels = Levels::new(&overrides).unwrap();
        let capped = |requested, ceiling| levels.capped(requested, ceiling).unwrap().name.clone();
        assert_eq!(capped("trusted", None), "trusted");
        assert_eq!(capped("trusted", Some("standard")), "standard");
        assert_eq!(capped("untrusted", Some("standard")), "untrusted");
        // Less fuel, but a capability `untrusted` lacks: the two meet.
        let met = levels.capped("wide", Some("untrusted")).unwrap();
        assert_eq!(met.name, "wide∧untrusted");
        assert_eq!(met.fuel, 1);
        assert!(met.capabilities.is_empty());
        assert!(levels.capped("nope", None).is_err());
        assert!(levels.capped("untrusted", Some("nope")).is_err());
    }

    #[test]
    fn capability_lists_replace_the_levels_list() {
        let overrides: BTreeMap<String, LevelOverrides> =
            toml::from_str("[untrusted]\ncapabilities = [\"log\", \"env\"]\n").unwrap();
        let untrusted = Levels::new(&overrides).unwrap().get("untrusted").unwrap();
        assert_eq!(
            untrusted.capabilities,
            BTreeSet::from([Capability::Log, Capability::Env])
        );
        let err = toml::from_str::<BTreeMap<String, LevelOverrides>>(
            "[untrusted]\ncapabilities = [\"net\"]\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown capability `net`"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_and_unknown_names_are_refused() {
        let overrides: BTreeMap<String, LevelOverrides> =
            toml::from_str("[untrusted]\nmemory_bytes = 10\n").unwrap();
        let err = Levels::new(&overrides).unwrap_err();
        assert!(
            err.contains("levels.untrusted.memory_bytes must be 65536"),
            "{err}"
        );
        let err = Levels::default().get("root").unwrap_err();
        assert_eq!(
            err,
            "unknown security level `root` (configured: standard, trusted, untrusted)"
        );
    }
}
