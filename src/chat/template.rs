//! Jinja chat templates, rendered as Hugging Face transformers renders them.

use std::fmt;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

use super::json::{dumps, python_float, DumpOptions};
use super::{ChatMessage, TemplateErrorKind};
use crate::error::{Error, Result};
use crate::Model;

/// The name of the one template of each environment (shown in engine messages).
const NAME: &str = "chat_template";

/// A compiled chat template plus the special-token texts it is rendered with.
///
/// The environment is sandboxed: there is no loader, so `include`, `import` and `extends`
/// find nothing, and templates cannot reach the file system. It is configured as transformers
/// configures jinja2 (`ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
/// extensions=[loopcontrols])` with `raise_exception`, `strftime_now` and its own `tojson`),
/// so a template renders to the same bytes as `tokenizer.apply_chat_template(...,
/// tokenize=False)`.
///
/// Cheap to share: `Send + Sync`, rendering takes `&self`.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

impl fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_len", &self.source.len())
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

/// What to render: the conversation, optional tools and documents, and whether to open the
/// assistant's turn. Built with [`ChatRequest::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct ChatRequest<'a> {
    /// The conversation (`messages`).
    pub messages: &'a [ChatMessage],
    /// Tool definitions (`tools`; `None` renders as Python's `None`, as transformers passes it).
    pub tools: Option<serde_json::Value>,
    /// Retrieval documents (`documents`; `None` as for `tools`).
    pub documents: Option<serde_json::Value>,
    /// End with the opening of the assistant's turn (`add_generation_prompt`).
    pub add_generation_prompt: bool,
    /// More template variables (transformers' `**kwargs`: `enable_thinking`, ...). They may
    /// not replace the standard ones.
    pub variables: serde_json::Map<String, serde_json::Value>,
}

impl<'a> ChatRequest<'a> {
    /// A request for `messages`, without tools, documents or generation prompt.
    pub fn new(messages: &'a [ChatMessage]) -> Self {
        ChatRequest {
            messages,
            tools: None,
            documents: None,
            add_generation_prompt: false,
            variables: serde_json::Map::new(),
        }
    }

    /// Sets `tools` (usually a list of JSON function schemas).
    pub fn with_tools(mut self, tools: serde_json::Value) -> Self {
        self.tools = Some(tools);
        self
    }

    /// Sets `documents`.
    pub fn with_documents(mut self, documents: serde_json::Value) -> Self {
        self.documents = Some(documents);
        self
    }

    /// Sets `add_generation_prompt`.
    pub fn with_generation_prompt(mut self, add: bool) -> Self {
        self.add_generation_prompt = add;
        self
    }

    /// Adds a template variable (e.g. `enable_thinking`).
    pub fn with_variable(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.variables.insert(name.into(), value);
        self
    }
}

/// The standard variables, which [`ChatRequest::variables`] may not replace.
const STANDARD_VARIABLES: [&str; 6] = [
    "messages",
    "tools",
    "documents",
    "add_generation_prompt",
    "bos_token",
    "eos_token",
];

fn template_error(kind: TemplateErrorKind, message: String, line: Option<usize>) -> Error {
    Error::ChatTemplate {
        kind,
        message,
        line,
    }
}

impl ChatTemplate {
    /// The model's own template (`tokenizer.chat_template`), with `bos_token` / `eos_token`
    /// set to the texts of the vocabulary's BOS and EOS tokens (empty when the vocabulary has
    /// none).
    ///
    /// # Errors
    /// [`Error::ChatTemplate`] with [`TemplateErrorKind::Missing`] when the model has no
    /// template (e.g. Gemma 3's GGUF), or [`TemplateErrorKind::Syntax`] when it does not parse.
    #[doc(alias = "llama_model_chat_template")]
    #[doc(alias = "tokenizer.chat_template")]
    pub fn from_model(model: &Model) -> Result<ChatTemplate> {
        let source = model.chat_template(None)?.ok_or_else(|| {
            template_error(
                TemplateErrorKind::Missing,
                format!(
                    "{} has no tokenizer.chat_template metadata",
                    model.path().display()
                ),
                None,
            )
        })?;
        let text = |token: Option<crate::Token>| -> Result<String> {
            match token {
                Some(token) => {
                    Ok(String::from_utf8_lossy(&model.token_to_bytes(token, true)?).into_owned())
                }
                None => Ok(String::new()),
            }
        };
        ChatTemplate::new(
            &source,
            &text(model.token_bos())?,
            &text(model.token_eos())?,
        )
    }

    /// Compiles `source` (Jinja) with the given special-token texts.
    ///
    /// # Errors
    /// [`Error::ChatTemplate`] with [`TemplateErrorKind::Syntax`]: the engine's message and
    /// the line of the error.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_unknown_method_callback(python_method);
        env.set_formatter(|out, state, value| match python_str(value) {
            Some(text) => out.write_str(&text).map_err(minijinja::Error::from),
            None => minijinja::escape_formatter(out, state, value),
        });
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_filter("string", |value: Value| -> Value {
            match python_str(&value) {
                Some(text) => Value::from(text),
                None if value.is_undefined() => Value::from(""),
                None => Value::from(value.to_string()),
            }
        });
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| template_error(TemplateErrorKind::Syntax, e.to_string(), e.line()))?;
        Ok(ChatTemplate {
            env,
            source: source.to_string(),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The `bos_token` text the template is rendered with.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The `eos_token` text the template is rendered with.
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// Renders the conversation into a prompt.
    ///
    /// # Errors
    /// [`Error::ChatTemplate`]: [`TemplateErrorKind::Raised`] when the template calls
    /// `raise_exception(message)` (the error's `message` is the template's),
    /// [`TemplateErrorKind::Render`] for any other failure (engine message and line);
    /// `InvalidArgument` when a variable of [`ChatRequest::variables`] would replace a
    /// standard one.
    pub fn render(&self, request: &ChatRequest<'_>) -> Result<String> {
        let optional = |value: &Option<serde_json::Value>| {
            value
                .as_ref()
                .map_or(Value::from(()), Value::from_serialize)
        };
        let mut context: Vec<(String, Value)> = vec![
            ("messages".into(), Value::from_serialize(request.messages)),
            ("tools".into(), optional(&request.tools)),
            ("documents".into(), optional(&request.documents)),
            (
                "add_generation_prompt".into(),
                Value::from(request.add_generation_prompt),
            ),
            ("bos_token".into(), Value::from(self.bos_token.as_str())),
            ("eos_token".into(), Value::from(self.eos_token.as_str())),
        ];
        for (name, value) in &request.variables {
            if STANDARD_VARIABLES.contains(&name.as_str()) {
                return Err(Error::InvalidArgument {
                    parameter: "chat template variables",
                    reason: format!("{name:?} is set by the request itself"),
                });
            }
            context.push((name.clone(), Value::from_serialize(value)));
        }
        let context: Value = context.into_iter().collect();
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| template_error(TemplateErrorKind::Render, e.to_string(), e.line()))?;
        template.render(context).map_err(|e| render_error(&e))
    }
}

/// Python's methods of `str`, `dict` and `list` (minijinja-contrib's `pycompat`), with
/// `str.find` / `str.rfind` counting characters as Python does (pycompat counts bytes).
fn python_method(
    state: &minijinja::State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, minijinja::Error> {
    if let (Some(text), "find" | "rfind", [needle]) = (value.as_str(), method, args) {
        if let Some(needle) = needle.as_str() {
            let found = if method == "find" {
                text.find(needle)
            } else {
                text.rfind(needle)
            };
            return Ok(Value::from(
                found.map_or(-1, |byte| text[..byte].chars().count() as i64),
            ));
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// `raise_exception`'s message, carried as the source of the engine's error.
#[derive(Debug)]
struct Raised(String);

impl fmt::Display for Raised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

fn render_error(error: &minijinja::Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(raised) = current.downcast_ref::<Raised>() {
            return template_error(TemplateErrorKind::Raised, raised.0.clone(), error.line());
        }
        source = current.source();
    }
    template_error(TemplateErrorKind::Render, error.to_string(), error.line())
}

/// `raise_exception(message)`: fails the render with the template's message.
fn raise_exception(message: Value) -> Result<Value, minijinja::Error> {
    let text = python_str(&message).unwrap_or_else(|| message.to_string());
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, text.clone()).with_source(Raised(text)))
}

/// `strftime_now(format)`: the current time (UTC), formatted as Python's `strftime`.
fn strftime_now(format: &str) -> Result<Value, minijinja::Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    strftime(format, now.as_secs() as i64).map(Value::from)
}

/// transformers' `tojson(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`: Python's `json.dumps`.
fn tojson(
    value: Value,
    ensure_ascii: Option<Value>,
    indent: Option<Value>,
    kwargs: Kwargs,
) -> Result<Value, minijinja::Error> {
    let ensure_ascii = match kwargs.get::<Option<Value>>("ensure_ascii")? {
        Some(v) => v.is_true(),
        None => ensure_ascii.is_some_and(|v| v.is_true()),
    };
    let indent = kwargs.get::<Option<Value>>("indent")?.or(indent);
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => Some(match (v.as_str(), v.as_i64()) {
            (Some(s), _) => s.to_string(),
            (None, Some(n)) => " ".repeat(usize::try_from(n).unwrap_or(0)),
            _ => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be an integer or a string",
                ))
            }
        }),
    };
    let sort_keys = kwargs
        .get::<Option<Value>>("sort_keys")?
        .is_some_and(|v| v.is_true());
    let mut options = DumpOptions::new(ensure_ascii, indent, sort_keys);
    if let Some(separators) = kwargs.get::<Option<Value>>("separators")? {
        if !separators.is_none() {
            let parts: Vec<String> = separators
                .try_iter()?
                .map(|p| p.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .unwrap_or_default();
            let [item, key] = <[String; 2]>::try_from(parts).map_err(|_| {
                minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: separators must be two strings",
                )
            })?;
            options.separators = (item, key);
        }
    }
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value).map_err(|e| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson: not serializable: {e}"),
        )
    })?;
    Ok(Value::from(dumps(&json, &options)))
}

/// Python's `str(value)` where it differs from the engine's default (`None`, `True`, floats,
/// lists and dicts as Python prints them); `None` (the Rust one) where the default is right.
fn python_str(value: &Value) -> Option<String> {
    match value.kind() {
        ValueKind::None | ValueKind::Bool | ValueKind::Seq | ValueKind::Map => {
            Some(python_repr(value))
        }
        ValueKind::Number if !value.is_integer() => Some(python_repr(value)),
        _ => None,
    }
}

/// Python's `repr(value)` for the JSON-like values templates handle.
fn python_repr(value: &Value) -> String {
    match value.kind() {
        ValueKind::None => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number if value.is_integer() => value.to_string(),
        ValueKind::Number => f64::try_from(value.clone())
            .map(python_float)
            .unwrap_or_else(|_| value.to_string()),
        ValueKind::String => python_string_repr(value.as_str().unwrap_or_default()),
        ValueKind::Seq => {
            let items: Vec<String> = value
                .try_iter()
                .map(|iter| iter.map(|v| python_repr(&v)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = value
                .try_iter()
                .map(|iter| {
                    iter.map(|key| {
                        let item = value.get_item(&key).unwrap_or_default();
                        format!("{}: {}", python_repr(&key), python_repr(&item))
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => value.to_string(),
    }
}

/// Python's `repr(str)`: single quotes unless the text has a `'` and no `"`.
fn python_string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Python's `strftime` (C locale) for the UTC time `secs` after the epoch.
fn strftime(format: &str, secs: i64) -> Result<String, minijinja::Error> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_march = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_march + 2) / 153;
    let day = doy_march - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const CUMULATIVE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUMULATIVE[(month - 1) as usize] + day + i64::from(leap && month > 2);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday; 0 = Monday
    let month_name = MONTHS[(month - 1) as usize];
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };

    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(code) = chars.next() else {
            out.push('%');
            break;
        };
        let piece = match code {
            'Y' => year.to_string(),
            'y' => format!("{:02}", year.rem_euclid(100)),
            'm' => format!("{month:02}"),
            'd' => format!("{day:02}"),
            'e' => format!("{day:>2}"),
            'H' => format!("{hour:02}"),
            'I' => format!("{hour12:02}"),
            'M' => format!("{minute:02}"),
            'S' => format!("{second:02}"),
            'p' => if hour < 12 { "AM" } else { "PM" }.to_string(),
            'j' => format!("{yday:03}"),
            'B' => month_name.to_string(),
            'b' | 'h' => month_name[..3].to_string(),
            'A' => WEEKDAYS[weekday].to_string(),
            'a' => WEEKDAYS[weekday][..3].to_string(),
            'w' => ((weekday + 1) % 7).to_string(),
            'u' => (weekday + 1).to_string(),
            'F' => format!("{year}-{month:02}-{day:02}"),
            'T' => format!("{hour:02}:{minute:02}:{second:02}"),
            'D' => format!("{month:02}/{day:02}/{:02}", year.rem_euclid(100)),
            'Z' => "UTC".to_string(),
            'z' => "+0000".to_string(),
            '%' => "%".to_string(),
            other => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("strftime_now: unsupported directive %{other}"),
                ))
            }
        };
        out.push_str(&piece);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_send_and_sync() {
        fn shared<T: Send + Sync + Clone>() {}
        shared::<ChatTemplate>();
    }

    #[test]
    fn strftime_formats_known_dates() {
        // 2024-07-26 13:05:09 UTC, a Friday.
        let t = 1_721_999_109;
        assert_eq!(
            strftime("%d %b %Y %H:%M:%S %a %A %B %j %y %I%p", t).unwrap(),
            "26 Jul 2024 13:05:09 Fri Friday July 208 24 01PM"
        );
        assert_eq!(strftime("%Y-%m-%d %%", 0).unwrap(), "1970-01-01 %");
        assert_eq!(strftime("%F %j", 951_782_400).unwrap(), "2000-02-29 060");
    }

    #[test]
    fn python_printing() {
        let t = ChatTemplate::new(
            "{{ none }}|{{ true }}|{{ [1, 'a', none, 2.5] }}|{{ {'k': false} }}|{{ 1.0 }}|{{ \"it's\" }}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(
            t.render(&ChatRequest::new(&[])).unwrap(),
            "None|True|[1, 'a', None, 2.5]|{'k': False}|1.0|it's"
        );
    }

    #[test]
    fn errors_are_typed() {
        let e = ChatTemplate::new("{% if %}", "", "").unwrap_err();
        assert!(
            matches!(
                e,
                Error::ChatTemplate {
                    kind: TemplateErrorKind::Syntax,
                    line: Some(1),
                    ..
                }
            ),
            "{e:?}"
        );
        let t = ChatTemplate::new("a\n{{ raise_exception('no ' ~ 'way') }}", "", "").unwrap();
        match t.render(&ChatRequest::new(&[])).unwrap_err() {
            Error::ChatTemplate {
                kind: TemplateErrorKind::Raised,
                message,
                line,
            } => {
                assert_eq!(message, "no way");
                assert_eq!(line, Some(2));
            }
            other => panic!("{other:?}"),
        }
    }
}
