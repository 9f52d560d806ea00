//! Cascade2 training (FANN's `fann_cascadetrain_on_data`) for shortcut
//! networks: start from inputs connected straight to outputs, and grow one
//! hidden neuron at a time. Each round trains the output connections until
//! they stagnate, then trains a pool of candidate neurons (every cascade
//! activation function × steepness × candidate group) to correlate with the
//! remaining error, and installs the best candidate as a new layer between
//! the last hidden layer and the outputs, connected from every earlier neuron
//! and to every output. FANN's stagnation rules, candidate scoring,
//! initialisation scale and weight multiplier are kept; the candidates'
//! random initial weights come from this crate's generator.

use crate::activation::Activation;
use crate::data::TrainData;
use crate::network::{Layer, Network, NetworkError, NetworkType, Neuron, dot_fann};
use crate::rng::Rng;
use crate::train::{Slices, TrainingAlgorithm, irpropm, quickprop, sarprop};

/// What one cascade round reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadeReport {
    /// Hidden neurons installed so far.
    pub neurons: u32,
    /// The MSE after training the outputs.
    pub mse: f32,
    /// Epochs run so far, over every phase.
    pub epochs: u32,
}

/// A pool of candidate neurons, each with its input weights (from every
/// non-output neuron) followed by its output weights (to every output).
struct Candidates {
    neurons: Vec<(Activation, f32)>,
    inputs: usize,
    outputs: usize,
    weights: Vec<f32>,
    slopes: Vec<f32>,
    prev_steps: Vec<f32>,
    prev_slopes: Vec<f32>,
    scores: Vec<f32>,
}

/// FANN's rule for when a training phase has stopped improving: after any
/// significant change, aim `fraction` further and allow a new quota of
/// epochs to get there.
struct Stagnation {
    target: f32,
    backslide: f32,
    until: u32,
}

impl Stagnation {
    fn new(max_epochs: u32) -> Self {
        Self {
            target: 0.0,
            backslide: -1.0e20,
            until: max_epochs,
        }
    }

    fn set(&mut self, value: f32, fraction: f32, until: u32) {
        self.target = value * (1.0 + fraction);
        self.backslide = value * (1.0 - fraction);
        self.until = until;
    }

    fn stagnant(&self, epoch: u32, min_epochs: u32) -> bool {
        epoch >= self.until && epoch >= min_epochs
    }
}

impl Candidates {
    fn stride(&self) -> usize {
        self.inputs + self.outputs
    }
}

impl Network {
    /// Grows and trains a shortcut network with Cascade2 until the stop
    /// criterion is met or `max_neurons` hidden neurons have been added.
    /// `each_neuron` sees every round and may stop training by returning
    /// false. Needs a batch algorithm (iRPROP−, Quickprop or SARPROP).
    pub fn cascade_train(
        &mut self,
        data: &TrainData,
        max_neurons: u32,
        desired_error: f32,
        seed: u64,
        mut each_neuron: impl FnMut(&CascadeReport) -> bool,
    ) -> Result<CascadeReport, NetworkError> {
        if self.network_type != NetworkType::Shortcut {
            return Err(NetworkError::Layers(
                "Cascade2 grows shortcut networks; create one with `shortcut`".into(),
            ));
        }
        if matches!(
            self.params.algorithm,
            TrainingAlgorithm::Incremental | TrainingAlgorithm::Batch
        ) {
            return Err(NetworkError::Layers(
                "Cascade2 trains with iRPROP-, Quickprop or SARPROP, not incremental or batch"
                    .into(),
            ));
        }
        self.check_data(data)?;
        let mut rng = Rng::new(seed);
        let mut report = CascadeReport {
            neurons: 0,
            mse: f32::NAN,
            epochs: 0,
        };
        for added in 0..=max_neurons {
            report.epochs += self.train_outputs(data, desired_error);
            report.mse = self.mse();
            report.neurons = added;
            let reached = self.desired_error_reached(desired_error);
            if !each_neuron(&report) || reached || added == max_neurons {
                break;
            }
            let mut candidates = self.new_candidates(&mut rng);
            report.epochs += self.train_candidates(data, &mut candidates);
            self.install_best(&candidates);
        }
        // As FANN does: a last round of output training, without a target.
        report.epochs += self.train_outputs(data, 0.0);
        report.mse = self.mse();
        Ok(report)
    }

    fn first_output(&self) -> usize {
        self.layers[self.layers.len() - 1].first
    }

    /// FANN's `fann_train_outputs`: trains the output connections until the
    /// error stops improving; returns the epochs used.
    fn train_outputs(&mut self, data: &TrainData, desired_error: f32) -> u32 {
        let c = self.cascade.clone();
        self.reset_training();
        let initial = self.train_outputs_epoch(data);
        if self.desired_error_reached(desired_error) {
            return 1;
        }
        let mut goal = Stagnation::new(c.max_out_epochs);
        for i in 1..c.max_out_epochs {
            let error = self.train_outputs_epoch(data);
            if self.desired_error_reached(desired_error) {
                return i + 1;
            }
            let improvement = initial - error;
            // FANN also accepts a "significant" change when the goal is a
            // worsening (negative target).
            let significant = if goal.target >= 0.0 {
                improvement > goal.target || improvement < goal.backslide
            } else {
                improvement < goal.target || improvement > goal.backslide
            };
            if significant {
                goal.set(
                    improvement,
                    c.output_change_fraction,
                    i + c.output_stagnation_epochs,
                );
            }
            if goal.stagnant(i, c.min_out_epochs) {
                return i + 1;
            }
        }
        c.max_out_epochs
    }

    fn train_outputs_epoch(&mut self, data: &TrainData) -> f32 {
        self.reset_mse();
        let first_output = self.first_output();
        for i in 0..data.len() {
            // The shapes were checked by `cascade_train`.
            let _ = self.forward(data.input(i));
            self.compute_mse(data.output(i));
            self.update_slopes_from(first_output);
        }
        let from = self.neurons[first_output].first_con;
        self.update_weights_from(data.len(), from);
        self.mse()
    }

    /// FANN's `fann_initialize_candidates`.
    fn new_candidates(&self, rng: &mut Rng) -> Candidates {
        let num_output = self.num_output();
        let inputs = self.neurons.len() - num_output;
        let hidden = (self.neurons.len() - self.num_input() - num_output) as f32;
        let scale = (2.0
            * f64::from(0.7f32 * hidden).powf(f64::from(1.0f32 / self.num_input() as f32)))
            as f32;
        let scale = scale.clamp(0.5, 8.0);
        let mut neurons = Vec::new();
        for &activation in &self.cascade.activation_functions {
            for &steepness in &self.cascade.activation_steepnesses {
                for _ in 0..self.cascade.num_candidate_groups {
                    neurons.push((activation, steepness));
                }
            }
        }
        let stride = inputs + num_output;
        let total = neurons.len() * stride;
        let bias = self.layers[0].last - 1;
        let mut weights = Vec::with_capacity(total);
        for _ in 0..neurons.len() {
            for k in 0..stride {
                weights.push(if k == bias {
                    rng.uniform(-scale, scale)
                } else {
                    rng.uniform(0.0, scale)
                });
            }
        }
        let step = if self.params.algorithm == TrainingAlgorithm::Rprop {
            self.params.rprop_delta_zero
        } else {
            0.0
        };
        Candidates {
            scores: vec![0.0; neurons.len()],
            neurons,
            inputs,
            outputs: num_output,
            weights,
            slopes: vec![0.0; total],
            prev_steps: vec![step; total],
            prev_slopes: vec![0.0; total],
        }
    }

    /// FANN's `fann_train_candidates`: returns the epochs used.
    fn train_candidates(&mut self, data: &TrainData, cands: &mut Candidates) -> u32 {
        let c = self.cascade.clone();
        let mut goal = Stagnation::new(c.max_cand_epochs);
        let sse = self.train.as_ref().map_or(0.0, |s| s.mse_value);
        for i in 0..c.max_cand_epochs {
            let best = self.train_candidates_epoch(data, cands, sse);
            if best / sse > c.candidate_limit {
                return i + 1;
            }
            if best > goal.target || best < goal.backslide {
                goal.set(
                    best,
                    c.candidate_change_fraction,
                    i + c.candidate_stagnation_epochs,
                );
            }
            if goal.stagnant(i, c.min_cand_epochs) {
                return i + 1;
            }
        }
        c.max_cand_epochs
    }

    /// FANN's `fann_train_candidates_epoch`: returns the best score.
    fn train_candidates_epoch(
        &mut self,
        data: &TrainData,
        cands: &mut Candidates,
        sse: f32,
    ) -> f32 {
        cands.scores.iter_mut().for_each(|s| *s = sse);
        let first_output = self.first_output();
        let mut output_errors = vec![0.0f32; cands.outputs];
        for i in 0..data.len() {
            let _ = self.forward(data.input(i));
            for (j, e) in output_errors.iter_mut().enumerate() {
                let n = self.neurons[first_output + j];
                *e = data.output(i)[j] - self.values[first_output + j];
                if n.activation.is_symmetric() {
                    *e /= 2.0;
                }
            }
            self.update_candidate_slopes(cands, &output_errors);
        }
        let slices = Slices {
            weights: &mut cands.weights[..],
            slopes: &mut cands.slopes[..],
            prev_steps: &mut cands.prev_steps[..],
            prev_slopes: &mut cands.prev_slopes[..],
        };
        match self.params.algorithm {
            TrainingAlgorithm::Quickprop => quickprop(&self.params, data.len(), slices),
            TrainingAlgorithm::Sarprop => {
                let mse = self.mse();
                let state = self.state();
                let epoch = state.sarprop_epoch;
                let mut rng = state.rng.clone();
                sarprop(&self.params, epoch, mse, &mut rng, slices);
                self.state().rng = rng;
            }
            _ => irpropm(&self.params, slices),
        }
        cands
            .scores
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max)
    }

    /// FANN's `fann_update_candidate_slopes` for one pair.
    fn update_candidate_slopes(&self, cands: &mut Candidates, output_errors: &[f32]) {
        let stride = cands.stride();
        let values = &self.values[..cands.inputs];
        for (k, &(activation, steepness)) in cands.neurons.iter().enumerate() {
            let base = k * stride;
            let weights = &cands.weights[base..base + stride];
            let mut sum = dot_fann(&weights[..cands.inputs], values);
            let max_sum = 150.0 / steepness;
            sum = sum.clamp(-max_sum, max_sum);
            let value = activation.apply(steepness * sum);
            let derived = activation.derivative(steepness, value, sum);
            let mut error_value = 0.0f32;
            let mut score = cands.scores[k];
            for (j, &target) in output_errors.iter().enumerate() {
                let out_weight = weights[cands.inputs + j];
                let diff = value * out_weight - target;
                cands.slopes[base + cands.inputs + j] -= 2.0 * diff * value;
                error_value += diff * out_weight;
                score -= diff * diff;
            }
            cands.scores[k] = score;
            error_value *= derived;
            for (i, &v) in values.iter().enumerate() {
                cands.slopes[base + i] -= error_value * v;
            }
        }
    }

    /// FANN's `fann_install_candidate`: the best candidate becomes a new
    /// layer just before the outputs.
    fn install_best(&mut self, cands: &Candidates) {
        let best = cands
            .scores
            .iter()
            .enumerate()
            .fold(0, |b, (i, &s)| if s > cands.scores[b] { i } else { b });
        let (activation, steepness) = cands.neurons[best];
        let stride = cands.stride();
        let cand = &cands.weights[best * stride..(best + 1) * stride];
        let new_index = self.first_output();
        let multiplier = self.cascade.weight_multiplier;
        let mut neurons = Vec::with_capacity(self.neurons.len() + 1);
        let mut weights = Vec::with_capacity(self.weights.len() + stride);
        let mut connections = Vec::with_capacity(self.weights.len() + stride);
        for n in &self.neurons[..new_index] {
            let first = weights.len();
            weights.extend_from_slice(&self.weights[n.first_con..n.last_con]);
            connections.extend_from_slice(&self.connections[n.first_con..n.last_con]);
            neurons.push(Neuron {
                first_con: first,
                last_con: weights.len(),
                ..*n
            });
        }
        let first = weights.len();
        weights.extend_from_slice(&cand[..cands.inputs]);
        connections.extend(0..cands.inputs);
        neurons.push(Neuron {
            first_con: first,
            last_con: weights.len(),
            activation,
            steepness,
        });
        for (j, n) in self.neurons[new_index..].iter().enumerate() {
            let first = weights.len();
            weights.extend_from_slice(&self.weights[n.first_con..n.last_con]);
            connections.extend_from_slice(&self.connections[n.first_con..n.last_con]);
            weights.push(cand[cands.inputs + j] * multiplier);
            connections.push(new_index);
            neurons.push(Neuron {
                first_con: first,
                last_con: weights.len(),
                ..*n
            });
        }
        let outputs = self.layers.pop().expect("a network has layers");
        self.layers.push(Layer {
            first: new_index,
            last: new_index + 1,
        });
        self.layers.push(Layer {
            first: outputs.first + 1,
            last: outputs.last + 1,
        });
        self.neurons = neurons;
        self.weights = weights;
        self.connections = connections;
        self.values = vec![0.0; self.neurons.len()];
        self.sums = vec![0.0; self.neurons.len()];
        self.reset_training();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circle() -> TrainData {
        // Inside a circle or not: no single layer separates it.
        let mut pairs = Vec::new();
        for i in 0..9 {
            for j in 0..9 {
                let (x, y) = (i as f32 / 4.0 - 1.0, j as f32 / 4.0 - 1.0);
                let inside = x * x + y * y < 0.5;
                pairs.push((vec![x, y], vec![if inside { 1.0 } else { -1.0 }]));
            }
        }
        TrainData::new(&pairs).unwrap()
    }

    #[test]
    fn cascade_grows_hidden_neurons_until_the_error_is_met() {
        let data = circle();
        let mut net = Network::shortcut(&[2, 1], 1).unwrap();
        net.set_activation_output(Activation::SigmoidSymmetric);
        let before = net.test(&data).unwrap().0;
        let mut rounds = Vec::new();
        let last = net
            .cascade_train(&data, 12, 0.01, 7, |r| {
                rounds.push(*r);
                true
            })
            .unwrap();
        assert!(last.neurons >= 1, "{rounds:?}");
        assert_eq!(net.layers.len(), 2 + last.neurons as usize);
        let after = net.test(&data).unwrap().0;
        assert!(after < before / 2.0, "{before} -> {after} ({rounds:?})");
        // The grown network is still a valid FANN shortcut network.
        let text = net.to_fann_string();
        let mut back = Network::from_fann_str(&text).unwrap();
        assert_eq!(
            back.run(&[0.1, 0.2]).unwrap(),
            net.run(&[0.1, 0.2]).unwrap()
        );
    }

    #[test]
    fn cascade_needs_a_shortcut_network_and_a_batch_algorithm() {
        let data = circle();
        let mut layered = Network::standard(&[2, 1], 1).unwrap();
        assert!(layered.cascade_train(&data, 3, 0.01, 1, |_| true).is_err());
        let mut net = Network::shortcut(&[2, 1], 1).unwrap();
        net.params.algorithm = TrainingAlgorithm::Incremental;
        assert!(net.cascade_train(&data, 3, 0.01, 1, |_| true).is_err());
    }
}
