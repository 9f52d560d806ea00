//! What every `/mcp` request passes before MCP sees it: authentication,
//! the client's request bucket, and a body read under a size limit and a
//! deadline. A request that passes carries an [`EdgeCaller`] in its
//! extensions, which the MCP server reads (rmcp hands handlers the HTTP
//! request's parts); one that does not gets its status here, and a refused
//! authentication is audited.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::HttpState;
use super::auth::Authenticated;
use super::limits::{ClientAllowance, RetryAfter};
use crate::audit::{AuditRecord, unix_ms};

/// The authenticated caller of one HTTP request, for the MCP server.
#[derive(Clone, Debug)]
pub struct EdgeCaller {
    /// Who it is.
    pub auth: Authenticated,
    /// Its allowance (the calls-in-flight cap).
    pub allowance: Arc<ClientAllowance>,
    /// Where it connected from.
    pub remote: Option<SocketAddr>,
}

/// The client a response was for, put in its extensions for the request
/// counters.
#[derive(Clone, Debug)]
pub struct ClientLabel(pub String);

/// The peer address of a connection, put in each request's extensions by
/// the listener.
#[derive(Clone, Copy, Debug)]
pub struct RemoteAddr(pub SocketAddr);

/// The middleware in front of `/mcp`.
pub async fn admit(State(state): State<Arc<HttpState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let remote = request.extensions().get::<RemoteAddr>().map(|r| r.0);
    let auth = match state.auth.authenticate(request.headers()) {
        Ok(auth) => auth,
        Err(refused) => {
            let outcome = if refused.status == StatusCode::FORBIDDEN {
                "forbidden"
            } else {
                "unauthenticated"
            };
            audit_refusal(
                &state,
                remote,
                refused.client.clone(),
                outcome,
                &refused.reason,
                started,
            )
            .await;
            let challenge = refused.challenge(&state.metadata_url);
            let label = ClientLabel(refused.client.clone().unwrap_or_else(|| "-".into()));
            let mut response = (refused.status, refused.reason).into_response();
            response.extensions_mut().insert(label);
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            return response;
        }
    };
    let allowance = state.allowances.of(&auth.client, auth.limits);
    if let Err(RetryAfter(wait)) = allowance.admit_request() {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let reason = format!(
            "client `{}` is over its rate of {} requests/s (burst {}): retry in {seconds} s",
            auth.client, auth.limits.requests_per_s, auth.limits.burst
        );
        audit_refusal(
            &state,
            remote,
            Some(auth.client.clone()),
            "rate_limited",
            &reason,
            started,
        )
        .await;
        let mut response = (StatusCode::TOO_MANY_REQUESTS, reason).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        response
            .extensions_mut()
            .insert(ClientLabel(auth.client.clone()));
        return response;
    }
    let (mut parts, body) = request.into_parts();
    let body = match read_body(body, state.max_body_bytes, state.body_timeout).await {
        Ok(body) => body,
        Err(response) => return *response,
    };
    // A body that is not JSON gets JSON-RPC's answer (rmcp's would be a 415
    // in plain text). The request bucket above bounds how often.
    if parts.method == http::Method::POST
        && !body.is_empty()
        && let Some(why) = crate::mcp::stdio_edge::unparsable(&body)
    {
        let mut response = (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            crate::mcp::stdio_edge::parse_error(&why),
        )
            .into_response();
        response
            .extensions_mut()
            .insert(ClientLabel(auth.client.clone()));
        return response;
    }
    let label = ClientLabel(auth.client.clone());
    parts.extensions.insert(EdgeCaller {
        auth,
        allowance,
        remote,
    });
    let mut response = next.run(Request::from_parts(parts, Body::from(body))).await;
    response.extensions_mut().insert(label);
    response
}

/// Reads a whole body of at most `limit` bytes within `deadline`: 413
/// above the limit, 408 past the deadline (a client that trickles its body
/// cannot hold a connection), 400 if the client breaks off.
async fn read_body(
    body: Body,
    limit: usize,
    deadline: Duration,
) -> Result<axum::body::Bytes, Box<Response>> {
    match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            // axum wraps the limit's own error type.
            let too_large = std::error::Error::source(&e)
                .is_some_and(<dyn std::error::Error>::is::<http_body_util::LengthLimitError>);
            Err(Box::new(if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request body is over the limit of {limit} bytes"),
                )
                    .into_response()
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                )
                    .into_response()
            }))
        }
        Err(_) => Err(Box::new(
            (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} ms",
                    deadline.as_millis()
                ),
            )
                .into_response(),
        )),
    }
}

async fn audit_refusal(
    state: &HttpState,
    remote: Option<SocketAddr>,
    client: Option<String>,
    outcome: &str,
    reason: &str,
    started: Instant,
) {
    tracing::info!(?remote, client, outcome, "{reason}");
    if let Some(audit) = &state.audit {
        audit
            .record(AuditRecord {
                time_ms: unix_ms(SystemTime::now()),
                client,
                agent: None,
                remote: remote.map(|r| r.to_string()),
                method: "auth".into(),
                target: None,
                outcome: outcome.into(),
                detail: Some(reason.to_owned()),
                latency_us: started.elapsed().as_micros() as u64,
                bytes_in: 0,
                bytes_out: 0,
            })
            .await;
    }
}
