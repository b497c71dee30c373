//! A run's client operations as a key-value history, built from its `op_invoke` and
//! `op_complete` events with exactly the semantics of migsim's JSON Lines history (both go
//! through `linearizability::migsim_ops`, so an event list and its JSON Lines dump always give
//! the same history).
//!
//! Owns the step from trace events to `KvHistory`. Must never judge anything: it returns a
//! history or says which event is malformed.

use super::linearizability::migsim_ops::{OpError, OpHistoryBuilder, OpOutcome};
use super::linearizability::KvHistory;
use crate::trace::{Event, EventKind, OpFunction, Outcome};
use crate::units::format_us;

/// Where an operation's event sits in the trace: its sequence number and model time.
#[derive(Clone, Copy, Debug)]
struct Location {
    seq: u64,
    at_us: u64,
}

/// The key-value history of every client operation in `events`; other events are ignored.
/// A malformed operation (a completion without an invocation, or that does not match it, a value
/// of the wrong shape) is an error naming the op and its event.
pub fn kv_history(events: &[Event]) -> Result<KvHistory, String> {
    let mut builder: OpHistoryBuilder<Location> = OpHistoryBuilder::new();
    for event in events {
        let location = Location { seq: event.seq, at_us: event.at_us };
        let step = match &event.kind {
            EventKind::OpInvoke { op, client, key, partition: _, f, value } => {
                builder.invoke(location, *op, u64::from(*client), key, function_name(*f), value, event.at_us)
            }
            EventKind::OpComplete { op, client: _, key, partition: _, f, value: _, outcome, result } => builder
                .complete(location, *op, key, function_name(*f), event.at_us, op_outcome(*outcome), result, |at| {
                    format!("at event {} ({})", at.seq, format_us(at.at_us))
                }),
            _ => Ok(()),
        };
        step.map_err(describe)?;
    }
    builder.finish().map_err(describe)
}

fn describe(error: OpError<Location>) -> String {
    let OpError { location, op, message } = error;
    // Most messages already open with the op; the others get it in front.
    let message = if message.starts_with(&format!("op {op} ")) || message.starts_with(&format!("op {op}'")) {
        message
    } else {
        format!("op {op}: {message}")
    };
    format!("{message}, at event {} ({})", location.seq, format_us(location.at_us))
}

/// The name the history format uses for `function`.
fn function_name(function: OpFunction) -> &'static str {
    match function {
        OpFunction::Get => "get",
        OpFunction::Put => "put",
        OpFunction::Cas => "cas",
        OpFunction::Append => "append",
    }
}

fn op_outcome(outcome: Outcome) -> OpOutcome {
    match outcome {
        Outcome::Ok => OpOutcome::Ok,
        Outcome::Fail => OpOutcome::Fail,
        Outcome::Info => OpOutcome::Info,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checker::linearizability::{KvFunction, Observed};

    fn event(seq: u64, at_us: u64, kind: EventKind) -> Event {
        Event { seq, at_us, node: Some(1), incarnation: 0, kind, summary: String::new() }
    }

    fn invoke(seq: u64, at_us: u64, op: u64, f: OpFunction, value: serde_json::Value) -> Event {
        event(seq, at_us, EventKind::OpInvoke { op, client: 1, key: "k".into(), partition: 0, f, value })
    }

    fn complete(seq: u64, at_us: u64, op: u64, f: OpFunction, outcome: Outcome, result: serde_json::Value) -> Event {
        let kind = EventKind::OpComplete {
            op,
            client: 1,
            key: "k".into(),
            partition: 0,
            f,
            value: json!(null),
            outcome,
            result,
        };
        event(seq, at_us, kind)
    }

    #[test]
    fn operations_translate_with_the_history_semantics() {
        let events = [
            invoke(0, 10, 1, OpFunction::Cas, json!([null, "1.1;"])),
            invoke(1, 11, 2, OpFunction::Put, json!("1.2;")),
            complete(2, 12, 2, OpFunction::Put, Outcome::Fail, json!(null)),
            complete(3, 20, 1, OpFunction::Cas, Outcome::Ok, json!(true)),
            invoke(4, 21, 3, OpFunction::Get, json!(null)),
            event(5, 22, EventKind::HealAll),
        ];
        let history = kv_history(&events).expect("well formed");
        assert_eq!(history.operations.len(), 2, "the failed put is dropped");
        assert_eq!(
            history.operations[0].function,
            KvFunction::Cas { expected: None, new: "1.1;".into(), result: Observed::Value(true) }
        );
        assert_eq!((history.operations[1].id, history.operations[1].return_us), (3, None));
    }

    #[test]
    fn malformed_events_name_the_op() {
        let unknown = [complete(7, 1_500, 4, OpFunction::Put, Outcome::Ok, json!(null))];
        assert_eq!(
            kv_history(&unknown).unwrap_err(),
            "op 4 completes but was never invoked (or completes twice), at event 7 (1.5ms)"
        );
        let mismatch = [
            invoke(0, 10, 4, OpFunction::Put, json!("1.1;")),
            complete(1, 20, 4, OpFunction::Get, Outcome::Ok, json!(null)),
        ];
        let error = kv_history(&mismatch).unwrap_err();
        assert!(
            error.starts_with("op 4's completion (get \"k\") does not match its invocation at event 0 (10us)"),
            "{error}"
        );
        let bad_value = [invoke(3, 10, 9, OpFunction::Cas, json!("1.1;"))];
        assert_eq!(
            kv_history(&bad_value).unwrap_err(),
            "op 9: a cas's value must be [expected, new], found \"1.1;\", at event 3 (10us)"
        );
        let bad_result = [
            invoke(0, 10, 5, OpFunction::Cas, json!([null, "a;"])),
            complete(1, 20, 5, OpFunction::Cas, Outcome::Ok, json!(1)),
        ];
        assert_eq!(
            kv_history(&bad_result).unwrap_err(),
            "op 5: a cas's result must be true or false, found 1, at event 1 (20us)"
        );
    }
}
