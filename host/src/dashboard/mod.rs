//! The operator's dashboard, served by the HTTP listener: the page (assets
//! embedded in the binary, no CDN), its JSON API under `/api/`, the live
//! stream `/api/live` (Server-Sent Events), and `/metrics` (Prometheus).
//!
//! Signing in takes an API key with the `admin` scope and yields a session
//! cookie (`HttpOnly`, `SameSite=Strict`); every action also needs the
//! session's CSRF token in `X-CSRF-Token`. `/metrics` takes the session
//! or an admin key as a bearer token, for scrapers.
//!
//! - [`session`]: sessions, CSRF tokens, sign-in throttling;
//! - [`api`]: the reads and actions;
//! - [`live`]: the live stream and the overview it pushes.

pub mod api;
pub mod live;
pub mod session;

use std::sync::Arc;

use serde_json::Value;

use crate::monitor::Monitor;
use crate::monitor::metrics::{HttpCounters, Metrics, Sources};
use crate::ops::control::PluginControl;
use crate::p2p::Mesh;
use crate::service::ToolService;
use session::Sessions;

/// The page.
pub const INDEX_HTML: &str = include_str!("assets/index.html");
/// Its script.
pub const APP_JS: &str = include_str!("assets/app.js");
/// Its style sheet.
pub const APP_CSS: &str = include_str!("assets/app.css");

/// Everything the dashboard reads and steers.
pub struct Dashboard {
    /// The tool service (tools, usage, the process).
    pub service: ToolService,
    /// The plugin control.
    pub control: Arc<PluginControl>,
    /// History and alert rules.
    pub monitor: Arc<Monitor>,
    /// The mesh, if it runs.
    pub mesh: Option<Arc<Mesh>>,
    /// The configuration, as the config view shows it.
    pub config: Value,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Signed-in operators.
    pub sessions: Sessions,
    /// The overview pushed to live views, once a second.
    pub overview: tokio::sync::watch::Receiver<Arc<Value>>,
    _overview_task: live::OverviewTask,
}

impl Dashboard {
    /// A dashboard over the running host.
    pub fn new(
        service: ToolService,
        control: Arc<PluginControl>,
        monitor: Arc<Monitor>,
        mesh: Option<Arc<Mesh>>,
        config: Value,
        http: Arc<HttpCounters>,
    ) -> Arc<Self> {
        let metrics = Metrics::new(Sources {
            service: service.clone(),
            control: control.clone(),
            mesh: mesh.clone(),
            http,
        });
        let (overview, task) =
            live::OverviewTask::start(service.clone(), control.clone(), mesh.clone());
        Arc::new(Self {
            service,
            control,
            monitor,
            mesh,
            config,
            metrics,
            sessions: Sessions::default(),
            overview,
            _overview_task: task,
        })
    }
}
