//! Jepsen/Knossos EDN histories and Porcupine's key-value logs (EDN maps with a `:key`).
//!
//! Read as liberally as Knossos's reader (`knossos.cli/read-history`, then `knossos.history`):
//! one vector or list of op maps, or a stream of maps; keys in any order, extra keys ignored,
//! tagged literals (`#jepsen.history.Op{...}`) read as their value. A process may be any value
//! (an integer, a string, nil when `:process` is missing); keyword processes (`:nemesis`) are
//! Jepsen's non-client processes and their ops are ignored, as Jepsen's checkers do; an `:info`
//! of a process with no operation in flight is a note, not an operation (Knossos skips it too).
//! `:f` may be a keyword, a string or a symbol. An `:ok` completion's `:value` is the
//! operation's value, as Knossos fills it into the invocation.
//!
//! Porcupine's key-value logs are read line by line, as Porcupine's `parseKvLog` does: one op
//! map per line, anywhere on the line (its regular expressions are not anchored), so a log
//! prefix before the map is ignored; what follows the map may only close an enclosing vector.
//!
//! Knossos semantics: `:ok` happened; `:fail` did not happen (dropped, even a cas); `:info` or
//! no completion is indeterminate; a read whose value is nil is unconstrained; time is the
//! order of events in the file. Registers start at 0 (cas-register, multi-register) or ""
//! (kv log). Register models compare values as EDN prints them, so the string "1" and the
//! integer 1 differ, as they do for Knossos.
//!
//! Owns the translation of op maps into histories. Must never check anything.

use std::collections::HashMap;

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
    /// `None` when the map has no `:value`.
    value: Option<Edn>,
    line: usize,
}

impl OpMap {
    fn value(&self) -> Edn {
        self.value.clone().unwrap_or(Edn { line: self.line, value: EdnValue::Nil })
    }
}

/// Parses EDN text: one collection of op maps, or a stream of them.
pub(super) fn parse(text: &str, model: Option<ModelKind>) -> Result<(ModelKind, History), LineError> {
    let forms = parse_all(text).map_err(|error| LineError { line: error.line, message: error.message })?;
    // One vector or list of maps, or a stream of maps.
    let maps: Vec<Edn> = match forms.len() {
        1 if forms[0].as_sequence().is_some() => {
            forms.into_iter().next().map_or_else(Vec::new, |single| match single.value {
                EdnValue::Vector(items) | EdnValue::List(items) => items,
                other => vec![Edn { line: single.line, value: other }],
            })
        }
        _ => forms,
    };
    translate(maps, model, false)
}

/// Parses Porcupine's key-value log: one op map per line, possibly after a log prefix.
pub(super) fn parse_kv_log(text: &str, model: Option<ModelKind>) -> Result<(ModelKind, History), LineError> {
    let mut maps = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw_line.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') {
            continue;
        }
        let Some(open) = raw_line.find('{') else {
            return line_error(line, format!("expected an op map '{{:process ...}}', found '{}'", shorten(trimmed)));
        };
        // Forms after the map may only close an enclosing collection: `{...}]`.
        let map_text = raw_line[open..].trim_end().trim_end_matches([']', ')', ',', ' ', '\t']);
        let forms = parse_all(map_text).map_err(|error| LineError { line, message: error.message })?;
        match forms.as_slice() {
            [form] if matches!(form.value, EdnValue::Map(_)) => maps.push(Edn { line, value: form.value.clone() }),
            _ => {
                return line_error(
                    line,
                    format!("expected exactly one op map on the line, found '{}'", shorten(map_text.trim())),
                )
            }
        }
    }
    translate(maps, model, true)
}

/// A process's client id: non-negative integers are their own ids; any other value gets an id
/// above every integer process, in order of first appearance, so reports stay readable.
struct ProcessIds {
    first_free: u64,
    others: HashMap<String, u64>,
}

impl ProcessIds {
    fn new(maps: &[Edn]) -> Self {
        let highest = maps
            .iter()
            .filter_map(|map| map.get("process").and_then(Edn::as_integer))
            .filter_map(|number| u64::try_from(number).ok())
            .max();
        ProcessIds { first_free: highest.map_or(0, |highest| highest.saturating_add(1)), others: HashMap::new() }
    }

    /// The id, and the name errors should use when the process is not a plain integer.
    fn id(&mut self, process: Option<&Edn>) -> (u64, Option<String>) {
        if let Some(number) = process.and_then(Edn::as_integer).and_then(|number| u64::try_from(number).ok()) {
            return (number, None);
        }
        let name = process.map_or_else(|| "nil".to_owned(), Edn::to_string);
        let next = self.first_free + self.others.len() as u64;
        (*self.others.entry(name.clone()).or_insert(next), Some(name))
    }
}

/// The name of an op's function: a keyword, a string or a symbol.
fn function_name(value: &Edn) -> Option<&str> {
    match &value.value {
        EdnValue::Keyword(name) | EdnValue::String(name) | EdnValue::Symbol(name) => Some(name),
        _ => None,
    }
}

fn translate(maps: Vec<Edn>, model: Option<ModelKind>, key_value_log: bool) -> Result<(ModelKind, History), LineError> {
    let mut processes = ProcessIds::new(&maps);
    let mut pairing: Pairing<OpMap> = Pairing::new();
    for (position, map) in maps.iter().enumerate() {
        let line = map.line;
        if !matches!(map.value, EdnValue::Map(_)) {
            return line_error(line, format!("expected an operation map, found {}", shorten(&map.to_string())));
        }
        let process = map.get("process");
        // Keyword processes are Jepsen's nemesis and other non-client workers.
        if process.is_some_and(|process| process.as_keyword().is_some()) {
            continue;
        }
        let (client, name) = processes.id(process);
        if let Some(name) = name {
            pairing.name_process(client, name);
        }
        let Some(kind) = map.get("type").and_then(Edn::as_keyword) else {
            return line_error(line, "operation without a keyword :type (:invoke, :ok, :fail or :info)");
        };
        let Some(function) = map.get("f").and_then(function_name) else {
            return line_error(line, "operation without an :f (a keyword, string or symbol)");
        };
        let op = OpMap {
            function: function.to_owned(),
            key: map.get("key").cloned(),
            value: map.get("value").cloned(),
            line,
        };
        let position = position as u64;
        let completion = match kind {
            "invoke" => {
                pairing.invoke(client, line, position, op)?;
                continue;
            }
            "ok" => Completion::Ok,
            "fail" => Completion::Fail,
            // Knossos treats an :info with nothing in flight as a note; so does this reader.
            "info" if !pairing.is_open(client) => continue,
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

/// How a scalar becomes a register value: as EDN prints it (register models, where 1 and "1"
/// differ), or as its plain text (Porcupine's string key-value store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Printed,
    Plain,
}

/// An EDN scalar as a register value; `None` for nil.
fn scalar(value: &Edn, what: &str, style: Style) -> Result<Option<String>, LineError> {
    match &value.value {
        EdnValue::Nil => Ok(None),
        EdnValue::String(text) if style == Style::Plain => Ok(Some(text.clone())),
        EdnValue::Keyword(_)
        | EdnValue::Symbol(_)
        | EdnValue::Boolean(_)
        | EdnValue::Character(_)
        | EdnValue::String(_)
        | EdnValue::Integer(_)
        | EdnValue::Float(_) => Ok(Some(value.to_string())),
        EdnValue::List(_) | EdnValue::Vector(_) | EdnValue::Map(_) | EdnValue::Set(_) => {
            line_error(value.line, format!("{what} must be a single value, not {}", shorten(&value.to_string())))
        }
    }
}

fn required_scalar(value: &Edn, what: &str, style: Style) -> Result<String, LineError> {
    match scalar(value, what, style)? {
        Some(text) => Ok(text),
        None => line_error(value.line, format!("{what} must not be nil")),
    }
}

/// The operation's value as Knossos sees it: an `:ok` completion's `:value` replaces the
/// invocation's (a read learns what it read); otherwise the invocation's.
fn effective_value(operation: &Paired<OpMap>) -> Edn {
    match (&operation.completed, operation.completion) {
        (Some(OpMap { value: Some(value), .. }), Completion::Ok) => value.clone(),
        _ => operation.invocation.value(),
    }
}

/// The value a read saw; nil = unconstrained.
fn read_result(operation: &Paired<OpMap>, style: Style) -> Result<Observed<Option<String>>, LineError> {
    Ok(match scalar(&effective_value(operation), "a read's :value", style)? {
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
    let style = Style::Printed;
    for operation in operations {
        let invocation = &operation.invocation;
        let line = operation.invoke_line;
        let function = match invocation.function.as_str() {
            "read" => KvFunction::Get { result: read_result(operation, style)? },
            "write" => {
                KvFunction::Put { value: required_scalar(&effective_value(operation), "a write's :value", style)? }
            }
            "cas" if model == ModelKind::CasRegister => {
                let (expected, new) = cas_pair(&effective_value(operation), style)?;
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

fn cas_pair(value: &Edn, style: Style) -> Result<(String, String), LineError> {
    match value.as_sequence() {
        Some([expected, new]) => Ok((
            required_scalar(expected, "a cas's expected value", style)?,
            required_scalar(new, "a cas's new value", style)?,
        )),
        Some(_) | None => line_error(value.line, format!("a cas's :value must be [expected new], not {value}")),
    }
}

fn to_key_value(operations: &[Paired<OpMap>]) -> Result<KvHistory, LineError> {
    let mut history = KvHistory { initial_value: Some(String::new()), operations: Vec::new() };
    let style = Style::Plain;
    for operation in operations {
        let invocation = &operation.invocation;
        let line = operation.invoke_line;
        let Some(key) = &invocation.key else {
            return line_error(line, "key-value operation without :key");
        };
        let key = required_scalar(key, ":key", style)?;
        let value = effective_value(operation);
        let function = match invocation.function.as_str() {
            "get" | "read" => KvFunction::Get { result: read_result(operation, style)? },
            "put" | "write" => KvFunction::Put { value: required_scalar(&value, "a put's :value", style)? },
            "append" => KvFunction::Append { value: required_scalar(&value, "an append's :value", style)? },
            "cas" => {
                let (expected, new) = cas_pair(&value, style)?;
                KvFunction::Cas { expected: Some(expected), new, result: Observed::Value(true) }
            }
            other => {
                return line_error(
                    line,
                    format!("unknown :f :{other} for the kv model (expected :get, :put, :append or :cas)"),
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
        let source = match returned {
            Some(_) => effective_value(operation),
            None => operation.invocation.value(),
        };
        let Some(steps) = source.as_sequence() else {
            return line_error(source.line, format!("a txn's :value must be a vector of [f k v], not {source}"));
        };
        let mut accesses = Vec::with_capacity(steps.len());
        for step in steps {
            let Some([function, register, value]) = step.as_sequence() else {
                return line_error(step.line, format!("a txn step must be [f k v], not {step}"));
            };
            let register = required_scalar(register, "a register name", Style::Plain)?;
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
