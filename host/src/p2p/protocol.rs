//! What hosts say to each other: offers (what a host provides), announced
//! over gossipsub, and the `/toolmesh/share/1` request-response protocol
//! that lists a peer's offers and transfers blobs chunk by chunk.
//!
//! Every frame on a share stream is `tag u8 | length u32 LE | payload`:
//! tag 0 is a JSON message, tag 1 the raw bytes of a chunk. Lengths are
//! checked before anything is read, so an oversized frame costs its sender a
//! strike, not the receiver memory.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::{Deserialize, Serialize};

use super::tree::CHUNK_BYTES;
use crate::content_hash::ContentHash;

/// The share protocol's name.
pub const SHARE_PROTOCOL: &str = "/toolmesh/share/1";

/// The gossipsub topic offers are announced on.
pub const ANNOUNCE_TOPIC: &str = "toolmesh/offers/1";

/// Largest JSON message (a request, a catalog, a chunk list).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Most offers one catalog or announcement may carry.
pub const MAX_OFFERS: usize = 1024;

/// Largest blob a host will fetch.
pub const MAX_BLOB_BYTES: u64 = 4 << 30;

const TAG_JSON: u8 = 0;
const TAG_CHUNK: u8 = 1;

/// Something a host provides, named by the content hash of its blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Offer {
    /// A plugin bundle (manifest, signature, component).
    Plugin {
        /// The plugin's name.
        name: String,
        /// Its version.
        version: String,
        /// Who signed it (`ed25519:…`), if anyone: a claim until the bundle's
        /// signature is checked.
        publisher: Option<String>,
        /// The bundle's hash.
        hash: String,
        /// The bundle's size in bytes.
        size: u64,
    },
    /// A neural network's weights (the `TMNW` format).
    Weights {
        /// The network's name on the publishing host.
        network: String,
        /// The topology hash the weights belong to.
        topology: String,
        /// The weights blob's hash.
        hash: String,
        /// Its size in bytes.
        size: u64,
    },
}

impl Offer {
    /// The blob's hash, as written.
    pub fn hash_text(&self) -> &str {
        match self {
            Offer::Plugin { hash, .. } | Offer::Weights { hash, .. } => hash,
        }
    }

    /// The blob's size.
    pub fn size(&self) -> u64 {
        match self {
            Offer::Plugin { size, .. } | Offer::Weights { size, .. } => *size,
        }
    }

    /// The name agents look it up by (plugin or network name).
    pub fn name(&self) -> &str {
        match self {
            Offer::Plugin { name, .. } => name,
            Offer::Weights { network, .. } => network,
        }
    }

    /// Checks an offer from a peer: a real hash, a plausible size, names of
    /// sane length.
    pub fn check(&self) -> Result<ContentHash, String> {
        let hash: ContentHash = self.hash_text().parse()?;
        if self.size() > MAX_BLOB_BYTES {
            return Err(format!("offer of {} bytes is too large", self.size()));
        }
        let short = |s: &str| !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control);
        let ok = match self {
            Offer::Plugin {
                name,
                version,
                publisher,
                ..
            } => short(name) && short(version) && publisher.as_deref().is_none_or(short),
            Offer::Weights {
                network, topology, ..
            } => short(network) && short(topology),
        };
        if ok {
            Ok(hash)
        } else {
            Err("offer with a missing, overlong or unprintable name".into())
        }
    }
}

/// An announcement on the gossipsub topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    /// Everything the sender provides.
    pub offers: Vec<Offer>,
}

/// A request on the share protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// What do you provide?
    Catalog,
    /// The chunk list of blob `hash`.
    Tree {
        /// The blob.
        hash: String,
    },
    /// Chunk `index` of blob `hash`.
    Chunk {
        /// The blob.
        hash: String,
        /// Which chunk.
        index: u64,
    },
}

/// A response on the share protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The provider's offers.
    Catalog(Vec<Offer>),
    /// A blob's size and the chaining values of its chunks.
    Tree {
        /// The blob's size.
        size: u64,
        /// The chunks' chaining values (none for a one-chunk blob).
        cvs: Vec<[u8; 32]>,
    },
    /// A chunk's bytes.
    Chunk(Vec<u8>),
    /// The provider does not have that blob (or refused).
    Missing(String),
}

/// The JSON forms of the non-chunk responses.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum JsonResponse {
    Catalog { offers: Vec<Offer> },
    Tree { size: u64, cvs: String },
    Missing { reason: String },
}

/// The share protocol's codec.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShareCodec;

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    io.read_exact(&mut head).await?;
    let tag = head[0];
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let limit = match tag {
        TAG_JSON => MAX_MESSAGE_BYTES,
        TAG_CHUNK => CHUNK_BYTES as usize,
        other => return Err(invalid(format!("unknown frame tag {other}"))),
    };
    if len > limit {
        return Err(invalid(format!(
            "frame of {len} bytes exceeds the limit of {limit}"
        )));
    }
    let mut payload = vec![0; len];
    io.read_exact(&mut payload).await?;
    Ok((tag, payload))
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    tag: u8,
    payload: &[u8],
) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| invalid("frame too large"))?;
    let mut head = [tag, 0, 0, 0, 0];
    head[1..].copy_from_slice(&len.to_le_bytes());
    io.write_all(&head).await?;
    io.write_all(payload).await?;
    io.flush().await
}

fn json<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| invalid(e.to_string()))
}

/// Decodes a response frame.
pub fn decode_response(tag: u8, payload: &[u8]) -> io::Result<Response> {
    if tag == TAG_CHUNK {
        return Ok(Response::Chunk(payload.to_vec()));
    }
    let message: JsonResponse =
        serde_json::from_slice(payload).map_err(|e| invalid(format!("bad response: {e}")))?;
    Ok(match message {
        JsonResponse::Catalog { offers } if offers.len() <= MAX_OFFERS => Response::Catalog(offers),
        JsonResponse::Catalog { offers } => {
            return Err(invalid(format!("catalog of {} offers", offers.len())));
        }
        JsonResponse::Tree { size, cvs } => {
            let bytes = hex::decode(cvs).map_err(|_| invalid("chunk list is not hex"))?;
            if bytes.len() % 32 != 0 {
                return Err(invalid("chunk list is not whole chaining values"));
            }
            let cvs = bytes
                .chunks_exact(32)
                .map(|c| <[u8; 32]>::try_from(c).unwrap_or_default())
                .collect();
            Response::Tree { size, cvs }
        }
        JsonResponse::Missing { reason } => Response::Missing(reason),
    })
}

impl libp2p::request_response::Codec for ShareCodec {
    type Protocol = libp2p::StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_frame(io).await? {
            (TAG_JSON, payload) => {
                serde_json::from_slice(&payload).map_err(|e| invalid(format!("bad request: {e}")))
            }
            _ => Err(invalid("a request must be JSON")),
        }
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let (tag, payload) = read_frame(io).await?;
        decode_response(tag, &payload)
    }

    async fn write_request<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        request: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, TAG_JSON, &json(&request)?).await
    }

    async fn write_response<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        response: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match response {
            Response::Chunk(bytes) => write_frame(io, TAG_CHUNK, &bytes).await,
            Response::Catalog(offers) => {
                write_frame(io, TAG_JSON, &json(&JsonResponse::Catalog { offers })?).await
            }
            Response::Tree { size, cvs } => {
                let cvs = hex::encode(cvs.concat());
                write_frame(io, TAG_JSON, &json(&JsonResponse::Tree { size, cvs })?).await
            }
            Response::Missing(reason) => {
                write_frame(io, TAG_JSON, &json(&JsonResponse::Missing { reason })?).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::request_response::Codec;

    fn protocol() -> libp2p::StreamProtocol {
        libp2p::StreamProtocol::new(SHARE_PROTOCOL)
    }

    async fn round_trip(response: Response) -> io::Result<Response> {
        let mut wire = futures::io::Cursor::new(Vec::new());
        ShareCodec
            .write_response(&protocol(), &mut wire, response)
            .await?;
        let mut wire = futures::io::Cursor::new(wire.into_inner());
        ShareCodec.read_response(&protocol(), &mut wire).await
    }

    #[tokio::test]
    async fn messages_survive_the_wire() {
        let offer = Offer::Weights {
            network: "xor".into(),
            topology: "ab".into(),
            hash: ContentHash::of(b"w").to_string(),
            size: 1,
        };
        for response in [
            Response::Catalog(vec![offer]),
            Response::Tree {
                size: 3 << 20,
                cvs: vec![[7; 32], [9; 32], [1; 32]],
            },
            Response::Chunk(vec![5; 1000]),
            Response::Missing("gone".into()),
        ] {
            assert_eq!(round_trip(response.clone()).await.unwrap(), response);
        }
        let mut wire = futures::io::Cursor::new(Vec::new());
        let request = Request::Chunk {
            hash: "h".into(),
            index: 4,
        };
        ShareCodec
            .write_request(&protocol(), &mut wire, request.clone())
            .await
            .unwrap();
        let mut wire = futures::io::Cursor::new(wire.into_inner());
        assert_eq!(
            ShareCodec
                .read_request(&protocol(), &mut wire)
                .await
                .unwrap(),
            request
        );
    }

    #[tokio::test]
    async fn oversized_unknown_and_garbled_frames_are_refused() {
        let frame = |tag: u8, len: u32, body: &[u8]| {
            let mut bytes = vec![tag];
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(body);
            futures::io::Cursor::new(bytes)
        };
        let huge = (CHUNK_BYTES + 1) as u32;
        for mut wire in [
            frame(TAG_CHUNK, huge, b""),
            frame(TAG_JSON, (MAX_MESSAGE_BYTES + 1) as u32, b""),
            frame(9, 1, b"x"),
            frame(TAG_JSON, 5, b"{{{{{"),
            frame(TAG_JSON, 10, b"short"),
        ] {
            let error = ShareCodec
                .read_response(&protocol(), &mut wire)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    error.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ),
                "{error}"
            );
        }
        let mut chunk_as_request = frame(TAG_CHUNK, 1, b"x");
        assert!(
            ShareCodec
                .read_request(&protocol(), &mut chunk_as_request)
                .await
                .is_err()
        );
    }

    #[test]
    fn offers_from_peers_are_checked() {
        let good = Offer::Plugin {
            name: "hello".into(),
            version: "1.0.0".into(),
            publisher: None,
            hash: ContentHash::of(b"b").to_string(),
            size: 10,
        };
        assert!(good.check().is_ok());
        let mut bad_hash = good.clone();
        if let Offer::Plugin { hash, .. } = &mut bad_hash {
            *hash = "blake3:zz".into();
        }
        assert!(bad_hash.check().is_err());
        let mut long_name = good.clone();
        if let Offer::Plugin { name, .. } = &mut long_name {
            *name = "x".repeat(500);
        }
        assert!(long_name.check().is_err());
        let mut huge = good;
        if let Offer::Plugin { size, .. } = &mut huge {
            *size = u64::MAX;
        }
        assert!(huge.check().is_err());
    }
}
