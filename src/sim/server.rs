//! `lyncdr sim serve`: the simulator as a process with an HTTP JSON API, in scaled real time.
//! The operator's `transport: Simulator` talks to it through [`crate::backend::HttpSim`]; tests and
//! people drive faults and the clock through it.
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `POST /v1/invoke` | `{"runOn": "any" \| {"pool": fqdn} \| {"server": fqdn}, "invocation": {...}}` | `{"ok", "output" \| "error", "started", "finished", "now"}`, after the cmdlet completes; until then a space every [`HEARTBEAT`] (JSON ignores leading spaces), so a client can tell a long cmdlet from a dead server |
//! | `GET /v1/clock` | | `{"now": ms, "speed": n}` |
//! | `POST /v1/clock` | `{"advance": "10m"}` (at most [`MAX_ADVANCE`]) | the new clock |
//! | `POST /v1/requests` | `{"id", "notAfter"}` | what the ledger says of that request ([`crate::model::RequestState`]) |
//! | `POST /v1/faults` | `{"fault": "down:site/Dallas", "at": "40m"?}` | applied now, or scheduled at a simulated time |
//! | `POST /v1/transport-faults` | `{"seed": n, "rules": [...]}` (a scenario's `transportFaults` section, [`crate::scenario::transport`]) | replaces the transport fault schedule; the listing |
//! | `GET /v1/transport-faults` | | the rules, how often each matched and fired, and every fault applied ([`super::transport_faults::Listing`]) |
//! | `GET /v1/state` | | ground truth ([`super::Snapshot`]) |
//! | `GET /v1/log` | | every call ([`super::Record`]) |
//! | `GET /v1/stats` | | losses and outages ([`super::Stats`]) |
//! | `GET /healthz` | | `ok` |
//!
//! Transport faults on `/v1/invoke` ([`super::transport_faults`]): `refuse` answers that the
//! target cannot be reached (nothing ran); `unauthorized` answers 401 and `status` a 5xx, both
//! without running anything; `timeoutBeforeSend` (after its delay) and `dropAfterSend` close the
//! connection without running anything; `loseReply` runs the cmdlet, then closes without the
//! answer; `truncate` runs it and sends only the first bytes of the answer; `slow` holds the
//! call back before running it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::transport_faults::{Call, Transport, TransportFaults};
use super::{Fault, Simulator};
use crate::backend::LyncError;
use crate::backend::http::real_time;
pub use crate::backend::wire::{ClockReply, HEARTBEAT, InvokeReply, InvokeRequest};
use crate::model::{Request, RunOn, Span, Stamp};
use crate::ps::Invocation;
use crate::scenario::transport::{TransportFaultKind, TransportFaultsFile};

/// Longest jump of `POST /v1/clock` (the simulator processes every event on the way).
pub const MAX_ADVANCE: Span = Span::hours(24 * 7);

/// Simulated time running `speed` times faster than wall-clock time, plus manual jumps.
pub struct ScaledClock {
    origin: std::time::Instant,
    speed: f64,
    offset_ms: AtomicU64,
    jumped: Notify,
}

impl ScaledClock {
    pub fn new(speed: f64) -> ScaledClock {
        ScaledClock { origin: std::time::Instant::now(), speed: speed.max(0.001), offset_ms: AtomicU64::new(0), jumped: Notify::new() }
    }
    pub fn speed(&self) -> f64 {
        self.speed
    }
    pub fn now(&self) -> Stamp {
        let scaled = Span::from_secs_f64(self.origin.elapsed().as_secs_f64() * self.speed);
        Stamp(self.offset_ms.load(Ordering::SeqCst)).plus(scaled)
    }
    pub fn advance(&self, d: Span) {
        self.offset_ms.fetch_add(d.0, Ordering::SeqCst);
        self.jumped.notify_waiters();
    }
    /// Waits until simulated time reaches `t`.
    pub async fn sleep_until(&self, t: Stamp) {
        loop {
            let now = self.now();
            if now >= t {
                return;
            }
            let real = real_time(t.since(now), self.speed);
            tokio::select! {
                _ = tokio::time::sleep(real) => {}
                _ = self.jumped.notified() => {}
            }
        }
    }
}

pub struct SimServer {
    sim: Mutex<Simulator>,
    pub clock: ScaledClock,
    /// The transport faults the endpoints inject (none until a schedule is set).
    pub transport: TransportFaults,
}

impl SimServer {
    pub fn new(sim: Simulator, speed: f64) -> Arc<SimServer> {
        Arc::new(SimServer { sim: Mutex::new(sim), clock: ScaledClock::new(speed), transport: TransportFaults::default() })
    }

    /// The simulator, brought up to the current simulated time.
    pub fn lock(&self) -> MutexGuard<'_, Simulator> {
        let mut g = self.sim.lock().unwrap_or_else(|p| p.into_inner());
        g.advance_to(self.clock.now());
        g
    }

    pub async fn invoke(&self, run_on: &RunOn, inv: &Invocation, req: Option<&Request>) -> InvokeReply {
        self.invoke_via(Transport::Direct, run_on, inv, req).await
    }

    /// [`SimServer::invoke`] for a call that came through an endpoint: a `refuse` transport
    /// fault answers that the target cannot be reached, and nothing runs.
    pub async fn invoke_via(&self, transport: Transport, run_on: &RunOn, inv: &Invocation, req: Option<&Request>) -> InvokeReply {
        let started = self.clock.now();
        let call = Call { run_on, cmdlet: &inv.cmdlet, mutating: req.is_some(), transport };
        if self.transport.decide(started, &call, |k| *k == TransportFaultKind::Refuse).is_some() {
            let error = LyncError::Unreachable {
                target: run_on.to_string(),
                detail: "connection refused (transport fault injected by the simulator); nothing ran".into(),
            };
            return InvokeReply { ok: false, output: None, error: Some(error), started, finished: started, now: started };
        }
        let begun = match req {
            Some(r) => self.lock().begin_request(run_on, inv, r),
            None => self.lock().begin(run_on, inv),
        };
        let result = match begun {
            Err(f) => Err(f.into()),
            Ok(ticket) => {
                // Until it completes, or ends early (its server lost).
                loop {
                    let now = self.clock.now();
                    let look = self.lock().look_at_call(ticket.id, now);
                    match look {
                        Ok(r) => break r.map_err(LyncError::from),
                        Err(again) => self.clock.sleep_until(again).await,
                    }
                }
            }
        };
        let now = self.clock.now();
        match result {
            Ok(output) => InvokeReply { ok: true, output: Some(output), error: None, started, finished: now, now },
            Err(e) => InvokeReply { ok: false, output: None, error: Some(e), started, finished: now, now },
        }
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/v1/invoke", post(invoke))
            .route("/v1/clock", get(clock).post(set_clock))
            .route("/v1/faults", post(fault))
            .route("/v1/transport-faults", get(transport_faults).post(set_transport_faults))
            .route(
                "/v1/requests",
                post(|State(s): State<Arc<SimServer>>, Json(r): Json<Request>| async move { Json(s.lock().request_state(&r)) }),
            )
            .route("/v1/state", get(|State(s): State<Arc<SimServer>>| async move { Json(s.lock().snapshot()) }))
            .route("/v1/log", get(|State(s): State<Arc<SimServer>>| async move { Json(s.lock().log().to_vec()) }))
            .route("/v1/stats", get(|State(s): State<Arc<SimServer>>| async move { Json(s.lock().stats().clone()) }))
            .with_state(self.clone())
    }
}

/// Runs the call; the reply streams a space every [`HEARTBEAT`] until the JSON answer. A
/// transport fault of the schedule changes what the client gets (see the module table).
async fn invoke(State(s): State<Arc<SimServer>>, Json(req): Json<InvokeRequest>) -> axum::response::Response {
    let call = Call { run_on: &req.run_on, cmdlet: &req.invocation.cmdlet, mutating: req.request.is_some(), transport: Transport::Http };
    let fault = s.transport.decide(s.clock.now(), &call, |k| *k != TransportFaultKind::Refuse);
    let mut runs = true;
    match &fault {
        Some(TransportFaultKind::Unauthorized) => {
            return axum::response::Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("www-authenticate", "Basic realm=\"lyncdr simulator\"")
                .body(Body::empty())
                .unwrap_or_else(|_| axum::response::Response::new(Body::empty()));
        }
        Some(TransportFaultKind::Status { status }) => {
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (code, "transport fault injected by the simulator").into_response();
        }
        Some(TransportFaultKind::Slow { delay }) => {
            let until = s.clock.now().plus(*delay);
            s.clock.sleep_until(until).await;
        }
        Some(TransportFaultKind::TimeoutBeforeSend { delay }) => {
            let until = s.clock.now().plus(*delay);
            s.clock.sleep_until(until).await;
            runs = false;
        }
        Some(TransportFaultKind::DropAfterSend) => runs = false,
        _ => {}
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let cut = || std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "transport fault injected by the simulator");
    tokio::spawn(async move {
        if !runs {
            let _ = tx.send(Err(cut())).await;
            return;
        }
        let call = s.invoke_via(Transport::Http, &req.run_on, &req.invocation, req.request.as_ref());
        tokio::pin!(call);
        let reply = loop {
            tokio::select! {
                r = &mut call => break r,
                _ = tokio::time::sleep(HEARTBEAT) => {
                    if tx.send(Ok(b" ".to_vec())).await.is_err() {
                        // The client left; the cmdlet goes on in the simulated world regardless.
                        break call.await;
                    }
                }
            }
        };
        let body = serde_json::to_vec(&reply).unwrap_or_default();
        match fault {
            Some(TransportFaultKind::LoseReply) => {
                let _ = tx.send(Err(cut())).await;
            }
            Some(TransportFaultKind::Truncate { bytes }) => {
                let _ = tx.send(Ok(body[..bytes.min(body.len())].to_vec())).await;
                let _ = tx.send(Err(cut())).await;
            }
            _ => {
                let _ = tx.send(Ok(body)).await;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    axum::response::Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| axum::response::Response::new(Body::empty()))
}

async fn transport_faults(State(s): State<Arc<SimServer>>) -> Json<super::transport_faults::Listing> {
    Json(s.transport.listing())
}

async fn set_transport_faults(State(s): State<Arc<SimServer>>, Json(file): Json<TransportFaultsFile>) -> (StatusCode, Json<Value>) {
    let topology = s.lock().topology().clone();
    match file.validate(&topology) {
        Ok(schedule) => {
            s.transport.set(schedule);
            (StatusCode::OK, Json(json!(s.transport.listing())))
        }
        Err((field, message)) => (StatusCode::BAD_REQUEST, Json(json!({ "error": format!("{field}: {message}") }))),
    }
}

async fn clock(State(s): State<Arc<SimServer>>) -> Json<ClockReply> {
    Json(ClockReply { now: s.clock.now(), speed: s.clock.speed() })
}

#[derive(Deserialize)]
struct ClockRequest {
    advance: Span,
}

async fn set_clock(State(s): State<Arc<SimServer>>, Json(req): Json<ClockRequest>) -> (StatusCode, Json<Value>) {
    if req.advance > MAX_ADVANCE {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({ "error": format!("advance: {} is more than {MAX_ADVANCE}; advance in steps of at most {MAX_ADVANCE}", req.advance) }),
            ),
        );
    }
    s.clock.advance(req.advance);
    let now = s.lock().now();
    (StatusCode::OK, Json(json!(ClockReply { now, speed: s.clock.speed() })))
}

#[derive(Deserialize)]
struct FaultRequest {
    fault: String,
    #[serde(default)]
    at: Option<Span>,
}

async fn fault(State(s): State<Arc<SimServer>>, Json(req): Json<FaultRequest>) -> (StatusCode, Json<Value>) {
    let fault = match Fault::parse(&req.fault) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))),
    };
    let mut sim = s.lock();
    if let Err(e) = fault.check(sim.topology()) {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": e })));
    }
    match req.at {
        Some(at) => sim.schedule(Stamp(at.0), fault.clone()),
        None => sim.inject(&fault),
    }
    (StatusCode::OK, Json(json!({ "fault": fault.to_string(), "now": sim.now() })))
}
