//! The [`Lync`] backend over WinRM: each call becomes a [`script`] run in a warm PowerShell
//! session on the server the call names (a few sessions per server, the management module
//! imported once in each), and the script's frame becomes the call's result. Where a call may
//! run anywhere, the configured management servers are tried in order.
//!
//! Outcomes map onto [`LyncError`] by what is known to have happened: a session that cannot be
//! opened ran nothing (`Unreachable`); a session lost or timed out while a script ran may have
//! run it (`Ambiguous`, and the session is dropped); an error frame is the cmdlet's error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::script::{self, ClockFrame, Frame};
use crate::backend::http::real_time;
use crate::backend::{Lync, LyncError, QueryMemo};
use crate::model::{Fqdn, Request, RunOn, Span, Stamp};
use crate::ps::Invocation;
use crate::winrm::WinrmError;
use crate::winrm::auth::credentials::Credentials;
use crate::winrm::http::TransportConfig;
use crate::winrm::session::PsSession;
use crate::winrm::shell::Shell;
use crate::winrm::soap::request::ShellOptions;

/// The error id of an error frame whose call may or may not have taken effect.
pub const OUTCOME_UNKNOWN: &str = "LyncdrOutcomeUnknown";

/// Warm sessions kept per server: independent steps of a plan may run on one server at once.
pub const SESSIONS_PER_SERVER: usize = 4;

/// How to reach the servers.
#[derive(Clone)]
pub struct WinRmConfig {
    /// The WS-Man endpoint of a server: `{server}` is replaced by its FQDN (for example
    /// `https://{server}:5986/wsman`). Without `{server}`, every server is reached at the same
    /// endpoint: the simulator's, which stands in for all of them.
    pub endpoint: String,
    pub credentials: Credentials,
    /// Servers tried in order for a call that may run anywhere (a query of the topology, the
    /// CMS): Front End servers with the management module, at least one per site.
    pub management_servers: Vec<Fqdn>,
    /// Longest a script may run (a failback of many users takes long).
    pub script_timeout: Duration,
    /// How the client authenticates (NTLM with message encryption by default).
    pub auth: crate::winrm::auth::AuthMethod,
    /// The double hop: `None` runs each script in the WinRM session itself (its account needs
    /// no network credentials: Kerberos delegation, or a CredSSP listener); a task runs each
    /// script as the task's account through [`script::run_as`].
    pub run_as: Option<script::RunAsTask>,
}

impl std::fmt::Debug for WinRmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WinRmConfig")
            .field("endpoint", &self.endpoint)
            .field("account", &self.credentials.account)
            .field("management_servers", &self.management_servers)
            .field("run_as", &self.run_as)
            .finish_non_exhaustive()
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<PsSession>>>;

/// How long the first read-only call for a server waits for others before its batch leaves:
/// the engine issues an observation's queries together, and a real round trip costs seconds.
pub const BATCH_WINDOW: Duration = Duration::from_millis(2);

/// A read-only call waiting for its batch.
struct Queued {
    inv: Invocation,
    reply: tokio::sync::oneshot::Sender<Result<Value, LyncError>>,
}

/// The WinRM backend.
pub struct WinRmLync {
    inner: Arc<Inner>,
    /// The deployment's clock: a reading, when it was taken, and its speed (1 on real servers).
    clock: (Stamp, Instant, f64),
    /// Wall-clock time a request may take to reach a server ([`Lync::request_window`]).
    window: Duration,
}

struct Inner {
    cfg: WinRmConfig,
    sessions: Mutex<HashMap<Fqdn, Vec<Slot>>>,
    /// Read-only calls waiting for their batch, per target.
    queued: Mutex<HashMap<RunOn, Vec<Queued>>>,
    /// Scripts run so far.
    round_trips: std::sync::atomic::AtomicU64,
    /// The observer's calls, asked together next time (one batch per target).
    memo: QueryMemo,
}

impl WinRmLync {
    /// Connects: reads the clock of the first management server that answers.
    pub async fn connect(cfg: WinRmConfig) -> Result<WinRmLync, LyncError> {
        if cfg.management_servers.is_empty() {
            return Err(LyncError::Protocol("no management server is configured: list at least one Front End server".into()));
        }
        let inner = Arc::new(Inner {
            cfg,
            sessions: Mutex::new(HashMap::new()),
            queued: Mutex::new(HashMap::new()),
            round_trips: Default::default(),
            memo: QueryMemo::default(),
        });
        let mut lync = WinRmLync { inner, clock: (Stamp(0), Instant::now(), 1.0), window: Duration::from_secs(60) };
        let mut last = None;
        for server in lync.inner.cfg.management_servers.clone() {
            match lync.inner.run_script(&server, &script::clock(), false).await {
                Ok(Frame::Result(v)) => {
                    lync.inner.count_round_trip();
                    let c: ClockFrame = serde_json::from_value(v)
                        .map_err(|e| LyncError::Protocol(format!("{server} answered the clock script with something unreadable: {e}")))?;
                    if !(c.speed.is_finite() && c.speed > 0.0) {
                        return Err(LyncError::Protocol(format!("{server} reports an unusable clock speed {}", c.speed)));
                    }
                    lync.clock = (Stamp(c.now_ms), Instant::now(), c.speed);
                    return Ok(lync);
                }
                Ok(Frame::Unreachable(u)) => last = Some(LyncError::Unreachable { target: u.target, detail: u.detail }),
                Ok(Frame::Error(e)) => return Err(LyncError::Protocol(format!("{server} cannot read its clock: {}", e.message))),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| LyncError::Protocol("no management server answered".into())))
    }

    /// How long (wall-clock) a state-changing request may take to reach a server (a minute by
    /// default); the simulator's loopback tests shorten it.
    pub fn set_request_window(&mut self, window: Duration) {
        self.window = window;
    }

    /// Scripts servers ran so far (each one round trip: what a real deployment pays). A server
    /// that could not be reached ran nothing and is not counted.
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A read-only call: queued with the others for the same target, sent as one batch.
    async fn query(&self, run_on: &RunOn, inv: &Invocation) -> Result<Value, LyncError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let first = {
            let mut queued = self.inner.queued.lock().unwrap_or_else(|p| p.into_inner());
            let q = queued.entry(run_on.clone()).or_default();
            q.push(Queued { inv: inv.clone(), reply });
            q.len() == 1
        };
        if first {
            // On a task of its own: a caller that gives up does not strand the others.
            let inner = self.inner.clone();
            let run_on = run_on.clone();
            tokio::spawn(async move {
                tokio::time::sleep(BATCH_WINDOW).await;
                let calls = inner.queued.lock().unwrap_or_else(|p| p.into_inner()).remove(&run_on).unwrap_or_default();
                inner.run_batch(&run_on, calls).await;
            });
        }
        answer.await.unwrap_or_else(|_| Err(LyncError::Protocol("the batch of this call was lost".into())))
    }
}

impl Inner {
    /// Counts a script a server ran. A server that answers only that it is unreachable (the
    /// simulator's endpoint, which stands in for every server) counts as a failed connection,
    /// as it is on a real network: nothing ran.
    fn count_round_trip(&self) {
        self.round_trips.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn endpoint(&self, server: &Fqdn) -> String {
        self.cfg.endpoint.replace("{server}", server.as_str())
    }

    fn slots(&self, server: &Fqdn) -> Vec<Slot> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(server.clone()).or_insert_with(|| (0..SESSIONS_PER_SERVER).map(|_| Slot::default()).collect()).clone()
    }

    /// Runs one script on `server` in a warm session (opened on first use). `changes` says
    /// whether the script may change the deployment (then a lost session is ambiguous).
    async fn run_script(&self, server: &Fqdn, text: &str, changes: bool) -> Result<Frame, LyncError> {
        self.run_script_with(server, text, changes, script::parse_frame).await
    }

    /// A call's script as sent: through the run-as task when one is configured.
    fn wrapped(&self, text: String) -> String {
        match &self.cfg.run_as {
            Some(task) => script::run_as(&text, task),
            None => text,
        }
    }

    async fn run_script_with<T>(
        &self,
        server: &Fqdn,
        text: &str,
        changes: bool,
        parse: impl Fn(&str) -> Result<T, script::FrameError>,
    ) -> Result<T, LyncError> {
        let slots = self.slots(server);
        let slot = match slots.iter().find_map(|s| s.clone().try_lock_owned().ok()) {
            Some(g) => g,
            None => slots[0].clone().lock_owned().await,
        };
        let mut slot = slot;
        if slot.is_none() {
            *slot = Some(self.open(server).await?);
        }
        let Some(session) = slot.as_mut() else { return Err(LyncError::Protocol("no session".into())) };
        match session.run(text, self.cfg.script_timeout).await {
            Ok(out) => match parse(&out.stdout) {
                Ok(frame) => Ok(frame),
                Err(e) => {
                    self.count_round_trip();
                    let stderr = crate::model::text::shown_lines(out.stderr.trim());
                    let detail = if stderr.is_empty() { e.to_string() } else { format!("{e}; PowerShell said: {stderr}") };
                    Err(if changes {
                        LyncError::Ambiguous { detail: format!("{server}: {detail}") }
                    } else {
                        LyncError::Protocol(format!("{server}: {detail}"))
                    })
                }
            },
            Err(e) => {
                // The session is unusable (lost, or out of step after a timeout): the next call
                // opens another.
                *slot = None;
                Err(match e {
                    WinrmError::Connect { .. } | WinrmError::Auth(_) => {
                        LyncError::Unreachable { target: server.to_string(), detail: e.to_string() }
                    }
                    other => {
                        // Sent, then lost: the server may have run it.
                        self.count_round_trip();
                        if changes {
                            LyncError::Ambiguous { detail: format!("{server}: {other}") }
                        } else {
                            LyncError::Protocol(format!("{server}: {other}"))
                        }
                    }
                })
            }
        }
    }

    async fn open(&self, server: &Fqdn) -> Result<PsSession, LyncError> {
        let unreachable = |e: WinrmError| LyncError::Unreachable { target: server.to_string(), detail: e.to_string() };
        let mut cfg = TransportConfig::new(&self.endpoint(server), self.cfg.credentials.clone()).map_err(unreachable)?;
        cfg.auth = self.cfg.auth;
        let shell = Shell::open(cfg, &ShellOptions::lyncdr()).await.map_err(unreachable)?;
        PsSession::start(shell).await.map_err(unreachable)
    }

    /// Where a call connects, and where its script says it runs, in the order to try.
    fn targets(&self, run_on: &RunOn) -> Vec<(Fqdn, RunOn)> {
        match run_on {
            RunOn::Server(s) => vec![(s.clone(), run_on.clone())],
            // The pool's FQDN resolves (DNS load balancing) to one of its Front End servers.
            RunOn::Pool(p) => vec![(p.clone(), run_on.clone())],
            RunOn::Any => self.cfg.management_servers.iter().map(|s| (s.clone(), RunOn::Server(s.clone()))).collect(),
        }
    }

    /// Runs queued read-only calls as one script per server tried, and answers each.
    async fn run_batch(&self, run_on: &RunOn, calls: Vec<Queued>) {
        if calls.is_empty() {
            return;
        }
        let invs: Vec<Invocation> = calls.iter().map(|c| c.inv.clone()).collect();
        let mut last = LyncError::Unreachable { target: run_on.to_string(), detail: "no server to run on".into() };
        for (server, on) in self.targets(run_on) {
            let text = self.wrapped(if invs.len() == 1 { script::invoke(&on, &invs[0], None) } else { script::batch(&on, &invs) });
            let frames = match self.run_frames(&server, &text).await {
                Ok(f) if f.len() == calls.len() => f,
                Ok(f) => {
                    let e = LyncError::Protocol(format!("{server} answered {} frames for {} calls", f.len(), calls.len()));
                    return answer_all(calls, e);
                }
                Err(e @ LyncError::Unreachable { .. }) => {
                    last = e;
                    continue;
                }
                Err(e) => return answer_all(calls, e),
            };
            // A server the simulator's endpoint says is unreachable answers every call so.
            if frames.iter().all(|f| matches!(f, Frame::Unreachable(_))) {
                if let Some(Frame::Unreachable(u)) = frames.first() {
                    last = LyncError::Unreachable { target: u.target.clone(), detail: u.detail.clone() };
                }
                continue;
            }
            self.count_round_trip();
            for (c, f) in calls.into_iter().zip(frames) {
                let _ = c.reply.send(outcome(&c.inv, f));
            }
            return;
        }
        answer_all(calls, last);
    }

    /// Runs a read-only script and reads all its frames.
    async fn run_frames(&self, server: &Fqdn, text: &str) -> Result<Vec<Frame>, LyncError> {
        self.run_script_with(server, text, false, script::parse_frames).await
    }

    async fn call(&self, run_on: &RunOn, inv: &Invocation, req: Option<&Request>) -> Result<Value, LyncError> {
        let targets = self.targets(run_on);
        let changes = req.is_some();
        let mut last = None;
        for (server, on) in targets {
            let text = self.wrapped(script::invoke(&on, inv, req));
            match self.run_script(&server, &text, changes).await {
                Ok(Frame::Unreachable(u)) => last = Some(LyncError::Unreachable { target: u.target, detail: u.detail }),
                Ok(f) => {
                    self.count_round_trip();
                    return outcome(inv, f);
                }
                Err(e @ LyncError::Unreachable { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| LyncError::Unreachable { target: run_on.to_string(), detail: "no server to run on".into() }))
    }
}

impl Lync for WinRmLync {
    /// Read-only: batched with the other calls for the same target.
    fn invoke<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation) -> BoxFuture<'a, Result<Value, LyncError>> {
        self.query(run_on, inv).boxed()
    }

    /// State-changing: a script of its own.
    fn invoke_request<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation, req: &'a Request) -> BoxFuture<'a, Result<Value, LyncError>> {
        self.inner.call(run_on, inv, Some(req)).boxed()
    }

    /// A minute of wall-clock time (unless set otherwise), in the deployment's time.
    fn request_window(&self) -> Span {
        Span::from_secs_f64(self.window.as_secs_f64() * self.clock.2).max(Span::secs(1))
    }

    fn now(&self) -> Stamp {
        let (base, at, speed) = self.clock;
        base.plus(Span::from_secs_f64(at.elapsed().as_secs_f64() * speed))
    }

    fn sleep(&self, d: Span) -> BoxFuture<'static, ()> {
        tokio::time::sleep(real_time(d, self.clock.2)).boxed()
    }

    fn describe(&self) -> String {
        format!("WinRM {} as {}", self.inner.cfg.endpoint, self.inner.cfg.credentials.account)
    }

    fn query_memo(&self) -> Option<&QueryMemo> {
        Some(&self.inner.memo)
    }
}

/// A call's result from its frame.
fn outcome(inv: &Invocation, frame: Frame) -> Result<Value, LyncError> {
    match frame {
        Frame::Result(v) => Ok(v),
        // The simulator's endpoint says when it lost track of a call it started.
        Frame::Error(e) if e.error_id == OUTCOME_UNKNOWN => Err(LyncError::Ambiguous { detail: e.message }),
        // The run-as wrapper withdrew the script before the task took it.
        Frame::Error(e) if e.error_id == script::NOT_RUN => {
            Err(LyncError::Unreachable { target: "the run-as task".into(), detail: e.message })
        }
        Frame::Error(e) => Err(LyncError::Cmdlet { cmdlet: inv.cmdlet.clone(), message: e.message, rule: e.rule }),
        Frame::Unreachable(u) => Err(LyncError::Unreachable { target: u.target, detail: u.detail }),
    }
}

fn answer_all(calls: Vec<Queued>, e: LyncError) {
    for c in calls {
        let _ = c.reply.send(Err(e.clone()));
    }
}
