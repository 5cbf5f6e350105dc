//! The operator's `transport: Simulator`: a client of `lyncdr sim serve`. Connection failures
//! before a request is sent mean nothing ran ([`LyncError::Unreachable`]); a failure after it
//! was sent leaves the outcome unknown ([`LyncError::Ambiguous`]), exactly the ambiguity a
//! WinRM connection has.

use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::{Lync, LyncError};
use crate::model::{RunOn, Span, Stamp};
use crate::ps::Invocation;
use crate::sim::server::{ClockReply, InvokeReply, InvokeRequest};

pub struct HttpSim {
    base: String,
    client: reqwest::Client,
    speed: f64,
    /// Last simulated time heard from the server, and when.
    sync: Mutex<(Stamp, std::time::Instant)>,
}

impl HttpSim {
    /// Connects and reads the simulator's clock.
    pub async fn connect(url: &str) -> Result<HttpSim, LyncError> {
        let base = url.trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| LyncError::Protocol(e.to_string()))?;
        let reply: ClockReply = client
            .get(format!("{base}/v1/clock"))
            .send()
            .await
            .map_err(|e| LyncError::Unreachable { target: base.clone(), detail: e.to_string() })?
            .json()
            .await
            .map_err(|e| LyncError::Protocol(e.to_string()))?;
        Ok(HttpSim { base, client, speed: reply.speed, sync: Mutex::new((reply.now, std::time::Instant::now())) })
    }

    fn resync(&self, now: Stamp) {
        if let Ok(mut g) = self.sync.lock() {
            *g = (now, std::time::Instant::now());
        }
    }
}

impl Lync for HttpSim {
    fn invoke<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation) -> BoxFuture<'a, Result<Value, LyncError>> {
        async move {
            let req = InvokeRequest { run_on: run_on.clone(), invocation: inv.clone() };
            let resp = self.client.post(format!("{}/v1/invoke", self.base)).json(&req).send().await.map_err(|e| {
                if e.is_connect() {
                    LyncError::Unreachable { target: self.base.clone(), detail: e.to_string() }
                } else {
                    LyncError::Ambiguous { detail: format!("connection to the simulator failed during the call: {e}") }
                }
            })?;
            let reply: InvokeReply =
                resp.json().await.map_err(|e| LyncError::Ambiguous { detail: format!("the simulator's answer was lost: {e}") })?;
            self.resync(reply.now);
            match (reply.ok, reply.output, reply.error) {
                (true, out, _) => Ok(out.unwrap_or(Value::Null)),
                (false, _, Some(e)) => Err(e),
                (false, _, None) => Err(LyncError::Protocol("error reply without an error".into())),
            }
        }
        .boxed()
    }

    fn now(&self) -> Stamp {
        let (base, at) = self.sync.lock().map(|g| *g).unwrap_or((Stamp(0), std::time::Instant::now()));
        base.plus(Span((at.elapsed().as_secs_f64() * 1000.0 * self.speed) as u64))
    }

    fn sleep(&self, d: Span) -> BoxFuture<'static, ()> {
        tokio::time::sleep(std::time::Duration::from_secs_f64(d.as_secs_f64() / self.speed)).boxed()
    }

    fn describe(&self) -> String {
        format!("simulator at {}", self.base)
    }
}
