//! Training, as libfann does it: incremental backpropagation (with
//! momentum), batch, iRPROP− (FANN's default), Quickprop and SARPROP; the
//! linear and tanh error functions; MSE and bit-fail measures. Each epoch
//! function mirrors `fann_train_epoch_*`: the MSE it returns is measured
//! during the epoch, before the epoch's weight update, in `f32` and in
//! FANN's order of operations, so curves match libfann's epoch by epoch.

// The update rules walk several parallel arrays (weights, slopes, steps) by
// connection index, as FANN's do; index loops say that most plainly.
#![allow(clippy::needless_range_loop)]

use crate::activation::Activation;
use crate::data::TrainData;
use crate::network::{Network, NetworkError};
use crate::rng::Rng;

/// A training algorithm (FANN's `fann_train_enum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingAlgorithm {
    /// Backpropagation after every pair.
    Incremental = 0,
    /// Backpropagation after every epoch.
    Batch = 1,
    /// iRPROP−.
    Rprop = 2,
    /// Quickprop.
    Quickprop = 3,
    /// SARPROP.
    Sarprop = 4,
}

impl TrainingAlgorithm {
    /// The algorithm with FANN number `n`.
    pub fn from_number(n: u32) -> Option<Self> {
        [
            Self::Incremental,
            Self::Batch,
            Self::Rprop,
            Self::Quickprop,
            Self::Sarprop,
        ]
        .get(n as usize)
        .copied()
    }

    /// The algorithm called `name` (`rprop`, `FANN_TRAIN_RPROP`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        let short = lower.strip_prefix("fann_train_").unwrap_or(&lower);
        match short {
            "incremental" => Some(Self::Incremental),
            "batch" => Some(Self::Batch),
            "rprop" | "irprop" | "irpropm" => Some(Self::Rprop),
            "quickprop" => Some(Self::Quickprop),
            "sarprop" => Some(Self::Sarprop),
            _ => None,
        }
    }
}

/// How the output error is measured for backpropagation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFunction {
    /// The difference itself.
    Linear = 0,
    /// `ln((1+d)/(1-d))`, clamped to ±17 (FANN's default).
    Tanh = 1,
}

/// When training stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopFunction {
    /// When the MSE is at most the desired error.
    Mse = 0,
    /// When the number of bits that fail is at most the desired error.
    Bit = 1,
}

/// Training settings, with FANN's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingParams {
    /// The algorithm.
    pub algorithm: TrainingAlgorithm,
    /// Learning rate (incremental, batch, Quickprop).
    pub learning_rate: f32,
    /// Momentum (incremental).
    pub learning_momentum: f32,
    /// The error function.
    pub error_function: ErrorFunction,
    /// The stop function.
    pub stop_function: StopFunction,
    /// Quickprop decay.
    pub quickprop_decay: f32,
    /// Quickprop mu.
    pub quickprop_mu: f32,
    /// RPROP step increase factor.
    pub rprop_increase_factor: f32,
    /// RPROP step decrease factor.
    pub rprop_decrease_factor: f32,
    /// RPROP smallest step.
    pub rprop_delta_min: f32,
    /// RPROP largest step.
    pub rprop_delta_max: f32,
    /// RPROP first step.
    pub rprop_delta_zero: f32,
    /// An output differing from its target by at least this is a failed bit.
    pub bit_fail_limit: f32,
    /// SARPROP weight decay shift.
    pub sarprop_weight_decay_shift: f32,
    /// SARPROP step error threshold factor.
    pub sarprop_step_error_threshold_factor: f32,
    /// SARPROP step error shift.
    pub sarprop_step_error_shift: f32,
    /// SARPROP temperature.
    pub sarprop_temperature: f32,
}

impl Default for TrainingParams {
    fn default() -> Self {
        Self {
            algorithm: TrainingAlgorithm::Rprop,
            learning_rate: 0.7,
            learning_momentum: 0.0,
            error_function: ErrorFunction::Tanh,
            stop_function: StopFunction::Mse,
            quickprop_decay: -0.0001,
            quickprop_mu: 1.75,
            rprop_increase_factor: 1.2,
            rprop_decrease_factor: 0.5,
            rprop_delta_min: 0.0,
            rprop_delta_max: 50.0,
            rprop_delta_zero: 0.1,
            bit_fail_limit: 0.35,
            sarprop_weight_decay_shift: -6.644,
            sarprop_step_error_threshold_factor: 0.1,
            sarprop_step_error_shift: 1.385,
            sarprop_temperature: 0.015,
        }
    }
}

/// Per-network training buffers (FANN keeps these in `struct fann`).
#[derive(Debug, Clone)]
pub(crate) struct TrainState {
    pub(crate) errors: Vec<f32>,
    slopes: Vec<f32>,
    prev_steps: Vec<f32>,
    prev_slopes: Vec<f32>,
    prev_deltas: Vec<f32>,
    /// Sum of squared errors since the last reset (FANN's `MSE_value`).
    pub(crate) mse_value: f32,
    num_mse: u32,
    bit_fail: u32,
    pub(crate) sarprop_epoch: u32,
    pub(crate) rng: Rng,
    algorithm: TrainingAlgorithm,
}

/// One epoch's measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochReport {
    /// The epoch, from 1.
    pub epoch: u32,
    /// Mean squared error over the epoch.
    pub mse: f32,
    /// Outputs off by at least the bit-fail limit.
    pub bit_fail: u32,
}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The stop criterion was met.
    Reached,
    /// The epoch limit was reached first.
    MaxEpochs,
    /// The callback asked to stop.
    Interrupted,
}

impl Network {
    pub(crate) fn state(&mut self) -> &mut TrainState {
        let connections = self.weights.len();
        let neurons = self.neurons.len();
        let delta_zero = self.params.rprop_delta_zero;
        let algorithm = self.params.algorithm;
        let rprop = algorithm == TrainingAlgorithm::Rprop;
        // A new algorithm starts from fresh buffers, as FANN's
        // `fann_clear_train_arrays` does.
        if self
            .train
            .as_ref()
            .is_some_and(|s| s.algorithm != algorithm)
        {
            self.train = None;
        }
        self.train.get_or_insert_with(|| TrainState {
            errors: vec![0.0; neurons],
            slopes: vec![0.0; connections],
            prev_steps: vec![if rprop { delta_zero } else { 0.0 }; connections],
            prev_slopes: vec![0.0; connections],
            prev_deltas: vec![0.0; connections],
            mse_value: 0.0,
            num_mse: 0,
            bit_fail: 0,
            sarprop_epoch: 0,
            rng: Rng::new(0x5EED),
            algorithm,
        })
    }

    /// Forgets training history (steps, slopes, momentum), as FANN does when
    /// weights change from outside.
    pub fn reset_training(&mut self) {
        self.train = None;
    }

    /// Resets the MSE and bit-fail counters.
    pub(crate) fn reset_mse(&mut self) {
        let s = self.state();
        s.mse_value = 0.0;
        s.num_mse = 0;
        s.bit_fail = 0;
    }

    /// The MSE of the pairs seen since the last reset.
    pub fn mse(&self) -> f32 {
        match &self.train {
            Some(s) if s.num_mse > 0 => s.mse_value / s.num_mse as f32,
            _ => 0.0,
        }
    }

    /// Whether the last measured epoch meets the stop criterion (FANN's
    /// `fann_desired_error_reached`).
    pub fn desired_error_reached(&self, desired_error: f32) -> bool {
        match self.params.stop_function {
            StopFunction::Mse => self.mse() <= desired_error,
            StopFunction::Bit => self.bit_fail() <= desired_error.max(0.0) as u32,
        }
    }

    /// Outputs that failed since the last reset.
    pub fn bit_fail(&self) -> u32 {
        self.train.as_ref().map_or(0, |s| s.bit_fail)
    }

    /// FANN's `fann_compute_MSE`: accumulates the error of the last run
    /// against `desired` and sets the output neurons' error terms.
    pub(crate) fn compute_mse(&mut self, desired: &[f32]) {
        let out = self.layers[self.layers.len() - 1];
        let num_output = self.num_output();
        let limit = self.params.bit_fail_limit;
        let tanh = self.params.error_function == ErrorFunction::Tanh;
        self.state();
        let Network {
            neurons,
            values,
            sums,
            train,
            ..
        } = self;
        let Some(s) = train.as_mut() else { return };
        s.errors.iter_mut().for_each(|e| *e = 0.0);
        for (o, &target) in desired.iter().enumerate().take(num_output) {
            let i = out.first + o;
            let n = neurons[i];
            let value = values[i];
            let mut diff = target - value;
            if n.activation.is_symmetric() {
                diff /= 2.0;
            }
            s.mse_value += diff * diff;
            if diff.abs() >= limit {
                s.bit_fail += 1;
            }
            if tanh {
                diff = if diff < -0.9999999 {
                    -17.0
                } else if diff > 0.9999999 {
                    17.0
                } else {
                    ((1.0 + f64::from(diff)) / (1.0 - f64::from(diff))).ln() as f32
                };
            }
            s.errors[i] = n.activation.derivative(n.steepness, value, sums[i]) * diff;
            s.num_mse += 1;
        }
    }

    /// FANN's `fann_backpropagate_MSE`: error terms of the hidden neurons.
    fn backpropagate(&mut self) {
        let Network {
            layers,
            neurons,
            weights,
            connections,
            values,
            sums,
            train,
            ..
        } = self;
        let Some(s) = train.as_mut() else { return };
        for l in (2..layers.len()).rev() {
            let layer = layers[l];
            for i in layer.first..layer.last {
                let n = neurons[i];
                let error = s.errors[i];
                for c in (n.first_con..n.last_con).rev() {
                    s.errors[connections[c]] += error * weights[c];
                }
            }
            let prev = layers[l - 1];
            for i in prev.first..prev.last {
                let n = neurons[i];
                s.errors[i] *= n.activation.derivative(n.steepness, values[i], sums[i]);
            }
        }
    }

    /// FANN's `fann_update_slopes_batch` over every layer.
    fn update_slopes(&mut self) {
        let first = self.layers[1].first;
        self.update_slopes_from(first);
    }

    /// FANN's `fann_update_slopes_batch` for neurons `first..`.
    pub(crate) fn update_slopes_from(&mut self, first: usize) {
        let Network {
            neurons,
            connections,
            values,
            train,
            ..
        } = self;
        let Some(s) = train.as_mut() else { return };
        for i in first..neurons.len() {
            let n = neurons[i];
            let error = s.errors[i];
            for c in n.first_con..n.last_con {
                s.slopes[c] += error * values[connections[c]];
            }
        }
    }

    /// FANN's `fann_update_weights` (incremental, with momentum).
    fn update_weights_incremental(&mut self) {
        let rate = self.params.learning_rate;
        let momentum = self.params.learning_momentum;
        let Network {
            neurons,
            connections,
            values,
            weights,
            train,
            layers,
            ..
        } = self;
        let Some(s) = train.as_mut() else { return };
        for i in layers[1].first..neurons.len() {
            let n = neurons[i];
            let error = s.errors[i] * rate;
            for c in n.first_con..n.last_con {
                let delta = error * values[connections[c]] + momentum * s.prev_deltas[c];
                weights[c] += delta;
                s.prev_deltas[c] = delta;
            }
        }
    }

    fn update_weights_batch(&mut self, num_data: usize) {
        let epsilon = self.params.learning_rate / num_data as f32;
        let Network { weights, train, .. } = self;
        let Some(s) = train.as_mut() else { return };
        for (w, slope) in weights.iter_mut().zip(s.slopes.iter_mut()) {
            *w += *slope * epsilon;
            *slope = 0.0;
        }
    }

    fn update_weights_quickprop(&mut self, num_data: usize, from: usize) {
        let params = self.params.clone();
        let Network { weights, train, .. } = self;
        let Some(s) = train.as_mut() else { return };
        quickprop(
            &params,
            num_data,
            Slices {
                weights: &mut weights[from..],
                slopes: &mut s.slopes[from..],
                prev_steps: &mut s.prev_steps[from..],
                prev_slopes: &mut s.prev_slopes[from..],
            },
        );
    }

    fn update_weights_irpropm(&mut self, from: usize) {
        let params = self.params.clone();
        let Network { weights, train, .. } = self;
        let Some(s) = train.as_mut() else { return };
        irpropm(
            &params,
            Slices {
                weights: &mut weights[from..],
                slopes: &mut s.slopes[from..],
                prev_steps: &mut s.prev_steps[from..],
                prev_slopes: &mut s.prev_slopes[from..],
            },
        );
    }

    fn update_weights_sarprop(&mut self, epoch: u32, from: usize) {
        let mse = self.mse();
        let params = self.params.clone();
        let Network { weights, train, .. } = self;
        let Some(s) = train.as_mut() else { return };
        sarprop(
            &params,
            epoch,
            mse,
            &mut s.rng,
            Slices {
                weights: &mut weights[from..],
                slopes: &mut s.slopes[from..],
                prev_steps: &mut s.prev_steps[from..],
                prev_slopes: &mut s.prev_slopes[from..],
            },
        );
    }

    /// Applies the configured batch algorithm to connections `from..`
    /// (all of them for ordinary training, the output layer's for Cascade2).
    pub(crate) fn update_weights_from(&mut self, num_data: usize, from: usize) {
        match self.params.algorithm {
            TrainingAlgorithm::Batch | TrainingAlgorithm::Incremental => {
                self.update_weights_batch(num_data);
            }
            TrainingAlgorithm::Quickprop => self.update_weights_quickprop(num_data, from),
            TrainingAlgorithm::Sarprop => {
                let epoch = self.state().sarprop_epoch;
                self.update_weights_sarprop(epoch, from);
                self.state().sarprop_epoch += 1;
            }
            TrainingAlgorithm::Rprop => self.update_weights_irpropm(from),
        }
    }

    /// One backpropagation step on one pair (FANN's `fann_train`).
    pub fn train_pair(&mut self, input: &[f32], desired: &[f32]) -> Result<(), NetworkError> {
        if desired.len() != self.num_output() {
            return Err(NetworkError::Length {
                expected: self.num_output(),
                got: desired.len(),
            });
        }
        self.forward(input)?;
        self.compute_mse(desired);
        self.backpropagate();
        self.update_weights_incremental();
        Ok(())
    }

    /// One epoch of the configured algorithm over `data`; returns its MSE.
    pub fn train_epoch(&mut self, data: &TrainData) -> Result<f32, NetworkError> {
        self.check_data(data)?;
        self.state();
        self.reset_mse();
        match self.params.algorithm {
            TrainingAlgorithm::Incremental => {
                for i in 0..data.len() {
                    self.train_pair(data.input(i), data.output(i))?;
                }
            }
            _ => {
                for i in 0..data.len() {
                    self.forward(data.input(i))?;
                    self.compute_mse(data.output(i));
                    self.backpropagate();
                    self.update_slopes();
                }
                self.update_weights_from(data.len(), 0);
            }
        }
        Ok(self.mse())
    }

    /// The MSE and bit-fail count of the network on `data`, without training
    /// (FANN's `fann_test_data`).
    pub fn test(&mut self, data: &TrainData) -> Result<(f32, u32), NetworkError> {
        self.check_data(data)?;
        self.state();
        self.reset_mse();
        for i in 0..data.len() {
            self.forward(data.input(i))?;
            self.compute_mse(data.output(i));
        }
        Ok((self.mse(), self.bit_fail()))
    }

    /// Trains until the stop criterion (`desired_error`: an MSE, or a
    /// bit-fail count with [`StopFunction::Bit`]) is met or `max_epochs`
    /// pass. `each_epoch` sees every epoch and may stop training by
    /// returning false.
    pub fn train_on_data(
        &mut self,
        data: &TrainData,
        max_epochs: u32,
        desired_error: f32,
        mut each_epoch: impl FnMut(&EpochReport) -> bool,
    ) -> Result<(Stop, EpochReport), NetworkError> {
        let mut last = EpochReport {
            epoch: 0,
            mse: f32::NAN,
            bit_fail: 0,
        };
        for epoch in 1..=max_epochs {
            let mse = self.train_epoch(data)?;
            last = EpochReport {
                epoch,
                mse,
                bit_fail: self.bit_fail(),
            };
            let reached = self.desired_error_reached(desired_error);
            if !each_epoch(&last) {
                return Ok((Stop::Interrupted, last));
            }
            if reached {
                return Ok((Stop::Reached, last));
            }
        }
        Ok((Stop::MaxEpochs, last))
    }

    pub(crate) fn check_data(&self, data: &TrainData) -> Result<(), NetworkError> {
        if data.num_input() != self.num_input() {
            return Err(NetworkError::Length {
                expected: self.num_input(),
                got: data.num_input(),
            });
        }
        if data.num_output() != self.num_output() {
            return Err(NetworkError::Length {
                expected: self.num_output(),
                got: data.num_output(),
            });
        }
        if self.neurons.iter().skip(self.layers[1].first).any(|n| {
            matches!(
                n.activation,
                Activation::Threshold | Activation::ThresholdSymmetric
            )
        }) {
            return Err(NetworkError::Layers(
                "threshold activation functions cannot be trained".into(),
            ));
        }
        Ok(())
    }
}

/// The arrays a batch update rule works on, one entry per connection.
pub(crate) struct Slices<'a> {
    pub weights: &'a mut [f32],
    pub slopes: &'a mut [f32],
    pub prev_steps: &'a mut [f32],
    pub prev_slopes: &'a mut [f32],
}

/// FANN's `fann_update_weights_quickprop`.
pub(crate) fn quickprop(p: &TrainingParams, num_data: usize, a: Slices<'_>) {
    let epsilon = p.learning_rate / num_data as f32;
    let decay = p.quickprop_decay;
    let mu = p.quickprop_mu;
    let shrink = (f64::from(mu) / (1.0 + f64::from(mu))) as f32;
    for i in 0..a.weights.len() {
        let w = a.weights[i];
        let prev_step = a.prev_steps[i];
        let slope = a.slopes[i] + decay * w;
        let prev_slope = a.prev_slopes[i];
        let mut next = 0.0f32;
        if prev_step > 0.001 {
            if slope > 0.0 {
                next += epsilon * slope;
            }
            if slope > shrink * prev_slope {
                next += mu * prev_step;
            } else {
                next += prev_step * slope / (prev_slope - slope);
            }
        } else if prev_step < -0.001 {
            if slope < 0.0 {
                next += epsilon * slope;
            }
            if slope < shrink * prev_slope {
                next += mu * prev_step;
            } else {
                next += prev_step * slope / (prev_slope - slope);
            }
        } else {
            next += epsilon * slope;
        }
        a.prev_steps[i] = next;
        a.weights[i] = (w + next).clamp(-1500.0, 1500.0);
        a.prev_slopes[i] = slope;
        a.slopes[i] = 0.0;
    }
}

/// FANN's `fann_update_weights_irpropm` (iRPROP−).
pub(crate) fn irpropm(p: &TrainingParams, a: Slices<'_>) {
    for i in 0..a.weights.len() {
        let prev_step = a.prev_steps[i].max(0.0001);
        let mut slope = a.slopes[i];
        let same_sign = a.prev_slopes[i] * slope;
        let next = if same_sign >= 0.0 {
            (prev_step * p.rprop_increase_factor).min(p.rprop_delta_max)
        } else {
            slope = 0.0;
            (prev_step * p.rprop_decrease_factor).max(p.rprop_delta_min)
        };
        if slope < 0.0 {
            a.weights[i] = (a.weights[i] - next).max(-1500.0);
        } else {
            a.weights[i] = (a.weights[i] + next).min(1500.0);
        }
        a.prev_steps[i] = next;
        a.prev_slopes[i] = slope;
        a.slopes[i] = 0.0;
    }
}

/// FANN's `fann_update_weights_sarprop` (its random term from this crate's
/// generator instead of C's `rand()`).
pub(crate) fn sarprop(p: &TrainingParams, epoch: u32, mse: f32, rng: &mut Rng, a: Slices<'_>) {
    let rmse = mse.sqrt();
    let t = p.sarprop_temperature;
    let decay = f64::from(-t * epoch as f32 + p.sarprop_weight_decay_shift).exp2() as f32;
    let noise_scale = f64::from(-t * epoch as f32 + p.sarprop_step_error_shift).exp2() as f32;
    for i in 0..a.weights.len() {
        let prev_step = a.prev_steps[i].max(0.000001);
        let mut slope = -a.slopes[i] - a.weights[i] * decay;
        let same_sign = a.prev_slopes[i] * slope;
        let mut next = 0.0;
        if same_sign > 0.0 {
            next = (prev_step * p.rprop_increase_factor).min(p.rprop_delta_max);
            if slope < 0.0 {
                a.weights[i] += next;
            } else {
                a.weights[i] -= next;
            }
        } else if same_sign < 0.0 {
            next = if prev_step < p.sarprop_step_error_threshold_factor * mse {
                prev_step * p.rprop_decrease_factor + rng.unit() as f32 * rmse * noise_scale
            } else {
                (prev_step * p.rprop_decrease_factor).max(0.000001)
            };
            slope = 0.0;
        } else if slope < 0.0 {
            a.weights[i] += prev_step;
        } else {
            a.weights[i] -= prev_step;
        }
        a.prev_steps[i] = next;
        a.prev_slopes[i] = slope;
        a.slopes[i] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xor() -> TrainData {
        TrainData::new(&[
            (vec![-1.0, -1.0], vec![-1.0]),
            (vec![-1.0, 1.0], vec![1.0]),
            (vec![1.0, -1.0], vec![1.0]),
            (vec![1.0, 1.0], vec![-1.0]),
        ])
        .unwrap()
    }

    #[test]
    fn every_algorithm_learns_xor() {
        for algorithm in [
            TrainingAlgorithm::Rprop,
            TrainingAlgorithm::Quickprop,
            TrainingAlgorithm::Incremental,
            TrainingAlgorithm::Batch,
            TrainingAlgorithm::Sarprop,
        ] {
            let mut net = Network::standard(&[2, 3, 1], 3).unwrap();
            net.set_activation_hidden(Activation::SigmoidSymmetric);
            net.set_activation_output(Activation::SigmoidSymmetric);
            net.randomize_weights(-1.0, 1.0, 5);
            net.params.algorithm = algorithm;
            if matches!(
                algorithm,
                TrainingAlgorithm::Incremental | TrainingAlgorithm::Batch
            ) {
                net.params.learning_rate = 0.2;
            }
            let data = xor();
            let before = net.test(&data).unwrap().0;
            let (_, last) = net.train_on_data(&data, 3000, 0.001, |_| true).unwrap();
            assert!(last.mse < before, "{algorithm:?}: {before} -> {}", last.mse);
        }
    }

    /// libfann's acceptance check (`examples/xor_train.c`): a 2-3-1 network
    /// with symmetric sigmoids reaches MSE < 0.001 on XOR within 100 iRPROP−
    /// epochs.
    #[test]
    fn xor_reaches_the_fann_acceptance_target_within_100_epochs() {
        let mut reached = 0;
        for seed in 0..20 {
            let mut net = Network::standard(&[2, 3, 1], seed).unwrap();
            net.set_activation_hidden(Activation::SigmoidSymmetric);
            net.set_activation_output(Activation::SigmoidSymmetric);
            let (stop, last) = net.train_on_data(&xor(), 100, 0.001, |_| true).unwrap();
            if stop == Stop::Reached {
                assert!(last.mse < 0.001 && last.epoch <= 100);
                reached += 1;
            }
        }
        assert!(
            reached >= 19,
            "only {reached} of 20 seeds reached MSE < 0.001 in 100 epochs"
        );
    }

    #[test]
    fn the_callback_can_stop_training() {
        let mut net = Network::standard(&[2, 3, 1], 3).unwrap();
        let (stop, last) = net
            .train_on_data(&xor(), 1000, 0.0, |r| r.epoch < 5)
            .unwrap();
        assert_eq!((stop, last.epoch), (Stop::Interrupted, 5));
    }
}
