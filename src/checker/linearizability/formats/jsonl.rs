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
//! Owns the reading of lines and fields; the pairing and the translation into a `KvHistory` live
//! in `migsim_ops`, shared with the checkers that read a run's events. Must never check anything.

use serde_json::Value;

use super::{line_error, History, LineError, ModelKind};
use crate::checker::linearizability::migsim_ops::{OpError, OpHistoryBuilder, OpOutcome};

pub(super) fn parse(text: &str, model: Option<ModelKind>) -> Result<(ModelKind, History), LineError> {
    match model.unwrap_or(ModelKind::Kv) {
        ModelKind::Kv => {}
        other @ (ModelKind::Register | ModelKind::CasRegister | ModelKind::MultiRegister | ModelKind::Mutex) => {
            return line_error(0, format!("the {} model does not fit migsim's history (use kv)", other.name()))
        }
    }
    let mut builder: OpHistoryBuilder<usize> = OpHistoryBuilder::new();
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
                let client = unsigned(&event, "client", line)?;
                let key = string(&event, "key", line)?;
                let function = string(&event, "f", line)?;
                let value = event.get("value").unwrap_or(&Value::Null);
                let call_us = unsigned(&event, "at_us", line)?;
                builder.invoke(line, op, client, &key, &function, value, call_us).map_err(line_of)?;
            }
            "op_complete" => {
                let op = unsigned(&event, "op", line)?;
                let function = string(&event, "f", line)?;
                let key = string(&event, "key", line)?;
                let return_us = unsigned(&event, "at_us", line)?;
                let outcome = string(&event, "outcome", line)?;
                let Some(outcome) = OpOutcome::from_name(&outcome) else {
                    return line_error(line, format!("unknown outcome \"{outcome}\" (expected ok, fail or info)"));
                };
                let result = event.get("result").unwrap_or(&Value::Null);
                builder
                    .complete(line, op, &key, &function, return_us, outcome, result, |line| format!("on line {line}"))
                    .map_err(line_of)?;
            }
            _ => {}
        }
    }
    let history = builder.finish().map_err(line_of)?;
    Ok((ModelKind::Kv, History::Kv(history)))
}

fn line_of(error: OpError<usize>) -> LineError {
    LineError { line: error.location, message: error.message }
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
