//! `ScenarioError`: one problem in a scenario file, named by file, line, column and field path.
//! This module also turns the `toml` crate's errors (syntax, unknown fields, wrong types), which
//! carry only a byte span, into the same shape, by finding which field that span belongs to.

use std::fmt;
use std::ops::Range;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// One problem in a scenario file. `line` and `column` are 1-based and count characters;
/// `field` is a dotted path such as `faults[2].rate` (or `document` when no field can be named,
/// such as a syntax error before the first key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "error: {}:{}:{}: {}: {}", self.file, self.line, self.column, self.field, self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Builds errors for one file: it holds the text so that byte offsets become lines and columns.
pub(crate) struct ErrorContext<'text> {
    pub file: &'text str,
    pub text: &'text str,
}

impl ErrorContext<'_> {
    /// An error at byte `offset` of the text.
    pub fn at(&self, offset: usize, field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        let (line, column) = line_and_column(self.text, offset);
        ScenarioError { file: self.file.to_string(), line, column, field: field.into(), message: message.into() }
    }

    /// An error about the value whose span is `span`.
    pub fn spanned<T>(
        &self,
        value: &Spanned<T>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        self.at(value.span().start, field, message)
    }

    /// Converts an error from the `toml` crate, naming the field its span falls in: the innermost
    /// key or value holding it, or, when the document does not parse at all, the key on its line.
    pub fn toml_error(&self, error: &toml::de::Error) -> ScenarioError {
        let offset = error.span().map(|span| span.start).unwrap_or(0);
        // The toml crate's messages may run over several lines ("invalid string\nexpected ...");
        // one line keeps every error greppable.
        let message =
            error.message().lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join("; ");
        // serde names Rust types ("expected i64"); a scenario's author thinks in TOML types.
        let message = message
            .replace("expected i64", "expected an integer")
            .replace("expected u64", "expected an integer")
            .replace("expected f64", "expected a number");
        match toml::from_str::<Located>(self.text) {
            Ok(root) => {
                let mut best: Option<(usize, String)> = None;
                search(&root, offset, "", &mut best);
                let field = best.map(|(_, path)| path).unwrap_or_else(|| "document".to_string());
                let message = with_unit_hint(&field, message);
                self.at(offset, field, message)
            }
            Err(_) => {
                let field = field_from_line(self.text, offset).unwrap_or_else(|| "document".to_string());
                self.at(offset, field, format!("invalid TOML: {message}"))
            }
        }
    }
}

/// Fields whose values are durations or sizes: strings with a unit.
const FIELDS_WITH_UNITS: [&str; 19] = [
    "duration",
    "heal",
    "at",
    "min",
    "max",
    "skew",
    "skew_max",
    "interval",
    "op_timeout",
    "bandwidth",
    "capacity",
    "payload",
    "heartbeat",
    "failure_timeout",
    "retry",
    "segment_size",
    "pause_budget",
    "attempt_timeout",
    "after",
];

/// A number where a duration or size belongs is the likeliest type error of all, and serde's
/// "expected a string" does not say why a string.
fn with_unit_hint(field: &str, message: String) -> String {
    let leaf = field.rsplit('.').next().unwrap_or(field);
    if message.contains("expected a string") && FIELDS_WITH_UNITS.contains(&leaf) {
        format!("{message}; durations and sizes are strings with a unit, e.g. \"5s\" or \"64KiB\"")
    } else {
        message
    }
}

/// Converts a byte offset into a 1-based line and a 1-based column counted in characters.
pub(crate) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut boundary = offset;
    while !text.is_char_boundary(boundary) {
        boundary -= 1;
    }
    let before = &text[..boundary];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|index| index + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A document reduced to its shape and spans, used only to name the field an error points at.
enum Located {
    Table(Vec<(Spanned<String>, Spanned<Located>)>),
    Array(Vec<Spanned<Located>>),
    Scalar,
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LocatedVisitor;

        impl<'de> Visitor<'de> for LocatedVisitor {
            type Value = Located;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("any TOML value")
            }

            fn visit_bool<E>(self, _: bool) -> Result<Located, E> {
                Ok(Located::Scalar)
            }

            fn visit_i64<E>(self, _: i64) -> Result<Located, E> {
                Ok(Located::Scalar)
            }

            fn visit_u64<E>(self, _: u64) -> Result<Located, E> {
                Ok(Located::Scalar)
            }

            fn visit_f64<E>(self, _: f64) -> Result<Located, E> {
                Ok(Located::Scalar)
            }

            fn visit_str<E>(self, _: &str) -> Result<Located, E> {
                Ok(Located::Scalar)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Located, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = sequence.next_element::<Spanned<Located>>()? {
                    items.push(item);
                }
                Ok(Located::Array(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<Spanned<Located>>()?;
                    entries.push((key, value));
                }
                Ok(Located::Table(entries))
            }
        }

        deserializer.deserialize_any(LocatedVisitor)
    }
}

/// Depth-first search for the smallest span holding `offset`. Containers are searched even when
/// their own span does not hold the offset, because a `[table]`'s span may cover only its header.
fn search(node: &Located, offset: usize, path: &str, best: &mut Option<(usize, String)>) {
    let consider = |span: Range<usize>, candidate: String, best: &mut Option<(usize, String)>| {
        // An empty span (a value at the very end of the text) still names its field.
        let holds = span.contains(&offset) || (span.is_empty() && span.start == offset);
        if holds && best.as_ref().is_none_or(|(length, _)| span.len() <= *length) {
            *best = Some((span.len(), candidate));
        }
    };
    match node {
        Located::Table(entries) => {
            for (key, value) in entries {
                let child = if path.is_empty() { key.get_ref().clone() } else { format!("{path}.{}", key.get_ref()) };
                consider(key.span(), child.clone(), best);
                consider(value.span(), child.clone(), best);
                search(value.get_ref(), offset, &child, best);
            }
        }
        Located::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let child = format!("{path}[{index}]");
                consider(item.span(), child.clone(), best);
                search(item.get_ref(), offset, &child, best);
            }
        }
        Located::Scalar => {}
    }
}

/// For a document that does not parse: the key on the error's line (`retries = ...` gives
/// `retries`), under the last `[table]` or `[[array]]` header above it.
fn field_from_line(text: &str, offset: usize) -> Option<String> {
    let (line_number, _) = line_and_column(text, offset);
    let mut table = String::new();
    let mut array_counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut key_on_line = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if index + 1 == line_number {
            if let Some((key, _)) = trimmed.split_once('=') {
                key_on_line = Some(key.trim().to_string());
            }
            break;
        }
        if let Some(name) = trimmed.strip_prefix("[[").and_then(|rest| rest.split_once("]]")) {
            let name = name.0.trim().to_string();
            let count = array_counts.entry(name.clone()).or_insert(0);
            table = format!("{name}[{count}]");
            *count += 1;
        } else if let Some(name) = trimmed.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
            table = name.0.trim().to_string();
        }
    }
    match (table.is_empty(), key_on_line) {
        (_, None) if table.is_empty() => None,
        (_, None) => Some(table),
        (true, Some(key)) => Some(key),
        (false, Some(key)) => Some(format!("{table}.{key}")),
    }
}
