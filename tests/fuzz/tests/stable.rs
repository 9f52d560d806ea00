//! The bounded stable fuzz pass of the test command: every target runs its
//! kept regressions, its seeds, and a fixed budget of inputs mutated from
//! them (bit flips, byte changes, insertions, deletions, repeats, splices
//! of two inputs, and tokens of the formats), from a fixed random seed so
//! that a failure repeats. A panicking input is written to
//! `target/fuzz-findings/<target>/` and named in the failure; keep it under
//! `regressions/<target>/` once fixed.
//!
//! `TOOLMESH_FUZZ_RUNS` sets the budget per target (default 20,000) and
//! `TOOLMESH_FUZZ_SEED` the random seed.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use toolmesh_fuzz::{TARGETS, Target, seeds};
use toolmesh_test_support::rng::SplitMix64;

/// Tokens the formats are built of, spliced into inputs.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"=",
    b"\n",
    b"\r\n",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"0",
    b"-1",
    b"1e999",
    b"-0",
    b"NaN",
    b"inf",
    b"4294967295",
    b"18446744073709551616",
    b"null",
    b"true",
    b"[[[[[[[[",
    b"]]]]]]]]",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\0",
    b"e+",
    b"Bearer ",
    b" = ",
    b"[[x]]",
    b"'''",
    b"\"\"\"",
    b"blake3:",
    b"ed25519:",
    b"\x7fTMNW",
];

/// One to four mutations of `input` (`other` is another input to splice).
fn mutate(rng: &mut SplitMix64, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next_u64() as u8;
            }
            2 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(at..at, bytes);
            }
            3 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            4 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(32)).min(out.len());
                let piece = out[start..end].repeat(1 + rng.below(64));
                out.splice(at..at, piece);
            }
            5 if !other.is_empty() => {
                let start = rng.below(other.len());
                let end = (start + 1 + rng.below(64)).min(other.len());
                out.splice(at..at, other[start..end].iter().copied());
            }
            6 => {
                out.truncate(at);
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
        }
    }
    out
}

fn regressions(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(name);
    let mut found: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.path(), std::fs::read(e.path()).ok()?)))
        .collect();
    found.sort();
    found
}

/// Runs `target` on `input`; a panic is written down and returned.
fn run(name: &str, target: Target, input: &[u8]) -> Result<(), String> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| target(input))) {
        Ok(()) => Ok(()),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/fuzz-findings")
                .join(name);
            let file = dir.join(hex::encode(fnv1a(input)));
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(&file, input);
            Err(format!(
                "{name}: panicked on {} bytes ({}): {why}",
                input.len(),
                file.display()
            ))
        }
    }
}

/// A short name for an input (FNV-1a, 64 bits).
fn fnv1a(input: &[u8]) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in input {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.to_be_bytes()
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn every_parser_of_outside_input_survives_a_bounded_fuzz_pass() {
    let runs = env_number("TOOLMESH_FUZZ_RUNS", 20_000);
    let seed = env_number("TOOLMESH_FUZZ_SEED", 0x70_6f_6c_6d_65_73_68);
    // Panics are caught and reported, not printed as they happen.
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut findings = Vec::new();
    let mut report = Vec::new();
    for &(name, target) in TARGETS {
        let started = std::time::Instant::now();
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "target {name} has no seeds");
        let kept = regressions(name);
        let mut executions = 0u64;
        for (path, input) in &kept {
            executions += 1;
            if let Err(e) = run(name, target, input) {
                findings.push(format!("regression {}: {e}", path.display()));
            }
        }
        let mut pool: Vec<Vec<u8>> = seeds.clone();
        pool.extend(kept.into_iter().map(|(_, input)| input));
        let mut rng = SplitMix64(
            seed ^ fnv1a(name.as_bytes())
                .iter()
                .fold(0, |a, b| a << 8 | u64::from(*b)),
        );
        for input in &seeds {
            executions += 1;
            if let Err(e) = run(name, target, input) {
                findings.push(format!("seed: {e}"));
            }
        }
        for _ in 0..runs {
            let input = &pool[rng.below(pool.len())];
            let other = &pool[rng.below(pool.len())];
            let mutated = mutate(&mut rng, input, other);
            executions += 1;
            if let Err(e) = run(name, target, &mutated) {
                findings.push(e);
                if findings.len() > 20 {
                    break;
                }
            } else if pool.len() < 256 && rng.below(16) == 0 {
                // Mutants feed later mutations (a poor man's corpus).
                pool.push(mutated);
            }
        }
        report.push(format!(
            "{name}: {executions} executions in {:.2} s",
            started.elapsed().as_secs_f64()
        ));
    }
    std::panic::set_hook(quiet);
    eprintln!("{}", report.join("\n"));
    assert!(findings.is_empty(), "findings:\n{}", findings.join("\n"));
}
