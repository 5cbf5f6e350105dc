//! The WS-Man (WinRM) endpoint the simulator exposes: NTLM with message encryption (plaintext
//! refused by default), the six WinRS actions over a pluggable [`Host`] that runs the commands,
//! `w:TimedOut` after the OperationTimeout, sealed faults, optional HTTPS with Basic, and a
//! [`FaultHook`] to inject transport failures. [`serve`] runs it on a listener.

mod conn;
mod dispatch;
pub mod fault;
pub mod host;
pub mod reply;
pub mod test_host;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openssl::ssl::SslAcceptor;
use tokio::net::TcpListener;

pub use fault::{FaultAction, FaultHook, NoFaults, RequestInfo};
pub use host::{Host, Input, Output, Process, ProcessIo, channel_process};
pub use test_host::TestHost;

use crate::winrm::auth::Users;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Accounts accepted (NTLM, and Basic when enabled).
    pub users: Users,
    /// Name reported in faults (`f:WSManFault Machine`).
    pub machine: String,
    /// Accept unsealed SOAP over plain HTTP (Windows' `AllowUnencrypted`); off by default.
    pub allow_unencrypted: bool,
    /// Accept Basic authentication over TLS.
    pub allow_basic: bool,
    /// Longest a Receive may wait for output, whatever the client's OperationTimeout says.
    pub max_operation_timeout: Duration,
    /// The shell idle timeout reported in CreateResponse.
    pub idle_timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: usize,
}

impl ServerConfig {
    pub fn new(users: Users) -> Self {
        ServerConfig {
            users,
            machine: "lyncdr-sim".into(),
            allow_unencrypted: false,
            allow_basic: false,
            max_operation_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(7200),
            max_request_bytes: 1 << 20,
        }
    }
}

/// A WS-Man server: configuration, the command host, the fault hook and the shells.
pub struct Server {
    cfg: ServerConfig,
    host: Arc<dyn Host>,
    hook: Arc<dyn FaultHook>,
    tls: Option<SslAcceptor>,
    registry: dispatch::Registry,
    connections: AtomicU64,
    requests: AtomicU64,
    local: std::sync::Mutex<String>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("machine", &self.cfg.machine).field("tls", &self.tls.is_some()).finish_non_exhaustive()
    }
}

impl Server {
    pub fn new(cfg: ServerConfig, host: Arc<dyn Host>) -> Self {
        Server {
            cfg,
            host,
            hook: Arc::new(NoFaults),
            tls: None,
            registry: dispatch::Registry::default(),
            connections: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            local: std::sync::Mutex::new("localhost".into()),
        }
    }

    /// Installs a fault-injection hook.
    pub fn with_fault_hook(mut self, hook: Arc<dyn FaultHook>) -> Self {
        self.hook = hook;
        self
    }

    /// Serves HTTPS with this acceptor (certificate and key already loaded).
    pub fn with_tls(mut self, acceptor: SslAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Open shells.
    pub fn shell_count(&self) -> usize {
        self.registry.len()
    }

    /// Connections accepted so far.
    pub fn connection_count(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    fn local_name(&self) -> String {
        self.local.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Accepts connections on `listener` forever (each served on its own task).
pub async fn serve(listener: TcpListener, server: Arc<Server>) -> std::io::Result<()> {
    if let (Ok(addr), Ok(mut local)) = (listener.local_addr(), server.local.lock()) {
        *local = addr.to_string();
    }
    loop {
        let (tcp, peer) = listener.accept().await?;
        let number = server.connections.fetch_add(1, Ordering::Relaxed) + 1;
        if !server.hook.on_connect(number) {
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            match &server.tls {
                None => conn::serve_connection(server.clone(), tcp, peer, number, false).await,
                Some(acceptor) => {
                    let Ok(ssl) = openssl::ssl::Ssl::new(acceptor.context()) else { return };
                    let Ok(mut stream) = tokio_openssl::SslStream::new(ssl, tcp) else { return };
                    if std::pin::Pin::new(&mut stream).accept().await.is_err() {
                        return;
                    }
                    conn::serve_connection(server.clone(), stream, peer, number, true).await;
                }
            }
        });
    }
}
