//! One client connection of the WS-Man server: HTTP/1.1 keep-alive with per-connection
//! authentication state (NTLM handshake with `WWW-Authenticate: Negotiate`/`NTLM`, optional Basic
//! over TLS), message encryption in and out (plaintext refused unless configured), the fault
//! hook, and dispatch of the SOAP request to the shell registry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Mutex;

use super::Server;
use super::dispatch::Ctx;
use super::fault::{FaultAction, RequestInfo};
use super::reply;
use crate::winrm::auth::acceptor::{Accepted, NtlmAcceptor, message_type};
use crate::winrm::auth::ntlm::NtlmSealer;
use crate::winrm::encryption::{self, SOAP_CONTENT_TYPE, Sealer};
use crate::winrm::soap::{Action, envelope};

/// Authentication state of one connection.
enum AuthState {
    None,
    Challenged(Box<NtlmAcceptor>),
    Ntlm { account: String, sealer: Box<NtlmSealer> },
    Basic { account: String },
}

/// Why the connection is closed without an answer.
#[derive(Debug, thiserror::Error)]
#[error("connection closed by the server: {0}")]
pub(crate) struct Dropped(&'static str);

struct Conn {
    server: Arc<Server>,
    peer: SocketAddr,
    number: u64,
    tls: bool,
    auth: Mutex<AuthState>,
}

type Reply = Result<Response<Full<Bytes>>, Dropped>;

fn plain(status: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_LENGTH, 0.into());
    r
}

impl Conn {
    fn unauthorized(&self) -> Response<Full<Bytes>> {
        let mut r = plain(StatusCode::UNAUTHORIZED);
        let h = r.headers_mut();
        h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate"));
        h.append(WWW_AUTHENTICATE, HeaderValue::from_static("NTLM"));
        if self.tls && self.server.cfg.allow_basic {
            h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"WSMAN\""));
        }
        r
    }

    fn hook(&self, action: Option<Action>, input: Vec<u8>) -> FaultAction {
        let request = self.server.requests.fetch_add(1, Ordering::Relaxed) + 1;
        self.server.hook.on_request(&RequestInfo { connection: self.number, request, action, input })
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Reply {
        let authz = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let ct = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let limit = self.server.cfg.max_request_bytes;
        let body = match Limited::new(req.into_body(), limit).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE)),
        };

        if let Some(authz) = authz {
            let (scheme, token) = authz.trim().split_once(' ').unwrap_or((authz.trim(), ""));
            if scheme.eq_ignore_ascii_case("Negotiate") || scheme.eq_ignore_ascii_case("NTLM") {
                let Ok(token) = B64.decode(token.trim()) else { return Ok(self.unauthorized()) };
                match self.handshake(scheme, &token).await? {
                    Some(reply) => return Ok(reply),
                    None if body.is_empty() => return Ok(plain(StatusCode::OK)),
                    None => {}
                }
            } else if scheme.eq_ignore_ascii_case("Basic") {
                if !self.basic(token.trim()).await {
                    return Ok(self.unauthorized());
                }
            } else {
                return Ok(self.unauthorized());
            }
        }
        let account = match &*self.auth.lock().await {
            AuthState::Ntlm { account, .. } | AuthState::Basic { account } => account.clone(),
            AuthState::None | AuthState::Challenged(_) => return Ok(self.unauthorized()),
        };
        if body.is_empty() {
            return Ok(plain(StatusCode::OK));
        }
        self.soap(&account, &ct, &body).await
    }

    /// One NTLM leg: `Some(reply)` to answer now, `None` when authentication just completed.
    async fn handshake(&self, scheme: &str, token: &[u8]) -> Result<Option<Response<Full<Bytes>>>, Dropped> {
        match self.hook(None, Vec::new()) {
            FaultAction::Proceed => {}
            FaultAction::Delay(d) => tokio::time::sleep(d).await,
            FaultAction::StallThenDrop(d) => {
                tokio::time::sleep(d).await;
                return Err(Dropped("fault injection"));
            }
            FaultAction::DropBeforeProcessing | FaultAction::LoseReply => return Err(Dropped("fault injection")),
            FaultAction::Unauthorized | FaultAction::WrongRelatesTo | FaultAction::Truncate(_) => return Ok(Some(self.unauthorized())),
            FaultAction::Status(s) => return Ok(Some(plain(StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)))),
        }
        let mut state = self.auth.lock().await;
        let acceptor = match (message_type(token), std::mem::replace(&mut *state, AuthState::None)) {
            (Some(1), _) => NtlmAcceptor::new(),
            (Some(3), AuthState::Challenged(a)) => *a,
            _ => return Ok(Some(self.unauthorized())),
        };
        match acceptor.step(token, &self.server.cfg.users) {
            Ok((Some(next), Accepted::Challenge(challenge))) => {
                *state = AuthState::Challenged(Box::new(next));
                let mut r = plain(StatusCode::UNAUTHORIZED);
                let value = format!("{scheme} {}", B64.encode(challenge));
                r.headers_mut().insert(WWW_AUTHENTICATE, value.parse().map_err(|_| Dropped("bad challenge header"))?);
                Ok(Some(r))
            }
            Ok((_, Accepted::Done { account, sealer })) => {
                tracing::debug!(connection = self.number, %account, "NTLM authenticated");
                *state = AuthState::Ntlm { account, sealer };
                Ok(None)
            }
            Ok((None, Accepted::Challenge(_))) => Ok(Some(self.unauthorized())),
            Err(e) => {
                tracing::info!(connection = self.number, peer = %self.peer, "authentication refused: {e}");
                Ok(Some(self.unauthorized()))
            }
        }
    }

    async fn basic(&self, token: &str) -> bool {
        if !self.tls || !self.server.cfg.allow_basic {
            return false;
        }
        let Some(pair) = B64.decode(token).ok().and_then(|b| String::from_utf8(b).ok()) else { return false };
        let Some((account, password)) = pair.split_once(':') else { return false };
        let (user, domain) = match account.split_once('\\') {
            Some((d, u)) => (u, d),
            None => (account, ""),
        };
        let ok = self.server.cfg.users.find(user, domain).is_some_and(|u| u.password.expose() == password);
        if ok {
            *self.auth.lock().await = AuthState::Basic { account: account.to_string() };
        }
        ok
    }

    async fn soap(&self, account: &str, ct: &str, body: &[u8]) -> Reply {
        let sealed = encryption::is_encrypted(ct);
        let xml = if sealed {
            let mut state = self.auth.lock().await;
            let AuthState::Ntlm { sealer, .. } = &mut *state else { return Ok(plain(StatusCode::BAD_REQUEST)) };
            match encryption::decrypt(sealer.as_mut(), body) {
                Ok(x) => x,
                Err(e) => {
                    tracing::info!(connection = self.number, "undecryptable request: {e}");
                    *state = AuthState::None;
                    return Ok(self.unauthorized());
                }
            }
        } else if self.tls || self.server.cfg.allow_unencrypted {
            body.to_vec()
        } else {
            tracing::info!(connection = self.number, "plaintext request refused");
            return Ok(plain(StatusCode::BAD_REQUEST));
        };
        let parsed = envelope::parse(&xml, self.server.cfg.max_request_bytes);
        let action = parsed.as_ref().ok().and_then(|e| e.action()).and_then(Action::from_uri);
        let mut lose_reply = false;
        let mut wrong_relates_to = false;
        let mut truncate = None;
        let input = match (&parsed, action) {
            (Ok(env), Some(Action::Send)) => send_input(env),
            _ => Vec::new(),
        };
        match self.hook(action, input) {
            FaultAction::Proceed => {}
            FaultAction::Delay(d) => tokio::time::sleep(d).await,
            FaultAction::StallThenDrop(d) => {
                tokio::time::sleep(d).await;
                return Err(Dropped("fault injection"));
            }
            FaultAction::DropBeforeProcessing => return Err(Dropped("fault injection")),
            FaultAction::LoseReply => lose_reply = true,
            FaultAction::WrongRelatesTo => wrong_relates_to = true,
            FaultAction::Truncate(n) => truncate = Some(n),
            FaultAction::Unauthorized => {
                *self.auth.lock().await = AuthState::None;
                return Ok(self.unauthorized());
            }
            FaultAction::Status(s) => return Ok(plain(StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))),
        }
        let machine = self.server.cfg.machine.clone();
        let (status, out) = match parsed {
            Err(e) => {
                let f = reply::ServerFault::sender("InvalidMessageInformationHeader", 2_150_858_817, e.to_string());
                (StatusCode::INTERNAL_SERVER_ERROR, reply::fault("", &machine, &f))
            }
            Ok(env) => {
                let address = format!("{}://{}/wsman", if self.tls { "https" } else { "http" }, self.server.local_name());
                let client_ip = self.peer.ip().to_string();
                let ctx = Ctx {
                    account,
                    client_ip: &client_ip,
                    address: &address,
                    host: self.server.host.as_ref(),
                    max_operation_timeout: self.server.cfg.max_operation_timeout,
                    idle_timeout: self.server.cfg.idle_timeout,
                };
                match self.server.registry.handle(&env, &ctx).await {
                    Ok(x) => (StatusCode::OK, x),
                    Err(f) => (StatusCode::INTERNAL_SERVER_ERROR, reply::fault(env.message_id().unwrap_or_default(), &machine, &f)),
                }
            }
        };
        if lose_reply {
            return Err(Dropped("fault injection: reply lost"));
        }
        let out = if wrong_relates_to { reply::relate_to(&out, &crate::winrm::soap::request::new_message_id()) } else { out };
        let (bytes, content_type) = if sealed {
            let mut state = self.auth.lock().await;
            let AuthState::Ntlm { sealer, .. } = &mut *state else { return Err(Dropped("authentication lost")) };
            let framed = encryption::encrypt(sealer.as_mut() as &mut dyn Sealer, out.as_bytes()).map_err(|_| Dropped("sealing failed"))?;
            (framed, encryption::content_type())
        } else {
            (out.into_bytes(), SOAP_CONTENT_TYPE.to_string())
        };
        let mut bytes = bytes;
        if let Some(n) = truncate {
            bytes.truncate(n);
        }
        let mut r = Response::new(Full::new(Bytes::from(bytes)));
        *r.status_mut() = status;
        r.headers_mut().insert(CONTENT_TYPE, content_type.parse().map_err(|_| Dropped("bad content type"))?);
        Ok(r)
    }
}

/// The stdin of a Send request, decoded (what the fault hook is shown; malformed streams are
/// left to the dispatcher to refuse).
fn send_input(env: &envelope::Envelope) -> Vec<u8> {
    use crate::winrm::soap::ns;
    let Some(send) = env.body.child(ns::SHELL, "Send") else { return Vec::new() };
    let mut out = Vec::new();
    for stream in send.children_named(ns::SHELL, "Stream") {
        let text: String = stream.text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        if let Ok(data) = B64.decode(text.as_bytes()) {
            out.extend(data);
        }
    }
    out
}

/// Serves one accepted connection until the client closes it.
pub(crate) async fn serve_connection<S>(server: Arc<Server>, io: S, peer: SocketAddr, number: u64, tls: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(Conn { server, peer, number, tls, auth: Mutex::new(AuthState::None) });
    let svc = service_fn(move |req| conn.clone().handle(req));
    let result = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(io), svc).await;
    if let Err(e) = result {
        tracing::debug!(connection = number, "connection ended: {e}");
    }
}
