//! Simulated time: scheduled and injected faults, advancing the clock, and what happens as it
//! passes (replication, the Backup Service, witnesses, service tracking, calls aborted by a
//! server going down).

use super::world::Net;
use super::{Completion, Fault, Simulator, cmd, errors, replication};
use crate::model::{BackupModule, Fqdn, Stamp};
use crate::scenario::{FaultAction, FaultTarget};

impl Simulator {
    /// Schedules a fault at a simulated time (applied when time passes it).
    pub fn schedule(&mut self, at: Stamp, fault: Fault) {
        self.scheduled.push((at, fault));
        self.scheduled.sort_by_key(|(t, _)| *t);
    }

    pub fn next_scheduled(&self) -> Option<Stamp> {
        self.scheduled.first().map(|(t, _)| *t)
    }

    /// The earliest time something changes on its own (a call completes, a fault, a sync).
    pub fn next_event(&self) -> Stamp {
        let mut t = self.next_tick;
        for op in self.ops.values().filter(|o| o.result.is_none()) {
            t = t.min(op.done_at);
        }
        if let Some(s) = self.next_scheduled() {
            t = t.min(s);
        }
        if let Some(r) = self.w.cms.replication_due {
            t = t.min(r);
        }
        for p in self.w.pools.values() {
            if let Some(a) = p.witness_failover_at {
                t = t.min(a);
            }
        }
        t
    }

    /// Applies a fault now.
    pub fn inject(&mut self, fault: &Fault) {
        if self.stats.first_fault.is_none() {
            self.stats.first_fault = Some(self.now);
        }
        match fault.action {
            FaultAction::Down => {
                self.w.faults.insert(fault.target.clone());
            }
            FaultAction::Up => {
                self.w.faults.remove(&fault.target);
                // Servers that return catch up with the CMS after a replication delay.
                self.schedule_replication();
            }
            FaultAction::Lose => {
                if let FaultTarget::Content(p) = &fault.target {
                    let r = replication::replica(&self.w, p, BackupModule::DataConf);
                    self.stats.lost_changes += r.home_ahead;
                    replication::lose_content(&mut self.w, p);
                }
            }
            FaultAction::Point => {
                if let FaultTarget::XmppDns(e) = &fault.target {
                    // The top record (and its A record) now resolves to the Edge pool.
                    let mut records = vec![e.clone()];
                    records.extend(self.w.xmpp_dns.iter().skip(1).filter(|x| *x != e).cloned());
                    self.w.xmpp_dns = records;
                }
            }
            FaultAction::Update => {
                if let FaultTarget::Server(s) = &fault.target {
                    cmd::apply_cumulative_update(self, s);
                }
            }
        }
        self.abort_ops_on_down_servers();
        self.arm_witness();
        self.track_service();
    }

    /// Advances simulated time, applying everything that happens on the way.
    pub fn advance_to(&mut self, t: Stamp) {
        loop {
            let next = self.next_event();
            if next > t {
                break;
            }
            self.integrate_to(next);
            self.process_events();
        }
        self.integrate_to(t);
    }

    pub(super) fn integrate_to(&mut self, t: Stamp) {
        if t > self.now {
            // The fault set is small; a copy lets the data model borrow the world mutably.
            let faults = self.w.faults.clone();
            let net = Net { topo: &self.topo, hosts: &self.hosts, faults: &faults };
            replication::integrate(&mut self.w, &self.topo, &net, &self.timings, self.now, t);
            self.now = t;
        }
    }

    pub(super) fn process_events(&mut self) {
        let now = self.now;
        while self.scheduled.first().is_some_and(|(at, _)| *at <= now) {
            let (_, f) = self.scheduled.remove(0);
            self.inject(&f);
        }
        let due: Vec<u64> = self.ops.values().filter(|o| o.result.is_none() && o.done_at <= now).map(|o| o.id).collect();
        for id in due {
            self.complete(id);
        }
        let witness: Vec<Fqdn> =
            self.w.pools.iter().filter(|(_, p)| p.witness_failover_at.is_some_and(|a| a <= now)).map(|(f, _)| f.clone()).collect();
        for pool in witness {
            cmd::witness_failover(self, &pool);
        }
        if self.w.cms.replication_due.is_some_and(|r| r <= now) {
            self.replicate();
        }
        if self.next_tick <= now {
            let faults = self.w.faults.clone();
            let net = Net { topo: &self.topo, hosts: &self.hosts, faults: &faults };
            replication::sync_tick(&mut self.w, &self.topo, &net, self.timings.sync_capacity);
            self.next_tick = now.plus(self.w.sync_interval);
        }
        self.track_service();
    }

    /// Every pool's users are served by a running pool (not in Resiliency mode, not in flight).
    pub fn all_users_served(&self) -> bool {
        let net = self.net();
        self.topo.pools.keys().all(|p| {
            replication::homed_users(&self.w, &self.topo, p) == 0
                || replication::writer(&self.w, &self.topo, &net, p) != replication::Writer::Nowhere
        })
    }

    pub(super) fn track_service(&mut self) {
        let served = self.all_users_served();
        if served != self.served {
            if served {
                if let Some(last) = self.stats.outages.last_mut() {
                    last.1 = Some(self.now);
                }
            } else {
                self.stats.outages.push((self.now, None));
            }
            self.served = served;
        }
    }

    pub(super) fn schedule_replication(&mut self) {
        let due = self.now.plus(self.timings.cms_replication);
        self.w.cms.replication_due = Some(self.w.cms.replication_due.map_or(due, |d| d.min(due)).max(self.now));
        if self.w.cms.replication_due.is_some_and(|d| d < due) {
            // An earlier sweep is pending; make sure one also runs after this change.
            self.w.cms.replication_due = Some(due);
        }
    }

    /// A configuration change was written to the CMS: bump the epoch and replicate later.
    pub(crate) fn config_changed(&mut self) {
        self.w.cms.epoch += 1;
        self.schedule_replication();
    }

    /// Replication sweep: every replica the CMS master reaches catches up.
    pub(super) fn replicate(&mut self) {
        self.w.cms.replication_due = None;
        if !self.cms_available() {
            return;
        }
        let master = self.w.cms.master.clone();
        let epoch = self.w.cms.epoch;
        let servers: Vec<Fqdn> = self.w.cms.replica_epoch.keys().cloned().collect();
        for s in servers {
            let ok = {
                let net = self.net();
                master.as_ref().is_some_and(|m| net.reaches(self.topo.pools.get(m).and_then(|p| p.front_ends.first()), &s))
            };
            if ok {
                self.w.cms.replica_epoch.insert(s.clone(), epoch);
                self.w.cms.last_contact.insert(s, self.now);
            }
        }
    }

    pub(super) fn arm_witness(&mut self) {
        let pools: Vec<Fqdn> = self.topo.pools.keys().cloned().collect();
        for p in pools {
            let due = cmd::witness_due(self, &p);
            if let Some(rt) = self.w.pools.get_mut(&p) {
                match (due, rt.witness_failover_at) {
                    (true, None) => rt.witness_failover_at = Some(self.now.plus(self.timings.witness_failover)),
                    (false, Some(_)) => rt.witness_failover_at = None,
                    _ => {}
                }
            }
        }
    }

    pub(super) fn abort_ops_on_down_servers(&mut self) {
        let down: Vec<u64> = {
            let net = self.net();
            self.ops.values().filter(|o| o.result.is_none() && o.aborted.is_none() && !net.host_up(&o.server)).map(|o| o.id).collect()
        };
        for id in down {
            let notice = self.now.plus(self.timings.session_loss);
            let Some(op) = self.ops.get_mut(&id) else { continue };
            op.aborted = Some(errors::interrupted(&op.server));
            // The caller's session notices the server is gone within the transport's timeout;
            // the call ends then, not at its planned completion.
            op.done_at = op.done_at.min(notice);
            let effect = match &op.completion {
                Completion::Effect(e) => Some(e.clone()),
                Completion::Output(_) => None,
            };
            if let Some(e) = effect {
                cmd::revert(self, &e);
            }
        }
    }
}
