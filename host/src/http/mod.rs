//! MCP over Streamable HTTP: one more thin transport on the tool service.
//! rmcp's `StreamableHttpService` speaks the protocol (both eras: sessions
//! on 2025-11-25, stateless 2026-07-28 with `server/discover`; SSE for
//! progress and `tools/list_changed`; Host and Origin checks); this module
//! puts the edge in front of it and serves it on axum:
//!
//! - [`listener`]: accept loop, connection cap, header and idle timeouts, TLS;
//! - [`edge`]: authentication, per-client request rate, body limit and deadline;
//! - [`auth`]: API keys and OAuth (JWT) access tokens → the caller;
//! - [`limits`]: per-client token buckets and calls-in-flight caps;
//! - [`config`]: `[http]` in `toolmesh.toml`.
//!
//! Routes: `/mcp`, `GET /healthz` (the process answers), `GET /readyz`
//! (plugins are loaded), `GET /.well-known/oauth-protected-resource`
//! (RFC 9728), and the [`crate::dashboard`] (`/`, `/api/…`, `/metrics`).
//! Every answer is counted by status and client for the metrics.

pub mod auth;
pub mod config;
pub mod edge;
pub mod limits;
pub mod listener;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::StatusCode;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::audit::AuditLog;
use crate::dashboard::Dashboard;
use crate::mcp::McpServer;
use crate::monitor::metrics::HttpCounters;
use crate::service::ToolService;
use auth::Authenticator;
use config::HttpConfig;
use limits::Allowances;
use listener::Listener;

type McpHttp = StreamableHttpService<McpServer, LocalSessionManager>;

/// What the routes share.
pub struct HttpState {
    auth: Authenticator,
    allowances: Allowances,
    audit: Option<AuditLog>,
    metadata_url: String,
    resource_url: String,
    max_body_bytes: usize,
    body_timeout: Duration,
    mcp: OnceLock<McpHttp>,
    rmcp: StreamableHttpServerConfig,
    session_idle: Duration,
    dashboard: OnceLock<Arc<Dashboard>>,
    counters: Arc<HttpCounters>,
    tls: bool,
}

impl HttpState {
    /// The dashboard, once the host is ready.
    pub fn dashboard(&self) -> Option<&Arc<Dashboard>> {
        self.dashboard.get()
    }

    /// Who sent a request with `headers`.
    pub fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<auth::Authenticated, auth::Refused> {
        self.auth.authenticate(headers)
    }

    /// Whether clients must present credentials (keys or tokens).
    pub fn requires_credentials(&self) -> bool {
        self.auth.requires_credentials()
    }

    /// Whether the listener speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

/// A bound HTTP listener, answering `/healthz` at once and `/mcp` once
/// [`HttpServer::ready`] hands it the tool service.
pub struct HttpServer {
    state: Arc<HttpState>,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl HttpServer {
    /// Binds `config.listen` (or `addr`) and starts serving. Refuses a
    /// non-loopback address without authentication.
    pub async fn start(
        config: &HttpConfig,
        addr: SocketAddr,
        data_dir: &Path,
        audit: Option<AuditLog>,
    ) -> anyhow::Result<Self> {
        config.check().map_err(anyhow::Error::msg)?;
        config.check_exposure(addr).map_err(anyhow::Error::msg)?;
        let tls = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
        let listener = Listener::bind(
            addr,
            tls,
            config.max_connections,
            Duration::from_millis(config.header_timeout_ms),
        )
        .await?;
        let addr = listener.local_addr()?;
        let resource_url = config.resource_url(addr);
        let origin = origin_of(&resource_url).to_owned();
        let auth = Authenticator::new(config, data_dir, &resource_url)?;
        let shutdown = CancellationToken::new();
        let state = Arc::new(HttpState {
            auth,
            allowances: Allowances::default(),
            audit,
            metadata_url: format!("{origin}/.well-known/oauth-protected-resource"),
            resource_url,
            max_body_bytes: config.max_body_bytes,
            body_timeout: Duration::from_millis(config.body_timeout_ms),
            mcp: OnceLock::new(),
            rmcp: rmcp_config(config, addr, shutdown.child_token()),
            session_idle: Duration::from_secs(config.session_idle_s.max(1)),
            dashboard: OnceLock::new(),
            counters: Arc::default(),
            tls: tls.is_some(),
        });
        let app = router(state.clone());
        tokio::spawn(listener.serve(app, shutdown.clone()));
        tracing::info!(%addr, tls = tls.is_some(), "serving MCP over HTTP at /mcp");
        Ok(Self {
            state,
            addr,
            shutdown,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The request counters (for the metrics).
    pub fn counters(&self) -> &Arc<HttpCounters> {
        &self.state.counters
    }

    /// Serves `service`'s tools (`/readyz` turns 200) and `dashboard` from
    /// now on.
    pub fn ready(&self, service: ToolService, dashboard: Option<Arc<Dashboard>>) {
        if let Some(dashboard) = dashboard
            && self.state.dashboard.set(dashboard).is_err()
        {
            tracing::warn!("the dashboard was set twice; the first stays");
        }
        let audit = self.state.audit.clone();
        let mut sessions = LocalSessionManager::default();
        sessions.session_config.keep_alive = Some(self.state.session_idle);
        let mcp = StreamableHttpService::new(
            move || Ok(McpServer::for_http(service.clone(), audit.clone())),
            Arc::new(sessions),
            self.state.rmcp.clone(),
        );
        if self.state.mcp.set(mcp).is_err() {
            tracing::warn!("the HTTP server was made ready twice; the first service stays");
        }
    }

    /// Stops accepting, closes every connection and session, and waits
    /// until the audit log is on disk.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        if let Some(audit) = &self.state.audit {
            audit.flush().await;
        }
    }
}

/// `scheme://authority` of `url` (where this server serves its metadata).
fn origin_of(url: &str) -> &str {
    let authority = url.find("://").map_or(0, |i| i + 3);
    url[authority..]
        .find('/')
        .map_or(url, |end| &url[..authority + end])
}

/// rmcp's settings: Host and Origin allowlists (loopback names, the
/// listen address, and the operator's), the body limit, SSE keep-alive.
fn rmcp_config(
    config: &HttpConfig,
    addr: SocketAddr,
    cancel: CancellationToken,
) -> StreamableHttpServerConfig {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    hosts.push(addr.ip().to_string());
    hosts.extend(config.allowed_hosts.iter().cloned());
    let origins: Vec<String> = if config.allowed_origins.is_empty() {
        [
            "http://localhost:*",
            "http://127.0.0.1:*",
            "https://localhost:*",
            "https://127.0.0.1:*",
        ]
        .map(String::from)
        .into()
    } else {
        config.allowed_origins.clone()
    };
    StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .with_max_request_body_bytes(config.max_body_bytes)
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        // Stateless requests whose handler sends nothing first get JSON (cheaper
        // than a one-event SSE stream); progress still switches to SSE.
        .with_json_response(true)
        .with_cancellation_token(cancel)
}

fn router(state: Arc<HttpState>) -> Router {
    let mcp =
        Router::new()
            .route("/mcp", any(mcp))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                edge::admit,
            ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource),
        )
        .merge(mcp)
        .merge(crate::dashboard::api::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

/// Counts every answered request by status and client (the edge names
/// the client of `/mcp` requests; the rest count as `-`).
async fn count(
    State(state): State<Arc<HttpState>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let client = response
        .extensions()
        .get::<edge::ClientLabel>()
        .map_or("-", |c| c.0.as_str());
    let status = response.status();
    state.counters.answered(status.as_u16(), client);
    if status == StatusCode::TOO_MANY_REQUESTS {
        state.counters.rate_limited(client);
    }
    response
}

async fn mcp(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let Some(mcp) = state.mcp.get() else {
        return not_ready();
    };
    match mcp.clone().oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    if state.mcp.get().is_some() {
        "ready\n".into_response()
    } else {
        not_ready()
    }
}

fn not_ready() -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        "the host is loading its plugins\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, http::HeaderValue::from(1));
    response
}

/// RFC 9728 protected resource metadata.
async fn protected_resource(State(state): State<Arc<HttpState>>) -> Response {
    let servers: Vec<&str> = state.auth.issuer().into_iter().collect();
    axum::Json(serde_json::json!({
        "resource": state.resource_url,
        "authorization_servers": servers,
        "scopes_supported": ["tools", "admin"],
        "bearer_methods_supported": ["header"],
        "resource_name": "toolmesh",
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn the_metadata_lives_at_the_resource_origin() {
        assert_eq!(
            origin_of("https://tools.example.com/a/mcp"),
            "https://tools.example.com"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/mcp"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin_of("http://host"), "http://host");
    }
}
