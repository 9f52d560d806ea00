//! The accept loop: a cap on open connections (past it, new ones are
//! closed at once and logged), optional TLS (rustls, from PEM files), and
//! hyper with a header timeout that also closes idle keep-alive
//! connections, so a slow or silent client cannot hold a connection slot.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::edge::RemoteAddr;

/// How connections are accepted.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    connections: Arc<Semaphore>,
    header_timeout: Duration,
}

impl Listener {
    /// Binds `addr`; with `tls`, (certificate chain, key) PEM files.
    pub async fn bind(
        addr: SocketAddr,
        tls: Option<(&Path, &Path)>,
        max_connections: usize,
        header_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let tls = match tls {
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
            None => None,
        };
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        Ok(Self {
            tcp,
            tls,
            connections: Arc::new(Semaphore::new(max_connections)),
            header_timeout,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Serves `app` on every accepted connection until `shutdown`.
    pub async fn serve(self, app: Router, shutdown: CancellationToken) {
        let refused = Arc::new(AtomicU64::new(0));
        loop {
            let (stream, remote) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = self.tcp.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, say: back off, do not spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                let n = refused.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        %remote,
                        refused = n,
                        "connection refused: the connection cap (http.max_connections) is reached"
                    );
                }
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let tls = self.tls.clone();
            let header_timeout = self.header_timeout;
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let _permit = permit;
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = serve_connection(stream, remote, tls, app, header_timeout) => {}
                }
            });
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    header_timeout: Duration,
) {
    let service =
        hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(RemoteAddr(remote));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
    // HTTP/1.1 only: its header timeout runs from the moment a connection
    // waits for a request (new or kept alive), so a silent connection is
    // closed; an HTTP/2-sniffing server would wait for the preface forever.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let served = match tls {
        None => {
            builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await
        }
        Some(acceptor) => {
            let Ok(Ok(stream)) =
                tokio::time::timeout(header_timeout, acceptor.accept(stream)).await
            else {
                tracing::debug!(%remote, "TLS handshake failed or timed out");
                return;
            };
            builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await
        }
    };
    if let Err(e) = served {
        tracing::debug!(%remote, "connection ended: {e}");
    }
}

fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} has no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a PEM private key from {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
