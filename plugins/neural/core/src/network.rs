//! The network: FANN's layout, neuron by neuron. Every layer of a layered
//! network ends with a bias neuron (value 1, no inputs); a shortcut network
//! has a bias neuron in its input layer only. Each neuron owns a contiguous
//! run of connections (`first_con..last_con`), and `weights[c]` multiplies
//! the value of neuron `connections[c]`, in FANN's connection order, so a
//! network saved by libfann runs here weight for weight.

use crate::activation::Activation;
use crate::rng::Rng;
use crate::scaling::Scaling;
use crate::train::{TrainState, TrainingParams};

/// How layers connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkType {
    /// Each layer connects to the next one only (FANN_NETTYPE_LAYER).
    Layer,
    /// Each layer connects to every later layer (FANN_NETTYPE_SHORTCUT).
    Shortcut,
}

/// One neuron.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neuron {
    /// Its first connection.
    pub first_con: usize,
    /// One past its last connection (equal to `first_con` for a bias or input neuron).
    pub last_con: usize,
    /// Its activation function.
    pub activation: Activation,
    /// Its steepness.
    pub steepness: f32,
}

/// A layer: neurons `first..last` (bias included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// Its first neuron.
    pub first: usize,
    /// One past its last neuron.
    pub last: usize,
}

/// Cascade-correlation settings, kept so a `.net` file round-trips.
#[derive(Debug, Clone, PartialEq)]
pub struct CascadeParams {
    /// `cascade_output_change_fraction`.
    pub output_change_fraction: f32,
    /// `cascade_output_stagnation_epochs`.
    pub output_stagnation_epochs: u32,
    /// `cascade_candidate_change_fraction`.
    pub candidate_change_fraction: f32,
    /// `cascade_candidate_stagnation_epochs`.
    pub candidate_stagnation_epochs: u32,
    /// `cascade_max_out_epochs`.
    pub max_out_epochs: u32,
    /// `cascade_min_out_epochs`.
    pub min_out_epochs: u32,
    /// `cascade_max_cand_epochs`.
    pub max_cand_epochs: u32,
    /// `cascade_min_cand_epochs`.
    pub min_cand_epochs: u32,
    /// `cascade_num_candidate_groups`.
    pub num_candidate_groups: u32,
    /// `cascade_candidate_limit`.
    pub candidate_limit: f32,
    /// `cascade_weight_multiplier`.
    pub weight_multiplier: f32,
    /// `cascade_activation_functions`.
    pub activation_functions: Vec<Activation>,
    /// `cascade_activation_steepnesses`.
    pub activation_steepnesses: Vec<f32>,
}

impl Default for CascadeParams {
    fn default() -> Self {
        use Activation::*;
        Self {
            output_change_fraction: 0.01,
            output_stagnation_epochs: 12,
            candidate_change_fraction: 0.01,
            candidate_stagnation_epochs: 12,
            max_out_epochs: 150,
            min_out_epochs: 50,
            max_cand_epochs: 150,
            min_cand_epochs: 50,
            num_candidate_groups: 2,
            candidate_limit: 1000.0,
            weight_multiplier: 0.4,
            activation_functions: vec![
                Sigmoid,
                SigmoidSymmetric,
                Gaussian,
                GaussianSymmetric,
                Elliot,
                ElliotSymmetric,
                SinSymmetric,
                CosSymmetric,
                Sin,
                Cos,
            ],
            activation_steepnesses: vec![0.25, 0.5, 0.75, 1.0],
        }
    }
}

/// Why a network cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// The layer sizes are unusable.
    #[error("invalid layers: {0}")]
    Layers(String),
    /// An input or output has the wrong length.
    #[error("expected {expected} values, got {got}")]
    Length {
        /// How many were expected.
        expected: usize,
        /// How many were given.
        got: usize,
    },
}

/// The most neurons in one layer, and layers in one network.
pub const MAX_LAYER_SIZE: usize = 100_000;
/// The most layers.
pub const MAX_LAYERS: usize = 64;
/// The most connections in one network.
pub const MAX_CONNECTIONS: usize = 50_000_000;

/// A feed-forward network.
#[derive(Debug, Clone)]
pub struct Network {
    /// How its layers connect.
    pub network_type: NetworkType,
    /// The fraction of possible connections present (1 when fully connected).
    pub connection_rate: f32,
    /// Its layers, input first.
    pub layers: Vec<Layer>,
    /// Every neuron, layer by layer.
    pub neurons: Vec<Neuron>,
    /// One weight per connection.
    pub weights: Vec<f32>,
    /// The source neuron of each connection.
    pub connections: Vec<usize>,
    /// Training settings.
    pub params: TrainingParams,
    /// Cascade settings (kept for file round trips).
    pub cascade: CascadeParams,
    /// Input and output scaling, if set.
    pub scaling: Option<Scaling>,
    pub(crate) values: Vec<f32>,
    pub(crate) sums: Vec<f32>,
    pub(crate) train: Option<TrainState>,
}

impl Network {
    /// A fully connected layered network (FANN's `fann_create_standard`):
    /// every hidden and output neuron uses the sigmoid stepwise function with
    /// steepness 0.5, and weights are uniform in [-0.1, 0.1] from `seed`.
    pub fn standard(layers: &[usize], seed: u64) -> Result<Self, NetworkError> {
        Self::sparse(1.0, layers, seed)
    }

    /// A layered network with `connection_rate` of the possible connections
    /// (FANN's `fann_create_sparse`; the choice of connections comes from
    /// `seed`, so it differs from libfann's, but every neuron keeps a bias
    /// connection, every hidden neuron an input and an output).
    pub fn sparse(connection_rate: f32, layers: &[usize], seed: u64) -> Result<Self, NetworkError> {
        check_layers(layers)?;
        let rate = if connection_rate.is_finite() {
            connection_rate.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let mut rng = Rng::new(seed);
        let mut net = Self::empty(NetworkType::Layer, rate);
        for &size in layers {
            let first = net.neurons.len();
            net.neurons.extend((0..=size).map(|_| Neuron {
                first_con: 0,
                last_con: 0,
                activation: Activation::SigmoidStepwise,
                steepness: 0.5,
            }));
            net.layers.push(Layer {
                first,
                last: first + size + 1,
            });
        }
        for l in 1..net.layers.len() {
            let prev = net.layers[l - 1];
            let layer = net.layers[l];
            let inputs = prev.last - prev.first - 1;
            let outputs = layer.last - layer.first - 1;
            let sources = connect_sparse(rate, inputs, outputs, &mut rng);
            for (o, mut chosen) in sources.into_iter().enumerate() {
                chosen.sort_unstable();
                let neuron = layer.first + o;
                net.neurons[neuron].first_con = net.connections.len();
                for s in chosen {
                    net.connections.push(prev.first + s);
                    net.weights.push(rng.uniform(-0.1, 0.1));
                }
                // The bias connection comes last, as in FANN.
                net.connections.push(prev.last - 1);
                net.weights.push(rng.uniform(-0.1, 0.1));
                net.neurons[neuron].last_con = net.connections.len();
            }
            let bias = layer.last - 1;
            net.neurons[bias].first_con = net.connections.len();
            net.neurons[bias].last_con = net.connections.len();
        }
        net.finish()
    }

    /// A shortcut network (FANN's `fann_create_shortcut`): each layer
    /// connects to every earlier neuron; only the input layer has a bias.
    /// Hidden and output neurons use the sigmoid stepwise function (steepness
    /// 0.5); weights are uniform in [-0.1, 0.1] from `seed`.
    pub fn shortcut(layers: &[usize], seed: u64) -> Result<Self, NetworkError> {
        check_layers(layers)?;
        let mut rng = Rng::new(seed);
        let mut net = Self::empty(NetworkType::Shortcut, 1.0);
        for (l, &size) in layers.iter().enumerate() {
            let first = net.neurons.len();
            let count = if l == 0 { size + 1 } else { size };
            for _ in 0..count {
                let neuron = Neuron {
                    first_con: net.connections.len(),
                    last_con: net.connections.len(),
                    activation: Activation::SigmoidStepwise,
                    steepness: 0.5,
                };
                let mut neuron = neuron;
                if l > 0 {
                    for source in 0..first {
                        net.connections.push(source);
                        net.weights.push(rng.uniform(-0.1, 0.1));
                    }
                    neuron.last_con = net.connections.len();
                }
                net.neurons.push(neuron);
            }
            net.layers.push(Layer {
                first,
                last: first + count,
            });
        }
        net.finish()
    }

    pub(crate) fn empty(network_type: NetworkType, connection_rate: f32) -> Self {
        Self {
            network_type,
            connection_rate,
            layers: Vec::new(),
            neurons: Vec::new(),
            weights: Vec::new(),
            connections: Vec::new(),
            params: TrainingParams::default(),
            cascade: CascadeParams::default(),
            scaling: None,
            values: Vec::new(),
            sums: Vec::new(),
            train: None,
        }
    }

    /// Sizes the run buffers and checks the structure; used by every
    /// constructor and the `.net` reader.
    pub(crate) fn finish(mut self) -> Result<Self, NetworkError> {
        if self.layers.len() < 2 {
            return Err(NetworkError::Layers(
                "a network has at least two layers".into(),
            ));
        }
        if self.connections.len() != self.weights.len() || self.connections.len() > MAX_CONNECTIONS
        {
            return Err(NetworkError::Layers(
                "connections and weights disagree".into(),
            ));
        }
        for (i, n) in self.neurons.iter().enumerate() {
            let ok = n.first_con <= n.last_con
                && n.last_con <= self.connections.len()
                && self.connections[n.first_con..n.last_con]
                    .iter()
                    .all(|&s| s < i);
            if !ok {
                return Err(NetworkError::Layers(format!(
                    "neuron {i} has connections out of range or from later neurons"
                )));
            }
        }
        if self.num_input() == 0 || self.num_output() == 0 {
            return Err(NetworkError::Layers(
                "a network needs inputs and outputs".into(),
            ));
        }
        self.values = vec![0.0; self.neurons.len()];
        self.sums = vec![0.0; self.neurons.len()];
        self.train = None;
        Ok(self)
    }

    /// Number of inputs.
    pub fn num_input(&self) -> usize {
        let l = self.layers[0];
        l.last - l.first - 1
    }

    /// Number of outputs.
    pub fn num_output(&self) -> usize {
        let l = self.layers[self.layers.len() - 1];
        let bias = usize::from(self.network_type == NetworkType::Layer);
        (l.last - l.first).saturating_sub(bias)
    }

    /// Neurons per layer, without bias neurons (what `fann_create_*` takes).
    pub fn layer_sizes(&self) -> Vec<usize> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let bias = usize::from(i == 0 || self.network_type == NetworkType::Layer);
                l.last - l.first - bias
            })
            .collect()
    }

    /// Total connections (and weights).
    pub fn total_connections(&self) -> usize {
        self.weights.len()
    }

    /// The neurons that compute (hidden and output), by layer.
    fn computing_neurons(&self) -> std::ops::Range<usize> {
        self.layers[1].first..self.neurons.len()
    }

    /// Sets the activation function of every hidden neuron.
    pub fn set_activation_hidden(&mut self, activation: Activation) {
        let (first, last) = (
            self.layers[1].first,
            self.layers[self.layers.len() - 1].first,
        );
        for n in &mut self.neurons[first..last] {
            n.activation = activation;
        }
    }

    /// Sets the activation function of every output neuron.
    pub fn set_activation_output(&mut self, activation: Activation) {
        let out = self.layers[self.layers.len() - 1];
        for n in &mut self.neurons[out.first..out.last] {
            n.activation = activation;
        }
    }

    /// Sets the steepness of every hidden neuron.
    pub fn set_steepness_hidden(&mut self, steepness: f32) {
        let (first, last) = (
            self.layers[1].first,
            self.layers[self.layers.len() - 1].first,
        );
        for n in &mut self.neurons[first..last] {
            n.steepness = steepness;
        }
    }

    /// Sets the steepness of every output neuron.
    pub fn set_steepness_output(&mut self, steepness: f32) {
        let out = self.layers[self.layers.len() - 1];
        for n in &mut self.neurons[out.first..out.last] {
            n.steepness = steepness;
        }
    }

    /// Runs the network on `input` (FANN's `fann_run`; no scaling) and
    /// returns its outputs.
    pub fn run(&mut self, input: &[f32]) -> Result<Vec<f32>, NetworkError> {
        self.forward(input)?;
        Ok(self.outputs().to_vec())
    }

    /// The outputs of the last run.
    pub fn outputs(&self) -> &[f32] {
        let out = self.layers[self.layers.len() - 1];
        &self.values[out.first..out.first + self.num_output()]
    }

    /// The forward pass: neuron values and sums.
    pub(crate) fn forward(&mut self, input: &[f32]) -> Result<(), NetworkError> {
        let num_input = self.num_input();
        if input.len() != num_input {
            return Err(NetworkError::Length {
                expected: num_input,
                got: input.len(),
            });
        }
        self.values[..num_input].copy_from_slice(input);
        self.values[num_input] = 1.0;
        for i in self.computing_neurons() {
            let n = self.neurons[i];
            if n.first_con == n.last_con {
                // A bias neuron.
                self.values[i] = 1.0;
                continue;
            }
            let weights = &self.weights[n.first_con..n.last_con];
            let sources = &self.connections[n.first_con..n.last_con];
            let first = sources[0];
            // Consecutive sources (every fully connected network): read the
            // values as a slice; otherwise follow the connections.
            let contiguous = sources[sources.len() - 1] == first + sources.len() - 1;
            let sum = if contiguous {
                dot_fann(weights, &self.values[first..first + weights.len()])
            } else {
                let gathered: Vec<f32> = sources.iter().map(|&s| self.values[s]).collect();
                dot_fann(weights, &gathered)
            };
            let mut sum = n.steepness * sum;
            let max_sum = 150.0 / n.steepness;
            if sum > max_sum {
                sum = max_sum;
            } else if sum < -max_sum {
                sum = -max_sum;
            }
            self.sums[i] = sum;
            self.values[i] = n.activation.apply(sum);
        }
        Ok(())
    }

    /// Sets every weight uniformly in [min, max] from `seed` (FANN's
    /// `fann_randomize_weights`, with this crate's generator).
    pub fn randomize_weights(&mut self, min: f32, max: f32, seed: u64) {
        let mut rng = Rng::new(seed);
        for w in &mut self.weights {
            *w = rng.uniform(min, max);
        }
        self.train = None;
    }

    /// Widrow–Nguyen initialisation from the data's input range, as FANN's
    /// `fann_init_weights`: bias weights uniform in [-f, f], others in [0, f],
    /// with `f = (0.7 · hidden)^(1/inputs) / (max input − min input)`.
    pub fn init_weights(&mut self, data: &crate::data::TrainData, seed: u64) {
        let (mut smallest, mut largest) = (f32::INFINITY, f32::NEG_INFINITY);
        for &x in data.inputs() {
            smallest = smallest.min(x);
            largest = largest.max(x);
        }
        if largest.partial_cmp(&smallest) != Some(std::cmp::Ordering::Greater) {
            (smallest, largest) = (-1.0, 1.0);
        }
        let bias_neurons = self.layers.len();
        let hidden = self.neurons.len() as f64
            - (self.num_input() + self.num_output() + bias_neurons) as f64;
        let factor = ((0.7 * hidden.max(0.0)).powf(1.0 / self.num_input() as f64)
            / f64::from(largest - smallest)) as f32;
        let mut rng = Rng::new(seed);
        for l in 1..self.layers.len() {
            let bias = match self.network_type {
                NetworkType::Layer => self.layers[l - 1].last - 1,
                NetworkType::Shortcut => self.layers[0].last - 1,
            };
            let layer = self.layers[l];
            for n in layer.first..layer.last {
                let neuron = self.neurons[n];
                for c in neuron.first_con..neuron.last_con {
                    self.weights[c] = if self.connections[c] == bias {
                        rng.uniform(-factor, factor)
                    } else {
                        rng.uniform(0.0, factor)
                    };
                }
            }
        }
        self.train = None;
    }
}

/// `Σ w·v` in libfann's order: the `len % 4` leading terms one by one from
/// the highest index down, then groups of four each summed left to right
/// and added to the total, all in `f32`, so that sums match libfann bit for
/// bit.
pub(crate) fn dot_fann(weights: &[f32], values: &[f32]) -> f32 {
    let n = weights.len();
    let head = n & 3;
    let mut sum = 0.0f32;
    for i in (0..head).rev() {
        sum += weights[i] * values[i];
    }
    let mut i = head;
    while i < n {
        sum += weights[i] * values[i]
            + weights[i + 1] * values[i + 1]
            + weights[i + 2] * values[i + 2]
            + weights[i + 3] * values[i + 3];
        i += 4;
    }
    sum
}

fn check_layers(layers: &[usize]) -> Result<(), NetworkError> {
    if layers.len() < 2 || layers.len() > MAX_LAYERS {
        return Err(NetworkError::Layers(format!(
            "a network has 2 to {MAX_LAYERS} layers, not {}",
            layers.len()
        )));
    }
    if let Some(bad) = layers.iter().find(|&&s| s == 0 || s > MAX_LAYER_SIZE) {
        return Err(NetworkError::Layers(format!(
            "each layer has 1 to {MAX_LAYER_SIZE} neurons, not {bad}"
        )));
    }
    let connections: usize = layers.windows(2).map(|w| (w[0] + 1) * w[1]).sum();
    if connections > MAX_CONNECTIONS {
        return Err(NetworkError::Layers(format!(
            "{connections} connections; at most {MAX_CONNECTIONS}"
        )));
    }
    Ok(())
}

/// For each of `outputs` neurons, the inputs (0..inputs) it connects to:
/// FANN's count (at least max(inputs, outputs) connections in all, about
/// `rate` of inputs × outputs), every input used and every output fed.
fn connect_sparse(rate: f32, inputs: usize, outputs: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let max = inputs * outputs;
    let wanted = ((0.5 + f64::from(rate) * max as f64) as usize)
        .max(inputs.max(outputs))
        .min(max);
    let mut chosen = vec![vec![false; inputs]; outputs];
    let mut count = 0;
    // Every input feeds some output and every output gets some input.
    for k in 0..inputs.max(outputs) {
        let (i, o) = (k % inputs, k % outputs);
        if !chosen[o][i] {
            chosen[o][i] = true;
            count += 1;
        }
    }
    while count < wanted {
        let o = rng.below(outputs);
        let i = rng.below(inputs);
        if !chosen[o][i] {
            chosen[o][i] = true;
            count += 1;
        }
    }
    chosen
        .into_iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .filter(|(_, c)| **c)
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_layout_matches_fann() {
        let net = Network::standard(&[2, 3, 1], 1).unwrap();
        assert_eq!(net.layers.len(), 3);
        assert_eq!(net.neurons.len(), 3 + 4 + 2);
        assert_eq!(net.total_connections(), 3 * 3 + 4);
        assert_eq!((net.num_input(), net.num_output()), (2, 1));
        // The first hidden neuron: inputs 0, 1 and the bias (2), bias last.
        let h = net.neurons[3];
        assert_eq!(&net.connections[h.first_con..h.last_con], &[0, 1, 2]);
        assert_eq!(net.layer_sizes(), [2, 3, 1]);
    }

    #[test]
    fn shortcut_layout_matches_fann() {
        let net = Network::shortcut(&[2, 2, 1], 1).unwrap();
        assert_eq!(net.neurons.len(), 3 + 2 + 1);
        let out = net.neurons[5];
        assert_eq!(
            &net.connections[out.first_con..out.last_con],
            &[0, 1, 2, 3, 4]
        );
        assert_eq!(net.num_output(), 1);
        assert_eq!(net.layer_sizes(), [2, 2, 1]);
    }

    #[test]
    fn sparse_networks_keep_every_neuron_connected() {
        let net = Network::sparse(0.3, &[6, 5, 2], 7).unwrap();
        assert!(net.total_connections() < 7 * 5 + 6 * 2);
        for n in &net.neurons[net.layers[1].first..] {
            if n.first_con != n.last_con {
                assert!(n.last_con - n.first_con >= 2, "an input and the bias");
            }
        }
        let mut net = net;
        assert_eq!(net.run(&[0.0; 6]).unwrap().len(), 2);
    }

    #[test]
    fn run_checks_lengths_and_is_deterministic() {
        let mut a = Network::standard(&[2, 4, 2], 9).unwrap();
        let mut b = Network::standard(&[2, 4, 2], 9).unwrap();
        assert_eq!(a.run(&[0.5, -1.0]).unwrap(), b.run(&[0.5, -1.0]).unwrap());
        assert_eq!(
            a.run(&[1.0]),
            Err(NetworkError::Length {
                expected: 2,
                got: 1
            })
        );
        assert!(Network::standard(&[2], 1).is_err());
        assert!(Network::standard(&[2, 0, 1], 1).is_err());
    }

    #[test]
    fn dot_follows_fanns_order() {
        let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let v = [1.0f32; 6];
        assert_eq!(dot_fann(&w, &v), 21.0);
    }
}
