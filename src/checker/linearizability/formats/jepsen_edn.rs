//! Jepsen/Knossos EDN histories and Porcupine's key-value logs (EDN maps with a `:key`).
//!
//! Knossos semantics: `:ok` happened; `:fail` did not happen (dropped, even a cas); `:info` or
//! no completion is indeterminate; a read takes its value from its completion and a read whose
//! value is nil is unconstrained; `:process :nemesis` events are ignored; time is the order of
//! events in the file. Registers start at 0 (cas-register, multi-register) or "" (kv log).
//!
//! Owns the translation of op maps into histories. Must never check anything.

use super::edn::{parse_all, Edn, EdnValue};
use super::{line_error, Completion, History, LineError, ModelKind, Paired, Pairing, SINGLE_REGISTER_KEY};
use crate::checker::linearizability::history::{
    KvFunction, KvHistory, KvOperation, MultiRegisterHistory, MutexFunction, MutexHistory, MutexOperation, Observed,
    RegisterAccess, TransactionOperation,
};

/// The part of an op map the translation needs.
#[derive(Clone, Debug)]
struct OpMap {
    function: String,
    key: Option<Edn>,
    value: Edn,
}

/// Parses EDN text. `key_value_log` forces the kv model (Porcupine's kv logs).
pub(super) fn parse(
    text: &str,
    model: Option<ModelKind>,
    key_value_log: bool,
) -> Result<(ModelKind, History), LineError> {
    let forms = parse_all(text).map_err(|error| LineError { line: error.line, message: error.message })?;
    // One vector or list of maps, or a stream of maps.
    let maps: Vec<&Edn> = match forms.as_slice() {
        [single] => match single.as_sequence() {
            Some(items) => items.iter().collect(),
            None => vec![single],
        },
        many => many.iter().collect(),
    };
    let mut pairing: Pairing<OpMap> = Pairing::new();
    for (position, map) in maps.into_iter().enumerate() {
        let line = map.line;
        if !matches!(map.value, EdnValue::Map(_)) {
            return line_error(line, format!("expected an operation map, found {}", shorten(&map.to_string())));
        }
        let Some(process) = map.get("process") else {
            return line_error(line, "operation without :process");
        };
        if process.as_keyword() == Some("nemesis") {
            continue;
        }
        let Some(client) = process.as_integer().and_then(|number| u64::try_from(number).ok()) else {
            return line_error(line, format!(":process must be a non-negative integer or :nemesis, not {process}"));
        };
        let Some(kind) = map.get("type").and_then(Edn::as_keyword) else {
            return line_error(line, "operation without a keyword :type (:invoke, :ok, :fail or :info)");
        };
        let Some(function) = map.get("f").and_then(Edn::as_keyword) else {
            return line_error(line, "operation without a keyword :f");
        };
        let op = OpMap {
            function: function.to_owned(),
            key: map.get("key").cloned(),
            value: map.get("value").cloned().unwrap_or(Edn { line, value: EdnValue::Nil }),
        };
        let position = position as u64;
        let completion = match kind {
            "invoke" => {
                pairing.invoke(client, line, position, op)?;
                continue;
            }
            "ok" => Completion::Ok,
            "fail" => Completion::Fail,
            "info" => Completion::Info,
            other => {
                return line_error(line, format!("unknown :type :{other} (expected :invoke, :ok, :fail or :info)"))
            }
        };
        let invoked = pairing.complete(client, line, position, completion, op.clone())?;
        if invoked.invocation.function != op.function {
            return line_error(
                line,
                format!(
                    "completion :f :{} does not match the invocation :f :{} on line {}",
                    op.function, invoked.invocation.function, invoked.invoke_line
                ),
            );
        }
    }
    let operations = pairing.finish();
    let model = match model {
        Some(model) => model,
        None if key_value_log => ModelKind::Kv,
        None => detect_model(&operations),
    };
    let history = match model {
        ModelKind::Register | ModelKind::CasRegister => History::Kv(to_register(&operations, model)?),
        ModelKind::Kv => History::Kv(to_key_value(&operations)?),
        ModelKind::MultiRegister => History::MultiRegister(to_multi_register(&operations)?),
        ModelKind::Mutex => History::Mutex(to_mutex(&operations)?),
    };
    Ok((model, history))
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= 60 {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(57).collect();
    short.push_str("...");
    short
}

fn detect_model(operations: &[Paired<OpMap>]) -> ModelKind {
    let any = |predicate: &dyn Fn(&OpMap) -> bool| operations.iter().any(|operation| predicate(&operation.invocation));
    if any(&|op| op.function == "txn") {
        ModelKind::MultiRegister
    } else if any(&|op| op.function == "acquire" || op.function == "release") {
        ModelKind::Mutex
    } else if any(&|op| op.key.is_some()) {
        ModelKind::Kv
    } else {
        ModelKind::CasRegister
    }
}

/// An EDN scalar as a register value; `None` for nil.
fn scalar(value: &Edn, what: &str) -> Result<Option<String>, LineError> {
    match &value.value {
        EdnValue::Nil => Ok(None),
        EdnValue::Integer(number) => Ok(Some(number.to_string())),
        EdnValue::Float(number) => Ok(Some(number.to_string())),
        EdnValue::String(text) => Ok(Some(text.clone())),
        EdnValue::Keyword(name) => Ok(Some(format!(":{name}"))),
        EdnValue::Symbol(name) => Ok(Some(name.clone())),
        EdnValue::Boolean(flag) => Ok(Some(flag.to_string())),
        EdnValue::Character(character) => Ok(Some(character.to_string())),
        EdnValue::List(_) | EdnValue::Vector(_) | EdnValue::Map(_) | EdnValue::Set(_) => {
            line_error(value.line, format!("{what} must be a single value, not {}", shorten(&value.to_string())))
        }
    }
}

fn required_scalar(value: &Edn, what: &str) -> Result<String, LineError> {
    match scalar(value, what)? {
        Some(text) => Ok(text),
        None => line_error(value.line, format!("{what} must not be nil")),
    }
}

/// The value a read saw: from its completion, else from its invocation; nil = unconstrained.
fn read_result(operation: &Paired<OpMap>) -> Result<Observed<Option<String>>, LineError> {
    let completed = operation.completed.as_ref().map(|op| &op.value);
    let value = match completed {
        Some(value) if value.value != EdnValue::Nil => value,
        Some(_) | None => &operation.invocation.value,
    };
    Ok(match scalar(value, "a read's :value")? {
        Some(text) => Observed::Value(Some(text)),
        None => Observed::Unknown,
    })
}

/// Times of an operation: `None` for the return when it is indeterminate, and `None` overall
/// when it definitely did not happen.
fn times(operation: &Paired<OpMap>) -> Option<(u64, Option<u64>)> {
    match operation.completion {
        Completion::Ok => Some((operation.call, operation.return_position)),
        Completion::Fail => None,
        Completion::Info | Completion::Pending => Some((operation.call, None)),
    }
}

fn kv_operation(
    operation: &Paired<OpMap>,
    key: String,
    function: KvFunction,
    call: u64,
    returned: Option<u64>,
) -> KvOperation {
    KvOperation {
        id: operation.invoke_line as u64,
        client: operation.client,
        key,
        function,
        call_us: call,
        return_us: returned,
    }
}

fn to_register(operations: &[Paired<OpMap>], model: ModelKind) -> Result<KvHistory, LineError> {
    let mut history = KvHistory { initial_value: Some("0".to_owned()), operations: Vec::new() };
    for operation in operations {
        let invocation = &operation.invocation;
        let line = operation.invoke_line;
        let function = match invocation.function.as_str() {
            "read" => KvFunction::Get { result: read_result(operation)? },
            "write" => KvFunction::Put { value: required_scalar(&invocation.value, "a write's :value")? },
            "cas" if model == ModelKind::CasRegister => {
                let (expected, new) = cas_pair(&invocation.value)?;
                KvFunction::Cas { expected: Some(expected), new, result: Observed::Value(true) }
            }
            "cas" => return line_error(line, "cas is not part of the register model (use --model cas-register)"),
            other => {
                return line_error(
                    line,
                    format!("unknown :f :{other} for the {} model (expected :read, :write or :cas)", model.name()),
                )
            }
        };
        if let Some((call, returned)) = times(operation) {
            history.operations.push(kv_operation(operation, SINGLE_REGISTER_KEY.to_owned(), function, call, returned));
        }
    }
    Ok(history)
}

fn cas_pair(value: &Edn) -> Result<(String, String), LineError> {
    match value.as_sequence() {
        Some([expected, new]) => {
            Ok((required_scalar(expected, "a cas's expected value")?, required_scalar(new, "a cas's new value")?))
        }
        Some(_) | None => line_error(value.line, format!("a cas's :value must be [expected new], not {value}")),
    }
}

fn to_key_value(operations: &[Paired<OpMap>]) -> Result<KvHistory, LineError> {
    let mut history = KvHistory { initial_value: Some(String::new()), operations: Vec::new() };
    for operation in operations {
        let invocation = &operation.invocation;
        let line = operation.invoke_line;
        let Some(key) = &invocation.key else {
            return line_error(line, "key-value operation without :key");
        };
        let key = required_scalar(key, ":key")?;
        let function = match invocation.function.as_str() {
            "get" | "read" => KvFunction::Get { result: read_result(operation)? },
            "put" | "write" => KvFunction::Put { value: required_scalar(&invocation.value, "a put's :value")? },
            "append" => KvFunction::Append { value: required_scalar(&invocation.value, "an append's :value")? },
            "cas" => {
                let (expected, new) = cas_pair(&invocation.value)?;
                KvFunction::Cas { expected: Some(expected), new, result: Observed::Value(true) }
            }
            other => {
                return line_error(
                    line,
                    format!("unknown :f :{other} for the kv model (expected :get, :put or :append)"),
                )
            }
        };
        if let Some((call, returned)) = times(operation) {
            history.operations.push(kv_operation(operation, key, function, call, returned));
        }
    }
    Ok(history)
}

fn to_multi_register(operations: &[Paired<OpMap>]) -> Result<MultiRegisterHistory, LineError> {
    let mut history = MultiRegisterHistory { initial_value: 0, operations: Vec::new() };
    for operation in operations {
        let line = operation.invoke_line;
        if operation.invocation.function != "txn" {
            return line_error(
                line,
                format!("unknown :f :{} for the multi-register model (expected :txn)", operation.invocation.function),
            );
        }
        let Some((call, returned)) = times(operation) else {
            continue;
        };
        // A completed transaction carries the values its reads saw.
        let source = match (&operation.completed, returned) {
            (Some(completed), Some(_)) => &completed.value,
            (Some(_) | None, _) => &operation.invocation.value,
        };
        let Some(steps) = source.as_sequence() else {
            return line_error(source.line, format!("a txn's :value must be a vector of [f k v], not {source}"));
        };
        let mut accesses = Vec::with_capacity(steps.len());
        for step in steps {
            let Some([function, register, value]) = step.as_sequence() else {
                return line_error(step.line, format!("a txn step must be [f k v], not {step}"));
            };
            let register = required_scalar(register, "a register name")?;
            let register = register.strip_prefix(':').map(str::to_owned).unwrap_or(register);
            let integer = |value: &Edn| {
                if value.is_nil() {
                    return Ok(None);
                }
                match value.as_integer() {
                    Some(number) => Ok(Some(number)),
                    None => line_error(value.line, format!("a register value must be an integer or nil, not {value}")),
                }
            };
            let access = match function.as_keyword() {
                Some("read" | "r") => RegisterAccess::Read { register, value: integer(value)? },
                Some("write" | "w") => match integer(value)? {
                    Some(value) => RegisterAccess::Write { register, value },
                    None => return line_error(step.line, "a txn write needs an integer value"),
                },
                Some(_) | None => {
                    return line_error(step.line, format!("a txn step's f must be :read or :write, not {function}"))
                }
            };
            accesses.push(access);
        }
        history.operations.push(TransactionOperation {
            id: line as u64,
            client: operation.client,
            accesses,
            call_us: call,
            return_us: returned,
        });
    }
    Ok(history)
}

fn to_mutex(operations: &[Paired<OpMap>]) -> Result<MutexHistory, LineError> {
    let mut history = MutexHistory::default();
    for operation in operations {
        let line = operation.invoke_line;
        let function = match operation.invocation.function.as_str() {
            "acquire" => MutexFunction::Acquire,
            "release" => MutexFunction::Release,
            other => {
                return line_error(
                    line,
                    format!("unknown :f :{other} for the mutex model (expected :acquire or :release)"),
                )
            }
        };
        if let Some((call, returned)) = times(operation) {
            history.operations.push(MutexOperation {
                id: line as u64,
                client: operation.client,
                function,
                call_us: call,
                return_us: returned,
            });
        }
    }
    Ok(history)
}
