//! Fuzz entry points: one per parser of outside input. Each takes any bytes
//! and returns normally whatever they are; a panic is a finding. Where a
//! format can be written back, the entry also checks that what it parsed
//! writes out to bytes that parse to the same thing (so a parser that
//! accepts what its writer cannot say is a finding too).
//!
//! `cargo fuzz` (the crate in `fuzz/`, nightly) drives them with libFuzzer;
//! `tests/stable.rs` drives them on stable with a fixed budget in the test
//! command, from the seeds of [`seeds`] and the kept crashing inputs in
//! `regressions/<target>/`.

use std::sync::OnceLock;

use futures::io::Cursor;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use toolmesh::p2p::protocol::{Announcement, Offer, Request, Response, SHARE_PROTOCOL, ShareCodec};

mod seeds;
pub use seeds::seeds;

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// Every entry point, by name (the name of its `cargo fuzz` target).
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("config", config),
    ("signature", signature),
    ("key_file", key_file),
    ("clients_file", clients_file),
    ("net_file", net_file),
    ("train_data", train_data),
    ("weights", weights),
    ("share_request", share_request),
    ("share_response", share_response),
    ("bundle", bundle),
    ("announcement", announcement),
    ("jsonrpc_line", jsonrpc_line),
    ("http_auth", http_auth),
];

/// The entry point named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// A plugin's `plugin.toml`.
pub fn manifest(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = toolmesh::plugin::manifest::Manifest::parse(text);
    }
}

/// `toolmesh.toml`.
pub fn config(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = toolmesh::config::Config::parse(text);
    }
}

/// A plugin's `plugin.sig`: what parses writes back to the same.
pub fn signature(data: &[u8]) {
    use toolmesh::plugin::trust::Signature;
    let Some(text) = text(data) else { return };
    if let Ok(signature) = Signature::parse(text) {
        let written = signature.to_file_text();
        let again = Signature::parse(&written).expect("a written signature parses");
        assert_eq!(again.to_file_text(), written);
    }
}

/// A host or publisher key file: a key read is the key written.
pub fn key_file(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Some(key) = toolmesh::p2p::identity::parse(text) {
        let written = hex::encode(key.secret().as_ref());
        let again = toolmesh::p2p::identity::parse(&written).expect("a written key parses");
        assert_eq!(again.public(), key.public());
    }
}

/// The API clients file (`clients.json`) of a data directory, read by the
/// real store from a real file.
pub fn clients_file(data: &[u8]) {
    use toolmesh::http::auth::keys::ClientStore;
    let dir = scratch_dir();
    let store = ClientStore::new(dir);
    if std::fs::write(store.path(), data).is_ok() {
        let _ = store.list();
    }
}

/// A directory of this process's own for entry points that need files.
fn scratch_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a scratch directory"))
        .path()
}

/// A libfann `.net` file: a network read writes out to text that reads
/// to the same network.
pub fn net_file(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(network) = neural_core::Network::from_fann_str(text) {
        let written = network.to_fann_string();
        let again = neural_core::Network::from_fann_str(&written)
            .unwrap_or_else(|e| panic!("a written network does not read back: {e}\n{written}"));
        assert_eq!(again.to_fann_string(), written);
    }
}

/// A libfann `.data` file, likewise.
pub fn train_data(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(set) = neural_core::TrainData::parse(text) {
        let written = set.to_fann_string();
        let again = neural_core::TrainData::parse(&written)
            .unwrap_or_else(|e| panic!("written data does not read back: {e}\n{written}"));
        assert_eq!(again.to_fann_string(), written);
    }
}

/// The network every weights input is loaded into (2-3-1).
fn weights_network() -> neural_core::Network {
    neural_core::Network::standard(&[2, 3, 1], 7).expect("a 2-3-1 network")
}

/// The `TMNW` weights format: weights loaded write out to bytes that load
/// to the same weights.
pub fn weights(data: &[u8]) {
    let mut network = weights_network();
    if network.load_weights(data).is_ok() {
        let written = network.weights_to_bytes();
        let mut again = weights_network();
        again.load_weights(&written).expect("written weights load");
        assert_eq!(again.weights_to_bytes(), written);
    }
}

fn protocol() -> StreamProtocol {
    StreamProtocol::new(SHARE_PROTOCOL)
}

/// A request frame of the share protocol, as a peer sends it.
pub fn share_request(data: &[u8]) {
    futures::executor::block_on(async {
        let mut codec = ShareCodec;
        let Ok(request) = codec
            .read_request(&protocol(), &mut Cursor::new(data))
            .await
        else {
            return;
        };
        let mut written = Cursor::new(Vec::new());
        codec
            .write_request(&protocol(), &mut written, request.clone())
            .await
            .expect("a request read can be written");
        let again: Request = codec
            .read_request(&protocol(), &mut Cursor::new(written.into_inner()))
            .await
            .expect("a written request reads back");
        assert_eq!(again, request);
    });
}

/// A response frame of the share protocol, as a peer sends it.
pub fn share_response(data: &[u8]) {
    futures::executor::block_on(async {
        let mut codec = ShareCodec;
        let Ok(response) = codec
            .read_response(&protocol(), &mut Cursor::new(data))
            .await
        else {
            return;
        };
        let mut written = Cursor::new(Vec::new());
        codec
            .write_response(&protocol(), &mut written, response.clone())
            .await
            .expect("a response read can be written");
        let again: Response = codec
            .read_response(&protocol(), &mut Cursor::new(written.into_inner()))
            .await
            .expect("a written response reads back");
        assert_eq!(again, response);
    });
}

/// A plugin bundle as fetched from a peer.
pub fn bundle(data: &[u8]) {
    use toolmesh::p2p::bundle::Bundle;
    if let Ok(bundle) = Bundle::decode(data) {
        let again = Bundle::decode(&bundle.encode()).expect("an encoded bundle decodes");
        assert_eq!(again, bundle);
    }
}

/// A gossip announcement (a peer's catalog of offers).
pub fn announcement(data: &[u8]) {
    let Ok(announcement) = serde_json::from_slice::<Announcement>(data) else {
        return;
    };
    for offer in &announcement.offers {
        let _ = offer.check();
        let _ = (offer.name(), offer.size());
    }
    let written = serde_json::to_vec(&announcement).expect("an announcement serializes");
    let again: Announcement = serde_json::from_slice(&written).expect("it reads back");
    assert_eq!(again, announcement);
    let _ = serde_json::from_slice::<Vec<Offer>>(data);
}

/// A line on the stdio edge (or a body at the HTTP edge): the edge calls
/// it unparsable exactly when serde_json cannot read it as a value, and
/// rmcp's message type takes whatever the edge lets through without
/// panicking.
pub fn jsonrpc_line(data: &[u8]) {
    let verdict = toolmesh::mcp::stdio_edge::unparsable(data);
    let value = serde_json::from_slice::<serde_json::Value>(data);
    assert_eq!(
        verdict.is_none(),
        value.is_ok(),
        "the edge says {verdict:?}, serde_json says {:?}",
        value.err()
    );
    if verdict.is_none() {
        let _ = serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(data);
    }
}

/// The HTTP edge's authentication: the input is an `Authorization` header
/// value; a host with one API key accepts exactly that key.
pub fn http_auth(data: &[u8]) {
    let (authenticator, key) = authenticator();
    let Ok(value) = http::HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value);
    let accepted = authenticator.authenticate(&headers).is_ok();
    let presented = std::str::from_utf8(data)
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credential)| credential.trim());
    assert_eq!(
        accepted,
        presented == Some(key.as_str()),
        "accepted {data:?}"
    );
}

/// A host's authenticator with one API key, and that key.
fn authenticator() -> &'static (toolmesh::http::auth::Authenticator, String) {
    use toolmesh::http::auth::Authenticator;
    use toolmesh::http::auth::keys::{ClientStore, NewClient};
    use toolmesh::http::config::HttpConfig;
    static AUTH: OnceLock<(Authenticator, String)> = OnceLock::new();
    AUTH.get_or_init(|| {
        let dir = scratch_dir().join("http");
        std::fs::create_dir_all(&dir).expect("a data directory");
        let key = ClientStore::new(&dir)
            .add(NewClient {
                name: "fuzz".into(),
                agent: "fuzzer".into(),
                scopes: Vec::new(),
                zone: toolmesh::identity::Zone::External,
                limits: None,
            })
            .expect("a client");
        let authenticator =
            Authenticator::new(&HttpConfig::default(), &dir, "http://127.0.0.1/mcp")
                .expect("an authenticator");
        (authenticator, key)
    })
}
