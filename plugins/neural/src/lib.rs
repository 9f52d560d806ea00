//! `neural`: FANN-compatible neural networks as sandboxed tools, on
//! [`neural_core`]. Agents create networks of any shape, train them on
//! inline data or stored data sets with any of FANN's algorithms (with MCP
//! progress), run and test them, import and export FANN `.net` files, and
//! share trained weights by content hash (see [`store`]).

pub mod store;

use neural_core::{Activation, Network, Stop, StopFunction, TrainData, TrainingAlgorithm};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolmesh_sdk::{
    Plugin, Resource, ResourceContents, Structured, Template, Tool, ToolError, blobs, progress,
};

use store::NetEntry;

fn bad(message: impl std::fmt::Display) -> ToolError {
    ToolError::invalid_arguments(message.to_string())
}

fn activation(name: &str) -> Result<Activation, ToolError> {
    Activation::from_name(name).ok_or_else(|| {
        bad(format!(
            "unknown activation `{name}` (for example: sigmoid, sigmoid_symmetric, elliot, \
             gaussian, linear, relu, leaky_relu; or any FANN_* name)"
        ))
    })
}

fn algorithm(name: &str) -> Result<TrainingAlgorithm, ToolError> {
    TrainingAlgorithm::from_name(name).ok_or_else(|| {
        bad(format!(
            "unknown algorithm `{name}` (incremental, batch, rprop, quickprop, sarprop)"
        ))
    })
}

/// A network to create.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateArgs {
    /// Its name.
    pub name: String,
    /// Neurons per layer, inputs first, outputs last (e.g. `[2, 3, 1]`).
    pub layers: Vec<usize>,
    /// `standard` (default), `sparse` or `shortcut`.
    #[serde(default)]
    pub kind: Option<String>,
    /// For `sparse`: the fraction of connections present (0 to 1).
    #[serde(default)]
    pub connection_rate: Option<f32>,
    /// Hidden activation (default `sigmoid_symmetric`).
    #[serde(default)]
    pub activation_hidden: Option<String>,
    /// Output activation (default `sigmoid_symmetric`).
    #[serde(default)]
    pub activation_output: Option<String>,
    /// Steepness of every neuron (default 0.5).
    #[serde(default)]
    pub steepness: Option<f32>,
    /// Training algorithm (default `rprop`).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Seed of the initial weights (default 1).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Replace a network of the same name.
    #[serde(default)]
    pub replace: bool,
}

/// A network, described.
#[derive(Serialize, JsonSchema)]
pub struct Description {
    /// Name, layers and the hashes that address it.
    pub entry: NetEntry,
    /// `layer` or `shortcut`.
    pub kind: String,
    /// Connections (weights).
    pub connections: usize,
    /// Its training algorithm.
    pub algorithm: String,
    /// Activation of each layer after the input (the first neuron's).
    pub activations: Vec<String>,
    /// Whether scaling parameters are set.
    pub scaled: bool,
}

fn describe_net(entry: NetEntry, net: &Network) -> Description {
    Description {
        kind: format!("{:?}", net.network_type).to_lowercase(),
        connections: net.total_connections(),
        algorithm: format!("{:?}", net.params.algorithm).to_lowercase(),
        activations: net.layers[1..]
            .iter()
            .map(|l| net.neurons[l.first].activation.fann_name().to_owned())
            .collect(),
        scaled: net.scaling.is_some(),
        entry,
    }
}

fn create(args: CreateArgs) -> Result<Structured<Description>, ToolError> {
    store::check_name(&args.name)?;
    if !args.replace && store::entry(&args.name).is_ok() {
        return Err(bad(format!(
            "a network `{}` exists; pass `replace: true` to replace it",
            args.name
        )));
    }
    let seed = args.seed.unwrap_or(1);
    let mut net = match args.kind.as_deref().unwrap_or("standard") {
        "standard" => Network::standard(&args.layers, seed),
        "shortcut" => Network::shortcut(&args.layers, seed),
        "sparse" => Network::sparse(args.connection_rate.unwrap_or(0.5), &args.layers, seed),
        other => {
            return Err(bad(format!(
                "unknown kind `{other}` (standard, sparse, shortcut)"
            )));
        }
    }
    .map_err(bad)?;
    net.set_activation_hidden(activation(
        args.activation_hidden
            .as_deref()
            .unwrap_or("sigmoid_symmetric"),
    )?);
    net.set_activation_output(activation(
        args.activation_output
            .as_deref()
            .unwrap_or("sigmoid_symmetric"),
    )?);
    if let Some(s) = args.steepness {
        if !(s.is_finite() && s > 0.0) {
            return Err(bad("`steepness` must be a positive number"));
        }
        net.set_steepness_hidden(s);
        net.set_steepness_output(s);
    }
    if let Some(a) = &args.algorithm {
        net.params.algorithm = algorithm(a)?;
    }
    let entry = store::save(&args.name, &net, None)?;
    Ok(Structured(describe_net(entry, &net)))
}

/// Training pairs given inline.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InlineData {
    /// Input vectors.
    pub inputs: Vec<Vec<f32>>,
    /// Output vectors, one per input.
    pub outputs: Vec<Vec<f32>>,
}

fn inline(data: &InlineData) -> Result<TrainData, ToolError> {
    if data.inputs.len() != data.outputs.len() {
        return Err(bad(format!(
            "{} inputs but {} outputs",
            data.inputs.len(),
            data.outputs.len()
        )));
    }
    let pairs: Vec<(Vec<f32>, Vec<f32>)> = data
        .inputs
        .iter()
        .cloned()
        .zip(data.outputs.iter().cloned())
        .collect();
    TrainData::new(&pairs).map_err(bad)
}

fn data_of(
    inline_data: &Option<InlineData>,
    data_set: &Option<String>,
) -> Result<TrainData, ToolError> {
    match (inline_data, data_set) {
        (Some(d), None) => inline(d),
        (None, Some(name)) => store::load_data(name),
        _ => Err(bad(
            "give exactly one of `data` (inline pairs) and `data_set` (a stored set)",
        )),
    }
}

/// A training run.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainArgs {
    /// The network.
    pub name: String,
    /// Inline training pairs.
    #[serde(default)]
    pub data: Option<InlineData>,
    /// Or a stored data set.
    #[serde(default)]
    pub data_set: Option<String>,
    /// Algorithm for this run (default: the network's).
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Most epochs (default 1000).
    #[serde(default)]
    pub max_epochs: Option<u32>,
    /// Stop when the MSE (or the bit-fail count, with `stop: "bit"`) is at
    /// most this (default 0.001).
    #[serde(default)]
    pub desired_error: Option<f32>,
    /// `mse` (default) or `bit`.
    #[serde(default)]
    pub stop: Option<String>,
    /// Learning rate for this run.
    #[serde(default)]
    pub learning_rate: Option<f32>,
    /// Start from Widrow–Nguyen weights for this data (with this seed).
    #[serde(default)]
    pub init_seed: Option<u64>,
    /// Stop after this many milliseconds and save what was learned, well
    /// before the call's deadline (default: no limit).
    #[serde(default)]
    pub max_ms: Option<u64>,
}

/// How training went.
#[derive(Serialize, JsonSchema)]
pub struct Trained {
    /// The saved network.
    pub entry: NetEntry,
    /// Epochs run.
    pub epochs: u32,
    /// The last epoch's MSE.
    pub mse: f32,
    /// The last epoch's failed bits.
    pub bit_fail: u32,
    /// `reached`, `max_epochs` or `time_limit`.
    pub stopped: String,
}

fn train(args: TrainArgs) -> Result<Structured<Trained>, ToolError> {
    let (entry, mut net) = store::load(&args.name)?;
    let data = data_of(&args.data, &args.data_set)?;
    if let Some(a) = &args.algorithm {
        net.params.algorithm = algorithm(a)?;
    }
    if let Some(rate) = args.learning_rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(bad("`learning_rate` must be a positive number"));
        }
        net.params.learning_rate = rate;
    }
    net.params.stop_function = match args.stop.as_deref().unwrap_or("mse") {
        "mse" => StopFunction::Mse,
        "bit" => StopFunction::Bit,
        other => return Err(bad(format!("unknown stop `{other}` (mse, bit)"))),
    };
    if let Some(seed) = args.init_seed {
        net.init_weights(&data, seed);
    }
    let max_epochs = args.max_epochs.unwrap_or(1000).min(10_000_000);
    let desired = args.desired_error.unwrap_or(0.001);
    let report_every = (max_epochs / 100).max(1);
    let started = std::time::Instant::now();
    let mut timed_out = false;
    let (stop, last) = net
        .train_on_data(&data, max_epochs, desired, |r| {
            if r.epoch % report_every == 0 || r.epoch == max_epochs {
                progress::report(
                    f64::from(r.epoch),
                    Some(f64::from(max_epochs)),
                    Some(&format!("epoch {}: MSE {:.6}", r.epoch, r.mse)),
                );
            }
            if let Some(ms) = args.max_ms
                && started.elapsed().as_millis() as u64 >= ms
            {
                timed_out = true;
                return false;
            }
            true
        })
        .map_err(bad)?;
    let entry = store::save(&args.name, &net, Some(&entry))?;
    Ok(Structured(Trained {
        entry,
        epochs: last.epoch,
        mse: last.mse,
        bit_fail: last.bit_fail,
        stopped: match stop {
            Stop::Reached => "reached",
            Stop::MaxEpochs => "max_epochs",
            Stop::Interrupted if timed_out => "time_limit",
            Stop::Interrupted => "interrupted",
        }
        .into(),
    }))
}

/// A Cascade2 run.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CascadeArgs {
    /// The network: a shortcut network (create it with `kind: "shortcut"`
    /// and just inputs and outputs).
    pub name: String,
    /// Inline training pairs.
    #[serde(default)]
    pub data: Option<InlineData>,
    /// Or a stored data set.
    #[serde(default)]
    pub data_set: Option<String>,
    /// Most hidden neurons to add (default 30).
    #[serde(default)]
    pub max_neurons: Option<u32>,
    /// Stop at this MSE (default 0.001).
    #[serde(default)]
    pub desired_error: Option<f32>,
    /// Seed of the candidates' initial weights (default 1).
    #[serde(default)]
    pub seed: Option<u64>,
}

/// How a Cascade2 run went.
#[derive(Serialize, JsonSchema)]
pub struct Grown {
    /// The saved network.
    pub entry: NetEntry,
    /// Hidden neurons added.
    pub neurons: u32,
    /// The final MSE.
    pub mse: f32,
    /// Epochs run over every phase.
    pub epochs: u32,
}

fn cascade_train(args: CascadeArgs) -> Result<Structured<Grown>, ToolError> {
    let (entry, mut net) = store::load(&args.name)?;
    let data = data_of(&args.data, &args.data_set)?;
    let max_neurons = args.max_neurons.unwrap_or(30).min(1000);
    let report = net
        .cascade_train(
            &data,
            max_neurons,
            args.desired_error.unwrap_or(0.001),
            args.seed.unwrap_or(1),
            |r| {
                progress::report(
                    f64::from(r.neurons),
                    Some(f64::from(max_neurons)),
                    Some(&format!("{} hidden neurons: MSE {:.6}", r.neurons, r.mse)),
                );
                true
            },
        )
        .map_err(bad)?;
    let entry = store::save(&args.name, &net, Some(&entry))?;
    Ok(Structured(Grown {
        entry,
        neurons: report.neurons,
        mse: report.mse,
        epochs: report.epochs,
    }))
}

/// Inputs to run.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// The network.
    pub name: String,
    /// One or more input vectors.
    pub inputs: Vec<Vec<f32>>,
    /// Scale inputs and descale outputs with the network's scaling
    /// parameters (default: if it has them).
    #[serde(default)]
    pub scaled: Option<bool>,
}

/// Outputs, one vector per input.
#[derive(Serialize, JsonSchema)]
pub struct Outputs {
    /// The outputs.
    pub outputs: Vec<Vec<f32>>,
}

fn run(args: RunArgs) -> Result<Structured<Outputs>, ToolError> {
    if args.inputs.len() > 100_000 {
        return Err(bad("at most 100000 inputs per call"));
    }
    let (_, mut net) = store::load(&args.name)?;
    let scaling = if args.scaled.unwrap_or(true) {
        net.scaling.clone()
    } else {
        None
    };
    let mut outputs = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        let mut input = input.clone();
        if let Some(s) = &scaling
            && input.len() == s.mean_in.len()
        {
            s.scale_input(&mut input);
        }
        let mut out = net.run(&input).map_err(bad)?;
        if let Some(s) = &scaling {
            s.descale_output(&mut out);
        }
        outputs.push(out);
    }
    Ok(Structured(Outputs { outputs }))
}

/// Data to test against.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestArgs {
    /// The network.
    pub name: String,
    /// Inline pairs.
    #[serde(default)]
    pub data: Option<InlineData>,
    /// Or a stored data set.
    #[serde(default)]
    pub data_set: Option<String>,
}

/// Test results.
#[derive(Serialize, JsonSchema)]
pub struct Tested {
    /// Mean squared error.
    pub mse: f32,
    /// Outputs off by at least the bit-fail limit.
    pub bit_fail: u32,
    /// Pairs tested.
    pub pairs: usize,
}

fn test(args: TestArgs) -> Result<Structured<Tested>, ToolError> {
    let (_, mut net) = store::load(&args.name)?;
    let data = data_of(&args.data, &args.data_set)?;
    let (mse, bit_fail) = net.test(&data).map_err(bad)?;
    Ok(Structured(Tested {
        mse,
        bit_fail,
        pairs: data.len(),
    }))
}

/// A `.net` file to import.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportArgs {
    /// The name to store it under.
    pub name: String,
    /// The `.net` text (FANN_FLO_2.1, as libfann saves it).
    pub net: String,
    /// Replace a network of the same name.
    #[serde(default)]
    pub replace: bool,
}

fn import(args: ImportArgs) -> Result<Structured<Description>, ToolError> {
    store::check_name(&args.name)?;
    if !args.replace && store::entry(&args.name).is_ok() {
        return Err(bad(format!(
            "a network `{}` exists; pass `replace: true`",
            args.name
        )));
    }
    let net = Network::from_fann_str(&args.net).map_err(bad)?;
    let entry = store::save(&args.name, &net, None)?;
    Ok(Structured(describe_net(entry, &net)))
}

/// A network's name.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NameArgs {
    /// The network.
    pub name: String,
}

fn export(args: NameArgs) -> Result<String, ToolError> {
    let (_, net) = store::load(&args.name)?;
    Ok(net.to_fann_string())
}

fn describe(args: NameArgs) -> Result<Structured<Description>, ToolError> {
    let (entry, net) = store::load(&args.name)?;
    Ok(Structured(describe_net(entry, &net)))
}

/// Stored networks.
#[derive(Serialize, JsonSchema)]
pub struct Networks {
    /// By name.
    pub networks: Vec<NetEntry>,
}

/// No arguments.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

fn list(_: Nothing) -> Result<Structured<Networks>, ToolError> {
    Ok(Structured(Networks {
        networks: store::list()?,
    }))
}

/// Whether a network was deleted.
#[derive(Serialize, JsonSchema)]
pub struct Deleted {
    /// True if it existed.
    pub deleted: bool,
}

fn delete(args: NameArgs) -> Result<Structured<Deleted>, ToolError> {
    Ok(Structured(Deleted {
        deleted: store::delete(&args.name)?,
    }))
}

/// Weights to load by hash.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadWeightsArgs {
    /// The network to load them into (same topology).
    pub name: String,
    /// The weights blob, `blake3:<hex>` (as `describe` shows for a network,
    /// or as fetched from a peer).
    pub weights: String,
}

fn load_weights(args: LoadWeightsArgs) -> Result<Structured<Description>, ToolError> {
    let (entry, mut net) = store::load(&args.name)?;
    let bytes = blobs::get(&args.weights)?
        .ok_or_else(|| bad(format!("no blob {} on this host", args.weights)))?;
    net.load_weights(&bytes).map_err(bad)?;
    let entry = store::save(&args.name, &net, Some(&entry))?;
    Ok(Structured(describe_net(entry, &net)))
}

/// A data set to store.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreDataArgs {
    /// Its name.
    pub name: String,
    /// Inline pairs.
    #[serde(default)]
    pub data: Option<InlineData>,
    /// Or FANN `.data` text.
    #[serde(default)]
    pub fann_data: Option<String>,
}

/// A stored data set.
#[derive(Serialize, JsonSchema)]
pub struct StoredData {
    /// Its blob.
    pub blob: String,
    /// Pairs.
    pub pairs: usize,
    /// Inputs per pair.
    pub inputs: usize,
    /// Outputs per pair.
    pub outputs: usize,
}

fn store_data(args: StoreDataArgs) -> Result<Structured<StoredData>, ToolError> {
    let data = match (&args.data, &args.fann_data) {
        (Some(d), None) => inline(d)?,
        (None, Some(text)) => TrainData::parse(text).map_err(bad)?,
        _ => return Err(bad("give exactly one of `data` and `fann_data`")),
    };
    let blob = store::save_data(&args.name, &data)?;
    Ok(Structured(StoredData {
        blob,
        pairs: data.len(),
        inputs: data.num_input(),
        outputs: data.num_output(),
    }))
}

/// The plugin's tools.
/// The stored networks, and each network, as resources.
fn resources(plugin: Plugin) -> Plugin {
    plugin
        .resource(
            Resource::new(store::NETWORKS_URI, "networks", |_| {
                let networks = list(Nothing {})?;
                Ok(vec![ResourceContents::json(
                    store::NETWORKS_URI,
                    &networks.0,
                )?])
            })
            .description("The stored networks: name, shape, weights hash.")
            .mime_type("application/json"),
        )
        .template(
            Template::new(
                format!("{}/{{name}}", store::NETWORKS_URI),
                "network",
                |_, uri, vars| {
                    let name = vars.get("name")?.to_owned();
                    let description = describe(NameArgs { name })?;
                    Ok(vec![ResourceContents::json(uri, &description.0)?])
                },
            )
            .description("One network: its shape, activations, training settings and hashes.")
            .mime_type("application/json"),
        )
}

pub fn plugin() -> Plugin {
    resources(Plugin::new())
        .tool(Tool::new(
            "create",
            "Creates a network: layer sizes, kind (standard, sparse, shortcut), activations, \
             steepness, algorithm, seed.",
            create,
        ))
        .tool(Tool::new(
            "train",
            "Trains a network on inline pairs or a stored data set until the desired error or \
             the epoch limit, reporting progress; saves the result.",
            train,
        ))
        .tool(Tool::new(
            "cascade_train",
            "Grows a shortcut network with Cascade2: adds hidden neurons one at a time until \
             the desired error, reporting progress; saves the result.",
            cascade_train,
        ))
        .tool(Tool::new(
            "run",
            "Runs a network on one or many inputs.",
            run,
        ))
        .tool(Tool::new(
            "test",
            "Measures a network's MSE and failed bits on a data set.",
            test,
        ))
        .tool(Tool::new(
            "import",
            "Stores a FANN .net file as a network.",
            import,
        ))
        .tool(Tool::new("export", "A network as FANN .net text.", export))
        .tool(Tool::new(
            "describe",
            "A network's shape, activations, algorithm and hashes.",
            describe,
        ))
        .tool(Tool::new("list", "Lists the stored networks.", list))
        .tool(Tool::new("delete", "Deletes a network.", delete))
        .tool(Tool::new(
            "load_weights",
            "Loads weights by blob hash into a network of the same topology.",
            load_weights,
        ))
        .tool(Tool::new(
            "store_data",
            "Stores a data set (inline pairs or FANN .data text) for training and testing.",
            store_data,
        ))
}

toolmesh_sdk::export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn xor() -> InlineData {
        InlineData {
            inputs: vec![
                vec![-1.0, -1.0],
                vec![-1.0, 1.0],
                vec![1.0, -1.0],
                vec![1.0, 1.0],
            ],
            outputs: vec![vec![-1.0], vec![1.0], vec![1.0], vec![-1.0]],
        }
    }

    fn create_xor(name: &str) -> Description {
        create(CreateArgs {
            name: name.into(),
            layers: vec![2, 3, 1],
            kind: None,
            connection_rate: None,
            activation_hidden: None,
            activation_output: None,
            steepness: None,
            algorithm: None,
            seed: Some(3),
            replace: false,
        })
        .unwrap()
        .0
    }

    #[test]
    fn create_train_run_export_import() {
        create_xor("xor");
        let trained = train(TrainArgs {
            name: "xor".into(),
            data: Some(xor()),
            data_set: None,
            algorithm: None,
            max_epochs: Some(500),
            desired_error: Some(0.001),
            stop: None,
            learning_rate: None,
            init_seed: None,
            max_ms: None,
        })
        .unwrap()
        .0;
        assert_eq!(trained.stopped, "reached");
        let out = run(RunArgs {
            name: "xor".into(),
            inputs: vec![vec![1.0, -1.0], vec![1.0, 1.0]],
            scaled: None,
        })
        .unwrap()
        .0;
        assert!(
            out.outputs[0][0] > 0.8 && out.outputs[1][0] < -0.8,
            "{:?}",
            out.outputs
        );
        let text = export(NameArgs { name: "xor".into() }).unwrap();
        let copy = import(ImportArgs {
            name: "copy".into(),
            net: text,
            replace: false,
        })
        .unwrap()
        .0;
        assert_eq!(
            copy.entry.weights, trained.entry.weights,
            "same weights, same hash"
        );
        let tested = test(TestArgs {
            name: "copy".into(),
            data: Some(xor()),
            data_set: None,
        })
        .unwrap()
        .0;
        assert!(tested.mse < 0.001);
    }

    #[test]
    fn weights_load_by_hash_into_the_same_topology() {
        let a = create_xor("a");
        create(CreateArgs {
            name: "b".into(),
            layers: vec![2, 3, 1],
            kind: None,
            connection_rate: None,
            activation_hidden: None,
            activation_output: None,
            steepness: None,
            algorithm: None,
            seed: Some(99),
            replace: false,
        })
        .unwrap();
        let b = load_weights(LoadWeightsArgs {
            name: "b".into(),
            weights: a.entry.weights.clone(),
        })
        .unwrap()
        .0;
        assert_eq!(b.entry.weights, a.entry.weights);
    }

    #[test]
    fn bad_input_is_refused() {
        create_xor("n");
        assert!(
            create(CreateArgs {
                name: "n".into(),
                layers: vec![2, 1],
                kind: None,
                connection_rate: None,
                activation_hidden: None,
                activation_output: None,
                steepness: None,
                algorithm: None,
                seed: None,
                replace: false,
            })
            .is_err()
        );
        assert!(matches!(
            run(RunArgs { name: "n".into(), inputs: vec![vec![1.0]], scaled: None }),
            Err(ToolError::InvalidArguments(m)) if m.contains("expected 2 values")
        ));
        assert!(
            import(ImportArgs {
                name: "x".into(),
                net: "garbage".into(),
                replace: false
            })
            .is_err()
        );
        assert!(matches!(
            activation("nope"),
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(
            run(RunArgs {
                name: "missing".into(),
                inputs: vec![],
                scaled: None
            })
            .is_err()
        );
    }
}
