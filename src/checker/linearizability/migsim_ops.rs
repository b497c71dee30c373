//! migsim's client operations as a key-value history: pairs each invocation with its completion
//! and translates (f, value, outcome, result) into a `KvOperation`. `value`: get null, put/append
//! a string, cas `[expected or null, new]`. `outcome`: ok, fail (definitely not applied: dropped),
//! info (indeterminate). `result`: get a string or null (absent), cas true/false, put/append null.
//! An invocation with no completion is indeterminate.
//!
//! Owns those semantics, once: the JSON Lines reader (`formats/jsonl.rs`) and the checkers that
//! read a run's events (`checker::client_ops`) both build their histories here, so the two can
//! never disagree. Must never check anything, and never name the trace's types: the library stays
//! usable outside the simulation, and callers say where each operation came from (`L`: a line
//! number, an event's sequence number).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::history::{KvFunction, KvHistory, KvOperation, Observed};

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpOutcome {
    /// It happened, and its result is recorded.
    Ok,
    /// It definitely did not happen: left out of the history.
    Fail,
    /// Unknown: it may have happened once, or not.
    Info,
}

impl OpOutcome {
    /// The outcome named `text` (`ok`, `fail`, `info`).
    pub(crate) fn from_name(text: &str) -> Option<OpOutcome> {
        match text {
            "ok" => Some(OpOutcome::Ok),
            "fail" => Some(OpOutcome::Fail),
            "info" => Some(OpOutcome::Info),
            _ => None,
        }
    }
}

/// A malformed operation: where the offending invocation or completion came from, which
/// operation it is, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpError<L> {
    pub(crate) location: L,
    pub(crate) op: u64,
    pub(crate) message: String,
}

/// An invocation, kept until its completion arrives (or the history ends).
struct Invocation<L> {
    location: L,
    op: u64,
    client: u64,
    key: String,
    function: String,
    value: Value,
    call_us: u64,
}

/// Builds a `KvHistory` from invocations and completions fed in history order.
pub(crate) struct OpHistoryBuilder<L> {
    history: KvHistory,
    /// Invocations in order, so indeterminate operations come out in a deterministic order.
    invocations: Vec<Invocation<L>>,
    completed: Vec<bool>,
    /// Operation id -> index into `invocations`, while the operation waits for its completion.
    open: HashMap<u64, usize>,
    invoked: HashSet<u64>,
}

impl<L: Copy> OpHistoryBuilder<L> {
    pub(crate) fn new() -> Self {
        OpHistoryBuilder {
            history: KvHistory { initial_value: None, operations: Vec::new() },
            invocations: Vec::new(),
            completed: Vec::new(),
            open: HashMap::new(),
            invoked: HashSet::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn invoke(
        &mut self,
        location: L,
        op: u64,
        client: u64,
        key: &str,
        function: &str,
        value: &Value,
        call_us: u64,
    ) -> Result<(), OpError<L>> {
        if !self.invoked.insert(op) {
            return Err(OpError { location, op, message: format!("op {op} is invoked twice") });
        }
        self.open.insert(op, self.invocations.len());
        self.invocations.push(Invocation {
            location,
            op,
            client,
            key: key.to_owned(),
            function: function.to_owned(),
            value: value.clone(),
            call_us,
        });
        self.completed.push(false);
        Ok(())
    }

    /// `describe_location` names the invocation's location in a mismatch message (the JSON Lines
    /// reader says "on line 7").
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn complete(
        &mut self,
        location: L,
        op: u64,
        key: &str,
        function: &str,
        return_us: u64,
        outcome: OpOutcome,
        result: &Value,
        describe_location: impl Fn(L) -> String,
    ) -> Result<(), OpError<L>> {
        let error = |message: String| Err(OpError { location, op, message });
        let Some(index) = self.open.remove(&op) else {
            return error(format!("op {op} completes but was never invoked (or completes twice)"));
        };
        self.completed[index] = true;
        let invocation = &self.invocations[index];
        if function != invocation.function || key != invocation.key {
            return error(format!(
                "op {op}'s completion ({function} {key:?}) does not match its invocation {}",
                describe_location(invocation.location)
            ));
        }
        if return_us < invocation.call_us {
            return error(format!("op {op} completes at {return_us}, before its invocation at {}", invocation.call_us));
        }
        let return_us = match outcome {
            OpOutcome::Ok => Some(return_us),
            OpOutcome::Info => None,
            OpOutcome::Fail => return Ok(()),
        };
        let function = kv_function(invocation, return_us.is_some().then_some((result, location)))?;
        self.history.operations.push(KvOperation {
            id: op,
            client: invocation.client,
            key: invocation.key.clone(),
            function,
            call_us: invocation.call_us,
            return_us,
        });
        Ok(())
    }

    /// The history: completed operations in completion order, then the invocations that never
    /// completed (indeterminate), in invocation order.
    pub(crate) fn finish(mut self) -> Result<KvHistory, OpError<L>> {
        for (invocation, completed) in self.invocations.iter().zip(&self.completed) {
            if *completed {
                continue;
            }
            self.history.operations.push(KvOperation {
                id: invocation.op,
                client: invocation.client,
                key: invocation.key.clone(),
                function: kv_function(invocation, None)?,
                call_us: invocation.call_us,
                return_us: None,
            });
        }
        Ok(self.history)
    }
}

/// Builds the function from the invocation and, when the operation returned, its result and
/// the completion's location. Errors in the value name the invocation, errors in the result
/// the completion.
fn kv_function<L: Copy>(invocation: &Invocation<L>, result: Option<(&Value, L)>) -> Result<KvFunction, OpError<L>> {
    let op = invocation.op;
    let at_invocation = |message: String| OpError { location: invocation.location, op, message };
    let text = |value: &Value, what: &str, location: L| match value.as_str() {
        Some(text) => Ok(text.to_owned()),
        None => Err(OpError { location, op, message: format!("{what} must be a string, found {value}") }),
    };
    let value = &invocation.value;
    match invocation.function.as_str() {
        "get" => {
            let result = match result {
                None => Observed::Unknown,
                Some((Value::Null, _)) => Observed::Value(None),
                Some((value, location)) => Observed::Value(Some(text(value, "a get's result", location)?)),
            };
            Ok(KvFunction::Get { result })
        }
        "put" => Ok(KvFunction::Put { value: text(value, "a put's value", invocation.location)? }),
        "append" => Ok(KvFunction::Append { value: text(value, "an append's value", invocation.location)? }),
        "cas" => {
            let Some([expected, new]) = value.as_array().map(Vec::as_slice) else {
                return Err(at_invocation(format!("a cas's value must be [expected, new], found {value}")));
            };
            let expected = if expected.is_null() {
                None
            } else {
                Some(text(expected, "a cas's expected value", invocation.location)?)
            };
            let new = text(new, "a cas's new value", invocation.location)?;
            let result = match result {
                None => Observed::Unknown,
                Some((value, location)) => match value.as_bool() {
                    Some(swapped) => Observed::Value(swapped),
                    None => {
                        return Err(OpError {
                            location,
                            op,
                            message: format!("a cas's result must be true or false, found {value}"),
                        })
                    }
                },
            };
            Ok(KvFunction::Cas { expected, new, result })
        }
        other => Err(at_invocation(format!("unknown f \"{other}\" (expected get, put, cas or append)"))),
    }
}
