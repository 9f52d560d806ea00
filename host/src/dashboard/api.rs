//! The dashboard's routes: the page and its assets, sign-in, the JSON
//! reads and actions, the live stream, and `/metrics`. Every `/api/` route
//! but sign-in needs a session; every action also its CSRF token. Errors
//! are `{"error": "…"}` with a status that says what to do.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Dashboard;
use super::session::{COOKIE, CSRF_HEADER, Session, Sessions, TTL, from_cookie};
use crate::http::HttpState;
use crate::http::edge::RemoteAddr;
use crate::identity::{Caller, Zone};
use crate::monitor::metrics::CONTENT_TYPE;
use crate::ops::control::{Action, PluginControl};
use crate::ops::feed::RATE_WINDOW_S;
use crate::ops::view;
use crate::p2p::Mesh;
use crate::service::{CallMeta, ToolService};
use crate::usage::Outcome;

/// Largest JSON body an action takes.
const MAX_BODY_BYTES: usize = 1 << 20;

/// The page's security headers: nothing from elsewhere, no framing.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The dashboard's routes.
pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/", get(index))
        .route(
            "/assets/app.js",
            get(|| asset(super::APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/assets/app.css",
            get(|| asset(super::APP_CSS, "text/css; charset=utf-8")),
        )
        .route("/metrics", get(metrics))
        .route("/api/login", post(login))
        .route("/api/session", get(session))
        .route("/api/logout", post(logout))
        .route("/api/overview", get(overview_route))
        .route("/api/plugins", get(plugins))
        .route("/api/plugins/{name}/{action}", post(plugin_action))
        .route("/api/call", post(call))
        .route("/api/history", get(history))
        .route("/api/events", get(events))
        .route("/api/alerts", get(alerts))
        .route("/api/alerts/{id}/ack", post(ack))
        .route("/api/mesh", get(mesh))
        .route("/api/permissions", get(permissions))
        .route("/api/budgets", get(budgets))
        .route("/api/discovery", get(discovery))
        .route("/api/config", get(config))
        .route("/api/live", get(live))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn index() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        super::INDEX_HTML,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secured(response)
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    secured(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// A refusal, boxed (a response is large).
type Refusal = Box<Response>;

fn dashboard(state: &HttpState) -> Result<&Arc<Dashboard>, Refusal> {
    state.dashboard().ok_or_else(|| {
        Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the host is loading its plugins; try again in a moment",
        ))
    })
}

/// The signed-in session of a request.
fn signed_in<'a>(
    state: &'a HttpState,
    headers: &HeaderMap,
) -> Result<(&'a Arc<Dashboard>, Session), Refusal> {
    let dashboard = dashboard(state)?;
    let session = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(from_cookie)
        .and_then(|id| dashboard.sessions.get(id));
    match session {
        Some(session) => Ok((dashboard, session)),
        None => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "sign in with an API key that has the admin scope",
        ))),
    }
}

/// The session of an action: signed in, with the session's CSRF token.
fn acting<'a>(
    state: &'a HttpState,
    headers: &HeaderMap,
) -> Result<(&'a Arc<Dashboard>, Session), Refusal> {
    let (dashboard, session) = signed_in(state, headers)?;
    let token = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !Sessions::csrf_ok(&session, token) {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token (`X-CSRF-Token`); reload the page",
        )));
    }
    Ok((dashboard, session))
}

#[derive(Deserialize)]
struct Login {
    key: String,
}

async fn login(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let ip = request.extensions().get::<RemoteAddr>().map(|r| r.0.ip());
    let dashboard = match dashboard(&state) {
        Ok(d) => d.clone(),
        Err(response) => return *response,
    };
    if !dashboard.sessions.may_try(ip) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed sign-ins from this address; wait a minute",
        );
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), 64 << 10).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the sign-in request is too large",
        );
    };
    let Ok(Login { key }) = serde_json::from_slice::<Login>(&body) else {
        return error(StatusCode::BAD_REQUEST, "expected {\"key\": \"<API key>\"}");
    };
    let mut headers = HeaderMap::new();
    let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {}", key.trim())) else {
        dashboard.sessions.failed(ip);
        return error(StatusCode::UNAUTHORIZED, "that is not a valid API key");
    };
    headers.insert(header::AUTHORIZATION, bearer);
    if !state.requires_credentials() {
        return error(
            StatusCode::FORBIDDEN,
            "this listener runs without authentication; the dashboard needs API keys: add one \
             with `toolmesh client add NAME --scope admin` and set `[http] auth = \"required\"`",
        );
    }
    let authenticated = match state.authenticate(&headers) {
        Ok(a) => a,
        Err(refused) => {
            dashboard.sessions.failed(ip);
            return error(StatusCode::UNAUTHORIZED, refused.reason);
        }
    };
    if !authenticated.caller.admin {
        dashboard.sessions.failed(ip);
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "client `{}` lacks the admin scope the dashboard needs",
                authenticated.client
            ),
        );
    }
    let Some((id, session)) = dashboard.sessions.start(authenticated.client.clone()) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no randomness for a session id",
        );
    };
    let secure = if state.is_tls() { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        TTL.as_secs()
    );
    let mut response =
        Json(json!({"client": session.client, "csrf": session.csrf})).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    tracing::info!(client = %session.client, "dashboard sign-in");
    response
}

async fn session(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok((_, s)) => Json(json!({"client": s.client, "csrf": s.csrf})).into_response(),
        Err(response) => *response,
    }
}

async fn logout(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let dashboard = match acting(&state, &headers) {
        Ok((d, _)) => d,
        Err(response) => return *response,
    };
    if let Some(id) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(from_cookie)
    {
        dashboard.sessions.end(id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The overview: totals since start, rates over the last seconds, the
/// plugins' states, open alerts, peers, and (if asked) the recent calls.
pub fn overview(
    service: &ToolService,
    control: &PluginControl,
    mesh: Option<&Mesh>,
    with_recent: bool,
) -> Value {
    let ops = service.operations();
    let mut calls = 0;
    let mut errors = 0;
    let mut latency: Option<hdrhistogram::Histogram<u64>> = None;
    let tools = service.tools();
    for tool in &tools {
        let c = tool.usage.counters(&[]);
        if c.calls == 0 {
            continue;
        }
        calls += c.calls;
        errors += c.calls - c.outcomes[Outcome::Ok as usize];
        let h = tool.usage.latency();
        match &mut latency {
            Some(total) => {
                let _ = total.add(&h);
            }
            None => latency = Some(h),
        }
    }
    let quantile = |q| latency.as_ref().map_or(0, |h| h.value_at_quantile(q));
    let rates = ops.feed.rates();
    let mut states = BTreeMap::from([("enabled", 0), ("paused", 0), ("disabled", 0)]);
    for name in control.known().into_keys() {
        *states
            .entry(ops.states.get(&name).state.name())
            .or_default() += 1;
    }
    let process = service.process();
    let mut value = json!({
        "time_ms": crate::audit::unix_ms(std::time::SystemTime::now()),
        "uptime_s": process.map(|p| p.uptime_s),
        "process": process.map(|p| json!({"rss_bytes": p.rss_bytes, "cpu_percent": p.cpu_percent})),
        "calls": calls,
        "errors": errors,
        "calls_per_s": rates.calls_per_s,
        "error_ratio": rates.error_ratio,
        "rate_window_s": RATE_WINDOW_S,
        "p50_us": quantile(0.5),
        "p99_us": quantile(0.99),
        "plugins": states,
        "tools": tools.len(),
        "open_alerts": ops.alerts.open_alerts(),
        "peers": mesh.map(|m| m.peers().iter().filter(|p| p.connected).count()),
    });
    if with_recent {
        value["recent_calls"] = json!(ops.feed.recent());
    }
    value
}

async fn overview_route(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok((d, _)) => {
            Json(overview(&d.service, &d.control, d.mesh.as_deref(), true)).into_response()
        }
        Err(response) => *response,
    }
}

async fn plugins(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok((d, _)) => Json(json!({"plugins": view::plugins(&d.control)})).into_response(),
        Err(response) => *response,
    }
}

#[derive(Deserialize, Default)]
struct Reason {
    reason: Option<String>,
}

async fn plugin_action(
    State(state): State<Arc<HttpState>>,
    Path((name, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (d, session) = match acting(&state, &headers) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let action: Action = match action.parse() {
        Ok(action) => action,
        Err(e) => return error(StatusCode::NOT_FOUND, e),
    };
    let reason = if body.is_empty() {
        Reason::default()
    } else {
        match serde_json::from_slice::<Reason>(&body) {
            Ok(reason) => reason,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad body: {e}")),
        }
    };
    let reason = Some(match reason.reason.filter(|r| !r.trim().is_empty()) {
        Some(r) => format!(
            "{} (by {} on the dashboard)",
            crate::text::truncate(&r, 1024),
            session.client
        ),
        None => format!("by {} on the dashboard", session.client),
    });
    match d.control.apply(&name, action, reason).await {
        Ok(message) => Json(json!({"message": message, "plugin": view::plugin(&d.control, &name)}))
            .into_response(),
        Err(e) if e.starts_with("no plugin") => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

#[derive(Deserialize)]
struct CallRequest {
    tool: String,
    #[serde(default)]
    arguments: serde_json::Map<String, Value>,
}

async fn call(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (d, session) = match acting(&state, &headers) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    if body.len() > MAX_BODY_BYTES {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "the arguments are too large");
    }
    let request: CallRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"tool\": …, \"arguments\": {{…}}}}: {e}"),
            );
        }
    };
    let meta = CallMeta {
        request_id: "dashboard".into(),
        client: Some("toolmesh-dashboard".into()),
        operator: true,
        caller: Some(Caller {
            agent: None,
            client: Some(session.client.clone()),
            zone: Zone::Local,
            admin: true,
            authenticated: true,
        }),
        ..CallMeta::default()
    };
    let cancel = CancellationToken::new();
    match d
        .service
        .call_recorded(&request.tool, Some(request.arguments), meta, &cancel)
        .await
    {
        Ok((result, usage)) => Json(json!({
            "result": result,
            "usage": {
                "outcome": usage.outcome,
                "micros": usage.wall.as_micros() as u64,
                "fuel": usage.fuel,
                "peak_memory_bytes": usage.peak_memory_bytes,
                "bytes_in": usage.bytes_in,
                "bytes_out": usage.bytes_out,
            },
        }))
        .into_response(),
        Err(unknown) => error(StatusCode::NOT_FOUND, unknown.to_string()),
    }
}

#[derive(Deserialize)]
struct HistoryQuery {
    range: Option<String>,
}

async fn history(
    State(state): State<Arc<HttpState>>,
    Query(q): Query<HistoryQuery>,
    headers: HeaderMap,
) -> Response {
    let d = match signed_in(&state, &headers) {
        Ok((d, _)) => d,
        Err(response) => return *response,
    };
    match d
        .monitor
        .history
        .range(q.range.as_deref().unwrap_or("hour"))
    {
        Ok(range) => Json(range).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    limit: Option<usize>,
}

async fn events(
    State(state): State<Arc<HttpState>>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    match signed_in(&state, &headers) {
        Ok((d, _)) => {
            let limit = q.limit.unwrap_or(200).min(crate::ops::events::KEEP);
            Json(json!({"events": d.service.operations().events.recent(limit)})).into_response()
        }
        Err(response) => *response,
    }
}

async fn alerts(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok((d, _)) => Json(json!({
            "alerts": d.service.operations().alerts.all(),
            "rules": &*d.monitor.rules,
        }))
        .into_response(),
        Err(response) => *response,
    }
}

async fn ack(
    State(state): State<Arc<HttpState>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let (d, session) = match acting(&state, &headers) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    match d
        .service
        .operations()
        .alerts
        .acknowledge(id, &session.client)
    {
        Some(alert) => Json(json!({"alert": alert})).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no alert {id}")),
    }
}

async fn mesh(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let d = match signed_in(&state, &headers) {
        Ok((d, _)) => d,
        Err(response) => return *response,
    };
    let Some(mesh) = &d.mesh else {
        return Json(json!({"enabled": false})).into_response();
    };
    Json(json!({
        "enabled": true,
        "peer_id": mesh.peer_id().to_string(),
        "addresses": mesh.addresses().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "peers": mesh.peers(),
        "offers": mesh.offers(),
        "transfers": mesh.traffic().in_progress(),
        "bytes_received": mesh.traffic().received(),
        "bytes_sent": mesh.traffic().sent(),
    }))
    .into_response()
}

/// A core plugin's answer for a view, or why there is none.
async fn core(d: &Dashboard, tool: &str) -> Value {
    match d.service.plugins().call_internal(tool, json!({})).await {
        Ok(value) => value,
        Err(e) => json!({"error": e}),
    }
}

async fn permissions(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok((d, _)) => Json(json!({
            "grants": core(d, "permission__list_grants").await,
            "audit": core(d, "permission__audit").await,
        }))
        .into_response(),
        Err(response) => *response,
    }
}

async fn budgets(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok((d, _)) => Json(json!({
            "budgets": core(d, "budget__list").await,
            "alerts": core(d, "budget__alerts").await,
        }))
        .into_response(),
        Err(response) => *response,
    }
}

async fn discovery(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok((d, _)) => Json(json!({"agents": core(d, "discovery__list").await})).into_response(),
        Err(response) => *response,
    }
}

async fn config(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok((d, _)) => Json(d.config.clone()).into_response(),
        Err(response) => *response,
    }
}

async fn live(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Ok((d, _)) => super::live::stream(d).into_response(),
        Err(response) => *response,
    }
}

/// `/metrics`: for a signed-in operator, or a scraper with an admin key.
async fn metrics(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let d = match dashboard(&state) {
        Ok(d) => d,
        Err(response) => return *response,
    };
    if signed_in(&state, &headers).is_err() {
        match state.authenticate(&headers) {
            Ok(a) if a.caller.admin => {}
            Ok(a) => {
                return error(
                    StatusCode::FORBIDDEN,
                    format!("client `{}` lacks the admin scope /metrics needs", a.client),
                );
            }
            Err(refused) => return error(refused.status, refused.reason),
        }
    }
    match d.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded",
        ),
    }
}
