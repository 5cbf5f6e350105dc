//! The simulator in the same process. Time is tokio's clock: in a runtime started paused
//! (`demo`, `plan`, tests) it runs virtually, jumping to the next event as soon as every task
//! waits, so a 40-minute disaster plays out in milliseconds; in a normal runtime it runs in real
//! time.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::{Failure, Simulator, Ticket};
use crate::backend::{Lync, LyncError};
use crate::model::{Request, RequestState, RunOn, Span, Stamp};
use crate::ps::Invocation;

#[derive(Clone)]
pub struct LocalSim {
    sim: Arc<Mutex<Simulator>>,
    origin: tokio::time::Instant,
}

impl LocalSim {
    /// Wraps a simulator; its time zero is now. Call inside a tokio runtime.
    pub fn new(sim: Simulator) -> LocalSim {
        LocalSim { sim: Arc::new(Mutex::new(sim)), origin: tokio::time::Instant::now() }
    }

    /// Locks the simulator after bringing it up to the current time.
    pub fn lock(&self) -> MutexGuard<'_, Simulator> {
        let now = self.now();
        let mut g = self.sim.lock().unwrap_or_else(|p| p.into_inner());
        g.advance_to(now);
        g
    }

    fn instant(&self, t: Stamp) -> tokio::time::Instant {
        self.origin + std::time::Duration::from_millis(t.0)
    }

    /// Waits until a call completes (or ends early, its server lost) and returns its result.
    async fn wait(&self, ticket: Ticket) -> Result<Value, Failure> {
        loop {
            let now = self.now();
            let look = self.lock().look_at_call(ticket.id, now);
            match look {
                Ok(r) => return r,
                Err(again) => tokio::time::sleep_until(self.instant(again)).await,
            }
        }
    }
}

impl Lync for LocalSim {
    fn invoke<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation) -> BoxFuture<'a, Result<Value, LyncError>> {
        async move {
            let ticket = self.lock().begin(run_on, inv).map_err(|f| target(f.into(), run_on))?;
            self.wait(ticket).await.map_err(|f| target(f.into(), run_on))
        }
        .boxed()
    }

    fn invoke_request<'a>(&'a self, run_on: &'a RunOn, inv: &'a Invocation, req: &'a Request) -> BoxFuture<'a, Result<Value, LyncError>> {
        async move {
            let ticket = self.lock().begin_request(run_on, inv, req).map_err(|f| target(f.into(), run_on))?;
            self.wait(ticket).await.map_err(|f| target(f.into(), run_on))
        }
        .boxed()
    }

    fn request_state<'a>(&'a self, req: &'a Request) -> BoxFuture<'a, RequestState> {
        let state = self.lock().request_state(req);
        futures::future::ready(state).boxed()
    }

    fn request_window(&self) -> Span {
        Span::mins(1)
    }

    fn now(&self) -> Stamp {
        Stamp(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn sleep(&self, d: Span) -> BoxFuture<'static, ()> {
        tokio::time::sleep(d.to_std()).boxed()
    }

    fn describe(&self) -> String {
        "in-process simulator".to_string()
    }
}

fn target(e: LyncError, run_on: &RunOn) -> LyncError {
    match e {
        LyncError::Unreachable { detail, .. } => LyncError::Unreachable { target: run_on.to_string(), detail },
        other => other,
    }
}

impl From<Failure> for LyncError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unreachable(detail) => LyncError::Unreachable { target: String::new(), detail },
            Failure::Cmdlet(e) => LyncError::Cmdlet { cmdlet: e.cmdlet, message: e.message, rule: e.rule },
            Failure::Interrupted(detail) => LyncError::Ambiguous { detail },
        }
    }
}
