//! # neural-core: FANN-compatible neural networks in pure Rust
//!
//! Feed-forward networks as the FANN library builds them, held to libfann
//! 2.2 by the tests in `tests/libfann.rs`:
//!
//! - layered networks of any shape, sparse (by connection rate) and
//!   shortcut, with FANN's neuron layout and connection order, and flat
//!   `f32` weights, so a forward pass is a tight loop ([`network`]);
//! - every FANN activation function with FANN's formulas and steepness
//!   semantics, plus ReLU and leaky ReLU from FANN 2.3 ([`activation`]);
//! - training: incremental, batch, iRPROP− (the default, with FANN's
//!   constants and clamps), Quickprop and SARPROP; linear and tanh error
//!   functions; MSE and bit-fail stop criteria ([`train`]); Cascade2 for
//!   shortcut networks ([`cascade`]);
//! - seeded initialisation: uniform, and Widrow–Nguyen as
//!   `fann_init_weights` does it;
//! - FANN's `.net` (`FANN_FLO_2.1`, with scaling parameters) and `.data`
//!   formats ([`netfile`], [`data`]), and input/output scaling
//!   ([`scaling`]);
//! - a compact binary weight format with a topology hash, for sharing
//!   ([`weights`]).
//!
//! ```
//! use neural_core::{Activation, Network, TrainData};
//!
//! let xor = TrainData::new(&[
//!     (vec![-1.0, -1.0], vec![-1.0]),
//!     (vec![-1.0, 1.0], vec![1.0]),
//!     (vec![1.0, -1.0], vec![1.0]),
//!     (vec![1.0, 1.0], vec![-1.0]),
//! ])?;
//! let mut net = Network::standard(&[2, 3, 1], 42)?;
//! net.set_activation_hidden(Activation::SigmoidSymmetric);
//! net.set_activation_output(Activation::SigmoidSymmetric);
//! let (_, last) = net.train_on_data(&xor, 500, 0.001, |_| true)?;
//! assert!(last.mse < 0.001);
//! let out = net.run(&[1.0, -1.0])?;
//! assert!(out[0] > 0.9);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Not here: fixed-point networks.

pub mod activation;
pub mod cascade;
pub mod data;
pub mod netfile;
pub mod network;
mod rng;
pub mod scaling;
pub mod train;
pub mod weights;

pub use activation::Activation;
pub use cascade::CascadeReport;
pub use data::{DataError, TrainData};
pub use netfile::NetFileError;
pub use network::{Network, NetworkError, NetworkType};
pub use scaling::Scaling;
pub use train::{
    EpochReport, ErrorFunction, Stop, StopFunction, TrainingAlgorithm, TrainingParams,
};
pub use weights::WeightsError;
