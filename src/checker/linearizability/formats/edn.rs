//! A small reader for EDN, the notation of Jepsen and Knossos histories: nil, booleans,
//! integers, floats, strings, characters, keywords, symbols, lists, vectors, maps and sets;
//! `;` comments, commas as whitespace, `#_` discards, and tagged literals (the tag is dropped).
//!
//! Owns the syntax and the line of every value. Must never interpret a value as an operation:
//! that is the job of the history readers.

/// One EDN value and the line (1-based) where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Edn {
    pub line: usize,
    pub value: EdnValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EdnValue {
    Nil,
    Boolean(bool),
    Integer(i64),
    Float(f64),
    String(String),
    Character(char),
    /// Without the leading colon.
    Keyword(String),
    Symbol(String),
    List(Vec<Edn>),
    Vector(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
    Set(Vec<Edn>),
}

impl Edn {
    /// The value of `keyword` in a map, if this is a map holding it.
    pub fn get(&self, keyword: &str) -> Option<&Edn> {
        let EdnValue::Map(entries) = &self.value else {
            return None;
        };
        entries.iter().find(|(key, _)| key.as_keyword() == Some(keyword)).map(|(_, value)| value)
    }

    pub fn as_integer(&self) -> Option<i64> {
        let EdnValue::Integer(number) = &self.value else {
            return None;
        };
        Some(*number)
    }

    pub fn is_nil(&self) -> bool {
        matches!(self.value, EdnValue::Nil)
    }

    pub fn as_keyword(&self) -> Option<&str> {
        let EdnValue::Keyword(name) = &self.value else {
            return None;
        };
        Some(name)
    }

    /// The elements of a vector or list.
    pub fn as_sequence(&self) -> Option<&[Edn]> {
        if let EdnValue::Vector(items) | EdnValue::List(items) = &self.value {
            return Some(items);
        }
        None
    }
}

impl std::fmt::Display for Edn {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let join = |formatter: &mut std::fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str| {
            write!(formatter, "{open}")?;
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    write!(formatter, " ")?;
                }
                write!(formatter, "{item}")?;
            }
            write!(formatter, "{close}")
        };
        match &self.value {
            EdnValue::Nil => write!(formatter, "nil"),
            EdnValue::Boolean(value) => write!(formatter, "{value}"),
            EdnValue::Integer(value) => write!(formatter, "{value}"),
            EdnValue::Float(value) => write!(formatter, "{value}"),
            EdnValue::String(value) => write!(formatter, "{value:?}"),
            EdnValue::Character(value) => write!(formatter, "\\{value}"),
            EdnValue::Keyword(name) => write!(formatter, ":{name}"),
            EdnValue::Symbol(name) => write!(formatter, "{name}"),
            EdnValue::List(items) => join(formatter, "(", items, ")"),
            EdnValue::Vector(items) => join(formatter, "[", items, "]"),
            EdnValue::Set(items) => join(formatter, "#{", items, "}"),
            EdnValue::Map(entries) => {
                write!(formatter, "{{")?;
                for (index, (key, value)) in entries.iter().enumerate() {
                    if index > 0 {
                        write!(formatter, ", ")?;
                    }
                    write!(formatter, "{key} {value}")?;
                }
                write!(formatter, "}}")
            }
        }
    }
}

/// A syntax error and its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdnError {
    pub line: usize,
    pub message: String,
}

/// Reads every top-level form of `text`.
pub fn parse_all(text: &str) -> Result<Vec<Edn>, EdnError> {
    let mut reader = Reader { characters: text.chars().collect(), position: 0, line: 1 };
    let mut forms = Vec::new();
    loop {
        reader.skip_blank()?;
        if reader.peek().is_none() {
            return Ok(forms);
        }
        if let Some(form) = reader.read_form()? {
            forms.push(form);
        }
    }
}

struct Reader {
    characters: Vec<char>,
    position: usize,
    line: usize,
}

/// How deep collections may nest: far beyond any history, and well within the thread's stack.
const MAX_DEPTH: usize = 200;

impl Reader {
    fn peek(&self) -> Option<char> {
        self.characters.get(self.position).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let character = self.peek()?;
        self.position += 1;
        if character == '\n' {
            self.line += 1;
        }
        Some(character)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, EdnError> {
        Err(EdnError { line: self.line, message: message.into() })
    }

    /// Skips whitespace, commas and comments.
    fn skip_blank(&mut self) -> Result<(), EdnError> {
        while let Some(character) = self.peek() {
            if character.is_whitespace() || character == ',' {
                self.bump();
            } else if character == ';' {
                while let Some(character) = self.bump() {
                    if character == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Reads one form; `None` when the form was discarded with `#_`.
    fn read_form(&mut self) -> Result<Option<Edn>, EdnError> {
        self.read_form_at(0)
    }

    fn read_form_at(&mut self, depth: usize) -> Result<Option<Edn>, EdnError> {
        if depth > MAX_DEPTH {
            return self.error(format!("collections nested deeper than {MAX_DEPTH}"));
        }
        self.skip_blank()?;
        let line = self.line;
        let Some(character) = self.peek() else {
            return self.error("unexpected end of input");
        };
        let value = match character {
            '(' => {
                self.bump();
                EdnValue::List(self.read_sequence(')', depth)?)
            }
            '[' => {
                self.bump();
                EdnValue::Vector(self.read_sequence(']', depth)?)
            }
            '{' => {
                self.bump();
                let items = self.read_sequence('}', depth)?;
                if items.len() % 2 != 0 {
                    return Err(EdnError { line, message: "a map needs an even number of forms".to_owned() });
                }
                let mut entries = Vec::with_capacity(items.len() / 2);
                let mut items = items.into_iter();
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    entries.push((key, value));
                }
                EdnValue::Map(entries)
            }
            ')' | ']' | '}' => return self.error(format!("unmatched '{character}'")),
            '"' => {
                self.bump();
                EdnValue::String(self.read_string()?)
            }
            '\\' => {
                self.bump();
                let token = self.read_token();
                let character = match token.as_str() {
                    "newline" => '\n',
                    "space" => ' ',
                    "tab" => '\t',
                    "return" => '\r',
                    "backspace" => '\u{8}',
                    "formfeed" => '\u{c}',
                    unicode if unicode.len() == 5 && unicode.starts_with('u') => {
                        match u32::from_str_radix(&unicode[1..], 16).ok().and_then(char::from_u32) {
                            Some(decoded) => decoded,
                            None => return self.error(format!("unknown character literal \\{token}")),
                        }
                    }
                    _ => {
                        let mut characters = token.chars();
                        match (characters.next(), characters.next()) {
                            (Some(single), None) => single,
                            _ => return self.error(format!("unknown character literal \\{token}")),
                        }
                    }
                };
                EdnValue::Character(character)
            }
            '#' => {
                self.bump();
                match self.peek() {
                    Some('{') => {
                        self.bump();
                        EdnValue::Set(self.read_sequence('}', depth)?)
                    }
                    Some('_') => {
                        self.bump();
                        self.read_form_at(depth + 1)?;
                        return Ok(None);
                    }
                    _ => {
                        // A tagged literal such as #inst "...": keep the value, drop the tag.
                        let tag = self.read_token();
                        if tag.is_empty() {
                            return self.error("'#' must start a set, a discard or a tag");
                        }
                        return self.read_form_at(depth + 1);
                    }
                }
            }
            ':' => {
                self.bump();
                let name = self.read_token();
                if name.is_empty() {
                    return self.error("empty keyword");
                }
                EdnValue::Keyword(name)
            }
            _ => {
                let token = self.read_token();
                if token.is_empty() {
                    return self.error(format!("unexpected character '{character}'"));
                }
                self.atom(&token)?
            }
        };
        Ok(Some(Edn { line, value }))
    }

    fn read_sequence(&mut self, close: char, depth: usize) -> Result<Vec<Edn>, EdnError> {
        let opened_on = self.line;
        let mut items = Vec::new();
        loop {
            self.skip_blank()?;
            match self.peek() {
                None => {
                    return self
                        .error(format!("unexpected end of input: '{close}' missing (opened on line {opened_on})"))
                }
                Some(character) if character == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => {
                    if let Some(item) = self.read_form_at(depth + 1)? {
                        items.push(item);
                    }
                }
            }
        }
    }

    fn read_string(&mut self) -> Result<String, EdnError> {
        let opened_on = self.line;
        let mut text = String::new();
        loop {
            let Some(character) = self.bump() else {
                return self.error(format!("unterminated string (opened on line {opened_on})"));
            };
            match character {
                '"' => return Ok(text),
                '\\' => {
                    let escaped = match self.bump() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('u') => {
                            let digits: String = (0..4).filter_map(|_| self.bump()).collect();
                            match u32::from_str_radix(&digits, 16).ok().and_then(char::from_u32) {
                                Some(decoded) => decoded,
                                None => return self.error(format!("bad unicode escape \\u{digits}")),
                            }
                        }
                        Some(other) => return self.error(format!("unknown string escape \\{other}")),
                        None => return self.error("unterminated string"),
                    };
                    text.push(escaped);
                }
                other => text.push(other),
            }
        }
    }

    /// Reads the characters of a symbol, keyword name or number.
    fn read_token(&mut self) -> String {
        let mut token = String::new();
        while let Some(character) = self.peek() {
            let delimiter =
                character.is_whitespace() || matches!(character, ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '"');
            if delimiter {
                break;
            }
            token.push(character);
            self.bump();
        }
        token
    }

    fn atom(&self, token: &str) -> Result<EdnValue, EdnError> {
        match token {
            "nil" => return Ok(EdnValue::Nil),
            "true" => return Ok(EdnValue::Boolean(true)),
            "false" => return Ok(EdnValue::Boolean(false)),
            _ => {}
        }
        let first = token.chars().next().unwrap_or(' ');
        let second = token.chars().nth(1);
        let numeric =
            first.is_ascii_digit() || (matches!(first, '-' | '+') && second.is_some_and(|c| c.is_ascii_digit()));
        if !numeric {
            return Ok(EdnValue::Symbol(token.to_owned()));
        }
        let integer_text = token.strip_suffix('N').unwrap_or(token);
        if let Ok(integer) = integer_text.parse::<i64>() {
            return Ok(EdnValue::Integer(integer));
        }
        // Clojure's reader (which Knossos uses) also reads ratios such as 1/3.
        if let Some((numerator, denominator)) = token.split_once('/') {
            if let (Ok(numerator), Ok(denominator)) = (numerator.parse::<f64>(), denominator.parse::<f64>()) {
                if denominator != 0.0 {
                    return Ok(EdnValue::Float(numerator / denominator));
                }
            }
        }
        // Big integers (`N`) and decimals (`M`) past i64 are kept as floats.
        let float_text = integer_text.strip_suffix('M').unwrap_or(integer_text);
        match float_text.parse::<f64>() {
            Ok(float) => Ok(EdnValue::Float(float)),
            Err(_) => self.error(format!("malformed number '{token}'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_maps_comments_and_lines() {
        let forms = parse_all("; a comment\n[{:a 1, :b \"x\"}\n {:c nil :d [1 2.5 :k]}]").expect("valid EDN");
        assert_eq!(forms.len(), 1);
        let items = forms[0].as_sequence().expect("a vector");
        assert_eq!(items[0].line, 2);
        assert_eq!(items[1].line, 3);
        assert_eq!(items[0].get("b").map(|value| value.value.clone()), Some(EdnValue::String("x".to_owned())));
        assert_eq!(items[1].get("c").map(|value| value.value.clone()), Some(EdnValue::Nil));
    }

    #[test]
    fn reports_the_line_of_syntax_errors() {
        let error = parse_all("{:a 1}\n{:b 2\n").expect_err("unterminated map");
        assert_eq!(error.line, 3);
        assert!(error.message.contains("opened on line 2"), "{}", error.message);
        let error = parse_all("{:a 1}\n{:b}\n").expect_err("odd map");
        assert_eq!(error.line, 2);
        let error = parse_all("\n\n  \"abc").expect_err("unterminated string");
        assert!(error.message.contains("unterminated string"), "{}", error.message);
        let error = parse_all("[1 2 1x]").expect_err("bad number");
        assert!(error.message.contains("malformed number"), "{}", error.message);
    }

    #[test]
    fn reads_what_clojure_reads_in_histories() {
        let forms = parse_all("[1/4 \\u0041 \\newline \"a\\bb\" -7 +3 2.5M 12345678901234567890N]").expect("valid EDN");
        let items = forms[0].as_sequence().expect("a vector");
        let values: Vec<EdnValue> = items.iter().map(|item| item.value.clone()).collect();
        assert_eq!(
            values,
            vec![
                EdnValue::Float(0.25),
                EdnValue::Character('A'),
                EdnValue::Character('\n'),
                EdnValue::String("a\u{8}b".to_owned()),
                EdnValue::Integer(-7),
                EdnValue::Integer(3),
                EdnValue::Float(2.5),
                EdnValue::Float(12345678901234567890.0),
            ]
        );
    }

    #[test]
    fn discards_and_tags() {
        let forms = parse_all("#_ {:x 1} #inst \"2020\" #{1 2}").expect("valid EDN");
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[0].value, EdnValue::String("2020".to_owned()));
    }
}
