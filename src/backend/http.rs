//! The operator's `transport: Simulator`: a client of `lyncdr sim serve`. Connection failures
//! before a request is sent, and a 401 (authentication comes first), mean nothing ran
//! ([`LyncError::Unreachable`]); a failure after it was sent (a lost connection, a 5xx, a reply
//! cut off or unreadable) leaves the outcome unknown ([`LyncError::Ambiguous`]), exactly the
//! ambiguity a WinRM connection has.
//!
//! Nothing waits forever: connecting has a timeout, and while a cmdlet runs the server sends a
//! heartbeat (a space, which JSON ignores) every few seconds, so a server that accepts a call and
//! then goes silent is noticed by a read timeout (outcome unknown) however long the cmdlet
//! legitimately takes. Replies are read up to a size limit. The URL's userinfo (a password) is
//! used but never shown: messages name the server by its redacted URL.

use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::wire::{ClockReply, HEARTBEAT, InvokeReply, InvokeRequest};
use super::{Lync, LyncError};
use crate::model::{Request, RequestState, RunOn, Span, Stamp};
use crate::ps::Invocation;

/// Time to establish a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence tolerated while a reply is read (the server's heartbeat is far shorter).
const READ_TIMEOUT: Duration = Duration::from_secs(4 * HEARTBEAT.as_secs());
/// Total time for a request that does not run a cmdlet (the clock).
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest reply read.
pub const MAX_REPLY_BYTES: usize = 16 << 20;

pub struct HttpSim {
    base: reqwest::Url,
    /// `base` without userinfo, for every message.
    shown: String,
    client: reqwest::Client,
    speed: f64,
    /// Last simulated time heard from the server, and when.
    sync: Mutex<(Stamp, std::time::Instant)>,
    /// Wall-clock time a request may take to reach the server ([`Lync::request_window`]).
    window: Duration,
}

/// Default of [`HttpSim::set_request_window`].
pub const REQUEST_WINDOW: Duration = Duration::from_secs(30);

/// A URL with its userinfo (user name and password) removed, for messages.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.as_str().trim_end_matches('/').to_string()
        }
        // Not a URL: drop anything before an '@' that could be userinfo.
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("…@{host}"),
            None => url.to_string(),
        },
    }
}

impl HttpSim {
    /// Connects and reads the simulator's clock.
    pub async fn connect(url: &str) -> Result<HttpSim, LyncError> {
        let shown = redact_url(url);
        let base = reqwest::Url::parse(url.trim_end_matches('/'))
            .map_err(|e| LyncError::Protocol(format!("simulator URL {shown} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(LyncError::Protocol(format!("simulator URL {shown}: use http:// or https://")));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| LyncError::Protocol(e.without_url().to_string()))?;
        let mut sim =
            HttpSim { base, shown, client, speed: 1.0, sync: Mutex::new((Stamp(0), std::time::Instant::now())), window: REQUEST_WINDOW };
        let bytes = sim.get("v1/clock").await?;
        let reply: ClockReply = serde_json::from_slice(&bytes)
            .map_err(|e| LyncError::Protocol(format!("{} did not answer as a lyncdr simulator: {e}", sim.shown)))?;
        if !(reply.speed.is_finite() && reply.speed > 0.0) {
            return Err(LyncError::Protocol(format!("{} reports an unusable clock speed {}", sim.shown, reply.speed)));
        }
        sim.speed = reply.speed;
        sim.resync(reply.now);
        Ok(sim)
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, LyncError> {
        let mut u = self.base.clone();
        let joined = format!("{}/{path}", u.path().trim_end_matches('/'));
        u.set_path(&joined);
        Ok(u)
    }

    async fn get(&self, path: &str) -> Result<Vec<u8>, LyncError> {
        let resp = self
            .client
            .get(self.url(path)?)
            .timeout(QUERY_TIMEOUT)
            .send()
            .await
            .map_err(|e| LyncError::Unreachable { target: self.shown.clone(), detail: e.without_url().to_string() })?;
        read_capped(resp).await.map_err(|e| LyncError::Unreachable { target: self.shown.clone(), detail: e })
    }

    /// How long (wall-clock) a state-changing request may take to reach the simulator: past it
    /// the simulator refuses it, so a request lost on the way is known never to run. Loopback
    /// tests shorten it, so that resolving a lost request takes less time.
    pub fn set_request_window(&mut self, window: Duration) {
        self.window = window;
    }

    fn resync(&self, now: Stamp) {
        if let Ok(mut g) = self.sync.lock() {
            *g = (now, std::time::Instant::now());
        }
    }
}

/// Reads a reply body up to [`MAX_REPLY_BYTES`].
async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let status = resp.status();
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > MAX_REPLY_BYTES {
                    return Err(format!("the reply is larger than {MAX_REPLY_BYTES} bytes"));
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(e) => return Err(format!("the reply was cut off: {}", e.without_url())),
        }
    }
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&out).chars().take(300).collect();
        return Err(format!("HTTP {status}: {}", text.trim()));
    }
    Ok(out)
}

impl HttpSim {
    async fn call(&self, run_on: &RunOn, inv: &Invocation, request: Option<&Request>) -> Result<Value, LyncError> {
        {
            let req = InvokeRequest { run_on: run_on.clone(), invocation: inv.clone(), request: request.cloned() };
            let resp = self.client.post(self.url("v1/invoke")?).json(&req).send().await.map_err(|e| {
                if e.is_connect() {
                    LyncError::Unreachable { target: self.shown.clone(), detail: e.without_url().to_string() }
                } else {
                    LyncError::Ambiguous { detail: format!("connection to the simulator failed during the call: {}", e.without_url()) }
                }
            })?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
                // Authentication comes before anything runs.
                return Err(LyncError::Unreachable {
                    target: self.shown.clone(),
                    detail: "the simulator refused the credentials (HTTP 401); nothing ran".into(),
                });
            }
            let bytes =
                read_capped(resp).await.map_err(|e| LyncError::Ambiguous { detail: format!("the simulator's answer was lost: {e}") })?;
            let reply: InvokeReply = serde_json::from_slice(&bytes)
                .map_err(|e| LyncError::Ambiguous { detail: format!("the simulator's answer was unreadable: {e}") })?;
            self.resync(reply.now);
            match (reply.ok, reply.output, reply.error) {
                (true, out, _) => Ok(out.unwrap_or(Value::Null)),
                (false, _, Some(e)) => Err(e),
                (false, _, None) => Err(LyncError::Protocol("error reply without an error".into())),
            }
        }
    }
}

impl Lync for HttpSim {
    fn invoke<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation) -> BoxFuture<'a, Result<Value, LyncError>> {
        self.call(run_on, inv, None).boxed()
    }

    fn invoke_request<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation, req: &'a Request) -> BoxFuture<'a, Result<Value, LyncError>> {
        self.call(run_on, inv, Some(req)).boxed()
    }

    fn request_state<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, RequestState> {
        async move {
            let url = match self.url("v1/requests") {
                Ok(u) => u,
                Err(e) => return RequestState::Unknown(e.to_string()),
            };
            let resp = match self.client.post(url).timeout(QUERY_TIMEOUT).json(req).send().await {
                Ok(r) => r,
                Err(e) => return RequestState::Unknown(format!("cannot ask {}: {}", self.shown, e.without_url())),
            };
            match read_capped(resp).await.map(|b| serde_json::from_slice::<RequestState>(&b)) {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => RequestState::Unknown(format!("{} answered something unreadable: {e}", self.shown)),
                Err(e) => RequestState::Unknown(format!("cannot ask {}: {e}", self.shown)),
            }
        }
        .boxed()
    }

    /// Thirty seconds of wall-clock time (unless set otherwise), in the simulator's (scaled) time.
    fn request_window(&self) -> Span {
        Span::from_secs_f64(self.window.as_secs_f64() * self.speed).max(Span::secs(1))
    }

    fn now(&self) -> Stamp {
        let (base, at) = self.sync.lock().map(|g| *g).unwrap_or((Stamp(0), std::time::Instant::now()));
        base.plus(Span::from_secs_f64(at.elapsed().as_secs_f64() * self.speed))
    }

    fn sleep(&self, d: Span) -> BoxFuture<'static, ()> {
        tokio::time::sleep(real_time(d, self.speed)).boxed()
    }

    fn describe(&self) -> String {
        format!("simulator at {}", self.shown)
    }
}

/// Wall-clock time for a span of simulated time at `speed`, saturating (never a panic).
pub fn real_time(d: Span, speed: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() / speed).unwrap_or(Duration::from_secs(u32::MAX as u64))
}
