//! FANN's `.net` text format, version `FANN_FLO_2.1` (what libfann 2.2
//! writes): `key=value` lines for the parameters, then the layer sizes,
//! optional scaling parameters, every neuron as
//! `(num_inputs, activation_function, activation_steepness)` and every
//! connection as `(connected_to_neuron, weight)`. Numbers are written as
//! libfann writes them (`%f` for settings, `%.20e` for weights), so files
//! saved here load in libfann and the other way round.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::activation::Activation;
use crate::network::{
    CascadeParams, Layer, MAX_CONNECTIONS, MAX_LAYERS, Network, NetworkType, Neuron,
};
use crate::scaling::Scaling;
use crate::train::{ErrorFunction, StopFunction, TrainingAlgorithm, TrainingParams};

/// The only version read and written.
pub const VERSION: &str = "FANN_FLO_2.1";

/// Why a `.net` file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad .net file: {0}")]
pub struct NetFileError(pub String);

fn err(message: impl Into<String>) -> NetFileError {
    NetFileError(message.into())
}

/// C's `%.20e`: 20 decimals, a signed exponent of at least two digits.
fn c_exp(x: f32) -> String {
    let s = format!("{:.20e}", f64::from(x));
    match s.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// C's `%f`.
fn c_f(x: f32) -> String {
    format!("{:.6}", f64::from(x))
}

impl Network {
    /// The network as libfann's `fann_save` writes it.
    pub fn to_fann_string(&self) -> String {
        let p = &self.params;
        let c = &self.cascade;
        let mut out = format!("{VERSION}\n");
        let mut line = |key: &str, value: String| {
            let _ = writeln!(out, "{key}={value}");
        };
        line("num_layers", self.layers.len().to_string());
        line("learning_rate", c_f(p.learning_rate));
        line("connection_rate", c_f(self.connection_rate));
        line("network_type", (self.network_type as u32).to_string());
        line("learning_momentum", c_f(p.learning_momentum));
        line("training_algorithm", (p.algorithm as u32).to_string());
        line(
            "train_error_function",
            (p.error_function as u32).to_string(),
        );
        line("train_stop_function", (p.stop_function as u32).to_string());
        line(
            "cascade_output_change_fraction",
            c_f(c.output_change_fraction),
        );
        line("quickprop_decay", c_f(p.quickprop_decay));
        line("quickprop_mu", c_f(p.quickprop_mu));
        line("rprop_increase_factor", c_f(p.rprop_increase_factor));
        line("rprop_decrease_factor", c_f(p.rprop_decrease_factor));
        line("rprop_delta_min", c_f(p.rprop_delta_min));
        line("rprop_delta_max", c_f(p.rprop_delta_max));
        line("rprop_delta_zero", c_f(p.rprop_delta_zero));
        line(
            "cascade_output_stagnation_epochs",
            c.output_stagnation_epochs.to_string(),
        );
        line(
            "cascade_candidate_change_fraction",
            c_f(c.candidate_change_fraction),
        );
        line(
            "cascade_candidate_stagnation_epochs",
            c.candidate_stagnation_epochs.to_string(),
        );
        line("cascade_max_out_epochs", c.max_out_epochs.to_string());
        line("cascade_min_out_epochs", c.min_out_epochs.to_string());
        line("cascade_max_cand_epochs", c.max_cand_epochs.to_string());
        line("cascade_min_cand_epochs", c.min_cand_epochs.to_string());
        line(
            "cascade_num_candidate_groups",
            c.num_candidate_groups.to_string(),
        );
        line("bit_fail_limit", c_exp(p.bit_fail_limit));
        line("cascade_candidate_limit", c_exp(c.candidate_limit));
        line("cascade_weight_multiplier", c_exp(c.weight_multiplier));
        line(
            "cascade_activation_functions_count",
            c.activation_functions.len().to_string(),
        );
        line(
            "cascade_activation_functions",
            c.activation_functions
                .iter()
                .map(|a| format!("{} ", a.number()))
                .collect(),
        );
        line(
            "cascade_activation_steepnesses_count",
            c.activation_steepnesses.len().to_string(),
        );
        line(
            "cascade_activation_steepnesses",
            c.activation_steepnesses
                .iter()
                .map(|s| format!("{} ", c_exp(*s)))
                .collect(),
        );
        line(
            "layer_sizes",
            self.layers
                .iter()
                .map(|l| format!("{} ", l.last - l.first))
                .collect(),
        );
        match &self.scaling {
            None => line("scale_included", "0".into()),
            Some(s) => {
                line("scale_included", "1".into());
                let list = |v: &[f32]| {
                    v.iter()
                        .map(|x| format!("{} ", c_f(*x)))
                        .collect::<String>()
                };
                line("scale_mean_in", list(&s.mean_in));
                line("scale_deviation_in", list(&s.deviation_in));
                line("scale_new_min_in", list(&s.new_min_in));
                line("scale_factor_in", list(&s.factor_in));
                line("scale_mean_out", list(&s.mean_out));
                line("scale_deviation_out", list(&s.deviation_out));
                line("scale_new_min_out", list(&s.new_min_out));
                line("scale_factor_out", list(&s.factor_out));
            }
        }
        let neurons: String = self
            .neurons
            .iter()
            .map(|n| {
                format!(
                    "({}, {}, {}) ",
                    n.last_con - n.first_con,
                    n.activation.number(),
                    c_exp(n.steepness)
                )
            })
            .collect();
        line(
            "neurons (num_inputs, activation_function, activation_steepness)",
            neurons,
        );
        let connections: String = self
            .connections
            .iter()
            .zip(&self.weights)
            .map(|(s, w)| format!("({s}, {}) ", c_exp(*w)))
            .collect();
        line("connections (connected_to_neuron, weight)", connections);
        out
    }

    /// Reads a network libfann saved (`FANN_FLO_2.1`).
    pub fn from_fann_str(text: &str) -> Result<Self, NetFileError> {
        let mut lines = text.lines();
        let version = lines.next().unwrap_or("").trim();
        if version != VERSION {
            return Err(err(format!(
                "the first line must be `{VERSION}` (a floating-point network saved by libfann \
                 2.x), not `{}`",
                version.chars().take(40).collect::<String>()
            )));
        }
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for line in lines {
            if let Some((key, value)) = line.split_once('=') {
                fields.insert(key.trim(), value.trim());
            }
        }
        let get = |key: &str| {
            fields
                .get(key)
                .copied()
                .ok_or_else(|| err(format!("missing `{key}`")))
        };
        fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, NetFileError> {
            value.trim().parse().map_err(|_| {
                err(format!(
                    "`{key}` has a bad value `{}`",
                    value.chars().take(40).collect::<String>()
                ))
            })
        }
        let num = |key: &str| -> Result<f32, NetFileError> { parse(key, get(key)?) };
        let int = |key: &str| -> Result<u32, NetFileError> { parse(key, get(key)?) };
        let list = |key: &str| -> Result<Vec<f32>, NetFileError> {
            get(key)?
                .split_ascii_whitespace()
                .map(|v| parse(key, v))
                .collect()
        };
        let network_type = match int("network_type")? {
            0 => NetworkType::Layer,
            1 => NetworkType::Shortcut,
            other => return Err(err(format!("unknown network_type {other}"))),
        };
        let params = TrainingParams {
            algorithm: TrainingAlgorithm::from_number(int("training_algorithm")?)
                .ok_or_else(|| err("unknown training_algorithm"))?,
            learning_rate: num("learning_rate")?,
            learning_momentum: num("learning_momentum")?,
            error_function: match int("train_error_function")? {
                0 => ErrorFunction::Linear,
                _ => ErrorFunction::Tanh,
            },
            stop_function: match int("train_stop_function")? {
                0 => StopFunction::Mse,
                _ => StopFunction::Bit,
            },
            quickprop_decay: num("quickprop_decay")?,
            quickprop_mu: num("quickprop_mu")?,
            rprop_increase_factor: num("rprop_increase_factor")?,
            rprop_decrease_factor: num("rprop_decrease_factor")?,
            rprop_delta_min: num("rprop_delta_min")?,
            rprop_delta_max: num("rprop_delta_max")?,
            rprop_delta_zero: num("rprop_delta_zero")?,
            bit_fail_limit: num("bit_fail_limit")?,
            ..TrainingParams::default()
        };
        let defaults = CascadeParams::default();
        let cascade = CascadeParams {
            output_change_fraction: num("cascade_output_change_fraction")
                .unwrap_or(defaults.output_change_fraction),
            output_stagnation_epochs: int("cascade_output_stagnation_epochs")
                .unwrap_or(defaults.output_stagnation_epochs),
            candidate_change_fraction: num("cascade_candidate_change_fraction")
                .unwrap_or(defaults.candidate_change_fraction),
            candidate_stagnation_epochs: int("cascade_candidate_stagnation_epochs")
                .unwrap_or(defaults.candidate_stagnation_epochs),
            max_out_epochs: int("cascade_max_out_epochs").unwrap_or(defaults.max_out_epochs),
            min_out_epochs: int("cascade_min_out_epochs").unwrap_or(defaults.min_out_epochs),
            max_cand_epochs: int("cascade_max_cand_epochs").unwrap_or(defaults.max_cand_epochs),
            min_cand_epochs: int("cascade_min_cand_epochs").unwrap_or(defaults.min_cand_epochs),
            num_candidate_groups: int("cascade_num_candidate_groups")
                .unwrap_or(defaults.num_candidate_groups),
            candidate_limit: num("cascade_candidate_limit").unwrap_or(defaults.candidate_limit),
            weight_multiplier: num("cascade_weight_multiplier")
                .unwrap_or(defaults.weight_multiplier),
            activation_functions: match list("cascade_activation_functions") {
                Ok(v) => v
                    .iter()
                    .map(|&n| {
                        Activation::from_number(n as u32)
                            .ok_or_else(|| err("unknown cascade activation function"))
                    })
                    .collect::<Result<_, _>>()?,
                Err(_) => defaults.activation_functions,
            },
            activation_steepnesses: list("cascade_activation_steepnesses")
                .unwrap_or(defaults.activation_steepnesses),
        };
        let num_layers = int("num_layers")? as usize;
        let sizes: Vec<usize> = get("layer_sizes")?
            .split_ascii_whitespace()
            .map(|v| parse("layer_sizes", v))
            .collect::<Result<_, _>>()?;
        if sizes.len() != num_layers || !(2..=MAX_LAYERS).contains(&num_layers) {
            return Err(err(format!(
                "num_layers is {num_layers} but layer_sizes lists {}",
                sizes.len()
            )));
        }
        let mut layers = Vec::with_capacity(sizes.len());
        let mut first = 0;
        for &size in &sizes {
            if size == 0 || size > crate::network::MAX_LAYER_SIZE + 1 {
                return Err(err(format!("a layer of {size} neurons")));
            }
            layers.push(Layer {
                first,
                last: first + size,
            });
            first += size;
        }
        let total_neurons = first;
        let neuron_text = get("neurons (num_inputs, activation_function, activation_steepness)")?;
        let neuron_fields = tuples(neuron_text, 3)?;
        if neuron_fields.len() != total_neurons {
            return Err(err(format!(
                "layer_sizes say {total_neurons} neurons but {} are listed",
                neuron_fields.len()
            )));
        }
        let mut neurons = Vec::with_capacity(total_neurons);
        let mut next_con = 0usize;
        for f in &neuron_fields {
            let inputs: usize = parse("neurons", f[0])?;
            let activation_number: u32 = parse("neurons", f[1])?;
            let activation = Activation::from_number(activation_number)
                .ok_or_else(|| err(format!("unknown activation function {activation_number}")))?;
            let steepness: f32 = parse("neurons", f[2])?;
            if !steepness.is_finite() || (inputs > 0 && steepness == 0.0) {
                return Err(err(format!("steepness {steepness} cannot be used")));
            }
            if next_con + inputs > MAX_CONNECTIONS {
                return Err(err("too many connections"));
            }
            neurons.push(Neuron {
                first_con: next_con,
                last_con: next_con + inputs,
                activation,
                steepness,
            });
            next_con += inputs;
        }
        let connection_fields = tuples(get("connections (connected_to_neuron, weight)")?, 2)?;
        if connection_fields.len() != next_con {
            return Err(err(format!(
                "the neurons have {next_con} inputs but {} connections are listed",
                connection_fields.len()
            )));
        }
        let mut connections = Vec::with_capacity(next_con);
        let mut weights = Vec::with_capacity(next_con);
        for f in &connection_fields {
            let source: usize = parse("connections", f[0])?;
            let weight: f32 = parse("connections", f[1])?;
            if !weight.is_finite() {
                return Err(err("a weight is not a finite number"));
            }
            connections.push(source);
            weights.push(weight);
        }
        let scaling = if int("scale_included").unwrap_or(0) == 1 {
            let s = Scaling {
                mean_in: list("scale_mean_in")?,
                deviation_in: list("scale_deviation_in")?,
                new_min_in: list("scale_new_min_in")?,
                factor_in: list("scale_factor_in")?,
                mean_out: list("scale_mean_out")?,
                deviation_out: list("scale_deviation_out")?,
                new_min_out: list("scale_new_min_out")?,
                factor_out: list("scale_factor_out")?,
            };
            Some(s)
        } else {
            None
        };
        let mut net = Network::from_parts(
            network_type,
            num("connection_rate")?,
            layers,
            neurons,
            connections,
            weights,
        );
        net.params = params;
        net.cascade = cascade;
        let net = net.finish().map_err(|e| err(e.to_string()))?;
        let mut net = net;
        if let Some(s) = &scaling {
            let (i, o) = (net.num_input(), net.num_output());
            let ok = [&s.mean_in, &s.deviation_in, &s.new_min_in, &s.factor_in]
                .iter()
                .all(|v| v.len() == i)
                && [&s.mean_out, &s.deviation_out, &s.new_min_out, &s.factor_out]
                    .iter()
                    .all(|v| v.len() == o);
            if !ok {
                return Err(err(
                    "the scaling parameters do not match the inputs and outputs",
                ));
            }
        }
        net.scaling = scaling;
        Ok(net)
    }
}

/// `(a, b, c) (d, e, f) ...` as lists of `n` fields.
fn tuples(text: &str, n: usize) -> Result<Vec<Vec<&str>>, NetFileError> {
    let mut out = Vec::new();
    for part in text.split(')') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let inner = part.strip_prefix('(').ok_or_else(|| {
            err(format!(
                "expected `(` in `{}`",
                part.chars().take(40).collect::<String>()
            ))
        })?;
        let fields: Vec<&str> = inner.split(',').map(str::trim).collect();
        if fields.len() != n {
            return Err(err(format!("expected {n} values in `({inner})`")));
        }
        out.push(fields);
    }
    Ok(out)
}

impl Network {
    /// A network from its parts, unchecked until `finish`.
    pub(crate) fn from_parts(
        network_type: NetworkType,
        connection_rate: f32,
        layers: Vec<Layer>,
        neurons: Vec<Neuron>,
        connections: Vec<usize>,
        weights: Vec<f32>,
    ) -> Self {
        let mut net = Network::empty(network_type, connection_rate);
        net.layers = layers;
        net.neurons = neurons;
        net.connections = connections;
        net.weights = weights;
        net
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_formats() {
        assert_eq!(c_exp(-0.166_882_51), "-1.66882514953613281250e-01");
        assert_eq!(c_exp(1000.0), "1.00000000000000000000e+03");
        assert_eq!(c_exp(0.0), "0.00000000000000000000e+00");
        assert_eq!(c_f(0.7), "0.700000");
    }

    #[test]
    fn round_trips_every_kind_of_network() {
        for mut net in [
            Network::standard(&[3, 5, 2], 1).unwrap(),
            Network::shortcut(&[2, 3, 1], 2).unwrap(),
            Network::sparse(0.4, &[4, 6, 3], 3).unwrap(),
        ] {
            net.set_activation_hidden(Activation::Elliot);
            let text = net.to_fann_string();
            let mut back = Network::from_fann_str(&text).unwrap();
            assert_eq!(back.to_fann_string(), text);
            let input = vec![0.3; net.num_input()];
            assert_eq!(back.run(&input).unwrap(), net.run(&input).unwrap());
        }
    }

    #[test]
    fn bad_files_are_refused_with_reasons() {
        let good = Network::standard(&[2, 2, 1], 1).unwrap().to_fann_string();
        let cases = [
            (
                good.replacen(VERSION, "FANN_FIX_2.0", 1),
                "the first line must be",
            ),
            (
                good.replace("layer_sizes=3 3 2", "layer_sizes=3 3"),
                "num_layers is 3",
            ),
            (good.replacen("(0, ", "(7, ", 1), "inputs but"),
            (
                good.replacen(", 4, 5.0", ", 44, 5.0", 1),
                "unknown activation function 44",
            ),
            (
                good.replace(
                    "connections (connected_to_neuron, weight)=(0,",
                    "connections (connected_to_neuron, weight)=(99,",
                ),
                "out of range",
            ),
        ];
        for (text, expected) in cases {
            let e = Network::from_fann_str(&text).unwrap_err().to_string();
            assert!(e.contains(expected), "{expected}: {e}");
        }
    }
}
