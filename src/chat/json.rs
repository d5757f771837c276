//! Python's `json.dumps` output format, for the `tojson` filter of chat templates.

use std::fmt::Write;

use serde_json::Value;

/// `json.dumps` options, as transformers' `tojson` filter passes them.
#[derive(Debug, Clone)]
pub(crate) struct DumpOptions {
    /// Escape every non-ASCII character as `\uXXXX`.
    pub ensure_ascii: bool,
    /// Pretty-print with this indentation string (`None`: one line).
    pub indent: Option<String>,
    /// Between items, and between a key and its value.
    pub separators: (String, String),
    /// Sort object keys.
    pub sort_keys: bool,
}

impl DumpOptions {
    /// Python's defaults for `indent`: separators `(", ", ": ")` on one line, `(",", ": ")`
    /// when indenting.
    pub(crate) fn new(ensure_ascii: bool, indent: Option<String>, sort_keys: bool) -> Self {
        let item = if indent.is_some() { "," } else { ", " };
        DumpOptions {
            ensure_ascii,
            indent,
            separators: (item.into(), ": ".into()),
            sort_keys,
        }
    }
}

/// `json.dumps(value, ...)`.
pub(crate) fn dumps(value: &Value, options: &DumpOptions) -> String {
    let mut out = String::new();
    write_value(&mut out, value, options, 0);
    out
}

fn newline(out: &mut String, options: &DumpOptions, depth: usize) {
    if let Some(indent) = &options.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    }
}

fn write_value(out: &mut String, value: &Value, options: &DumpOptions, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&python_float(n.as_f64().unwrap_or(f64::NAN)));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_string(out, s, options.ensure_ascii),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&options.separators.0);
                }
                newline(out, options, depth + 1);
                write_value(out, item, options, depth + 1);
            }
            newline(out, options, depth);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if options.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(&options.separators.0);
                }
                newline(out, options, depth + 1);
                write_string(out, key, options.ensure_ascii);
                out.push_str(&options.separators.1);
                write_value(out, item, options, depth + 1);
            }
            newline(out, options, depth);
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest round-trip digits, fixed notation for exponents in
/// `-4..16`, otherwise `1e+16` / `1.5e-05` style.
pub(crate) fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345.0, "123456789012345.0"),
            (0.0, "0.0"),
        ] {
            assert_eq!(python_float(f), want);
        }
    }

    #[test]
    fn dumps_matches_python_defaults() {
        let v: Value =
            serde_json::from_str(r#"{"b":[1,2.0,"é\n"],"a":{},"c":[],"d":null,"e":true}"#).unwrap();
        assert_eq!(
            dumps(&v, &DumpOptions::new(false, None, false)),
            r#"{"b": [1, 2.0, "é\n"], "a": {}, "c": [], "d": null, "e": true}"#
        );
        assert_eq!(
            dumps(&v, &DumpOptions::new(true, None, true)),
            r#"{"a": {}, "b": [1, 2.0, "\u00e9\n"], "c": [], "d": null, "e": true}"#
        );
        assert_eq!(
            dumps(
                &serde_json::json!({"a": [1]}),
                &DumpOptions::new(false, Some("  ".into()), false)
            ),
            "{\n  \"a\": [\n    1\n  ]\n}"
        );
    }
}
