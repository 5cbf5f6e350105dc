//! The client's HTTP layer: one HTTP/1.1 connection (hyper `conn::http1`, plain TCP or OpenSSL
//! TLS) authenticated once with an empty-body handshake, then sealed SOAP requests on that same
//! connection. Reconnects and re-authenticates when the connection is gone before a request is
//! written; a request that was written but got no complete answer is reported as
//! [`WinrmError::OutcomeUnknown`] and never resent.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use tokio::net::TcpStream;

use crate::winrm::auth::{AuthMethod, Authenticator, Credentials, Step};
use crate::winrm::encryption::{self, SOAP_CONTENT_TYPE};
use crate::winrm::error::WinrmError;

/// A parsed `http(s)://host:port/path` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    /// Parses `http://host[:5985]/wsman` or `https://host[:5986]/wsman`.
    pub fn parse(url: &str) -> Result<Endpoint, WinrmError> {
        let bad = |why: &str| WinrmError::Config(format!("invalid endpoint {url:?}: {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("scheme must be http or https")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if tls { 5986 } else { 5985 });
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") | Some("/") => "/wsman".to_string(),
            Some(p) => p.to_string(),
        };
        Ok(Endpoint { tls, host, port, path })
    }

    /// The URL, as it goes into `a:To`.
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{}://{host}:{}{}", if self.tls { "https" } else { "http" }, self.port, self.path)
    }

    fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{host}:{}", self.port)
    }
}

/// TLS settings for HTTPS endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsOptions {
    /// PEM file of extra trusted CAs (the system roots are always trusted).
    pub ca_file: Option<std::path::PathBuf>,
    /// Skip certificate and host name verification (tests, lab servers with self-signed
    /// certificates). Never the default.
    pub insecure_skip_verify: bool,
}

/// How a client connects and authenticates.
#[derive(Clone)]
pub struct TransportConfig {
    pub endpoint: Endpoint,
    pub auth: AuthMethod,
    pub credentials: Credentials,
    pub tls: TlsOptions,
    /// Time allowed to connect, set up TLS and authenticate.
    pub connect_timeout: Duration,
    /// Refuse plaintext over HTTP (NTLM without sealing). Always true in production.
    pub require_encryption: bool,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: usize,
}

impl fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportConfig")
            .field("endpoint", &self.endpoint.url())
            .field("auth", &self.auth)
            .field("account", &self.credentials.account)
            .field("tls", &self.tls)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl TransportConfig {
    /// NTLM with message encryption to `endpoint`.
    pub fn new(endpoint: &str, credentials: Credentials) -> Result<Self, WinrmError> {
        Ok(TransportConfig {
            endpoint: Endpoint::parse(endpoint)?,
            auth: AuthMethod::Ntlm,
            credentials,
            tls: TlsOptions::default(),
            connect_timeout: Duration::from_secs(15),
            require_encryption: true,
            max_response_bytes: 8 << 20,
        })
    }
}

/// The HTTP answer to one SOAP request, already unsealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One authenticated HTTP/1.1 connection to a WinRM endpoint (re-established on demand).
pub struct Transport {
    cfg: TransportConfig,
    auth: Box<dyn Authenticator>,
    conn: Option<SendRequest<Full<Bytes>>>,
    connections: u32,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").field("endpoint", &self.cfg.endpoint.url()).field("connected", &self.conn.is_some()).finish()
    }
}

fn unknown(what: impl fmt::Display) -> WinrmError {
    WinrmError::OutcomeUnknown(what.to_string())
}

impl Transport {
    /// A transport; nothing is connected until the first request.
    pub fn new(cfg: TransportConfig) -> Result<Self, WinrmError> {
        let auth = cfg.auth.authenticator(cfg.credentials.clone(), &cfg.endpoint.host)?;
        if auth.requires_tls() && !cfg.endpoint.tls {
            return Err(WinrmError::Config(format!("{} authentication sends the password in every request: use https", auth.scheme())));
        }
        Ok(Transport { cfg, auth, conn: None, connections: 0 })
    }

    /// The endpoint URL.
    pub fn url(&self) -> String {
        self.cfg.endpoint.url()
    }

    /// How many connections were opened so far (reconnects included).
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// Drops the connection; the next request reconnects and re-authenticates.
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    async fn open(&self) -> Result<SendRequest<Full<Bytes>>, WinrmError> {
        let ep = &self.cfg.endpoint;
        let fail = |detail: String| WinrmError::Connect { endpoint: ep.url(), detail };
        let tcp = TcpStream::connect((ep.host.as_str(), ep.port)).await.map_err(|e| fail(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        if !ep.tls {
            let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await.map_err(|e| fail(e.to_string()))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            return Ok(sender);
        }
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(|e| fail(format!("TLS setup: {e}")))?;
        if let Some(ca) = &self.cfg.tls.ca_file {
            builder.set_ca_file(ca).map_err(|e| fail(format!("CA file {}: {e}", ca.display())))?;
        }
        if self.cfg.tls.insecure_skip_verify {
            builder.set_verify(SslVerifyMode::NONE);
        }
        let connector = builder.build();
        let mut config = connector.configure().map_err(|e| fail(format!("TLS setup: {e}")))?;
        if self.cfg.tls.insecure_skip_verify {
            config.set_verify_hostname(false);
        }
        let ssl = config.into_ssl(&ep.host).map_err(|e| fail(format!("TLS setup: {e}")))?;
        let mut stream = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| fail(format!("TLS setup: {e}")))?;
        Pin::new(&mut stream).connect().await.map_err(|e| fail(format!("TLS handshake: {e}")))?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn request(&self, body: Bytes, content_type: Option<&str>, authorization: Option<&str>) -> Result<Request<Full<Bytes>>, WinrmError> {
        let ep = &self.cfg.endpoint;
        let mut b =
            Request::builder().method(Method::POST).uri(ep.path.as_str()).header(HOST, ep.authority()).header(CONTENT_LENGTH, body.len());
        if let Some(ct) = content_type {
            b = b.header(CONTENT_TYPE, ct);
        }
        if let Some(a) = authorization {
            b = b.header(AUTHORIZATION, a);
        }
        b.header("User-Agent", "lyncdr-winrm").body(Full::new(body)).map_err(|e| WinrmError::Config(format!("request: {e}")))
    }

    /// Connects and authenticates (empty-body handshake). Nothing of the caller's is sent here.
    async fn connect(&mut self) -> Result<(), WinrmError> {
        self.conn = None;
        let mut sender = self.open().await?;
        self.connections += 1;
        let ep_url = self.cfg.endpoint.url();
        let mut step = self.auth.start()?;
        let mut legs = 0;
        while let Step::Send(authorization) = step {
            legs += 1;
            if legs > 4 {
                return Err(WinrmError::Auth("authentication handshake did not converge".into()));
            }
            let req = self.request(Bytes::new(), Some(SOAP_CONTENT_TYPE), Some(&authorization))?;
            sender.ready().await.map_err(|e| WinrmError::Connect { endpoint: ep_url.clone(), detail: e.to_string() })?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| WinrmError::Connect { endpoint: ep_url.clone(), detail: format!("during authentication: {e}") })?;
            let status = resp.status();
            let challenges: Vec<String> =
                resp.headers().get_all(WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
            let _ = Limited::new(resp.into_body(), 1 << 20).collect().await;
            step = if status == StatusCode::UNAUTHORIZED {
                match self.auth.next(&challenges) {
                    Ok(Step::Send(a)) => Step::Send(a),
                    Ok(Step::Done) | Err(_) => {
                        return Err(WinrmError::Auth(format!(
                            "the server refused the credentials of {} (HTTP 401)",
                            self.cfg.credentials.account
                        )));
                    }
                }
            } else if status.is_success() {
                match self.auth.next(&challenges)? {
                    Step::Done => Step::Done,
                    // The context is complete on our side; a success reply ends the handshake.
                    Step::Send(_) => Step::Done,
                }
            } else {
                return Err(WinrmError::Http { status: status.as_u16(), detail: "during authentication".into() });
            };
        }
        if self.cfg.require_encryption && !self.cfg.endpoint.tls && self.auth.sealer().is_none() {
            return Err(WinrmError::Config("message encryption is required over HTTP but the scheme cannot seal".into()));
        }
        self.conn = Some(sender);
        Ok(())
    }

    /// Sends one SOAP envelope and returns the (unsealed) reply, whatever its HTTP status.
    /// `timeout` bounds the wait for the reply and must exceed the WS-Man OperationTimeout.
    pub async fn send(&mut self, xml: &str, timeout: Duration) -> Result<HttpReply, WinrmError> {
        let mut auth_retry = true;
        let mut reconnects = 0;
        loop {
            let usable = match self.conn.as_mut() {
                Some(c) if !c.is_closed() => c.ready().await.is_ok(),
                _ => false,
            };
            if !usable {
                reconnects += 1;
                if reconnects > 2 {
                    return Err(WinrmError::Connect { endpoint: self.url(), detail: "the connection keeps closing".into() });
                }
                tokio::time::timeout(self.cfg.connect_timeout, self.connect())
                    .await
                    .map_err(|_| WinrmError::Connect { endpoint: self.url(), detail: "timed out connecting or authenticating".into() })??;
            }
            let (body, content_type) = match self.auth.sealer() {
                Some(sealer) if !self.cfg.endpoint.tls => {
                    (Bytes::from(encryption::encrypt(sealer, xml.as_bytes())?), encryption::content_type())
                }
                _ => (Bytes::from(xml.as_bytes().to_vec()), SOAP_CONTENT_TYPE.to_string()),
            };
            let authorization = self.auth.request_header();
            let req = self.request(body, Some(&content_type), authorization.as_deref())?;
            let Some(conn) = self.conn.as_mut() else { continue };
            if conn.ready().await.is_err() {
                // Closed before anything was written: reconnect.
                self.conn = None;
                continue;
            }
            let sent = tokio::time::timeout(timeout, async {
                let resp = conn.try_send_request(req).await?;
                let status = resp.status();
                let ct = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let body = Limited::new(resp.into_body(), self.cfg.max_response_bytes).collect().await;
                Ok::<_, hyper::client::conn::TrySendError<Request<Full<Bytes>>>>((status, ct, body))
            })
            .await;
            let (status, ct, body) = match sent {
                Err(_) => {
                    self.conn = None;
                    return Err(unknown(format!("no reply within {timeout:?}")));
                }
                Ok(Err(mut e)) => {
                    self.conn = None;
                    if e.take_message().is_some() {
                        // Never written: safe to reconnect and send it again.
                        continue;
                    }
                    return Err(unknown(format!("connection lost: {}", e.into_error())));
                }
                Ok(Ok(v)) => v,
            };
            let body = match body {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    self.conn = None;
                    return Err(unknown(format!("reply body: {e}")));
                }
            };
            if status == StatusCode::UNAUTHORIZED {
                // The server did not process the request: re-authenticate once, then resend.
                self.conn = None;
                if auth_retry {
                    auth_retry = false;
                    reconnects = 0;
                    continue;
                }
                return Err(WinrmError::Auth(format!("the server refused the credentials of {} (HTTP 401)", self.cfg.credentials.account)));
            }
            let plain = if encryption::is_encrypted(&ct) {
                let sealer = self.auth.sealer().ok_or_else(|| WinrmError::Crypto("encrypted reply without a security context".into()))?;
                match encryption::decrypt(sealer, &body) {
                    Ok(p) => p,
                    Err(e) => {
                        // The sealing state is now unusable; the request did reach the server.
                        self.conn = None;
                        return Err(unknown(format!("undecryptable reply (HTTP {}): {e}", status.as_u16())));
                    }
                }
            } else {
                if self.cfg.require_encryption && !self.cfg.endpoint.tls && !body.is_empty() {
                    self.conn = None;
                    return Err(unknown(format!("plaintext reply (HTTP {}) where encryption is required", status.as_u16())));
                }
                body.to_vec()
            };
            return Ok(HttpReply { status: status.as_u16(), body: plain });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_defaults() {
        let e = Endpoint::parse("http://fe01.contoso.local").unwrap();
        assert_eq!(e, Endpoint { tls: false, host: "fe01.contoso.local".into(), port: 5985, path: "/wsman".into() });
        assert_eq!(e.url(), "http://fe01.contoso.local:5985/wsman");
        let s = Endpoint::parse("https://[::1]:6000/custom").unwrap();
        assert_eq!((s.tls, s.host.as_str(), s.port, s.path.as_str()), (true, "::1", 6000, "/custom"));
        assert_eq!(s.url(), "https://[::1]:6000/custom");
        for bad in ["fe01", "ftp://x/", "http://", ""] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn basic_over_http_is_refused() {
        let creds = Credentials::new("u", "p").unwrap();
        let mut cfg = TransportConfig::new("http://h:5985/wsman", creds).unwrap();
        cfg.auth = AuthMethod::Basic;
        assert!(matches!(Transport::new(cfg.clone()), Err(WinrmError::Config(_))));
        cfg.endpoint = Endpoint::parse("https://h/wsman").unwrap();
        assert!(Transport::new(cfg).is_ok());
    }
}
