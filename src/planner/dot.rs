//! Graphviz rendering of a plan (`lyncdr plan --format dot`).

use super::{Plan, StepKind};

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub(crate) fn render(p: &Plan) -> String {
    let mut out = String::from("digraph plan {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    out.push_str(&format!("  label=\"lyncdr plan {}\"; labelloc=t;\n", p.hash));
    for s in &p.steps {
        let shape = if s.kind == StepKind::Wait { "shape=note, " } else { "" };
        let color = if s.data_loss { "color=red, fontcolor=red, " } else { "" };
        out.push_str(&format!(
            "  \"{}\" [{shape}{color}label=\"{}\\n{}\\n@ {}\"];\n",
            esc(&s.id),
            esc(&s.id),
            esc(&s.cmdlet),
            esc(s.run_on.as_str())
        ));
    }
    for s in &p.steps {
        for a in &s.after {
            out.push_str(&format!("  \"{}\" -> \"{}\";\n", esc(a), esc(&s.id)));
        }
    }
    for (i, b) in p.blockers.iter().enumerate() {
        out.push_str(&format!(
            "  \"blocker{i}\" [shape=octagon, color=orange, label=\"BLOCKED {}\\n{}\"];\n",
            esc(&b.resource),
            esc(&b.reason)
        ));
    }
    out.push_str("}\n");
    out
}
