//! OAuth 2.1 resource server: JWT access tokens checked against the keys of
//! a JWKS file (signature, issuer, audience = this server's resource URL,
//! expiry, not-before), with `jsonwebtoken` doing the cryptography. The
//! file is re-read when it changes, so keys rotate without a restart.
//!
//! A token that passed is remembered (by its BLAKE3 hash, until it expires
//! and at most [`REMEMBERED`] of them) so that a client's next request with
//! it costs a hash and a lookup, not a signature check; the memory is
//! dropped whenever the keys change.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::http::config::OAuthConfig;
use crate::identity::{Scope, Zone};

/// Why a token is refused. The message is for the client (and the audit
/// log); it never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or its header names no usable algorithm or key.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Signature, issuer, audience or times are wrong.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The keys could not be read: the operator's problem.
    #[error("the host cannot read its OAuth keys: {0}")]
    Keys(String),
}

/// How many verified tokens are remembered (past it, the memory starts over).
pub const REMEMBERED: usize = 10_000;

/// Who a valid token names.
#[derive(Debug, Clone)]
pub struct TokenIdentity {
    /// The agent (the configured claim, `sub` by default).
    pub agent: String,
    /// The OAuth client (`client_id`, else `azp`), if named.
    pub client: Option<String>,
    /// The scopes it grants that this host knows.
    pub scopes: Vec<Scope>,
    /// Its callers' zone.
    pub zone: Zone,
}

/// Checks tokens for one issuer and audience.
pub struct JwtVerifier {
    config: OAuthConfig,
    audience: String,
    keys: Mutex<KeyCache>,
    verified: Mutex<HashMap<blake3::Hash, Verified>>,
}

/// A token that passed: whom it names and while it is valid (seconds since
/// the Unix epoch).
struct Verified {
    identity: TokenIdentity,
    not_before: u64,
    expires: u64,
}

#[derive(Default)]
struct KeyCache {
    stamp: Option<(SystemTime, u64)>,
    set: Option<Arc<JwkSet>>,
}

impl JwtVerifier {
    /// A verifier for `config`, whose tokens must name `audience`. Reads
    /// the keys now, so a missing or broken file stops the host at start.
    pub fn new(config: OAuthConfig, audience: String) -> Result<Self, TokenError> {
        let verifier = Self {
            audience: config.audience.clone().unwrap_or(audience),
            config,
            keys: Mutex::new(KeyCache::default()),
            verified: Mutex::new(HashMap::new()),
        };
        verifier.keys()?;
        Ok(verifier)
    }

    /// The issuer (for the protected resource metadata).
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Checks `token` and says whom it names.
    pub fn verify(&self, token: &str) -> Result<TokenIdentity, TokenError> {
        let keys = self.keys()?;
        let hash = blake3::hash(token.as_bytes());
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(v) = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&hash)
            && v.not_before <= now
            && now < v.expires
        {
            return Ok(v.identity.clone());
        }
        let (identity, not_before, expires) = self.check(token, &keys)?;
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= REMEMBERED {
            verified.clear();
        }
        verified.insert(
            hash,
            Verified {
                identity: identity.clone(),
                not_before,
                expires,
            },
        );
        Ok(identity)
    }

    /// The full check: header, key, signature, claims. Returns the identity
    /// and the times it is valid between (with the leeway applied).
    fn check(&self, token: &str, keys: &JwkSet) -> Result<(TokenIdentity, u64, u64), TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        let jwk = match &header.kid {
            Some(kid) => keys.find(kid).ok_or_else(|| {
                TokenError::Invalid(format!("no key with id `{}`", truncate(kid)))
            })?,
            None if keys.keys.len() == 1 => &keys.keys[0],
            None => {
                return Err(TokenError::Malformed(
                    "the token names no key (`kid`) and the key set has several".into(),
                ));
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| TokenError::Keys(e.to_string()))?;
        if key.family() != header.alg.family() {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} does not fit the key",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_S;
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let agent = text(&self.config.agent_claim).ok_or_else(|| {
            TokenError::Invalid(format!(
                "the token has no `{}` claim",
                self.config.agent_claim
            ))
        })?;
        let granted: HashSet<&str> = claims
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let scopes = [Scope::Tools, Scope::Admin]
            .into_iter()
            .filter(|s| granted.contains(s.name()))
            .collect();
        let time = |name: &str| claims.get(name).and_then(Value::as_u64);
        let not_before = time("nbf").map_or(0, |t| t.saturating_sub(LEEWAY_S));
        let expires = time("exp").map_or(0, |t| t.saturating_add(LEEWAY_S));
        let identity = TokenIdentity {
            agent,
            client: text("client_id").or_else(|| text("azp")),
            scopes,
            zone: self.config.zone,
        };
        Ok((identity, not_before, expires))
    }

    fn keys(&self) -> Result<Arc<JwkSet>, TokenError> {
        let path: &PathBuf = &self.config.jwks_file;
        let meta = std::fs::metadata(path)
            .map_err(|e| TokenError::Keys(format!("{}: {e}", path.display())))?;
        let stamp = Some((
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        ));
        let mut cache = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(set) = &cache.set
            && cache.stamp == stamp
        {
            return Ok(set.clone());
        }
        {
            let text = std::fs::read_to_string(path)
                .map_err(|e| TokenError::Keys(format!("{}: {e}", path.display())))?;
            let set: JwkSet = serde_json::from_str(&text).map_err(|e| {
                TokenError::Keys(format!("{} is not a JWKS file: {e}", path.display()))
            })?;
            if set.keys.is_empty() {
                return Err(TokenError::Keys(format!("{} has no keys", path.display())));
            }
            let set = Arc::new(set);
            cache.set = Some(set.clone());
            cache.stamp = stamp;
            // Tokens checked against the old keys are checked again.
            self.verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            Ok(set)
        }
    }
}

/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY_S: u64 = 30;

fn truncate(s: &str) -> std::borrow::Cow<'_, str> {
    crate::text::truncate(s, 64)
}
