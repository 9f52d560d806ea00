//! Who is asking, over HTTP: a bearer credential (an API key, [`keys`], or
//! an OAuth access token, [`jwt`]) becomes a [`Caller`] whose agent no
//! request can change, or a refusal with the status and
//! `WWW-Authenticate` header RFC 6750 and RFC 9728 ask for.

pub mod jwt;
pub mod keys;

use std::path::Path;

use http::HeaderMap;

use crate::http::config::{AuthMode, ClientLimits, HttpConfig};
use crate::identity::{Caller, Scope};
use jwt::JwtVerifier;
use keys::{ClientStore, KeyIndex, KeyLookup};

/// An authenticated client.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The caller, as the service and plugins see it.
    pub caller: Caller,
    /// The client's name, for limits and the audit log.
    pub client: String,
    /// Its limits.
    pub limits: ClientLimits,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 401 (no or a bad credential) or 403 (a scope is missing).
    pub status: http::StatusCode,
    /// For the client and the audit log; never the credential.
    pub reason: String,
    /// The client, when the credential named one (a revoked key, a token
    /// without the scope).
    pub client: Option<String>,
    /// The `error` of the `WWW-Authenticate` challenge, if any.
    error: Option<&'static str>,
}

impl Refused {
    fn unauthenticated(reason: impl Into<String>, error: Option<&'static str>) -> Self {
        Self {
            status: http::StatusCode::UNAUTHORIZED,
            reason: reason.into(),
            client: None,
            error,
        }
    }

    /// The `WWW-Authenticate` header value, pointing at the metadata.
    pub fn challenge(&self, metadata_url: &str) -> String {
        let mut value = format!("Bearer resource_metadata=\"{metadata_url}\"");
        if let Some(error) = self.error {
            value.push_str(&format!(", error=\"{error}\""));
        }
        if self.status == http::StatusCode::FORBIDDEN {
            value.push_str(&format!(", scope=\"{}\"", Scope::Tools));
        }
        let description = self.reason.replace(['"', '\\'], "'");
        value.push_str(&format!(", error_description=\"{description}\""));
        value
    }
}

/// Authenticates requests as configured.
pub struct Authenticator {
    mode: AuthMode,
    keys: KeyIndex,
    jwt: Option<JwtVerifier>,
    defaults: ClientLimits,
}

impl Authenticator {
    /// The authenticator of `config`, with the API keys of `data_dir` and
    /// tokens for `resource_url`.
    pub fn new(config: &HttpConfig, data_dir: &Path, resource_url: &str) -> anyhow::Result<Self> {
        let jwt = match &config.oauth {
            Some(oauth) => Some(JwtVerifier::new(oauth.clone(), resource_url.to_owned())?),
            None => None,
        };
        Ok(Self {
            mode: config.auth,
            keys: KeyIndex::new(ClientStore::new(data_dir)),
            jwt,
            defaults: config.limits,
        })
    }

    /// The OAuth issuer, if tokens are accepted.
    pub fn issuer(&self) -> Option<&str> {
        self.jwt.as_ref().map(JwtVerifier::issuer)
    }

    /// Whether clients must present credentials (`auth` is not `none`).
    pub fn requires_credentials(&self) -> bool {
        self.mode != AuthMode::None
    }

    /// Who sent a request with `headers`, if they may use the tools.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Authenticated, Refused> {
        if self.mode == AuthMode::None {
            return Ok(Authenticated {
                caller: Caller::local(),
                client: "local".into(),
                limits: self.defaults,
            });
        }
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(Refused::unauthenticated(
                "authentication required: send `Authorization: Bearer <key or token>`",
                None,
            ));
        };
        let credential = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                Refused::unauthenticated(
                    "malformed Authorization header: expected `Bearer <key or token>`",
                    Some("invalid_request"),
                )
            })?;
        let (caller, client, scopes, limits) = if credential.starts_with(keys::PREFIX) {
            self.by_key(credential)?
        } else {
            self.by_token(credential)?
        };
        if !scopes.contains(&Scope::Tools) && !scopes.contains(&Scope::Admin) {
            return Err(Refused {
                status: http::StatusCode::FORBIDDEN,
                reason: format!("client `{client}` lacks the `tools` scope"),
                client: Some(client),
                error: Some("insufficient_scope"),
            });
        }
        Ok(Authenticated {
            caller,
            client,
            limits,
        })
    }

    fn by_key(&self, key: &str) -> Result<(Caller, String, Vec<Scope>, ClientLimits), Refused> {
        let record = match self.keys.lookup(key) {
            Ok(KeyLookup::Client(record)) => record,
            Ok(KeyLookup::Revoked(record)) => {
                return Err(Refused {
                    client: Some(record.name.clone()),
                    ..Refused::unauthenticated(
                        format!("the key of client `{}` was revoked", record.name),
                        Some("invalid_token"),
                    )
                });
            }
            Ok(KeyLookup::Unknown) => {
                return Err(Refused::unauthenticated(
                    "unknown API key",
                    Some("invalid_token"),
                ));
            }
            Err(e) => {
                tracing::error!("cannot read the API keys: {e}");
                return Err(Refused::unauthenticated(
                    "the host cannot check API keys right now",
                    None,
                ));
            }
        };
        let caller = Caller {
            agent: Some(record.agent.clone()),
            client: Some(record.name.clone()),
            zone: record.zone,
            admin: record.scopes.contains(&Scope::Admin),
            authenticated: true,
        };
        let limits = record.limits.unwrap_or(self.defaults);
        Ok((caller, record.name.clone(), record.scopes.clone(), limits))
    }

    fn by_token(&self, token: &str) -> Result<(Caller, String, Vec<Scope>, ClientLimits), Refused> {
        let Some(jwt) = &self.jwt else {
            return Err(Refused::unauthenticated(
                "unknown API key (this host accepts no OAuth tokens)",
                Some("invalid_token"),
            ));
        };
        let id = jwt
            .verify(token)
            .map_err(|e| Refused::unauthenticated(e.to_string(), Some("invalid_token")))?;
        let client = id.client.clone().unwrap_or_else(|| id.agent.clone());
        let caller = Caller {
            agent: Some(id.agent),
            client: Some(client.clone()),
            zone: id.zone,
            admin: id.scopes.contains(&Scope::Admin),
            authenticated: true,
        };
        Ok((caller, client, id.scopes, self.defaults))
    }
}
