//! Human-readable renderings: the observed deployment as a table, a plan as a numbered list
//! with dependencies, blockers and notices.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::model::{BackupModule, Observed};
use crate::planner::{Plan, StepKind};

pub fn observed_table(o: &Observed) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["Front End pool", "Site", "Health", "Users served by", "Backup pool", "Backup Service (export)", "Principal"]);
    for (f, p) in &o.pools {
        let site = o.topology.pools.get(f).map(|x| x.site.clone()).unwrap_or_default();
        let export = p.module(BackupModule::PresenceFocus).map(|m| format!("{:?}", m.export)).unwrap_or_else(|| "-".into());
        let principal = p.back_end.principal.get(&crate::model::DbType::User).map(|r| r.to_string()).unwrap_or_else(|| "-".into());
        t.add_row(vec![
            f.to_string(),
            site,
            p.health().to_string(),
            format!("{} ({:?})", o.serving(f), p.failover),
            o.topology.partner(f).map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
            export,
            principal,
        ]);
    }
    let mut e = Table::new();
    e.load_preset(UTF8_FULL_CONDENSED);
    e.set_header(vec!["Edge pool", "Up", "Next hop", "SIP federation", "XMPP federation"]);
    for (f, x) in &o.edges {
        e.add_row(vec![
            f.to_string(),
            if x.is_up() { "yes" } else { "no" }.to_string(),
            x.next_hop.as_ref().map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            if o.federation.sip_edge.as_ref() == Some(f) { "yes" } else { "" }.to_string(),
            if o.federation.xmpp_edge.as_ref() == Some(f) { "yes" } else { "" }.to_string(),
        ]);
    }
    let cms = match (&o.cms.master_pool, &o.cms.home_pool) {
        (Some(m), _) => format!("CMS active on {m}"),
        (None, Some(h)) => format!("CMS UNAVAILABLE (hosted on {h})"),
        (None, None) => "CMS not found".into(),
    };
    format!("Observed at {}\n{t}\n{e}\n{cms}\n\n", o.at)
}

pub fn plan_text(p: &Plan) -> String {
    let mut out = String::new();
    if p.steps.is_empty() {
        out.push_str("Plan: nothing to do.\n");
    } else {
        out.push_str(&format!("Plan {} ({} steps):\n", p.hash, p.steps.len()));
        for (i, s) in p.steps.iter().enumerate() {
            let kind = if s.kind == StepKind::Wait { "wait " } else { "" };
            let loss = if s.data_loss { "  [MAY LOSE DATA: consented]" } else { "" };
            out.push_str(&format!("{:>3}. {kind}{}{loss}\n", i + 1, s.id));
            out.push_str(&format!("       {}   (on {})\n", s.command(), s.run_on));
            out.push_str(&format!("       why: {}\n", s.reason));
            if !s.after.is_empty() {
                out.push_str(&format!("       after: {}\n", s.after.join(", ")));
            }
        }
    }
    for b in &p.blockers {
        out.push_str(&format!("BLOCKED {}: {}\n", b.resource, b.reason));
    }
    for n in &p.notices {
        out.push_str(&format!("note: {n}\n"));
    }
    if let Some(r) = p.recheck_after {
        out.push_str(&format!("plan again in {r}\n"));
    }
    out
}
