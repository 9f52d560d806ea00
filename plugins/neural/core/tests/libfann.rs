//! neural-core against the C library everyone trusts: libfann 2.2 (Debian's
//! `libfann-dev`, which `cargo xtask test` installs). A small C driver
//! (`fann_harness.c`, built here with gcc) creates, runs and trains networks
//! with libfann; the tests load its `.net` files here and compare outputs
//! (max abs difference ≤ 1e-5 for every activation function), run networks
//! saved here in libfann, and compare training curves epoch by epoch
//! (within 1e-4 relative for the first 50 epochs) for incremental, batch,
//! iRPROP− and Quickprop; and networks grown here by Cascade2 run in libfann
//! to the same outputs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use neural_core::{Activation, Network, TrainData, TrainingAlgorithm};

/// The activation functions libfann 2.2 has (ReLU and leaky ReLU are 2.3's).
const FANN_22: std::ops::Range<u32> = 0..18;

fn harness() -> &'static PathBuf {
    static HARNESS: OnceLock<PathBuf> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let exe = dir.join("fann_harness");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fann_harness.c");
        let out = Command::new("gcc")
            .arg(&source)
            .arg("-O2")
            .arg("-o")
            .arg(&exe)
            .args(["-lfann", "-lm"])
            .output()
            .expect("gcc must be installed to build the libfann harness");
        assert!(
            out.status.success(),
            "building the libfann harness failed (is libfann-dev installed? `cargo xtask test` \
             installs it):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        exe
    })
}

fn fann(args: &[&str]) -> String {
    let out = Command::new(harness())
        .args(args)
        .output()
        .expect("run the harness");
    assert!(
        out.status.success(),
        "fann_harness {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rows(text: &str) -> Vec<Vec<f32>> {
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .map(|v| v.parse().expect("a number"))
                .collect()
        })
        .collect()
}

/// Deterministic pseudo-random inputs in [-2, 2].
fn inputs(n: usize, k: usize, seed: u32) -> Vec<Vec<f32>> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            (0..k)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 40_001) as f32 / 10_000.0 - 2.0
                })
                .collect()
        })
        .collect()
}

fn write_inputs(dir: &Path, rows: &[Vec<f32>]) -> PathBuf {
    let path = dir.join("inputs.txt");
    let mut text = format!("{} {}\n", rows.len(), rows[0].len());
    for r in rows {
        for v in r {
            text.push_str(&format!("{v:e} "));
        }
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write inputs");
    path
}

/// The largest |ours − libfann| over `xs`, running the network saved at
/// `path` in libfann and `net` here.
fn diff_from_libfann(net: &mut Network, path: &Path, dir: &Path, xs: &[Vec<f32>]) -> f32 {
    let expected = rows(&fann(&[
        "run",
        path.to_str().unwrap(),
        write_inputs(dir, xs).to_str().unwrap(),
    ]));
    let ours: Vec<Vec<f32>> = xs.iter().map(|x| net.run(x).unwrap()).collect();
    max_diff(&ours, &expected)
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn networks_saved_by_libfann_run_to_the_same_outputs() {
    let dir = tempfile_dir("load");
    for kind in ["standard", "shortcut", "sparse"] {
        for act in FANN_22 {
            let net_path = dir.join(format!("{kind}-{act}.net"));
            let a = act.to_string();
            fann(&[
                "create",
                net_path.to_str().unwrap(),
                "7",
                kind,
                &a,
                &a,
                "0.7",
                "3",
                "5",
                "4",
                "2",
            ]);
            let text = std::fs::read_to_string(&net_path).unwrap();
            let mut net =
                Network::from_fann_str(&text).unwrap_or_else(|e| panic!("{kind} {act}: {e}"));
            let xs = inputs(60, 3, act + 1);
            let diff = diff_from_libfann(&mut net, &net_path, &dir, &xs);
            assert!(
                diff <= 1e-5,
                "{kind} {}: max |ours - libfann| = {diff}",
                Activation::from_number(act).unwrap().fann_name()
            );
            // And what we write back is what libfann wrote.
            assert_eq!(net.to_fann_string(), text, "{kind} {act}");
        }
    }
}

#[test]
fn networks_saved_here_run_in_libfann_to_the_same_outputs() {
    let dir = tempfile_dir("save");
    for act in FANN_22 {
        let activation = Activation::from_number(act).unwrap();
        for (kind, mut net) in [
            (
                "standard",
                Network::standard(&[4, 6, 3, 2], u64::from(act)).unwrap(),
            ),
            (
                "shortcut",
                Network::shortcut(&[4, 3, 2], u64::from(act)).unwrap(),
            ),
            (
                "sparse",
                Network::sparse(0.5, &[4, 6, 2], u64::from(act)).unwrap(),
            ),
        ] {
            net.randomize_weights(-1.0, 1.0, 99 + u64::from(act));
            net.set_activation_hidden(activation);
            net.set_activation_output(activation);
            net.set_steepness_hidden(0.9);
            net.set_steepness_output(0.9);
            let path = dir.join(format!("ours-{kind}-{act}.net"));
            std::fs::write(&path, net.to_fann_string()).unwrap();
            let xs = inputs(60, 4, 100 + act);
            let diff = diff_from_libfann(&mut net, &path, &dir, &xs);
            assert!(
                diff <= 1e-5,
                "{kind} {}: max diff {diff}",
                activation.fann_name()
            );
        }
    }
}

fn regression_data() -> TrainData {
    let xs = inputs(24, 3, 4242);
    let pairs: Vec<(Vec<f32>, Vec<f32>)> = xs
        .into_iter()
        .map(|x| {
            let y = vec![(x[0] * x[1]).sin() * 0.8, (x[2] - x[0] * 0.5).tanh() * 0.8];
            (x, y)
        })
        .collect();
    TrainData::new(&pairs).unwrap()
}

#[test]
fn training_curves_match_libfann_epoch_by_epoch() {
    let dir = tempfile_dir("train");
    let data_path = dir.join("train.data");
    let data = regression_data();
    std::fs::write(&data_path, data.to_fann_string()).unwrap();
    let cases = [
        (
            TrainingAlgorithm::Incremental,
            Activation::SigmoidSymmetric,
            "standard",
        ),
        (
            TrainingAlgorithm::Batch,
            Activation::SigmoidSymmetric,
            "standard",
        ),
        (
            TrainingAlgorithm::Rprop,
            Activation::SigmoidSymmetric,
            "standard",
        ),
        (
            TrainingAlgorithm::Quickprop,
            Activation::SigmoidSymmetric,
            "standard",
        ),
        (TrainingAlgorithm::Rprop, Activation::Sigmoid, "standard"),
        (TrainingAlgorithm::Rprop, Activation::Elliot, "shortcut"),
        (
            TrainingAlgorithm::Incremental,
            Activation::Gaussian,
            "standard",
        ),
        (
            TrainingAlgorithm::Rprop,
            Activation::SigmoidSymmetric,
            "sparse",
        ),
    ];
    for (algorithm, activation, kind) in cases {
        let net_path = dir.join(format!("{kind}-{algorithm:?}-{activation:?}.net"));
        let act = activation.number().to_string();
        fann(&[
            "create",
            net_path.to_str().unwrap(),
            "11",
            kind,
            &act,
            "5",
            "0.5",
            "3",
            "6",
            "2",
        ]);
        let curve: Vec<f32> = fann(&[
            "train",
            net_path.to_str().unwrap(),
            data_path.to_str().unwrap(),
            &(algorithm as u32).to_string(),
            "50",
        ])
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
        let mut net = Network::from_fann_str(&std::fs::read_to_string(&net_path).unwrap()).unwrap();
        net.params.algorithm = algorithm;
        for (epoch, expected) in curve.iter().enumerate() {
            let ours = net.train_epoch(&data).unwrap();
            let relative = (ours - expected).abs() / expected.abs().max(1e-12);
            assert!(
                relative <= 1e-4,
                "{algorithm:?} {activation:?} {kind}: epoch {} MSE {ours} vs libfann {expected} \
                 (relative {relative})",
                epoch + 1
            );
        }
    }
}

fn tempfile_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("libfann-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn networks_grown_by_cascade2_run_in_libfann_to_the_same_outputs() {
    let dir = tempfile_dir("cascade");
    let mut pairs = Vec::new();
    for i in 0..9 {
        for j in 0..9 {
            let (x, y) = (i as f32 / 4.0 - 1.0, j as f32 / 4.0 - 1.0);
            pairs.push((
                vec![x, y],
                vec![if x * x + y * y < 0.5 { 1.0 } else { -1.0 }],
            ));
        }
    }
    let data = TrainData::new(&pairs).unwrap();
    let mut net = Network::shortcut(&[2, 1], 3).unwrap();
    net.set_activation_output(Activation::SigmoidSymmetric);
    let report = net.cascade_train(&data, 6, 0.005, 11, |_| true).unwrap();
    assert!(report.neurons >= 1, "{report:?}");
    let path = dir.join("cascade.net");
    std::fs::write(&path, net.to_fann_string()).unwrap();
    let xs = inputs(60, 2, 5);
    let diff = diff_from_libfann(&mut net, &path, &dir, &xs);
    assert!(diff <= 1e-5, "max diff {diff}");
}
