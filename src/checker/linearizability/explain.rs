//! What a person reads when a history is not linearizable: the key, the longest linearizable
//! prefix the search found, the operation that cannot be placed after it, and the few
//! operations overlapping it; plus an SVG picture of those operations on client lanes.
//!
//! Owns the wording and the drawing. Must never decide a verdict: it only renders a failure the
//! search already proved.

use std::fmt;
use std::fmt::Write as _;

use crate::units::format_us;

/// What a history's times count, so a report prints them the way the history's own output
/// does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeUnit {
    /// Model microseconds (migsim's traces): printed as the trace prints them (`1.081s`),
    /// beside the exact count (`1080700us`), so an operation can be found in `migsim repro`.
    #[default]
    Microseconds,
    /// Positions of events in a file (Jepsen and Porcupine logs): printed as `event 17`.
    EventPosition,
}

impl TimeUnit {
    fn format(self, time: u64) -> String {
        match self {
            TimeUnit::Microseconds if time >= 1_000 => format!("{} ({time}us)", format_us(time)),
            TimeUnit::Microseconds => format_us(time),
            TimeUnit::EventPosition => format!("event {time}"),
        }
    }
}

/// One operation as reports print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainedOperation {
    pub id: u64,
    pub client: u64,
    /// The call, e.g. `put "c1-3"`, `cas "a" -> "b"`, `read`.
    pub call: String,
    /// What it returned, e.g. `"c1-3"`, `true`, `ok`; `?` when indeterminate.
    pub result: String,
    pub call_us: u64,
    /// `None`: indeterminate, never returned.
    pub return_us: Option<u64>,
    /// True when the operation belongs to the longest linearizable prefix.
    pub in_prefix: bool,
    /// What `call_us` and `return_us` count.
    pub time_unit: TimeUnit,
}

impl fmt::Display for ExplainedOperation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let returned = match self.return_us {
            Some(time) => self.time_unit.format(time),
            None => "never".to_owned(),
        };
        write!(
            formatter,
            "op {} client {}: {} -> {}  [called {}, returned {}]",
            self.id,
            self.client,
            self.call,
            self.result,
            self.time_unit.format(self.call_us),
            returned
        )
    }
}

/// Why one key (or a whole history checked without splitting) is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key; `None` when the history was checked whole (one register, transactions, mutex).
    pub key: Option<String>,
    /// How many operations the search considered for this key.
    pub operation_count: usize,
    pub longest_prefix_length: usize,
    /// The model's state after the longest prefix, e.g. `"x 0 0 y"`, `absent`, `held`.
    pub state_after_prefix: String,
    /// The last operations of the longest prefix (the ones that set up the state).
    pub prefix_tail: Vec<ExplainedOperation>,
    /// The operation that cannot be placed after the prefix.
    pub stuck: Option<ExplainedOperation>,
    /// Operations overlapping the stuck one in real time and not in the prefix: the search
    /// tried every order of them.
    pub concurrent: Vec<ExplainedOperation>,
    /// Other keys that are not linearizable either (reported in key order).
    pub other_illegal_keys: Vec<String>,
    /// A direct reason, when one is known (e.g. a read of a value nobody wrote in time).
    pub note: Option<String>,
}

impl Violation {
    /// Every operation the explanation mentions, ordered by call time.
    pub fn involved_operations(&self) -> Vec<&ExplainedOperation> {
        let mut operations: Vec<&ExplainedOperation> =
            self.prefix_tail.iter().chain(self.stuck.iter()).chain(self.concurrent.iter()).collect();
        operations.sort_by_key(|operation| (operation.call_us, operation.id));
        operations.dedup_by_key(|operation| operation.id);
        operations
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => writeln!(formatter, "key {key:?} is not linearizable ({} operations)", self.operation_count)?,
            None => writeln!(formatter, "history is not linearizable ({} operations)", self.operation_count)?,
        }
        writeln!(
            formatter,
            "  longest linearizable prefix: {} operations, leaving state {}",
            self.longest_prefix_length, self.state_after_prefix
        )?;
        if !self.prefix_tail.is_empty() {
            writeln!(formatter, "  its last operations, in linearization order:")?;
            for operation in &self.prefix_tail {
                writeln!(formatter, "    {operation}")?;
            }
        }
        match &self.stuck {
            Some(operation) => {
                writeln!(formatter, "  cannot be linearized next, in any order of its concurrent operations:")?;
                writeln!(formatter, "    {operation}")?;
            }
            None => writeln!(formatter, "  no operation could be linearized after it")?,
        }
        if let Some(note) = &self.note {
            writeln!(formatter, "  why: {note}")?;
        }
        if !self.concurrent.is_empty() {
            writeln!(formatter, "  operations overlapping it, not in the prefix:")?;
            for operation in &self.concurrent {
                writeln!(formatter, "    {operation}")?;
            }
        }
        if !self.other_illegal_keys.is_empty() {
            writeln!(formatter, "  other keys not linearizable: {}", self.other_illegal_keys.join(", "))?;
        }
        Ok(())
    }
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The text inside an operation's bar, shortened so bars stay compact; the full text is in
/// the bar's tooltip.
fn bar_label(operation: &ExplainedOperation) -> String {
    const LONGEST: usize = 40;
    let label = format!("{} → {}", operation.call, operation.result);
    if label.chars().count() <= LONGEST {
        return label;
    }
    let mut short: String = label.chars().take(LONGEST - 1).collect();
    short.push('…');
    short
}

/// Draws the violation's operations as bars on one lane per client (x = time, rank-scaled so
/// that bursts stay readable), the stuck operation in red, prefix operations in green.
pub fn render_svg(violation: &Violation, title: &str) -> String {
    let operations = violation.involved_operations();
    let mut clients: Vec<u64> = operations.iter().map(|operation| operation.client).collect();
    clients.sort_unstable();
    clients.dedup();
    // Distinct instants get equal spacing: real gaps between operations are rarely informative
    // and would squeeze concurrent bursts into slivers.
    let mut instants: Vec<u64> =
        operations.iter().flat_map(|operation| [Some(operation.call_us), operation.return_us]).flatten().collect();
    instants.sort_unstable();
    instants.dedup();
    // Wide enough that most labels fit inside their bar.
    let label_width = |operation: &ExplainedOperation| 7.3 * bar_label(operation).chars().count() as f64 + 10.0;
    let longest_label = operations.iter().map(|operation| label_width(operation)).fold(0.0, f64::max);
    let step = (longest_label / 2.0).clamp(90.0, 400.0);
    let left = 110.0;
    let lane_height = 46.0;
    let top = 60.0;
    let width = left + step * (instants.len() as f64 + 1.5) + longest_label;
    let height = top + lane_height * clients.len() as f64 + 90.0;
    let x_of = |time: u64| left + step * instants.partition_point(|instant| *instant < time) as f64;
    let open_end = left + step * (instants.len() as f64 + 0.8);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="monospace" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#, escape(title));
    let subtitle = format!(
        "longest linearizable prefix: {} of {} operations, state after it: {}",
        violation.longest_prefix_length, violation.operation_count, violation.state_after_prefix
    );
    let _ = writeln!(svg, r#"<text x="10" y="42">{}</text>"#, escape(&subtitle));
    for (lane, client) in clients.iter().enumerate() {
        let y = top + lane_height * lane as f64;
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="#ddd"/><text x="10" y="{:.0}">client {client}</text>"##,
            y + lane_height / 2.0,
            width - 20.0,
            y + lane_height / 2.0,
            y + lane_height / 2.0 + 4.0
        );
    }
    let stuck_id = violation.stuck.as_ref().map(|operation| operation.id);
    for operation in &operations {
        let lane = clients.binary_search(&operation.client).unwrap_or(0);
        let y = top + lane_height * lane as f64 + 8.0;
        let x_start = x_of(operation.call_us);
        let x_end = operation.return_us.map_or(open_end, x_of).max(x_start + label_width(operation));
        let (fill, stroke) = if Some(operation.id) == stuck_id {
            ("#f4b6b6", "#c00000")
        } else if operation.in_prefix {
            ("#cfe8cf", "#2e7d32")
        } else {
            ("#e3e3e3", "#666666")
        };
        let dash = if operation.return_us.is_none() { r#" stroke-dasharray="5,3""# } else { "" };
        let stroke_width = if Some(operation.id) == stuck_id { 2.5 } else { 1.0 };
        let _ = writeln!(
            svg,
            r#"<rect x="{x_start:.0}" y="{y:.0}" width="{:.0}" height="30" rx="4" fill="{fill}" stroke="{stroke}" stroke-width="{stroke_width}"{dash}><title>{}</title></rect>"#,
            x_end - x_start,
            escape(&operation.to_string())
        );
        let label = bar_label(operation);
        let _ = writeln!(svg, r#"<text x="{:.0}" y="{:.0}">{}</text>"#, x_start + 5.0, y + 13.0, escape(&label));
        let _ = writeln!(
            svg,
            r##"<text x="{:.0}" y="{:.0}" font-size="10" fill="#555">op {}</text>"##,
            x_start + 5.0,
            y + 26.0,
            operation.id
        );
    }
    let legend_y = top + lane_height * clients.len() as f64 + 20.0;
    let legend = [
        ("#cfe8cf", "#2e7d32", "in the longest linearizable prefix"),
        ("#f4b6b6", "#c00000", "cannot be linearized"),
        ("#e3e3e3", "#666666", "overlapping, not placed (dashed: never returned)"),
    ];
    for (index, (fill, stroke, text)) in legend.iter().enumerate() {
        let y = legend_y + 20.0 * index as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="10" y="{:.0}" width="24" height="12" fill="{fill}" stroke="{stroke}"/><text x="42" y="{:.0}">{text}</text>"#,
            y,
            y + 10.0
        );
    }
    let _ = writeln!(svg, r##"<text x="{:.0}" y="{:.0}" fill="#555">time →</text>"##, width - 90.0, legend_y + 10.0);
    svg.push_str("</svg>\n");
    svg
}
