//! The recovery timeline chart (issue 13): what a run of the engine did, drawn so a reader sees
//! where the time goes. The x axis is simulated time in minutes from the first fault; there is
//! one lane per Front End pool, per Edge pool, for the CMS, for user placements and for the
//! deployment as a whole; each step is a bar from its start to its end (waits hatched, failures
//! red, steps skipped or cut short by a replan grey); the critical path after each fault is
//! outlined and joined; the faults and the moment every user was served again are vertical
//! lines. [`Timeline::from_events`] reads the executor's events, [`render`] draws the SVG by
//! hand: a pure function, the same bytes for the same timeline.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::engine::executor::{Event, StepResult};
use crate::model::{Fqdn, Stamp, Topology};
use crate::planner::StepKind;
use crate::winrm::soap::xml::escape_attr;

/// Where a step's bar is drawn.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    FrontEnd(Fqdn),
    Edge(Fqdn),
    Cms,
    /// Moving users between pools (placements).
    Users,
    /// Steps of the whole deployment (the Backup Service sync interval, topology publishing).
    Deployment,
}

/// A lane's heading.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneHead {
    pub lane: Lane,
    pub title: String,
    pub detail: String,
}

/// One execution of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub id: String,
    /// The short id drawn on the bar.
    pub label: String,
    pub lane: Lane,
    /// The cmdlet line and where it ran; `None`: the step never started (its effect already
    /// held, or the plan went stale first): drawn as a tick where it finished.
    pub command: Option<(String, String)>,
    pub start: Stamp,
    pub end: Stamp,
    pub kind: StepKind,
    /// `None`: still running when the timeline ends.
    pub result: Option<StepResult>,
    /// The steps of its plan it ran after.
    pub after: Vec<String>,
}

impl Bar {
    pub fn started(&self) -> bool {
        self.command.is_some()
    }
    /// Whether later steps of its plan could count on it.
    fn completed(&self) -> bool {
        matches!(self.result, Some(StepResult::Succeeded | StepResult::Skipped))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// A fault (or a repair) happened: the axis counts from the first; each starts a stretch
    /// whose critical path is marked.
    Fault,
    /// Every user was served again (the RTO, counted from the first fault).
    Served,
}

/// A moment drawn as a vertical line across the lanes.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub at: Stamp,
    pub label: String,
    pub kind: MarkKind,
}

/// A run of the engine, ready to draw.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timeline {
    pub title: String,
    pub subtitle: String,
    pub lanes: Vec<LaneHead>,
    pub bars: Vec<Bar>,
    pub marks: Vec<Mark>,
}

impl Timeline {
    /// The steps of the executor's events (`Observed` events are ignored), one bar per step
    /// execution, each in the lane of what it acts on; every pool and Edge pool of the topology
    /// and the CMS have a lane, users and the deployment one when a step needs it.
    pub fn from_events(events: &[Event], topology: &Topology) -> Timeline {
        let suffix = common_suffix(topology);
        let mut bars: Vec<Bar> = Vec::new();
        let mut open: BTreeMap<&str, usize> = BTreeMap::new();
        let mut last = Stamp(0);
        for e in events {
            match e {
                Event::StepStarted { id, command, run_on, at } => {
                    last = last.max(*at);
                    let lane = lane_of(id, topology);
                    open.insert(id.as_str(), bars.len());
                    bars.push(Bar {
                        id: id.clone(),
                        label: label_of(id, &lane, &suffix),
                        lane,
                        command: Some((command.clone(), run_on.clone())),
                        start: *at,
                        end: *at,
                        kind: StepKind::Change,
                        result: None,
                        after: vec![],
                    });
                }
                Event::StepFinished { id, at, result, kind, after } => {
                    last = last.max(*at);
                    let i = match open.remove(id.as_str()) {
                        Some(i) => i,
                        None => {
                            // Never started: a tick where it finished.
                            let lane = lane_of(id, topology);
                            let label = label_of(id, &lane, &suffix);
                            bars.push(Bar {
                                id: id.clone(),
                                label,
                                lane,
                                command: None,
                                start: *at,
                                end: *at,
                                kind: *kind,
                                result: None,
                                after: vec![],
                            });
                            bars.len() - 1
                        }
                    };
                    let b = &mut bars[i];
                    (b.end, b.kind, b.result, b.after) = (*at, *kind, Some(result.clone()), after.clone());
                }
                Event::Observed { .. } | Event::StepNote { .. } => {}
            }
        }
        for i in open.into_values() {
            bars[i].end = last;
        }
        let mut lanes: BTreeSet<Lane> = topology.pools.keys().map(|p| Lane::FrontEnd(p.clone())).collect();
        lanes.extend(topology.edges.keys().map(|e| Lane::Edge(e.clone())));
        lanes.insert(Lane::Cms);
        lanes.extend(bars.iter().map(|b| b.lane.clone()));
        let lanes = lanes.into_iter().map(|lane| head(lane, topology)).collect();
        Timeline { lanes, bars, ..Timeline::default() }
    }

    /// The critical path of each stretch of the run: from every fault to the next (the whole
    /// run when there is none), the chain of steps that ends last, walked back from the
    /// last-finishing step through the dependency (of its plan) that finished last before it
    /// started. Indexes into `bars`, earliest first.
    pub fn critical_paths(&self) -> Vec<Vec<usize>> {
        let mut faults: Vec<Stamp> = self.marks.iter().filter(|m| m.kind == MarkKind::Fault).map(|m| m.at).collect();
        faults.sort();
        faults.dedup();
        if faults.is_empty() {
            faults.push(Stamp(0));
        }
        let mut paths = Vec::new();
        for (k, from) in faults.iter().enumerate() {
            let to = faults.get(k + 1);
            let in_stretch = |b: &Bar| b.started() && b.end >= *from && to.is_none_or(|t| b.end < *t);
            let Some((mut cur, _)) = self.bars.iter().enumerate().filter(|(_, b)| in_stretch(b)).max_by_key(|(i, b)| (b.end, b.start, *i))
            else {
                continue;
            };
            let mut chain = vec![cur];
            loop {
                let b = &self.bars[cur];
                let dep = self
                    .bars
                    .iter()
                    .enumerate()
                    .filter(|(j, d)| !chain.contains(j) && d.completed() && d.end <= b.start && b.after.contains(&d.id))
                    .max_by_key(|(j, d)| (d.end, *j));
                match dep {
                    Some((j, _)) => {
                        chain.push(j);
                        cur = j;
                    }
                    None => break,
                }
            }
            chain.reverse();
            paths.push(chain);
        }
        paths
    }

    /// Where the axis counts from: the first fault, else the start of the run.
    fn origin(&self) -> Stamp {
        self.marks.iter().filter(|m| m.kind == MarkKind::Fault).map(|m| m.at).min().unwrap_or(Stamp(0))
    }
}

/// The lane of a step: CMS steps (its failover, exports and replication waits) and user moves
/// by their action; otherwise the first part of the id after the action that names a Front End
/// pool, an Edge pool or one of their servers (`pool-failover/pool01.dal…` acts on Dallas's
/// users wherever it runs); otherwise the deployment.
pub fn lane_of(id: &str, topology: &Topology) -> Lane {
    let mut parts = id.split('/');
    let action = parts.next().unwrap_or_default();
    if action.starts_with("cms-") || action == "wait-cms-replication" {
        return Lane::Cms;
    }
    if action == "move-users" {
        return Lane::Users;
    }
    parts.find_map(|p| place(p, topology)).unwrap_or(Lane::Deployment)
}

/// The pool or Edge pool an FQDN is, or holds it as a server.
fn place(name: &str, t: &Topology) -> Option<Lane> {
    let f = Fqdn::parse(name).ok()?;
    if let Some(p) = t.pool_of_server(&f) {
        return Some(Lane::FrontEnd(p.fqdn.clone()));
    }
    if t.pools.contains_key(&f) {
        return Some(Lane::FrontEnd(f));
    }
    if let Some(p) = t.pools.values().find(|p| p.back_end.primary == f || p.back_end.mirror.as_ref() == Some(&f)) {
        return Some(Lane::FrontEnd(p.fqdn.clone()));
    }
    if t.edges.contains_key(&f) {
        return Some(Lane::Edge(f));
    }
    t.edges.values().find(|e| e.servers.contains(&f)).map(|e| Lane::Edge(e.fqdn.clone()))
}

fn head(lane: Lane, t: &Topology) -> LaneHead {
    let (title, detail) = match &lane {
        Lane::FrontEnd(p) => {
            (p.to_string(), format!("Front End pool, {}", t.pools.get(p).map(|x| x.site.as_str()).unwrap_or("unknown site")))
        }
        Lane::Edge(e) => (e.to_string(), format!("Edge pool, {}", t.edges.get(e).map(|x| x.site.as_str()).unwrap_or("unknown site"))),
        Lane::Cms => ("CMS".into(), "Central Management Store".into()),
        Lane::Users => ("users".into(), "placements, user moves".into()),
        Lane::Deployment => ("deployment".into(), "deployment-wide steps".into()),
    };
    LaneHead { lane, title, detail }
}

/// The domain every pool and Edge pool shares (`contoso.com`), left off names in bar labels.
fn common_suffix(t: &Topology) -> Vec<String> {
    let names: Vec<Vec<&str>> = t.pools.keys().chain(t.edges.keys()).map(|f| f.as_str().split('.').rev().collect()).collect();
    let Some(first) = names.first() else { return vec![] };
    let shortest = names.iter().map(Vec::len).min().unwrap_or(0);
    let shared = (0..shortest.saturating_sub(1)).take_while(|&i| names.iter().all(|n| n[i] == first[i])).count();
    first[..shared].iter().rev().map(|s| s.to_string()).collect()
}

/// The short id: the action, then the other parts of the id, names without the shared domain,
/// the lane's own name left out (`edge-setup edge01-es01.sea`).
fn label_of(id: &str, lane: &Lane, suffix: &[String]) -> String {
    let own = match lane {
        Lane::FrontEnd(f) | Lane::Edge(f) => Some(f),
        _ => None,
    };
    let domain = format!(".{}", suffix.join("."));
    let mut out: Vec<String> = Vec::new();
    for (i, part) in id.split('/').enumerate() {
        match Fqdn::parse(part) {
            Ok(f) if i > 0 && Some(&f) == own => {}
            Ok(f) if i > 0 && !suffix.is_empty() => out.push(f.as_str().strip_suffix(&domain).unwrap_or(f.as_str()).to_string()),
            _ => out.push(part.to_string()),
        }
    }
    out.join(" ")
}

// ---------------------------------------------------------------------------------------------
// Drawing

const WIDTH: f64 = 1400.0;
/// Where the plot starts: the lane headings are left of it.
const PLOT_X: f64 = 270.0;
const PLOT_W: f64 = WIDTH - PLOT_X - 30.0;
const ROW_H: f64 = 18.0;
const BAR_H: f64 = 12.0;
const LANE_PAD: f64 = 5.0;
/// Width of a character of the 11px labels, generously.
const CHAR_W: f64 = 6.4;
const MIN_BAR_W: f64 = 2.0;
const GAP: f64 = 6.0;

const CHANGE: &str = "#4e79a7";
const FAILED: &str = "#d62728";
const CRITICAL: &str = "#f28e2b";
const SERVED: &str = "#2ca02c";
const GREY: &str = "#8c8c8c";

/// The time axis: minutes from `origin`, from `lo` (the whole minute before the first thing
/// drawn) to `hi`, a tick every `step` (at the multiples of it).
struct Axis {
    origin: Stamp,
    lo: i64,
    hi: i64,
    step: i64,
}

impl Axis {
    fn new(t: &Timeline) -> Axis {
        let origin = t.origin();
        let mins = |s: Stamp| (s.0 as f64 - origin.0 as f64) / 60_000.0;
        let times = t.bars.iter().flat_map(|b| [b.start, b.end]).chain(t.marks.iter().map(|m| m.at));
        let (min, max) = times.map(mins).fold((0.0f64, 0.0f64), |(lo, hi), m| (lo.min(m), hi.max(m)));
        let mut step = 1;
        for s in [1, 2, 5, 10, 15, 20, 30, 60, 120, 240, 480, 720, 1440] {
            step = s;
            if (max - min) / s as f64 <= 14.0 {
                break;
            }
        }
        while (max - min) / step as f64 > 14.0 {
            step *= 2;
        }
        let lo = min.floor() as i64;
        let hi = ((max / step as f64).ceil() as i64 * step).max(lo + step);
        Axis { origin, lo, hi, step }
    }

    fn x(&self, s: Stamp) -> f64 {
        let m = (s.0 as f64 - self.origin.0 as f64) / 60_000.0;
        PLOT_X + (m - self.lo as f64) / (self.hi - self.lo) as f64 * PLOT_W
    }

    fn x_min(&self, minute: i64) -> f64 {
        PLOT_X + (minute - self.lo) as f64 / (self.hi - self.lo) as f64 * PLOT_W
    }

    fn minutes(&self, s: Stamp) -> f64 {
        (s.0 as f64 - self.origin.0 as f64) / 60_000.0
    }
}

/// Where the label of a bar goes.
#[derive(Clone, Copy, PartialEq)]
enum LabelAt {
    Inside,
    Right,
    Left,
    None,
}

/// A bar placed: its box, its label's place and the row of its lane.
struct Placed {
    x0: f64,
    x1: f64,
    label: LabelAt,
    lane: usize,
    row: usize,
}

fn text_w(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

/// Places every bar: its box, its label (inside when it fits, else beside it), and the first
/// row of its lane where bar and label overlap nothing.
fn place_bars(t: &Timeline, axis: &Axis) -> (Vec<Placed>, Vec<usize>) {
    let lane_index: BTreeMap<&Lane, usize> = t.lanes.iter().enumerate().map(|(i, l)| (&l.lane, i)).collect();
    let mut rows: Vec<Vec<f64>> = vec![vec![]; t.lanes.len()];
    let mut order: Vec<usize> = (0..t.bars.len()).collect();
    order.sort_by_key(|&i| (t.bars[i].start, t.bars[i].end, i));
    let mut placed: Vec<Option<Placed>> = (0..t.bars.len()).map(|_| None).collect();
    for i in order {
        let b = &t.bars[i];
        let lane = lane_index.get(&b.lane).copied().unwrap_or(0);
        let (x0, x1, label) = if b.started() {
            let x0 = axis.x(b.start);
            let x1 = axis.x(b.end).max(x0 + MIN_BAR_W);
            let w = text_w(&b.label);
            let label = if w + 8.0 <= x1 - x0 {
                LabelAt::Inside
            } else if x1 + 4.0 + w <= WIDTH - 4.0 {
                LabelAt::Right
            } else {
                LabelAt::Left
            };
            (x0, x1, label)
        } else {
            let x = axis.x(b.end);
            (x - 4.0, x + 4.0, LabelAt::None)
        };
        let (from, to) = match label {
            LabelAt::Right => (x0, x1 + 4.0 + text_w(&b.label)),
            LabelAt::Left => (x0 - 4.0 - text_w(&b.label), x1),
            LabelAt::Inside | LabelAt::None => (x0, x1),
        };
        let free = &mut rows[lane];
        let row = free.iter().position(|end| *end + GAP <= from).unwrap_or(free.len());
        if row == free.len() {
            free.push(to);
        } else {
            free[row] = to;
        }
        placed[i] = Some(Placed { x0, x1, label, lane, row });
    }
    let placed = placed.into_iter().map(|p| p.unwrap_or(Placed { x0: 0.0, x1: 0.0, label: LabelAt::None, lane: 0, row: 0 })).collect();
    (placed, rows.iter().map(|r| r.len().max(1)).collect())
}

/// Text for XML character data and attribute values in double quotes: the characters XML does
/// not allow at all (most control characters) replaced by U+FFFD, then escaped as the WinRM
/// layer escapes attribute values (markup, and line breaks and tabs as character references).
pub fn escape(s: &str) -> String {
    let forbidden = |c: char| ((c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffe}' || c == '\u{ffff}';
    escape_attr(&s.chars().map(|c| if forbidden(c) { '\u{fffd}' } else { c }).collect::<String>())
}

fn result_text(b: &Bar) -> String {
    match &b.result {
        None => "still running when the run ended".into(),
        Some(StepResult::Succeeded) => "succeeded".into(),
        Some(StepResult::Skipped) => "skipped: its effect already held".into(),
        Some(StepResult::Stale(w)) => format!("not finished, the engine planned again: {w}"),
        Some(StepResult::Failed(w)) => format!("FAILED: {w}"),
        Some(StepResult::Stalled(w)) => format!("STALLED: {w}"),
    }
}

/// Fill, stroke and dashes of a bar.
fn style(b: &Bar) -> (&'static str, &'static str, &'static str) {
    match (&b.result, b.kind) {
        (Some(StepResult::Failed(_) | StepResult::Stalled(_)), _) => (FAILED, FAILED, ""),
        (None | Some(StepResult::Stale(_)), _) => ("#d9d9d9", GREY, " stroke-dasharray=\"3 2\""),
        (_, StepKind::Wait) => ("url(#wait)", CHANGE, ""),
        (_, StepKind::Change) => (CHANGE, CHANGE, ""),
    }
}

fn class(b: &Bar) -> &'static str {
    match (&b.result, b.kind) {
        (Some(StepResult::Failed(_)), _) => "failed",
        (Some(StepResult::Stalled(_)), _) => "stalled",
        (Some(StepResult::Stale(_)), _) => "replanned",
        (None, _) => "unfinished",
        (Some(StepResult::Skipped), _) => "skipped",
        (_, StepKind::Wait) => "wait",
        (_, StepKind::Change) => "change",
    }
}

/// The chart as an SVG document.
pub fn render(t: &Timeline) -> String {
    let axis = Axis::new(t);
    let (placed, rows) = place_bars(t, &axis);
    let critical: Vec<Vec<usize>> = t.critical_paths();
    let on_path: BTreeSet<usize> = critical.iter().flatten().copied().collect();

    // Mark labels above the axis, in as many rows as they need.
    let mut marks: Vec<&Mark> = t.marks.iter().collect();
    marks.sort_by_key(|m| (m.at, m.kind == MarkKind::Served));
    let mut mark_rows: Vec<f64> = vec![];
    let mut mark_at = Vec::new();
    for m in &marks {
        let x = axis.x(m.at);
        let w = text_w(&m.label) + 8.0;
        let (from, to, anchor) = if x + w <= WIDTH - 4.0 { (x, x + w, "start") } else { (x - w, x, "end") };
        let row = mark_rows.iter().position(|end| *end + GAP <= from).unwrap_or(mark_rows.len());
        if row == mark_rows.len() {
            mark_rows.push(to);
        } else {
            mark_rows[row] = to;
        }
        mark_at.push((x, row, anchor));
    }
    let marks_y = 62.0;
    let plot_top = marks_y + mark_rows.len() as f64 * 14.0 + 22.0;
    let mut lane_y = Vec::with_capacity(rows.len());
    let mut y = plot_top;
    for r in &rows {
        lane_y.push(y);
        y += 2.0 * LANE_PAD + *r as f64 * ROW_H;
    }
    let plot_bottom = y;
    let height = plot_bottom + 64.0;
    let row_y = |p: &Placed| lane_y[p.lane] + LANE_PAD + p.row as f64 * ROW_H + (ROW_H - BAR_H) / 2.0;

    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0}" height="{height:.0}" viewBox="0 0 {WIDTH:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, "<title>{}</title>", escape(&t.title));
    let _ = writeln!(
        s,
        r##"<defs><pattern id="wait" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="#dde7f2"/><line x1="0" y1="0" x2="0" y2="6" stroke="#8fb0d3" stroke-width="3"/></pattern></defs>"##
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="10" y="24" font-size="16" font-weight="bold">{}</text>"#, escape(&t.title));
    let _ = writeln!(s, r##"<text x="10" y="44" fill="#555">{}</text>"##, escape(&t.subtitle));

    // Lanes.
    let _ = writeln!(s, r#"<g class="lanes">"#);
    for (i, l) in t.lanes.iter().enumerate() {
        let h = 2.0 * LANE_PAD + rows[i] as f64 * ROW_H;
        let fill = if i % 2 == 0 { "#f4f6f8" } else { "#ffffff" };
        let _ = writeln!(s, r#"<rect class="lane" x="0" y="{:.1}" width="{WIDTH:.0}" height="{h:.1}" fill="{fill}"/>"#, lane_y[i]);
        let _ = writeln!(
            s,
            r##"<text x="10" y="{:.1}" font-weight="bold">{}</text><text x="10" y="{:.1}" font-size="9" fill="#666">{}</text>"##,
            lane_y[i] + LANE_PAD + 10.0,
            escape(&l.title),
            lane_y[i] + LANE_PAD + 21.0,
            escape(&l.detail)
        );
    }
    let _ = writeln!(s, "</g>");

    // The time axis: a grid line and a label every tick.
    let caption = if t.marks.iter().any(|m| m.kind == MarkKind::Fault) {
        "minutes from the first fault (simulated time)"
    } else {
        "minutes from the start (simulated time)"
    };
    let _ = writeln!(s, r#"<g class="axis">"#);
    let mut m = axis.lo.div_euclid(axis.step) * axis.step;
    if m < axis.lo {
        m += axis.step;
    }
    while m <= axis.hi {
        let x = axis.x_min(m);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{plot_bottom:.1}" stroke="#d0d0d0" stroke-width="1"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444">{m}</text>"##,
            plot_top - 4.0,
            plot_top - 7.0
        );
        m += axis.step;
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">{caption}</text>"##,
        PLOT_X + PLOT_W / 2.0,
        plot_bottom + 18.0
    );
    let _ = writeln!(s, "</g>");

    // The critical path: each step joined to the dependency it waited for (under the bars).
    let _ = writeln!(s, r#"<g class="critical-path" fill="none" stroke="{CRITICAL}" stroke-width="1.5">"#);
    for chain in &critical {
        for pair in chain.windows(2) {
            let (a, b) = (&placed[pair[0]], &placed[pair[1]]);
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
                a.x1,
                row_y(a) + BAR_H / 2.0,
                b.x0,
                row_y(b) + BAR_H / 2.0
            );
        }
    }
    let _ = writeln!(s, "</g>");

    // Steps.
    let _ = writeln!(s, r#"<g class="steps">"#);
    for (i, (b, p)) in t.bars.iter().zip(&placed).enumerate() {
        let critical = on_path.contains(&i);
        let y = row_y(p);
        let mut tip = b.id.clone();
        if let Some((command, run_on)) = &b.command {
            let _ = write!(tip, "\n{command}\n(on {run_on})\n{} to {} ({})", b.start, b.end, b.end.since(b.start));
        } else {
            let _ = write!(tip, "\nat {}", b.end);
        }
        let _ = write!(tip, ", {:.1} min from the first fault\n{}", axis.minutes(b.end), result_text(b));
        if !b.after.is_empty() {
            let _ = write!(tip, "\nafter: {}", b.after.join(", "));
        }
        if critical {
            tip.push_str("\non the critical path");
        }
        let _ = write!(
            s,
            r#"<g class="step {}{}" data-step="{}" data-lane="{}" data-start="{:.2}" data-end="{:.2}"><title>{}</title>"#,
            class(b),
            if critical { " critical" } else { "" },
            escape(&b.id),
            escape(&t.lanes[p.lane].title),
            axis.minutes(b.start),
            axis.minutes(b.end),
            escape(&tip)
        );
        let (fill, stroke, dash) = style(b);
        let (stroke, width) = if critical { (CRITICAL, 2.5) } else { (stroke, 1.0) };
        if b.started() {
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{BAR_H:.0}" rx="2" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>"#,
                p.x0,
                p.x1 - p.x0
            );
        } else {
            let (cx, cy) = ((p.x0 + p.x1) / 2.0, y + BAR_H / 2.0);
            let _ = write!(
                s,
                r#"<path d="M{cx:.1} {:.1}L{:.1} {cy:.1}L{cx:.1} {:.1}L{:.1} {cy:.1}Z" fill="white" stroke="{stroke}" stroke-width="{width}"/>"#,
                cy - 5.0,
                cx + 4.0,
                cy + 5.0,
                cx - 4.0
            );
        }
        let ty = y + BAR_H - 2.5;
        let weight = if critical { r#" font-weight="bold""# } else { "" };
        match p.label {
            LabelAt::Inside => {
                let colour =
                    if b.kind == StepKind::Wait || matches!(b.result, None | Some(StepResult::Stale(_))) { "#1b2a3a" } else { "white" };
                let _ = write!(s, r#"<text x="{:.1}" y="{ty:.1}" fill="{colour}"{weight}>{}</text>"#, p.x0 + 4.0, escape(&b.label));
            }
            LabelAt::Right => {
                let _ = write!(s, r##"<text x="{:.1}" y="{ty:.1}" fill="#222"{weight}>{}</text>"##, p.x1 + 4.0, escape(&b.label));
            }
            LabelAt::Left => {
                let _ = write!(
                    s,
                    r##"<text x="{:.1}" y="{ty:.1}" text-anchor="end" fill="#222"{weight}>{}</text>"##,
                    p.x0 - 4.0,
                    escape(&b.label)
                );
            }
            LabelAt::None => {}
        }
        let _ = writeln!(s, "</g>");
    }
    let _ = writeln!(s, "</g>");

    // Faults and the moment every user was served.
    let _ = writeln!(s, r#"<g class="marks">"#);
    for (m, (x, row, anchor)) in marks.iter().zip(&mark_at) {
        let (colour, kind) = match m.kind {
            MarkKind::Fault => (FAILED, "fault"),
            MarkKind::Served => (SERVED, "served"),
        };
        let ly = marks_y + *row as f64 * 14.0;
        let tx = if *anchor == "start" { x + 4.0 } else { x - 4.0 };
        let _ = writeln!(
            s,
            r#"<g class="mark {kind}"><title>{}, {} ({:.1} min from the first fault)</title><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{plot_bottom:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 3"/><text x="{tx:.1}" y="{ly:.1}" text-anchor="{anchor}" fill="{colour}" font-weight="bold">{}</text></g>"#,
            escape(&m.label),
            m.at,
            axis.minutes(m.at),
            ly - 10.0,
            escape(&m.label)
        );
    }
    let _ = writeln!(s, "</g>");

    // Legend.
    let ly = plot_bottom + 42.0;
    let _ = writeln!(s, r#"<g class="legend">"#);
    let mut x = 10.0;
    let swatch = |s: &mut String, x: f64, shape: &str, text: &str| {
        let _ = writeln!(s, r##"{shape}<text x="{:.1}" y="{:.1}" fill="#333">{text}</text>"##, x + 22.0, ly + 4.0);
        x + 22.0 + text_w(text) + 18.0
    };
    let bar = |x: f64, fill: &str, stroke: &str, width: f64, extra: &str| {
        format!(
            r#"<rect x="{x:.1}" y="{:.1}" width="16" height="{BAR_H:.0}" rx="2" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{extra}/>"#,
            ly - 6.0
        )
    };
    let line = |x: f64, colour: &str| {
        format!(
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 3"/>"#,
            x + 8.0,
            ly - 8.0,
            x + 8.0,
            ly + 8.0
        )
    };
    x = swatch(&mut s, x, &bar(x, CHANGE, CHANGE, 1.0, ""), "change (cmdlet)");
    x = swatch(&mut s, x, &bar(x, "url(#wait)", CHANGE, 1.0, ""), "wait for a condition");
    let diamond = format!(r#"<path d="M{:.1} {:.1}l4 5l-4 5l-4 -5Z" fill="white" stroke="{GREY}"/>"#, x + 8.0, ly - 5.0);
    x = swatch(&mut s, x, &diamond, "skipped (already held)");
    x = swatch(&mut s, x, &bar(x, FAILED, FAILED, 1.0, ""), "failed");
    x = swatch(&mut s, x, &bar(x, "#d9d9d9", GREY, 1.0, r#" stroke-dasharray="3 2""#), "cut short by a replan");
    x = swatch(&mut s, x, &bar(x, CHANGE, CRITICAL, 2.5, ""), "critical path");
    x = swatch(&mut s, x, &line(x, FAILED), "fault (down or up)");
    swatch(&mut s, x, &line(x, SERVED), "every user served (RTO)");
    let _ = writeln!(s, "</g>");
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{DEMO_SCENARIO, Scenario};

    const DAL: &str = "pool01.dal.contoso.com";
    const SEA: &str = "pool01.sea.contoso.com";

    fn started(id: &str, command: &str, run_on: &str, secs: u64) -> Event {
        Event::StepStarted { id: id.into(), command: command.into(), run_on: run_on.into(), at: Stamp(secs * 1000) }
    }

    fn finished(id: &str, secs: u64, result: StepResult, kind: StepKind, after: &[&str]) -> Event {
        Event::StepFinished { id: id.into(), at: Stamp(secs * 1000), result, kind, after: after.iter().map(|a| a.to_string()).collect() }
    }

    /// A small disaster failover of Dallas, by hand: the CMS first, then the pool; an Edge
    /// server's setup beside them, a skipped wait, a failed step and one whose id is hostile
    /// markup.
    fn small() -> Timeline {
        let topology = Scenario::from_yaml(DEMO_SCENARIO).expect("demo scenario").topology;
        let (cms, wait, pool) = (format!("cms-failover/{SEA}"), format!("wait-cms-replication/{SEA}"), format!("pool-failover/{DAL}"));
        let edge = "edge-setup/edge01-es01.sea.contoso.com";
        let next_hop = "edge-next-hop/edge01.dal.contoso.com";
        let events = vec![
            started(&cms, "Invoke-CsManagementServerFailover -Force", SEA, 60),
            Event::Observed { at: Stamp(90_000) },
            started(edge, "Bootstrapper.exe", "edge01-es01.sea.contoso.com", 60),
            finished(edge, 120, StepResult::Succeeded, StepKind::Change, &[]),
            finished(&cms, 300, StepResult::Succeeded, StepKind::Change, &[]),
            started(&wait, "Get-CsManagementStoreReplicationStatus", SEA, 300),
            finished(&wait, 420, StepResult::Succeeded, StepKind::Wait, &[&cms]),
            started(&pool, "Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -DisasterMode", SEA, 420),
            finished("wait-xmpp-dns/edge01.sea.contoso.com", 430, StepResult::Skipped, StepKind::Wait, &[]),
            started(next_hop, "Set-CsEdgeServer", SEA, 430),
            finished(next_hop, 500, StepResult::Failed("edge <unreachable> & gone".into()), StepKind::Change, &[&wait]),
            finished(&pool, 1320, StepResult::Succeeded, StepKind::Change, &[&wait, edge]),
            started(HOSTILE, "Set-CsBackupServiceConfiguration -SyncInterval 00:02:00", SEA, 1320),
            finished(HOSTILE, 1380, StepResult::Succeeded, StepKind::Change, &[&pool]),
        ];
        let mut t = Timeline::from_events(&events, &topology);
        t.title = "a <small> & hostile run".into();
        t.marks.push(Mark { at: Stamp(0), label: "down:site/Dallas".into(), kind: MarkKind::Fault });
        t.marks.push(Mark { at: Stamp(1_320_000), label: "every user served".into(), kind: MarkKind::Served });
        t
    }

    const HOSTILE: &str = "backup-sync-interval<script>&\"'\u{1b}";

    /// The `<g class="step ...">` of a step.
    fn group<'a>(svg: &'a str, id: &str) -> &'a str {
        let at = format!("data-step=\"{id}");
        svg.split("<g class=\"step ").find(|g| g.contains(&at)).unwrap_or_else(|| panic!("no bar for {id}:\n{svg}"))
    }

    #[test]
    fn lanes_follow_what_each_step_acts_on() {
        let t = small();
        let lanes: Vec<&str> = t.lanes.iter().map(|l| l.title.as_str()).collect();
        assert_eq!(lanes, [DAL, SEA, "edge01.dal.contoso.com", "edge01.sea.contoso.com", "CMS", "deployment"]);
        let lane = |id: &str| t.bars.iter().find(|b| b.id.starts_with(id)).map(|b| b.lane.clone()).expect(id);
        let fqdn = |f: &str| Fqdn::parse(f).expect("fqdn");
        assert_eq!(lane("cms-failover"), Lane::Cms);
        assert_eq!(lane("wait-cms-replication"), Lane::Cms);
        // The failover runs on Seattle but acts on Dallas's users.
        assert_eq!(lane("pool-failover"), Lane::FrontEnd(fqdn(DAL)));
        assert_eq!(lane("edge-setup"), Lane::Edge(fqdn("edge01.sea.contoso.com")));
        assert_eq!(lane("edge-next-hop"), Lane::Edge(fqdn("edge01.dal.contoso.com")));
        assert_eq!(lane("backup-sync-interval"), Lane::Deployment);
        let labels: Vec<&str> = t.bars.iter().map(|b| b.label.as_str()).collect();
        assert!(labels.contains(&"pool-failover") && labels.contains(&"edge-setup edge01-es01.sea"), "{labels:?}");
    }

    #[test]
    fn the_critical_path_walks_back_through_the_dependency_that_finished_last() {
        let t = small();
        let ids: Vec<Vec<&str>> = t.critical_paths().iter().map(|c| c.iter().map(|&i| t.bars[i].id.as_str()).collect()).collect();
        // The pool failover waited for the replication (done at 7 min) and the Edge setup (done
        // at 2 min): the replication is on the path, the setup is not.
        let (cms, wait, pool) = (format!("cms-failover/{SEA}"), format!("wait-cms-replication/{SEA}"), format!("pool-failover/{DAL}"));
        assert_eq!(ids, [vec![cms.as_str(), wait.as_str(), pool.as_str(), HOSTILE]]);
    }

    #[test]
    fn render_draws_bars_in_time_and_marks_the_path_escaping_every_text() {
        let t = small();
        let svg = render(&t);
        // 23 minutes: an axis of 0..24, a tick every 2 minutes, 1100 pixels from x = 270.
        let axis = Axis::new(&t);
        assert_eq!((axis.lo, axis.hi, axis.step), (0, 24, 2));
        assert!(svg.contains(">22</text>") && svg.contains(">24</text>") && !svg.contains(">26</text>"));
        // The failover from 7 to 22 minutes, outlined as on the path.
        let pool = group(&svg, "pool-failover/");
        assert!(pool.starts_with("change critical\""), "{pool}");
        assert!(pool.contains(r#"<rect x="590.8" y="#) && pool.contains(r#"width="687.5""#), "{pool}");
        assert!(pool.contains(&format!(r#"fill="{CHANGE}" stroke="{CRITICAL}" stroke-width="2.5""#)), "{pool}");
        let wait = group(&svg, "wait-cms");
        assert!(wait.starts_with("wait critical\"") && wait.contains(r#"fill="url(#wait)""#), "{wait}");
        let edge = group(&svg, "edge-setup/");
        assert!(edge.starts_with("change\"") && edge.contains(r#"data-lane="edge01.sea.contoso.com""#), "{edge}");
        let failed = group(&svg, "edge-next-hop/");
        assert!(failed.starts_with("failed\"") && failed.contains(&format!(r#"fill="{FAILED}""#)), "{failed}");
        assert!(group(&svg, "wait-xmpp-dns/").starts_with("skipped\""));
        // The path's three joins, the fault and the moment every user was served.
        let joins = svg.split("<g class=\"critical-path\"").nth(1).and_then(|g| g.split("</g>").next()).unwrap_or_default();
        assert_eq!(joins.matches("<line").count(), 3, "{joins}");
        assert!(svg.contains(r#"<g class="mark fault">"#) && svg.contains(r#"<g class="mark served">"#));
        // Hostile text is escaped everywhere, never markup.
        assert!(!svg.contains("<script") && !svg.contains("<small>") && !svg.contains('\u{1b}'), "{svg}");
        assert!(svg.contains("backup-sync-interval&lt;script&gt;&amp;&quot;'\u{fffd}"));
        assert!(svg.contains("edge &lt;unreachable&gt; &amp; gone"));
        assert!(svg.contains("<title>a &lt;small&gt; &amp; hostile run</title>"));
        assert_eq!(render(&t), svg, "the same timeline draws the same bytes");
    }

    #[test]
    fn escape_keeps_xml_well_formed() {
        assert_eq!(escape("a<b>&\"c'\u{0}\u{7}\tok\u{ffff}é\n"), "a&lt;b&gt;&amp;&quot;c'\u{fffd}\u{fffd}&#9;ok\u{fffd}é&#10;");
    }
}
