//! `no_lost_write`: every acknowledged write (a put or append that returned ok, a cas that
//! returned true) is reflected in its key's final value, or was legitimately overwritten.
//!
//! The final value is the key's last `read_back` event (the heal phase reads every key back).
//! Every value a client writes is a unique token ending in its only `;`, so a key's value is a
//! concatenation of tokens: the first set by a put, a cas or an append to the absent key, the
//! rest appended. An acknowledged write whose token is missing is legitimately overwritten only
//! if the writer of the final value's first token could be linearized after it, i.e. did not
//! return before the write was called (an indeterminate writer may take effect at any time after
//! its call). A final value that is absent loses every acknowledged write; a token that no write
//! which may have happened wrote is a violation too. Writes that returned at or after the
//! read-back's call are not judged: the read may be ordered before them.
//!
//! Owns these rules and their wording: one violation per key, at most a few keys. Must never
//! judge linearizability (that is `linearizable`'s job); this checker only asks whether what was
//! acknowledged survived.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::client_ops::kv_history;
use super::linearizability::{KvFunction, KvOperation, Observed};
use super::{Judgement, Violation};
use crate::trace::{Event, EventKind, OpFunction, Outcome};
use crate::units::format_us;

const CHECKER: &str = "no_lost_write";
/// Keys reported in full; the rest are named in one closing line.
const KEYS_SHOWN: usize = 5;
/// Keys named in that closing line.
const MORE_KEYS_NAMED: usize = 10;
/// Further lost writes or unknown tokens named for one key.
const MORE_WRITES_NAMED: usize = 5;
/// Longest final value quoted whole; longer ones are shortened in the middle.
const FINAL_VALUE_SHOWN_CHARS: usize = 80;

/// What became of a write, as far as the history tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Returned ok (a cas: returned true). It must survive or be overwritten.
    Acknowledged,
    /// Timed out or never completed: it may have taken effect once, or not.
    Indeterminate,
    /// A cas that returned false: it did not take effect.
    Refused,
}

/// One operation that writes a token (put, append, cas).
struct Write<'a> {
    operation: &'a KvOperation,
    token: &'a str,
    status: Status,
}

/// A key's final value, and the read that saw it.
struct ReadBack<'a> {
    value: Option<&'a str>,
    op: u64,
    /// When the read was called: writes that returned before it must show in `value`.
    called_us: u64,
}

/// Facts about other keys and failed operations, to explain tokens nobody wrote on a key.
struct Elsewhere<'a> {
    /// Token -> a write of it, on any key, whatever its status.
    writes: HashMap<&'a str, &'a Write<'a>>,
    /// (key, token) -> the op that tried to write it and definitely failed.
    failed: HashMap<(&'a str, &'a str), u64>,
}

pub fn no_lost_write(events: &[Event]) -> Judgement {
    let history = match kv_history(events) {
        Ok(history) => history,
        Err(message) => return Judgement::violation(CHECKER, format!("malformed history, cannot check it: {message}")),
    };
    let all_writes: Vec<Write> = history.operations.iter().filter_map(write_of).collect();
    let mut writes_by_key: BTreeMap<&str, Vec<&Write>> = BTreeMap::new();
    for write in &all_writes {
        writes_by_key.entry(write.operation.key.as_str()).or_default().push(write);
    }
    let mut read_backs: BTreeMap<&str, ReadBack> = BTreeMap::new();
    let mut failed = HashMap::new();
    let mut called: BTreeMap<u64, u64> = BTreeMap::new();
    for event in events {
        match &event.kind {
            EventKind::OpInvoke { op, .. } => {
                called.insert(*op, event.at_us);
            }
            // A key read back twice: the last read counts.
            EventKind::ReadBack { op, key, value } => {
                // A read back whose invocation is missing counts from its return: stricter on
                // nothing, since fewer writes then precede it.
                let called_us = called.get(op).copied().unwrap_or(event.at_us);
                read_backs.insert(key, ReadBack { value: value.as_deref(), op: *op, called_us });
            }
            EventKind::OpComplete { op, key, f, value, outcome: Outcome::Fail, .. } => {
                if let Some(token) = written_token(*f, value) {
                    failed.insert((key.as_str(), token), *op);
                }
            }
            _ => {}
        }
    }
    let elsewhere = Elsewhere { writes: all_writes.iter().map(|write| (write.token, write)).collect(), failed };
    let keys: BTreeSet<&str> = writes_by_key.keys().chain(read_backs.keys()).copied().collect();
    let mut judgement = Judgement::default();
    let mut bad_keys: Vec<(&str, String)> = Vec::new();
    for key in keys {
        let writes = writes_by_key.get(key).map_or(&[][..], Vec::as_slice);
        match judge_key(key, writes, read_backs.get(key), &elsewhere) {
            Ok(None) => {}
            Ok(Some(message)) => bad_keys.push((key, message)),
            Err(reason) => judgement.inconclusive.push(format!("{CHECKER}: {reason}")),
        }
    }
    for (_, message) in bad_keys.iter().take(KEYS_SHOWN) {
        judgement.violations.push(Violation { checker: CHECKER.into(), message: message.clone() });
    }
    if bad_keys.len() > KEYS_SHOWN {
        let more = &bad_keys[KEYS_SHOWN..];
        let names: Vec<String> = more.iter().take(MORE_KEYS_NAMED).map(|(key, _)| format!("{key:?}")).collect();
        let ellipsis = if more.len() > names.len() { ", ..." } else { "" };
        judgement.violations.push(Violation {
            checker: CHECKER.into(),
            message: format!(
                "and {} more keys with lost or unexplained writes: {}{ellipsis}",
                more.len(),
                names.join(", ")
            ),
        });
    }
    judgement
}

/// The write `operation` makes, if it writes.
fn write_of(operation: &KvOperation) -> Option<Write<'_>> {
    let returned = operation.return_us.is_some();
    let (token, status) = match &operation.function {
        KvFunction::Get { .. } => return None,
        KvFunction::Put { value } | KvFunction::Append { value } => {
            (value, if returned { Status::Acknowledged } else { Status::Indeterminate })
        }
        KvFunction::Cas { new, result, .. } => {
            let status = match (returned, result) {
                (true, Observed::Value(true)) => Status::Acknowledged,
                (true, Observed::Value(false)) => Status::Refused,
                (false, _) | (true, Observed::Unknown) => Status::Indeterminate,
            };
            (new, status)
        }
    };
    Some(Write { operation, token, status })
}

/// The token a put, append or cas event writes (for failed operations, which the history drops).
fn written_token(function: OpFunction, value: &serde_json::Value) -> Option<&str> {
    match function {
        OpFunction::Put | OpFunction::Append => value.as_str(),
        OpFunction::Cas => value.get(1).and_then(serde_json::Value::as_str),
        OpFunction::Get => None,
    }
}

fn is_token(text: &str) -> bool {
    text.ends_with(';') && text.matches(';').count() == 1
}

/// `Ok(None)`: every acknowledged write survived or was overwritten. `Ok(Some(message))`: the
/// key's violation. `Err(reason)`: the history breaks the token rule, so the key cannot be judged.
fn judge_key(
    key: &str,
    writes: &[&Write],
    read_back: Option<&ReadBack>,
    elsewhere: &Elsewhere,
) -> Result<Option<String>, String> {
    let mut by_token: BTreeMap<&str, &Write> = BTreeMap::new();
    for write in writes {
        let operation = write.operation;
        if !is_token(write.token) {
            return Err(format!(
                "cannot judge key {key:?}: {} op {} writes {:?}, which is not a token (text ending in its only ';')",
                operation.function.name(),
                operation.id,
                write.token
            ));
        }
        if let Some(other) = by_token.insert(write.token, write) {
            return Err(format!(
                "cannot judge key {key:?}: ops {} and {} both write {:?} (tokens must be unique)",
                other.operation.id, operation.id, write.token
            ));
        }
    }
    let acknowledged: Vec<&Write> =
        writes.iter().copied().filter(|write| write.status == Status::Acknowledged).collect();
    let Some(read_back) = read_back else {
        let Some(last) = acknowledged.iter().max_by_key(|write| (write.operation.return_us, write.operation.id)) else {
            return Ok(None);
        };
        let which = match acknowledged.len() {
            1 => "its one acknowledged write is".to_owned(),
            count => format!("the last of its {count} acknowledged writes is"),
        };
        return Ok(Some(format!(
            "key {key:?} was never read back: the store did not recover it by the end of the heal phase; {which} {}",
            describe_write(last)
        )));
    };
    // A write still running when the read back was called may be ordered after the read.
    let mut judged: Vec<&Write> = acknowledged
        .into_iter()
        .filter(|write| write.operation.return_us.is_some_and(|returned| returned < read_back.called_us))
        .collect();
    judged.sort_by_key(|write| (write.operation.call_us, write.operation.id));
    let read_at = format!("by op {}, called {}", read_back.op, format_us(read_back.called_us));
    let Some(value) = read_back.value else {
        let Some((first, more)) = judged.split_first() else {
            return Ok(None);
        };
        let mut message = format!(
            "key {key:?} was absent when read back ({read_at}), so acknowledged {} is lost",
            describe_write(first)
        );
        message.push_str(&more_lost(key, more));
        return Ok(Some(message));
    };
    let tokens: Vec<&str> = value.split_inclusive(';').collect();
    let present: BTreeSet<&str> = tokens.iter().copied().collect();
    let may_have_happened = |token: &str| by_token.get(token).filter(|write| write.status != Status::Refused).copied();
    let unknown: Vec<&str> = tokens.iter().copied().filter(|token| may_have_happened(token).is_none()).collect();
    // The write that set the value the appends built on.
    let base = tokens.first().and_then(|token| may_have_happened(token));
    let lost: Vec<&Write> = judged
        .into_iter()
        .filter(|write| !present.contains(write.token))
        .filter(|write| {
            let could_follow = |base: &Write| base.operation.return_us.is_none_or(|r| r >= write.operation.call_us);
            !base.is_some_and(could_follow)
        })
        .collect();
    let final_value = format!("{} (read back {read_at})", describe_value(value, tokens.len()));
    let mut lines: Vec<String> = Vec::new();
    if let Some((first, more)) = lost.split_first() {
        lines.push(format!("key {key:?}: acknowledged {} is lost", describe_write(first)));
        lines.push(format!("  the final value {final_value} does not hold {:?}", first.token));
        lines.push(match (tokens.first(), base) {
            (None, _) => "  and holds no token, so nothing overwrote it".to_owned(),
            (Some(token), None) => {
                format!("  and its first token {token:?} was written by no acknowledged or indeterminate write")
            }
            (Some(token), Some(base)) => format!(
                "  its first token {token:?} comes from {}, which returned before op {} was called, so it cannot \
                 have overwritten it",
                describe_write(base),
                first.operation.id
            ),
        });
        let more = more_lost(key, more);
        if !more.is_empty() {
            lines.push(more.trim_start_matches('\n').to_owned());
        }
    }
    for (index, token) in unknown.iter().enumerate() {
        if index == MORE_WRITES_NAMED {
            lines.push(format!("  ... and {} more unexplained tokens", unknown.len() - index));
            break;
        }
        let why = explain_unknown(key, token, elsewhere);
        if index == 0 && lines.is_empty() {
            lines.push(format!(
                "key {key:?}: the final value {final_value} holds {token:?}, which no acknowledged or indeterminate \
                 write on {key:?} wrote{why}"
            ));
        } else {
            lines.push(format!(
                "  the final value holds {token:?}, which no acknowledged or indeterminate write on {key:?} wrote{why}"
            ));
        }
    }
    Ok((!lines.is_empty()).then(|| lines.join("\n")))
}

/// Why a token in `key`'s final value has no writer there, when the history knows more.
fn explain_unknown(key: &str, token: &str, elsewhere: &Elsewhere) -> String {
    if let Some(op) = elsewhere.failed.get(&(key, token)) {
        return format!(" (op {op} tried, and failed: definitely not applied)");
    }
    match elsewhere.writes.get(token) {
        Some(write) if write.operation.key == key => {
            format!(" ({} op {} returned false)", write.operation.function.name(), write.operation.id)
        }
        Some(write) => format!(" ({} wrote it to key {:?})", describe_write(write), write.operation.key),
        None => String::new(),
    }
}

/// A line naming the further lost writes of a key, or nothing.
fn more_lost(key: &str, more: &[&Write]) -> String {
    if more.is_empty() {
        return String::new();
    }
    let named: Vec<String> = more
        .iter()
        .take(MORE_WRITES_NAMED)
        .map(|write| format!("op {} ({} {:?})", write.operation.id, write.operation.function.name(), write.token))
        .collect();
    let ellipsis = if more.len() > named.len() { ", ..." } else { "" };
    let (count, writes, are) = match more.len() {
        1 => ("1".to_owned(), "write", "is"),
        count => (count.to_string(), "writes", "are"),
    };
    format!("\n  {count} more acknowledged {writes} on {key:?} {are} lost too: {}{ellipsis}", named.join(", "))
}

/// `put op 12 (client 3, "3.17;", called 1.2s, returned 1.3s)`.
fn describe_write(write: &Write) -> String {
    let operation = write.operation;
    let returned = match operation.return_us {
        Some(returned) => format!("returned {}", format_us(returned)),
        None => "never returned".to_owned(),
    };
    format!(
        "{} op {} (client {}, {:?}, called {}, {returned})",
        operation.function.name(),
        operation.id,
        operation.client,
        write.token,
        format_us(operation.call_us)
    )
}

/// The value quoted, shortened in the middle when long.
fn describe_value(value: &str, tokens: usize) -> String {
    let characters: Vec<char> = value.chars().collect();
    if characters.len() <= FINAL_VALUE_SHOWN_CHARS {
        return format!("{value:?}");
    }
    let head: String = characters[..FINAL_VALUE_SHOWN_CHARS / 2].iter().collect();
    let tail: String = characters[characters.len() - FINAL_VALUE_SHOWN_CHARS / 2..].iter().collect();
    format!("\"{head}…{tail}\" ({tokens} tokens)")
}
