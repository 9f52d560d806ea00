//! The compact binary weight format for sharing trained networks between
//! peers: the weights as little-endian `f32`, behind a header that names the
//! topology they belong to.
//!
//! ```text
//! "TMNW" | version u8 = 1 | topology hash [32] | count u32 LE | count × f32 LE
//! ```
//!
//! The topology hash is BLAKE3 over the network type, the layers, every
//! neuron's inputs, activation function and steepness, and every
//! connection's source: weights load only into a network of exactly that
//! shape.

use crate::network::Network;

const MAGIC: &[u8; 4] = b"TMNW";
const VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 32 + 4;

/// Why weights do not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsError {
    /// Not this format.
    #[error("not a toolmesh weights blob: {0}")]
    Format(String),
    /// For a different topology.
    #[error("the weights are for topology {expected}, this network is {actual}")]
    Topology {
        /// The blob's topology hash.
        expected: String,
        /// The network's.
        actual: String,
    },
}

impl Network {
    /// The topology hash (hex).
    pub fn topology_hash(&self) -> String {
        self.topology_digest().to_hex().to_string()
    }

    fn topology_digest(&self) -> blake3::Hash {
        let mut h = blake3::Hasher::new();
        h.update(b"toolmesh-neural-topology-v1");
        h.update(&[self.network_type as u8]);
        h.update(&(self.layers.len() as u64).to_le_bytes());
        for l in &self.layers {
            h.update(&((l.last - l.first) as u64).to_le_bytes());
        }
        for n in &self.neurons {
            h.update(&((n.last_con - n.first_con) as u64).to_le_bytes());
            h.update(&[n.activation as u8]);
            h.update(&n.steepness.to_le_bytes());
        }
        for &c in &self.connections {
            h.update(&(c as u64).to_le_bytes());
        }
        h.finalize()
    }

    /// The weights in the binary format.
    pub fn weights_to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 4 * self.weights.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(self.topology_digest().as_bytes());
        out.extend_from_slice(&(self.weights.len() as u32).to_le_bytes());
        for w in &self.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Loads weights in the binary format; the topology must match.
    pub fn load_weights(&mut self, bytes: &[u8]) -> Result<(), WeightsError> {
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return Err(WeightsError::Format("bad magic or too short".into()));
        }
        if bytes[4] != VERSION {
            return Err(WeightsError::Format(format!(
                "unknown version {}",
                bytes[4]
            )));
        }
        let topology = &bytes[5..37];
        let actual = self.topology_digest();
        if topology != actual.as_bytes() {
            let expected: String = topology.iter().map(|b| format!("{b:02x}")).collect();
            return Err(WeightsError::Topology {
                expected,
                actual: actual.to_hex().to_string(),
            });
        }
        let count = u32::from_le_bytes([bytes[37], bytes[38], bytes[39], bytes[40]]) as usize;
        let body = &bytes[HEADER..];
        if count != self.weights.len() || body.len() != 4 * count {
            return Err(WeightsError::Format(format!(
                "{count} weights declared, {} bytes present, {} expected",
                body.len(),
                self.weights.len()
            )));
        }
        let weights: Vec<f32> = body
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if weights.iter().any(|w| !w.is_finite()) {
            return Err(WeightsError::Format(
                "a weight is not a finite number".into(),
            ));
        }
        self.weights = weights;
        self.reset_training();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_move_between_networks_of_one_topology_only() {
        let mut a = Network::standard(&[2, 4, 1], 1).unwrap();
        let mut b = Network::standard(&[2, 4, 1], 2).unwrap();
        assert_eq!(a.topology_hash(), b.topology_hash());
        b.load_weights(&a.weights_to_bytes()).unwrap();
        assert_eq!(a.run(&[0.1, 0.2]).unwrap(), b.run(&[0.1, 0.2]).unwrap());
        let mut c = Network::standard(&[2, 5, 1], 1).unwrap();
        assert!(matches!(
            c.load_weights(&a.weights_to_bytes()),
            Err(WeightsError::Topology { .. })
        ));
        let mut bytes = a.weights_to_bytes();
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(
            b.load_weights(&bytes),
            Err(WeightsError::Format(_))
        ));
        assert!(b.load_weights(b"junk").is_err());
    }
}
