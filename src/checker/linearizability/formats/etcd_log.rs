//! Jepsen's etcd test log, as Porcupine's tests read it: one CAS register starting at nil.
//!
//! ```text
//! INFO  jepsen.util - 2	:invoke	:cas	[3 0]
//! ```
//!
//! Read as liberally as Porcupine's reader (`parseJepsenLog`, regular expressions with `\s+`
//! between every field): any run of spaces or tabs separates the level, `jepsen.util`, the dash,
//! the process, the type, the function and the value, and whatever layout precedes
//! `jepsen.util` (a level, a timestamp, a thread name) is ignored. Unlike Porcupine, a line is
//! never skipped unread: a line that mentions `jepsen.util` is an operation or an error naming
//! its line; a line that opens with a log level (`INFO`, `WARN`, ...) and names another logger is
//! another component's message and carries no operation; anything else is an error.
//!
//! Semantics (tests/histories/README.md): `:ok :read nil` saw the initial nil; `:fail :cas`
//! is a definite compare failure (it happened and changed nothing); `:info` is indeterminate;
//! `:fail :read :timed-out` is a read whose result is unknown; any other `:fail` did not happen.
//! Processes that are keywords (`:nemesis`) are not clients and are ignored; time is the order
//! of lines.
//!
//! Owns that translation. Must never check anything.

use super::edn::{parse_all, Edn, EdnValue};
use super::{line_error, Completion, History, LineError, ModelKind, Pairing, SINGLE_REGISTER_KEY};
use crate::checker::linearizability::history::{KvFunction, KvHistory, KvOperation, Observed};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Function {
    Read,
    Write,
    Cas,
}

#[derive(Clone, Debug)]
struct LogEvent {
    function: Function,
    value: Edn,
}

/// The logger whose lines are operations.
const LOGGER: &str = "jepsen.util";
/// Log levels that open another component's message, which carries no operation.
const LEVELS: [&str; 7] = ["TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL"];

/// What one line of the log is.
#[derive(Debug, PartialEq, Eq)]
enum LogLine<'a> {
    Blank,
    /// Another logger's message.
    Other,
    /// `jepsen.util`'s fields after the logger name (and its dash), not yet split.
    Operation(&'a str),
}

fn classify(raw_line: &str) -> Result<LogLine<'_>, String> {
    let line = raw_line.trim();
    if line.is_empty() {
        return Ok(LogLine::Blank);
    }
    // The logger must stand as a word of its own: `jepsen.utility` is another logger.
    let mut search_from = 0;
    while let Some(found) = line[search_from..].find(LOGGER) {
        let start = search_from + found;
        let end = start + LOGGER.len();
        let before_ok = start == 0 || line[..start].ends_with(|c: char| c.is_whitespace() || c == ']');
        let after = &line[end..];
        let after_ok = after.is_empty() || after.starts_with(|c: char| c.is_whitespace() || c == ':' || c == '-');
        if before_ok && after_ok {
            let rest = after.trim_start_matches(':').trim_start();
            let rest = match rest.strip_prefix('-') {
                Some(fields) if fields.starts_with(char::is_whitespace) || fields.is_empty() => fields.trim_start(),
                Some(_) | None => rest,
            };
            return Ok(LogLine::Operation(rest));
        }
        search_from = end;
    }
    let first_word = line.split_whitespace().next().unwrap_or("");
    if LEVELS.contains(&first_word) {
        return Ok(LogLine::Other);
    }
    Err(format!(
        "not a log line: expected '<LEVEL> {LOGGER} - <process> :<type> :<f> <value>' or another logger's \
         '<LEVEL> <logger> - <message>', found '{}'",
        shorten(line)
    ))
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= 60 {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(57).collect();
    short.push_str("...");
    short
}

/// Splits `<process> <type> <f> <value...>` at runs of whitespace; the value keeps its inner
/// spaces (`[3 0]`).
fn split_fields(fields: &str) -> Option<(&str, &str, &str, &str)> {
    let mut rest = fields.trim_start();
    let mut next = || {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (field, after) = rest.split_at(end);
        rest = after.trim_start();
        (!field.is_empty()).then_some(field)
    };
    let process = next()?;
    let kind = next()?;
    let function = next()?;
    Some((process, kind, function, rest.trim_end()))
}

pub(super) fn parse(text: &str, model: Option<ModelKind>) -> Result<(ModelKind, History), LineError> {
    let model = model.unwrap_or(ModelKind::CasRegister);
    match model {
        ModelKind::CasRegister | ModelKind::Register => {}
        ModelKind::Kv | ModelKind::MultiRegister | ModelKind::Mutex => {
            return line_error(0, format!("the {} model does not fit an etcd log (use cas-register)", model.name()))
        }
    }
    let mut pairing: Pairing<LogEvent> = Pairing::new();
    let mut any_line = false;
    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        let fields = match classify(raw_line) {
            Ok(LogLine::Blank) => continue,
            Ok(LogLine::Other) => {
                any_line = true;
                continue;
            }
            Ok(LogLine::Operation(fields)) => fields,
            Err(message) => return line_error(line, message),
        };
        let process = fields.split_whitespace().next().unwrap_or("");
        // Jepsen's non-client processes are keywords (:nemesis); their lines are not operations.
        if process.starts_with(':') || process == "nemesis" {
            continue;
        }
        let Some((process, kind, function, value_text)) = split_fields(fields) else {
            return line_error(line, format!("expected '<process> :<type> :<f> <value>' after '{LOGGER} - '"));
        };
        let Ok(client) = process.parse::<u64>() else {
            return line_error(line, format!("process must be a non-negative integer or a keyword, not '{process}'"));
        };
        let function = match function {
            ":read" => Function::Read,
            ":write" => Function::Write,
            ":cas" => Function::Cas,
            other => return line_error(line, format!("unknown function '{other}' (expected :read, :write or :cas)")),
        };
        let value = match parse_all(value_text) {
            Ok(forms) if forms.len() == 1 => forms.into_iter().next().map(|form| Edn { line, ..form }),
            Ok(forms) if forms.is_empty() => Some(Edn { line, value: EdnValue::Nil }),
            Ok(_) => None,
            Err(error) => return line_error(line, format!("malformed value '{value_text}': {}", error.message)),
        };
        let Some(value) = value else {
            return line_error(line, format!("expected one value, found '{value_text}'"));
        };
        let event = LogEvent { function, value };
        let position = index as u64;
        let completion = match kind {
            ":invoke" => {
                pairing.invoke(client, line, position, event)?;
                continue;
            }
            ":ok" => Completion::Ok,
            ":fail" => Completion::Fail,
            ":info" => Completion::Info,
            other => {
                return line_error(line, format!("unknown type '{other}' (expected :invoke, :ok, :fail or :info)"))
            }
        };
        let invoked = pairing.complete(client, line, position, completion, event.clone())?;
        if invoked.invocation.function != function {
            return line_error(
                line,
                format!("completion does not match the invocation on line {}", invoked.invoke_line),
            );
        }
    }
    let operations = pairing.finish();
    if operations.is_empty() && any_line {
        return line_error(0, format!("no Jepsen operation lines ('INFO  {LOGGER} - ...') found"));
    }
    let mut history = KvHistory { initial_value: None, operations: Vec::new() };
    for operation in &operations {
        let line = operation.invoke_line;
        let invocation = &operation.invocation;
        let returned = operation.return_position;
        // (function, return time): None drops the operation, a None return is indeterminate.
        let (function, return_us) = match (invocation.function, operation.completion) {
            (Function::Read, Completion::Ok) => {
                let completed = operation.completed.as_ref().map_or(&invocation.value, |event| &event.value);
                (KvFunction::Get { result: Observed::Value(integer(completed, line)?) }, returned)
            }
            // A read that timed out returned without a result: it constrains nothing.
            (Function::Read, Completion::Fail) => (KvFunction::Get { result: Observed::Unknown }, returned),
            (Function::Read, Completion::Info | Completion::Pending) => {
                (KvFunction::Get { result: Observed::Unknown }, None)
            }
            (Function::Write, Completion::Fail) => continue,
            (Function::Write, Completion::Ok | Completion::Info | Completion::Pending) => {
                let Some(value) = integer(&invocation.value, line)? else {
                    return line_error(line, "a write needs a value");
                };
                let return_us = if operation.completion == Completion::Ok { returned } else { None };
                (KvFunction::Put { value }, return_us)
            }
            (Function::Cas, completion) => {
                let (expected, new) = cas_pair(&invocation.value, line)?;
                let (result, return_us) = match completion {
                    Completion::Ok => (Observed::Value(true), returned),
                    Completion::Fail => (Observed::Value(false), returned),
                    Completion::Info | Completion::Pending => (Observed::Unknown, None),
                };
                if model == ModelKind::Register {
                    return line_error(line, "cas is not part of the register model (use --model cas-register)");
                }
                (KvFunction::Cas { expected: Some(expected), new, result }, return_us)
            }
        };
        history.operations.push(KvOperation {
            id: line as u64,
            client: operation.client,
            key: SINGLE_REGISTER_KEY.to_owned(),
            function,
            call_us: operation.call,
            return_us,
        });
    }
    Ok((model, History::Kv(history)))
}

fn integer(value: &Edn, line: usize) -> Result<Option<String>, LineError> {
    if value.is_nil() {
        return Ok(None);
    }
    match value.as_integer() {
        Some(number) => Ok(Some(number.to_string())),
        None => line_error(line, format!("expected an integer or nil, found {value}")),
    }
}

fn cas_pair(value: &Edn, line: usize) -> Result<(String, String), LineError> {
    if let Some([expected, new]) = value.as_sequence() {
        if let (Some(expected), Some(new)) = (integer(expected, line)?, integer(new, line)?) {
            return Ok((expected, new));
        }
    }
    line_error(line, format!("a cas needs [expected new] integers, found {value}"))
}
