//! migsim's own history: JSON Lines, one event per line, in order. Only `op_invoke` and
//! `op_complete` events matter; lines of other kinds are skipped (the file may be a whole trace).
//!
//! ```text
//! {"kind":"op_invoke","op":3,"client":1,"key":"k12","f":"put","value":"c1-3","at_us":1500,...}
//! {"kind":"op_complete","op":3,...,"outcome":"ok","result":null,"at_us":2900}
//! ```
//!
//! `value`: get null, put/append a string, cas `[expected or null, new]`. `outcome`: ok, fail
//! (definitely not applied: dropped), info (indeterminate). `result`: get a string or null
//! (absent), cas true/false, put/append null. Keys start absent. An invocation with no
//! completion is indeterminate.
//!
//! Owns that translation. Must never check anything.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{line_error, History, LineError, ModelKind};
use crate::checker::linearizability::history::{KvFunction, KvHistory, KvOperation, Observed};

/// An invocation waiting for its completion.
struct Invocation {
    line: usize,
    client: u64,
    key: String,
    function: String,
    value: Value,
    call_us: u64,
}

pub(super) fn parse(text: &str, model: Option<ModelKind>) -> Result<(ModelKind, History), LineError> {
    match model.unwrap_or(ModelKind::Kv) {
        ModelKind::Kv => {}
        other @ (ModelKind::Register | ModelKind::CasRegister | ModelKind::MultiRegister | ModelKind::Mutex) => {
            return line_error(0, format!("the {} model does not fit migsim's history (use kv)", other.name()))
        }
    }
    let mut history = KvHistory { initial_value: None, operations: Vec::new() };
    // Invocations in order, so indeterminate operations come out in a deterministic order.
    let mut invocations: Vec<(u64, Invocation)> = Vec::new();
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut completed: Vec<bool> = Vec::new();
    let mut invoked: HashSet<u64> = HashSet::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        if raw_line.trim().is_empty() {
            continue;
        }
        let event: Value = match serde_json::from_str(raw_line) {
            Ok(event) => event,
            Err(error) => return line_error(line, format!("not JSON: {error}")),
        };
        let Some(kind) = event.get("kind").and_then(Value::as_str) else {
            return line_error(line, "event without a string \"kind\"");
        };
        match kind {
            "op_invoke" => {
                let op = unsigned(&event, "op", line)?;
                if !invoked.insert(op) {
                    return line_error(line, format!("op {op} is invoked twice"));
                }
                let invocation = Invocation {
                    line,
                    client: unsigned(&event, "client", line)?,
                    key: string(&event, "key", line)?,
                    function: string(&event, "f", line)?,
                    value: event.get("value").cloned().unwrap_or(Value::Null),
                    call_us: unsigned(&event, "at_us", line)?,
                };
                open.insert(op, invocations.len());
                invocations.push((op, invocation));
                completed.push(false);
            }
            "op_complete" => {
                let op = unsigned(&event, "op", line)?;
                let Some(index) = open.remove(&op) else {
                    return line_error(line, format!("op {op} completes but was never invoked (or completes twice)"));
                };
                completed[index] = true;
                let invocation = &invocations[index].1;
                let function = string(&event, "f", line)?;
                let key = string(&event, "key", line)?;
                if function != invocation.function || key != invocation.key {
                    return line_error(
                        line,
                        format!(
                            "op {op}'s completion ({function} {key:?}) does not match its invocation on line {}",
                            invocation.line
                        ),
                    );
                }
                let return_us = unsigned(&event, "at_us", line)?;
                if return_us < invocation.call_us {
                    return line_error(
                        line,
                        format!("op {op} completes at {return_us}, before its invocation at {}", invocation.call_us),
                    );
                }
                let outcome = string(&event, "outcome", line)?;
                let return_us = match outcome.as_str() {
                    "ok" => Some(return_us),
                    "info" => None,
                    "fail" => continue,
                    other => {
                        return line_error(line, format!("unknown outcome \"{other}\" (expected ok, fail or info)"))
                    }
                };
                let result = event.get("result").cloned().unwrap_or(Value::Null);
                let kv_function = kv_function(invocation, return_us.is_some().then_some(&result), line)?;
                history.operations.push(KvOperation {
                    id: op,
                    client: invocation.client,
                    key: invocation.key.clone(),
                    function: kv_function,
                    call_us: invocation.call_us,
                    return_us,
                });
            }
            _ => {}
        }
    }
    for (index, (op, invocation)) in invocations.iter().enumerate() {
        if completed[index] {
            continue;
        }
        history.operations.push(KvOperation {
            id: *op,
            client: invocation.client,
            key: invocation.key.clone(),
            function: kv_function(invocation, None, invocation.line)?,
            call_us: invocation.call_us,
            return_us: None,
        });
    }
    Ok((ModelKind::Kv, History::Kv(history)))
}

fn unsigned(event: &Value, field: &str, line: usize) -> Result<u64, LineError> {
    match event.get(field).and_then(Value::as_u64) {
        Some(number) => Ok(number),
        None => line_error(line, format!("missing or non-integer \"{field}\"")),
    }
}

fn string(event: &Value, field: &str, line: usize) -> Result<String, LineError> {
    match event.get(field).and_then(Value::as_str) {
        Some(text) => Ok(text.to_owned()),
        None => line_error(line, format!("missing or non-string \"{field}\"")),
    }
}

/// Builds the function from the invocation and, when the operation returned, its result.
fn kv_function(invocation: &Invocation, result: Option<&Value>, line: usize) -> Result<KvFunction, LineError> {
    let text = |value: &Value, what: &str| match value.as_str() {
        Some(text) => Ok(text.to_owned()),
        None => line_error(line, format!("{what} must be a string, found {value}")),
    };
    match invocation.function.as_str() {
        "get" => {
            let result = match result {
                None => Observed::Unknown,
                Some(Value::Null) => Observed::Value(None),
                Some(value) => Observed::Value(Some(text(value, "a get's result")?)),
            };
            Ok(KvFunction::Get { result })
        }
        "put" => Ok(KvFunction::Put { value: text(&invocation.value, "a put's value")? }),
        "append" => Ok(KvFunction::Append { value: text(&invocation.value, "an append's value")? }),
        "cas" => {
            let Some([expected, new]) = invocation.value.as_array().map(Vec::as_slice) else {
                return line_error(
                    invocation.line,
                    format!("a cas's value must be [expected, new], found {}", invocation.value),
                );
            };
            let expected = if expected.is_null() { None } else { Some(text(expected, "a cas's expected value")?) };
            let new = text(new, "a cas's new value")?;
            let result = match result {
                None => Observed::Unknown,
                Some(value) => match value.as_bool() {
                    Some(swapped) => Observed::Value(swapped),
                    None => return line_error(line, format!("a cas's result must be true or false, found {value}")),
                },
            };
            Ok(KvFunction::Cas { expected, new, result })
        }
        other => line_error(invocation.line, format!("unknown f \"{other}\" (expected get, put, cas or append)")),
    }
}
