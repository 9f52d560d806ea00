//! Plugin signatures and the trust they earn.
//!
//! A publisher signs a plugin with an ed25519 key: the signature covers the
//! exact bytes of `plugin.toml` and the BLAKE3 hash of the component, so a
//! changed manifest (a higher level, more capabilities) or a changed
//! component breaks it. It travels beside the manifest as `plugin.sig`:
//!
//! ```toml
//! publisher = "ed25519:<64 hex digits>"
//! signature = "<128 hex digits>"
//! ```
//!
//! The operator lists the publishers they trust in `toolmesh.toml`
//! (`[trust] publishers`). What a plugin may be then depends on where it came
//! from and who signed it; see [`TrustPolicy`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use libp2p::identity::ed25519;
use serde::Deserialize;

use crate::content_hash::ContentHash;

/// The file beside `plugin.toml` that holds the signature.
pub const SIGNATURE_FILE: &str = "plugin.sig";

/// What a signature commits to comes after this domain separator, so that a
/// plugin signature can never be mistaken for any other signed message.
const DOMAIN: &[u8] = b"toolmesh plugin signature v1\0";

/// A publisher's public key, written `ed25519:<64 hex digits>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublisherKey([u8; 32]);

impl PublisherKey {
    /// The public half of `keypair`.
    pub fn of(keypair: &ed25519::Keypair) -> Self {
        Self(keypair.public().to_bytes())
    }

    fn public(&self) -> Result<ed25519::PublicKey, SignatureError> {
        ed25519::PublicKey::try_from_bytes(&self.0).map_err(|_| {
            SignatureError::Malformed("the publisher key is not an ed25519 key".into())
        })
    }
}

impl fmt::Display for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for PublisherKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("publisher key `{s}` must be `ed25519:` and 64 hex digits");
        let digits = s.trim().strip_prefix("ed25519:").ok_or_else(bad)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| bad())?;
        ed25519::PublicKey::try_from_bytes(&bytes)
            .map_err(|_| format!("publisher key `{s}` is not a valid ed25519 point"))?;
        Ok(Self(bytes))
    }
}

impl<'de> Deserialize<'de> for PublisherKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for PublisherKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature file is not readable as one.
    #[error("malformed {SIGNATURE_FILE}: {0}")]
    Malformed(String),
    /// The signature does not match the manifest and component.
    #[error(
        "the signature by {0} does not match this manifest and component: the plugin was \
         changed after it was signed"
    )]
    Mismatch(PublisherKey),
}

/// A publisher's signature over one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Who signed.
    pub publisher: PublisherKey,
    bytes: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    publisher: PublisherKey,
    signature: String,
}

/// The message a plugin signature covers.
fn message(manifest_text: &[u8], component: &ContentHash) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + 64);
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(blake3::hash(manifest_text).as_bytes());
    message.extend_from_slice(component.0.as_bytes());
    message
}

impl Signature {
    /// Signs the plugin whose manifest is `manifest_text` and whose component
    /// hashes to `component`.
    pub fn sign(keypair: &ed25519::Keypair, manifest_text: &[u8], component: &ContentHash) -> Self {
        Self {
            publisher: PublisherKey::of(keypair),
            bytes: keypair.sign(&message(manifest_text, component)),
        }
    }

    /// Checks the signature against the manifest and component.
    pub fn verify(
        &self,
        manifest_text: &[u8],
        component: &ContentHash,
    ) -> Result<(), SignatureError> {
        if self
            .publisher
            .public()?
            .verify(&message(manifest_text, component), &self.bytes)
        {
            Ok(())
        } else {
            Err(SignatureError::Mismatch(self.publisher.clone()))
        }
    }

    /// Reads a `plugin.sig` file's text.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let file: SignatureFile =
            toml::from_str(text).map_err(|e| SignatureError::Malformed(e.message().to_owned()))?;
        let bytes = hex::decode(file.signature.trim())
            .ok()
            .filter(|b| b.len() == 64)
            .ok_or_else(|| {
                SignatureError::Malformed("`signature` must be 128 hex digits".into())
            })?;
        Ok(Self {
            publisher: file.publisher,
            bytes,
        })
    }

    /// The `plugin.sig` text.
    pub fn to_file_text(&self) -> String {
        format!(
            "# toolmesh plugin signature: ed25519 over plugin.toml and the component's hash\n\
             publisher = \"{}\"\nsignature = \"{}\"\n",
            self.publisher,
            hex::encode(&self.bytes)
        )
    }
}

/// Where a plugin came from and who vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Built into the host.
    Bundled,
    /// Signed by a publisher the operator trusts.
    TrustedPublisher(PublisherKey),
    /// Put in the plugin directory by the operator, unsigned (or signed by a
    /// key the operator does not list).
    Local {
        /// The valid signature's publisher, if it had one.
        signed_by: Option<PublisherKey>,
    },
    /// Received from a peer, signed by a trusted publisher.
    FromPeer {
        /// The publisher.
        publisher: PublisherKey,
        /// The peer it came from.
        peer: String,
    },
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::Bundled => f.write_str("bundled"),
            Trust::TrustedPublisher(key) => write!(f, "signed by trusted {key}"),
            Trust::Local { signed_by: None } => f.write_str("local, unsigned"),
            Trust::Local {
                signed_by: Some(key),
            } => write!(f, "local, signed by untrusted {key}"),
            Trust::FromPeer { publisher, peer } => {
                write!(f, "from peer {peer}, signed by trusted {publisher}")
            }
        }
    }
}

/// The operator's trust settings (`[trust]` in `toolmesh.toml`).
///
/// - A plugin signed by a listed publisher runs at the level it asks for.
/// - A local plugin that is unsigned (or signed by an unlisted key) runs at
///   most at the `unsigned` level if one is set (by default, as it asks),
///   or is refused when that is `"none"`.
/// - A plugin received from a peer must be signed by a listed publisher and
///   runs at most at the `peer` level.
///
/// "At most" compares levels by what they allow: a level is within another
/// when each of its quotas is no larger and its capabilities are a subset.
/// A plugin asking for more than its ceiling gets, quota by quota, the
/// smaller of the two (see [`crate::level::Levels::capped`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustPolicy {
    /// Trusted publisher keys.
    pub publishers: BTreeSet<PublisherKey>,
    /// Ceiling for local plugins without a trusted signature (none: as they
    /// ask); `"none"` refuses them.
    pub unsigned: Option<String>,
    /// Ceiling for plugins installed from peers.
    pub peer: String,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        Self {
            publishers: BTreeSet::new(),
            unsigned: None,
            peer: "standard".into(),
        }
    }
}

/// The file an install from a peer leaves in the plugin's directory, saying
/// which peer it came from, so that it keeps the peer ceiling after a
/// restart.
pub const PROVENANCE_FILE: &str = "provenance.toml";

/// What `provenance.toml` records.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The peer the plugin was fetched from.
    pub peer: String,
    /// The content hash of the bundle it arrived in.
    pub bundle: String,
}

/// The value of [`TrustPolicy::unsigned`] that refuses unsigned plugins.
pub const REFUSE: &str = "none";

/// Why a plugin from a peer is refused.
#[derive(Debug, thiserror::Error)]
pub enum PeerRefusal {
    /// It carries no signature.
    #[error("unsigned: a plugin from a peer must be signed by a trusted publisher")]
    Unsigned,
    /// Its signature is malformed or does not match it.
    #[error("tampered: {0}")]
    Tampered(#[from] SignatureError),
    /// A valid signature, by a key the operator does not trust.
    #[error("signed by {0}, which is not a trusted publisher (`[trust] publishers`)")]
    Untrusted(PublisherKey),
}

impl TrustPolicy {
    /// Whether `key` is a trusted publisher.
    pub fn trusts(&self, key: &PublisherKey) -> bool {
        self.publishers.contains(key)
    }

    /// The level a plugin with `trust` may run at at most (`None`: as it
    /// asks; `Some(REFUSE)`: not at all).
    pub fn ceiling(&self, trust: &Trust) -> Option<&str> {
        match trust {
            Trust::Bundled | Trust::TrustedPublisher(_) => None,
            Trust::Local { .. } => self.unsigned.as_deref(),
            Trust::FromPeer { .. } => Some(&self.peer),
        }
    }

    /// Checks a plugin that came from a peer: `signature` (the text of its
    /// `plugin.sig`) must be there, match `manifest_text` and `component`
    /// exactly, and name a trusted publisher. Returns the signature.
    pub fn check_from_peer(
        &self,
        signature: Option<&str>,
        manifest_text: &[u8],
        component: &ContentHash,
    ) -> Result<Signature, PeerRefusal> {
        let signature = Signature::parse(signature.ok_or(PeerRefusal::Unsigned)?)?;
        signature.verify(manifest_text, component)?;
        if !self.trusts(&signature.publisher) {
            return Err(PeerRefusal::Untrusted(signature.publisher));
        }
        Ok(signature)
    }

    /// The trust a local plugin earns with `signature` (already verified).
    pub fn classify(&self, signature: Option<&Signature>) -> Trust {
        match signature {
            Some(s) if self.trusts(&s.publisher) => Trust::TrustedPublisher(s.publisher.clone()),
            Some(s) => Trust::Local {
                signed_by: Some(s.publisher.clone()),
            },
            None => Trust::Local { signed_by: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair(seed: u8) -> ed25519::Keypair {
        ed25519::Keypair::from(ed25519::SecretKey::try_from_bytes([seed; 32]).unwrap())
    }

    #[test]
    fn a_signature_covers_the_manifest_and_the_component() {
        let key = keypair(7);
        let wasm = ContentHash::of(b"component");
        let manifest = b"name = \"x\"\nlevel = \"untrusted\"\n";
        let signature = Signature::sign(&key, manifest, &wasm);
        let parsed = Signature::parse(&signature.to_file_text()).unwrap();
        assert_eq!(parsed, signature);
        parsed.verify(manifest, &wasm).unwrap();

        let raised = b"name = \"x\"\nlevel = \"trusted\"\n";
        assert!(matches!(
            parsed.verify(raised, &wasm),
            Err(SignatureError::Mismatch(_))
        ));
        let other = ContentHash::of(b"another component");
        assert!(parsed.verify(manifest, &other).is_err());
    }

    #[test]
    fn malformed_signature_files_and_keys_are_refused() {
        for text in [
            "",
            "publisher = \"ed25519:00\"\nsignature = \"00\"",
            "publisher = \"rsa:abc\"\nsignature = \"00\"",
            &format!(
                "publisher = \"{}\"\nsignature = \"zz\"",
                PublisherKey::of(&keypair(1))
            ),
            &format!(
                "publisher = \"{}\"\nsignature = \"{}\"\nextra = 1",
                PublisherKey::of(&keypair(1)),
                "00".repeat(64)
            ),
        ] {
            assert!(
                matches!(Signature::parse(text), Err(SignatureError::Malformed(_))),
                "{text}"
            );
        }
        let key = PublisherKey::of(&keypair(3));
        assert_eq!(key.to_string().parse::<PublisherKey>().unwrap(), key);
    }

    #[test]
    fn trust_follows_the_publisher_list() {
        let trusted = keypair(1);
        let stranger = keypair(2);
        let policy = TrustPolicy {
            publishers: [PublisherKey::of(&trusted)].into(),
            ..TrustPolicy::default()
        };
        let wasm = ContentHash::of(b"c");
        let by_trusted = Signature::sign(&trusted, b"m", &wasm);
        let by_stranger = Signature::sign(&stranger, b"m", &wasm);
        assert!(matches!(
            policy.classify(Some(&by_trusted)),
            Trust::TrustedPublisher(_)
        ));
        assert_eq!(
            policy.classify(Some(&by_stranger)),
            Trust::Local {
                signed_by: Some(PublisherKey::of(&stranger))
            }
        );
        assert_eq!(policy.classify(None), Trust::Local { signed_by: None });
    }
}
