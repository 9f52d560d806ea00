//! Seeds: real, valid inputs of each target, written by the project's own
//! code (a network saved, a bundle encoded, a frame written) or taken from
//! its files (the plugins' manifests), for fuzzers to mutate from.

use futures::io::Cursor;
use libp2p::request_response::Codec;
use toolmesh::p2p::bundle::Bundle;
use toolmesh::p2p::protocol::{Announcement, Offer, Request, Response, ShareCodec};

const MANIFESTS: &[&str] = &[
    include_str!("../../../examples/hello/plugin.toml"),
    include_str!("../../../plugins/budget/plugin.toml"),
    include_str!("../../../plugins/discovery/plugin.toml"),
    include_str!("../../../plugins/neural/plugin.toml"),
    include_str!("../../../plugins/permission/plugin.toml"),
    include_str!("../../../tests/plugins/hostile/plugin.toml"),
    include_str!("../../../tests/plugins/conformance/plugin.toml"),
];

/// A `toolmesh.toml` with every section.
const CONFIG: &str = r#"
data_dir = "/var/lib/toolmesh"
plugins_dir = "/etc/toolmesh/plugins"
bundled_plugins = true
watch_plugins = true

[runtime]
max_concurrent_calls = 128
compile_cache = true
fuel_metering = true
startup_wait_ms = 5000

[levels.untrusted]
timeout_ms = 5000
capabilities = ["log", "kv"]

[levels.batch]
fuel = 20_000_000_000
memory_bytes = 536_870_912

[levels.batch.breaker]
failures = 5

[plugins.hello]
level = "trusted"
prefix = true
[plugins.hello.config]
greeting = "hi"

[trust]
publishers = ["ed25519:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"]
unsigned = "untrusted"

[http]
listen = "127.0.0.1:8080"
allowed_hosts = ["localhost"]
max_body_bytes = 4194304

[http.limits]
requests_per_s = 50
burst = 100

[p2p]
enabled = true
listen = ["/ip4/0.0.0.0/tcp/0"]
bootstrap = []

[[alerts]]
kind = "error_ratio"
threshold = 0.5
"#;

const KEY: &str = "9f2c4c1e5a3b7d6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60";

/// The seeds of target `name` (none for an unknown name).
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    let texts = |texts: &[&str]| texts.iter().map(|t| t.as_bytes().to_vec()).collect();
    match name {
        "manifest" => texts(MANIFESTS),
        "config" => texts(&[CONFIG, "", "[runtime]\nfuel_metering = false\n"]),
        "signature" => texts(&[&format!(
            "publisher = \"ed25519:{KEY}\"\nsignature = \"{}\"\n",
            "ab".repeat(64)
        )]),
        "key_file" => texts(&[&format!("{KEY}\n")]),
        "clients_file" => vec![clients_file()],
        "net_file" => networks()
            .iter()
            .map(|n| n.to_fann_string().into_bytes())
            .collect(),
        "train_data" => vec![train_set().to_fann_string().into_bytes()],
        "weights" => {
            let network = neural_core::Network::standard(&[2, 3, 1], 7).expect("a network");
            vec![network.weights_to_bytes()]
        }
        "share_request" => share_requests(),
        "share_response" => share_responses(),
        "bundle" => vec![
            Bundle {
                manifest_text: MANIFESTS[0].to_owned(),
                signature_text: Some(format!("publisher = \"ed25519:{KEY}\"\n")),
                component: b"\0asm\x0d\0\x01\0component bytes".to_vec(),
            }
            .encode(),
        ],
        "announcement" => {
            vec![serde_json::to_vec(&Announcement { offers: offers() }).expect("json")]
        }
        "jsonrpc_line" => texts(&[
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"hello__greet","arguments":{"name":"\u00e9"}}}"#,
            r#"[{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
            "not json",
        ]),
        "http_auth" => texts(&[
            "Bearer tm_0123456789abcdef",
            "bearer  eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
            "Basic dXNlcjpwYXNz",
        ]),
        _ => Vec::new(),
    }
}

fn networks() -> Vec<neural_core::Network> {
    let mut networks = vec![
        neural_core::Network::standard(&[2, 3, 1], 1).expect("standard"),
        neural_core::Network::shortcut(&[2, 2, 1], 2).expect("shortcut"),
    ];
    networks.extend(neural_core::Network::sparse(0.5, &[3, 4, 2], 3).ok());
    networks
}

fn train_set() -> neural_core::TrainData {
    neural_core::TrainData::new(&[
        (vec![0.0, 1.0], vec![1.0]),
        (vec![1.0, 0.0], vec![1.0]),
        (vec![-1.5, 2.25e-3], vec![0.0]),
    ])
    .expect("a training set")
}

fn offers() -> Vec<Offer> {
    let hash = format!("blake3:{}", "0f".repeat(32));
    vec![
        Offer::Plugin {
            name: "hello".into(),
            version: "0.1.0".into(),
            publisher: Some(format!("ed25519:{KEY}")),
            hash: hash.clone(),
            size: 1234,
        },
        Offer::Weights {
            network: "xor".into(),
            topology: "ab".repeat(32),
            hash,
            size: 77,
        },
    ]
}

fn share_requests() -> Vec<Vec<u8>> {
    let hash = format!("blake3:{}", "0f".repeat(32));
    [
        Request::Catalog,
        Request::Tree { hash: hash.clone() },
        Request::Chunk { hash, index: 3 },
    ]
    .into_iter()
    .map(|request| {
        futures::executor::block_on(async {
            let mut out = Cursor::new(Vec::new());
            let protocol = libp2p::StreamProtocol::new(toolmesh::p2p::protocol::SHARE_PROTOCOL);
            ShareCodec
                .write_request(&protocol, &mut out, request)
                .await
                .expect("written");
            out.into_inner()
        })
    })
    .collect()
}

fn share_responses() -> Vec<Vec<u8>> {
    [
        Response::Catalog(offers()),
        Response::Tree {
            size: 3 << 20,
            cvs: vec![[7; 32], [9; 32]],
        },
        Response::Chunk(vec![1, 2, 3, 4]),
        Response::Missing("not provided".into()),
    ]
    .into_iter()
    .map(|response| {
        futures::executor::block_on(async {
            let mut out = Cursor::new(Vec::new());
            let protocol = libp2p::StreamProtocol::new(toolmesh::p2p::protocol::SHARE_PROTOCOL);
            ShareCodec
                .write_response(&protocol, &mut out, response)
                .await
                .expect("written");
            out.into_inner()
        })
    })
    .collect()
}

/// A real clients file: the store's own, with one client.
fn clients_file() -> Vec<u8> {
    use toolmesh::http::auth::keys::{ClientStore, NewClient};
    let dir = tempfile::tempdir().expect("a directory");
    let store = ClientStore::new(dir.path());
    store
        .add(NewClient {
            name: "seed".into(),
            agent: "seeder".into(),
            scopes: vec![toolmesh::identity::Scope::Admin],
            zone: toolmesh::identity::Zone::Trusted,
            limits: None,
        })
        .expect("a client");
    std::fs::read(store.path()).expect("the file")
}
