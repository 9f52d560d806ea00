//! `[http]` in `toolmesh.toml`: where MCP over Streamable HTTP listens, how
//! clients authenticate, and the limits every connection and client lives
//! under. The defaults are the safe ones: loopback only, authentication
//! required, bounded bodies, headers and connections.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::identity::Zone;

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// The address to listen on (also `serve --http ADDR`). None: no HTTP.
    pub listen: Option<SocketAddr>,
    /// `required` (the default): every request to `/mcp` carries an API key
    /// or an OAuth access token. `none`: no authentication, allowed only on
    /// a loopback address, where the caller is trusted like the local user.
    pub auth: AuthMode,
    /// Host names (or `host:port`) accepted in the `Host` header besides
    /// the loopback names; anything else is refused with 403 (DNS
    /// rebinding defence).
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted in the `Origin` header (e.g.
    /// `https://app.example.com:443`); requests with any other `Origin` are
    /// refused with 403. Empty: loopback origins only.
    pub allowed_origins: Vec<String>,
    /// The largest request body, in bytes (413 above).
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers, and how long
    /// an idle connection stays open, in milliseconds.
    pub header_timeout_ms: u64,
    /// How long a client may take to send a request's body, in milliseconds
    /// (408 after).
    pub body_timeout_ms: u64,
    /// The most connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// Seconds a session (2025-11-25 protocol) may stay idle before it
    /// expires.
    pub session_idle_s: u64,
    /// TLS certificate chain (PEM). With `tls_key`, HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// This server's resource URL as clients reach it (e.g.
    /// `https://tools.example.com/mcp`): the audience OAuth tokens must
    /// name and what the protected resource metadata says. Default:
    /// `http(s)://<listen>/mcp`.
    pub resource_url: Option<String>,
    /// OAuth 2.1 resource server: validate JWT access tokens.
    pub oauth: Option<OAuthConfig>,
    /// Per-client limits, unless a client's own say otherwise.
    pub limits: ClientLimits,
    /// The audit log of HTTP requests.
    pub audit: AuditConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: None,
            auth: AuthMode::Required,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 1024,
            session_idle_s: 600,
            tls_cert: None,
            tls_key: None,
            resource_url: None,
            oauth: None,
            limits: ClientLimits::default(),
            audit: AuditConfig::default(),
        }
    }
}

/// Whether HTTP clients must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// API keys or OAuth tokens.
    #[default]
    Required,
    /// Nobody authenticates (loopback only).
    None,
}

/// `[http.oauth]`: validate JWT access tokens from an authorization server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The authorization server's issuer (`iss` must equal it).
    pub issuer: String,
    /// Its signing keys, a JWKS file (JSON `{"keys": [...]}`), re-read when
    /// it changes.
    pub jwks_file: PathBuf,
    /// The audience tokens must name. Default: the resource URL.
    pub audience: Option<String>,
    /// The trust zone of callers with a token.
    #[serde(default)]
    pub zone: Zone,
    /// The claim naming the agent.
    #[serde(default = "default_agent_claim")]
    pub agent_claim: String,
}

fn default_agent_claim() -> String {
    "sub".into()
}

/// Limits of one client.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientLimits {
    /// Requests per second, sustained.
    pub requests_per_s: u32,
    /// Requests allowed in a burst above the sustained rate.
    pub burst: u32,
    /// Tool calls running at once.
    pub max_in_flight: u32,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            requests_per_s: 1000,
            burst: 2000,
            max_in_flight: 64,
        }
    }
}

/// `[http.audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Whether HTTP requests are audited.
    pub enabled: bool,
    /// Days of audit records kept (older files are removed).
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            retention_days: 30,
        }
    }
}

impl HttpConfig {
    /// Checks the values, and that a non-loopback address has
    /// authentication. `Err` says what to change.
    pub fn check(&self) -> Result<(), String> {
        if self.max_body_bytes < 1024 {
            return Err("http.max_body_bytes must be at least 1024".into());
        }
        if self.max_connections == 0 {
            return Err("http.max_connections must be at least 1".into());
        }
        if self.header_timeout_ms == 0 || self.body_timeout_ms == 0 {
            return Err("http.header_timeout_ms and http.body_timeout_ms must be positive".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("http.tls_cert and http.tls_key go together: set both or neither".into());
        }
        let l = &self.limits;
        if l.requests_per_s == 0 || l.burst == 0 || l.max_in_flight == 0 {
            return Err(
                "http.limits: requests_per_s, burst and max_in_flight must be positive".into(),
            );
        }
        Ok(())
    }

    /// Refuses to serve a non-loopback address without authentication.
    pub fn check_exposure(&self, addr: SocketAddr) -> Result<(), String> {
        if self.auth == AuthMode::None && !addr.ip().is_loopback() {
            return Err(format!(
                "refusing to serve MCP on {addr} without authentication: anyone who can reach \
                 it could call every tool. Listen on a loopback address (127.0.0.1), or set \
                 `[http] auth = \"required\"` and give clients keys (`toolmesh client add`)"
            ));
        }
        Ok(())
    }

    /// Whether HTTPS is configured.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// The resource URL for `addr`.
    pub fn resource_url(&self, addr: SocketAddr) -> String {
        self.resource_url.clone().unwrap_or_else(|| {
            let scheme = if self.tls() { "https" } else { "http" };
            format!("{scheme}://{addr}/mcp")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_auth_is_only_for_loopback() {
        let c = HttpConfig {
            auth: AuthMode::None,
            ..HttpConfig::default()
        };
        assert!(c.check_exposure("127.0.0.1:80".parse().unwrap()).is_ok());
        let err = c.check_exposure("0.0.0.0:80".parse().unwrap()).unwrap_err();
        assert!(err.contains("without authentication"), "{err}");
        assert!(
            HttpConfig::default()
                .check_exposure("0.0.0.0:80".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn tls_needs_both_files() {
        let c = HttpConfig {
            tls_cert: Some("c.pem".into()),
            ..HttpConfig::default()
        };
        assert!(c.check().unwrap_err().contains("go together"));
    }
}
