//! neural-core's hot paths: a forward pass (small and mid-sized networks)
//! and one iRPROP− epoch.

use criterion::{Criterion, criterion_group, criterion_main};
use neural_core::{Activation, Network, TrainData};

fn bench(c: &mut Criterion) {
    let mut small = Network::standard(&[2, 3, 1], 1).expect("net");
    c.bench_function("run/2-3-1", |b| {
        b.iter(|| small.run(std::hint::black_box(&[0.5, -0.5])).expect("run"));
    });
    let mut mid = Network::standard(&[100, 200, 10], 1).expect("net");
    mid.set_activation_hidden(Activation::SigmoidSymmetric);
    let input: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
    c.bench_function("run/100-200-10", |b| {
        b.iter(|| mid.run(std::hint::black_box(&input)).expect("run"));
    });
    let xor = TrainData::new(&[
        (vec![-1.0, -1.0], vec![-1.0]),
        (vec![-1.0, 1.0], vec![1.0]),
        (vec![1.0, -1.0], vec![1.0]),
        (vec![1.0, 1.0], vec![-1.0]),
    ])
    .expect("data");
    let mut net = Network::standard(&[2, 3, 1], 1).expect("net");
    net.set_activation_hidden(Activation::SigmoidSymmetric);
    net.set_activation_output(Activation::SigmoidSymmetric);
    c.bench_function("train_epoch/rprop/xor-2-3-1", |b| {
        b.iter(|| net.train_epoch(&xor).expect("epoch"));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
