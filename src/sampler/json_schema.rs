//! JSON Schema to GBNF: grammars that make a sampler produce JSON matching a schema.
//!
//! [`gbnf_from_json_schema`] turns a JSON Schema into a GBNF grammar (root rule `root`) for
//! [`SamplerBuilder::grammar`](super::SamplerBuilder::grammar); [`gbnf_any_json_object`] is the
//! grammar of any JSON object (OpenAI's `response_format: {"type": "json_object"}`).
//!
//! ```no_run
//! use gguf_loader::sampler::json_schema::gbnf_from_json_schema;
//! use gguf_loader::Sampler;
//! # fn demo(model: &gguf_loader::Model) -> gguf_loader::Result<()> {
//! let schema = serde_json::json!({
//!     "type": "object",
//!     "properties": {
//!         "color": {"enum": ["red", "green", "blue"]},
//!         "count": {"type": "integer"}
//!     },
//!     "required": ["color", "count"]
//! });
//! let grammar = gbnf_from_json_schema(&schema)?;
//! // The grammar goes first, so the filters after it only see tokens it allows.
//! let sampler = Sampler::builder(model).grammar(&grammar, "root").greedy().build()?;
//! # let _ = sampler; Ok(()) }
//! ```
//!
//! # The supported subset
//!
//! - `type`: `object`, `array`, `string`, `number`, `integer`, `boolean`, `null`, or an array
//!   of them (any one of the types). Without `type` the kind is inferred from the keywords
//!   (`properties` → object, `items` → array, `minLength` → string), else any JSON value.
//! - Objects: `properties` are written in the order the schema lists them; `required` ones
//!   always, the others may be left out. With `additionalProperties` `false` or absent, only
//!   the listed properties appear; `true` or a schema allows more pairs after them (their keys
//!   are any strings, a listed name included). An object schema without `properties` (and
//!   without `additionalProperties: false`) is any object.
//! - Arrays: `items` (one schema for every item), `minItems`, `maxItems`.
//! - Strings: `minLength`, `maxLength` (in characters; an escape such as `\n` counts as one);
//!   `format` is ignored.
//! - `enum` and `const` of any JSON values (the values are produced as compact JSON text;
//!   they take precedence over the other keywords, which the values should satisfy).
//! - `anyOf` and `oneOf` (both as "one of these"; `oneOf`'s exclusivity is not enforced),
//!   `allOf` with exactly one schema.
//! - `$ref` to a local JSON pointer (`#`, `#/$defs/..`, `#/definitions/..`, any `#/...`);
//!   every target becomes one named rule, so recursive schemas work. A chain of `$ref`s that
//!   returns to itself without any content is an error; a schema that recurses at its own
//!   start through `anyOf` is left recursion, which llama.cpp refuses when the sampler is
//!   built.
//! - The boolean schemas `true` (any value) and `false` (refused: nothing matches).
//! - Annotations are ignored: `title`, `description`, `default`, `examples`, `$schema`, `$id`,
//!   `$comment`, `deprecated`, `readOnly`, `writeOnly`, `format`, and `$defs` /
//!   `definitions` (read through `$ref`).
//!
//! Any other keyword (`pattern`, `minimum`, `prefixItems`, `patternProperties`,
//! `uniqueItems: true`, ...) is an [`Error::InvalidArgument`] (parameter `json schema`) naming
//! the keyword and its location as a JSON pointer in URI fragment form (`#/properties/age/minimum`),
//! rather than a grammar that would let through what the schema forbids.
//!
//! Whitespace between tokens is bounded (`ws ::= | " " | "\n" [ \t]{0,20}`: nothing, one
//! space, or one line break and an indentation), numbers have at most 16 integral and 16
//! fractional digits, so a model cannot loop on spaces or digits; strings without `maxLength`
//! are unbounded (bound the generation with a token limit).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The largest `minLength`, `maxLength`, `minItems` or `maxItems` accepted: llama.cpp expands a
/// bounded repetition into one rule per repeat and refuses (or silently unbounds) more than
/// 2000.
pub const MAX_REPETITION: u64 = 1000;

/// The deepest nesting of schemas followed (subschemas and `$ref`s being expanded).
const MAX_DEPTH: usize = 100;

/// The name of the start rule of every grammar made here.
pub const ROOT_RULE: &str = "root";

/// Annotation keywords: accepted anywhere, no effect on the grammar.
const IGNORED: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
    "$defs",
    "definitions",
];

/// Keywords that shape the grammar.
const SUPPORTED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
];

/// The shared rules, in the order they are written, with their bodies and the shared rules
/// they use.
const PRIMITIVES: &[(&str, &str, &[&str])] = &[
    (
        "value",
        "object | array | string | number | boolean | null",
        &["object", "array", "string", "number", "boolean", "null"],
    ),
    (
        "object",
        r#""{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}""#,
        &["ws", "string", "value"],
    ),
    (
        "array",
        r#""[" ws ( value ws ( "," ws value ws )* )? "]""#,
        &["ws", "value"],
    ),
    ("string", r#""\"" char* "\"""#, &["char"]),
    (
        "char",
        r#"[^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )"#,
        &[],
    ),
    (
        "number",
        r#"integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?"#,
        &["integer"],
    ),
    ("integer", r#""-"? integral-part"#, &["integral-part"]),
    ("integral-part", r#""0" | [1-9] [0-9]{0,15}"#, &[]),
    ("boolean", r#""true" | "false""#, &[]),
    ("null", r#""null""#, &[]),
    ("ws", r#"| " " | "\n" [ \t]{0,20}"#, &[]),
];

/// A GBNF grammar (start rule [`ROOT_RULE`], `root`) whose sentences are the JSON texts that
/// match `schema` (see the [module docs](self) for the supported subset).
///
/// ```
/// use gguf_loader::sampler::json_schema::gbnf_from_json_schema;
///
/// let grammar = gbnf_from_json_schema(&serde_json::json!({"enum": ["yes", "no"]}))?;
/// assert_eq!(grammar, "root ::= \"\\\"yes\\\"\" | \"\\\"no\\\"\"\n");
/// # Ok::<(), gguf_loader::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] (parameter `json schema`) for an unsupported keyword, a keyword
/// with a value of the wrong kind, a `$ref` that is not a local JSON pointer or points nowhere,
/// a cycle of `$ref`s without content, the schema `false`, lengths above [`MAX_REPETITION`],
/// or schemas nested deeper than 100; the message names the keyword and where it is
/// (`#/properties/name/pattern`).
pub fn gbnf_from_json_schema(schema: &Value) -> Result<String> {
    let mut converter = Converter::new(schema);
    converter.define_root()?;
    Ok(converter.finish())
}

/// The grammar of any JSON object (start rule `root`), for OpenAI's
/// `response_format: {"type": "json_object"}`; the same as `gbnf_from_json_schema` of
/// `{"type": "object"}`.
///
/// ```
/// let grammar = gguf_loader::sampler::json_schema::gbnf_any_json_object();
/// assert!(grammar.starts_with("root ::= object\n"));
/// ```
pub fn gbnf_any_json_object() -> String {
    let mut converter = Converter::new(&Value::Null);
    converter.rules.push(Rule {
        name: ROOT_RULE.into(),
        body: Some("object".into()),
    });
    converter.use_primitive("object");
    converter.finish()
}

/// The text of `text` as a GBNF string literal (quotes included).
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `value` as compact JSON text, as a GBNF literal.
fn json_literal(value: &Value) -> String {
    literal(&value.to_string())
}

/// A JSON pointer reference token (`~` → `~0`, `/` → `~1`).
fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `path` (a JSON pointer) in URI fragment form, for messages.
fn location(path: &str) -> String {
    format!("#{path}")
}

/// A name made of GBNF word characters (`[a-zA-Z0-9-]`).
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if out.is_empty() {
        out.push('x');
    }
    out
}

/// `term` repeated `min` to `max` (unbounded: `None`) times.
fn repeat(term: &str, min: u64, max: Option<u64>) -> String {
    match (min, max) {
        (0, None) => format!("{term}*"),
        (1, None) => format!("{term}+"),
        (m, None) => format!("{term}{{{m},}}"),
        (0, Some(1)) => format!("{term}?"),
        (m, Some(n)) if m == n => format!("{term}{{{m}}}"),
        (m, Some(n)) => format!("{term}{{{m},{n}}}"),
    }
}

fn schema_error(path: &str, reason: impl std::fmt::Display) -> Error {
    Error::InvalidArgument {
        parameter: "json schema",
        reason: format!("{reason} at {}", location(path)),
    }
}

/// One rule of the grammar; `body` is `None` while a `$ref` target is being expanded.
struct Rule {
    name: String,
    body: Option<String>,
}

struct Converter<'a> {
    root: &'a Value,
    rules: Vec<Rule>,
    /// Every name taken (rules and the shared rules, used or not).
    names: HashSet<String>,
    /// Finished bodies, for reusing a rule with the same body.
    bodies: HashMap<String, String>,
    /// `$ref` target pointer → rule name.
    refs: HashMap<String, String>,
    /// Shared rules in use.
    primitives: HashSet<&'static str>,
    depth: usize,
}

impl<'a> Converter<'a> {
    fn new(root: &'a Value) -> Self {
        let mut names: HashSet<String> = PRIMITIVES.iter().map(|p| p.0.to_string()).collect();
        names.insert(ROOT_RULE.into());
        Converter {
            root,
            rules: Vec::new(),
            names,
            bodies: HashMap::new(),
            refs: HashMap::new(),
            primitives: HashSet::new(),
            depth: 0,
        }
    }

    /// The grammar text: the rules in order of creation, then the shared rules in use.
    fn finish(self) -> String {
        let mut out = String::new();
        for rule in &self.rules {
            let _ = writeln!(
                out,
                "{} ::= {}",
                rule.name,
                rule.body.as_deref().unwrap_or("")
            );
        }
        for (name, body, _) in PRIMITIVES {
            if self.primitives.contains(name) {
                let _ = writeln!(out, "{name} ::= {body}");
            }
        }
        out
    }

    /// Marks a shared rule (and what it uses) as used; returns its name.
    fn use_primitive(&mut self, name: &'static str) -> String {
        if self.primitives.insert(name) {
            if let Some((_, _, uses)) = PRIMITIVES.iter().find(|p| p.0 == name) {
                for used in *uses {
                    self.use_primitive(used);
                }
            }
        }
        name.to_string()
    }

    fn fresh_name(&mut self, hint: &str) -> String {
        let base = sanitize(hint);
        let mut name = base.clone();
        let mut n = 1;
        while self.names.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// A rule with `body` (an existing one with the same body is reused); returns its name.
    fn add_rule(&mut self, hint: &str, body: String) -> String {
        if let Some(name) = self.bodies.get(&body) {
            return name.clone();
        }
        let name = self.fresh_name(hint);
        self.bodies.insert(body.clone(), name.clone());
        self.rules.push(Rule {
            name: name.clone(),
            body: Some(body),
        });
        name
    }

    fn define_root(&mut self) -> Result<()> {
        self.refs.insert(String::new(), ROOT_RULE.into());
        self.rules.push(Rule {
            name: ROOT_RULE.into(),
            body: None,
        });
        let body = self.body(self.root, "", ROOT_RULE)?;
        self.rules[0].body = Some(body);
        Ok(())
    }

    /// `schema` as one GBNF term: a rule name (a new rule unless the body is one already).
    fn term(&mut self, schema: &'a Value, path: &str, hint: &str) -> Result<String> {
        let body = self.body(schema, path, hint)?;
        if body.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !body.is_empty() {
            return Ok(body);
        }
        Ok(self.add_rule(hint, body))
    }

    /// `schema` as the alternatives of a rule body.
    fn body(&mut self, schema: &'a Value, path: &str, hint: &str) -> Result<String> {
        if self.depth >= MAX_DEPTH {
            return Err(schema_error(
                path,
                format!("schemas nest deeper than {MAX_DEPTH}"),
            ));
        }
        self.depth += 1;
        let result = self.body_inner(schema, path, hint);
        self.depth -= 1;
        result
    }

    fn body_inner(&mut self, schema: &'a Value, path: &str, hint: &str) -> Result<String> {
        let map = match schema {
            Value::Bool(true) => return Ok(self.use_primitive("value")),
            Value::Bool(false) => {
                return Err(schema_error(path, "the schema `false` matches nothing"))
            }
            Value::Object(map) => map,
            _ => {
                return Err(schema_error(
                    path,
                    "a schema must be an object or a boolean",
                ))
            }
        };
        let mut active = Vec::new();
        for key in map.keys() {
            if IGNORED.contains(&key.as_str()) {
                continue;
            }
            if !SUPPORTED.contains(&key.as_str()) {
                return Err(schema_error(
                    &format!("{path}/{}", pointer_token(key)),
                    format!("unsupported keyword `{key}`"),
                ));
            }
            active.push(key.as_str());
        }
        // Keywords that stand alone (with annotations only).
        for exclusive in ["$ref", "allOf", "anyOf", "oneOf"] {
            if map.contains_key(exclusive) {
                if let Some(other) = active.iter().find(|k| **k != exclusive) {
                    return Err(schema_error(
                        &format!("{path}/{}", pointer_token(other)),
                        format!("`{other}` next to `{exclusive}` is not supported (put it inside the alternatives)"),
                    ));
                }
            }
        }
        if let Some(target) = map.get("$ref") {
            return self.reference(target, &format!("{path}/$ref"));
        }
        if let Some(value) = map.get("const") {
            return Ok(json_literal(value));
        }
        if let Some(values) = map.get("enum") {
            let at = format!("{path}/enum");
            let values = match values {
                Value::Array(values) if !values.is_empty() => values,
                _ => return Err(schema_error(&at, "`enum` must be a non-empty array")),
            };
            let alternatives: Vec<String> = values.iter().map(json_literal).collect();
            return Ok(alternatives.join(" | "));
        }
        if let Some(all) = map.get("allOf") {
            let at = format!("{path}/allOf");
            return match all {
                Value::Array(list) if list.len() == 1 => {
                    self.body(&list[0], &format!("{at}/0"), hint)
                }
                Value::Array(list) => Err(schema_error(
                    &at,
                    format!(
                        "`allOf` with {} schemas is not supported (only one)",
                        list.len()
                    ),
                )),
                _ => Err(schema_error(&at, "`allOf` must be an array")),
            };
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(list) = map.get(keyword) {
                let at = format!("{path}/{keyword}");
                let list = match list {
                    Value::Array(list) if !list.is_empty() => list,
                    _ => {
                        return Err(schema_error(
                            &at,
                            format!("`{keyword}` must be a non-empty array"),
                        ))
                    }
                };
                let mut alternatives = Vec::new();
                for (i, sub) in list.iter().enumerate() {
                    alternatives.push(self.term(
                        sub,
                        &format!("{at}/{i}"),
                        &format!("{hint}-{i}"),
                    )?);
                }
                return Ok(alternatives.join(" | "));
            }
        }
        let types: Vec<&str> = match map.get("type") {
            None => vec![infer_type(map)],
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(list)) if !list.is_empty() => {
                let mut types = Vec::new();
                for (i, t) in list.iter().enumerate() {
                    match t.as_str() {
                        Some(t) => types.push(t),
                        None => {
                            return Err(schema_error(
                                &format!("{path}/type/{i}"),
                                "a type must be a string",
                            ))
                        }
                    }
                }
                types
            }
            Some(_) => {
                return Err(schema_error(
                    &format!("{path}/type"),
                    "`type` must be a string or a non-empty array of strings",
                ))
            }
        };
        if let [only] = types.as_slice() {
            return self.typed(map, only, path, hint);
        }
        let mut alternatives = Vec::new();
        for t in types {
            let body = self.typed(map, t, path, &format!("{hint}-{t}"))?;
            alternatives.push(if body.contains(' ') {
                self.add_rule(&format!("{hint}-{t}"), body)
            } else {
                body
            });
        }
        Ok(alternatives.join(" | "))
    }

    /// The body for one `type` of `map`.
    fn typed(
        &mut self,
        map: &'a Map<String, Value>,
        t: &str,
        path: &str,
        hint: &str,
    ) -> Result<String> {
        match t {
            "string" => {
                let min = length(map, "minLength", path)?;
                let max = length(map, "maxLength", path)?;
                check_range(min, max, "minLength", "maxLength", path)?;
                if min.is_none() && max.is_none() {
                    return Ok(self.use_primitive("string"));
                }
                let char_rule = self.use_primitive("char");
                Ok(format!(
                    r#""\"" {} "\"""#,
                    repeat(&char_rule, min.unwrap_or(0), max)
                ))
            }
            "number" => Ok(self.use_primitive("number")),
            "integer" => Ok(self.use_primitive("integer")),
            "boolean" => Ok(self.use_primitive("boolean")),
            "null" => Ok(self.use_primitive("null")),
            // Inferred only (see `infer_type`): no keyword tells the kind.
            "any" if !map.contains_key("type") => Ok(self.use_primitive("value")),
            "array" => self.array(map, path, hint),
            "object" => self.object(map, path, hint),
            other => Err(schema_error(
                &format!("{path}/type"),
                format!("unknown type `{other}` (object, array, string, number, integer, boolean or null)"),
            )),
        }
    }

    fn array(&mut self, map: &'a Map<String, Value>, path: &str, hint: &str) -> Result<String> {
        let min = length(map, "minItems", path)?.unwrap_or(0);
        let mut max = length(map, "maxItems", path)?;
        check_range(Some(min), max, "minItems", "maxItems", path)?;
        let item = match map.get("items") {
            None | Some(Value::Bool(true)) => self.use_primitive("value"),
            Some(Value::Bool(false)) => {
                max = Some(0);
                if min > 0 {
                    return Err(schema_error(
                        &format!("{path}/items"),
                        "`items: false` with minItems above 0 matches nothing",
                    ));
                }
                String::new()
            }
            Some(Value::Object(_)) => {
                let items = &map["items"];
                self.term(items, &format!("{path}/items"), &format!("{hint}-item"))?
            }
            Some(_) => return Err(schema_error(
                &format!("{path}/items"),
                "`items` must be a schema (arrays of schemas, tuple validation, are not supported)",
            )),
        };
        let ws = self.use_primitive("ws");
        if max == Some(0) {
            return Ok(format!(r#""[" {ws} "]""#));
        }
        let more = format!(r#"( "," {ws} {item} {ws} )"#);
        let rest = repeat(&more, min.saturating_sub(1), max.map(|m| m - 1));
        let items = format!("{item} {ws} {rest}");
        Ok(if min == 0 {
            format!(r#""[" {ws} ( {items} )? "]""#)
        } else {
            format!(r#""[" {ws} {items} "]""#)
        })
    }

    fn object(&mut self, map: &'a Map<String, Value>, path: &str, hint: &str) -> Result<String> {
        let properties = match map.get("properties") {
            None => None,
            Some(Value::Object(p)) => Some(p),
            Some(_) => {
                return Err(schema_error(
                    &format!("{path}/properties"),
                    "`properties` must be an object",
                ))
            }
        };
        let mut required = HashSet::new();
        match map.get("required") {
            None => {}
            Some(Value::Array(list)) => {
                for (i, name) in list.iter().enumerate() {
                    let at = format!("{path}/required/{i}");
                    let name = name
                        .as_str()
                        .ok_or_else(|| schema_error(&at, "a required name must be a string"))?;
                    if !properties.is_some_and(|p| p.contains_key(name)) {
                        return Err(schema_error(
                            &at,
                            format!("required property `{name}` is not in `properties`"),
                        ));
                    }
                    required.insert(name);
                }
            }
            Some(_) => {
                return Err(schema_error(
                    &format!("{path}/required"),
                    "`required` must be an array of strings",
                ))
            }
        }
        let ws = self.use_primitive("ws");
        let additional_at = format!("{path}/additionalProperties");
        let additional_value = match map.get("additionalProperties") {
            None if properties.is_none() => Some(self.use_primitive("value")),
            None | Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(self.use_primitive("value")),
            Some(schema @ Value::Object(_)) => {
                Some(self.term(schema, &additional_at, &format!("{hint}-additional"))?)
            }
            Some(_) => {
                return Err(schema_error(
                    &additional_at,
                    "`additionalProperties` must be a boolean or a schema",
                ))
            }
        };
        // One rule per key-value pair: `"key" ws ":" ws value ws`.
        let mut pairs = Vec::new();
        for (name, schema) in properties.into_iter().flatten() {
            let prop_hint = format!("{hint}-{}", sanitize(name));
            let value = self.term(
                schema,
                &format!("{path}/properties/{}", pointer_token(name)),
                &prop_hint,
            )?;
            let key = json_literal(&Value::String(name.clone()));
            let pair = self.add_rule(
                &format!("{prop_hint}-kv"),
                format!(r#"{key} {ws} ":" {ws} {value} {ws}"#),
            );
            pairs.push((pair, required.contains(name.as_str())));
        }
        let extra = match additional_value {
            Some(value) => {
                let string = self.use_primitive("string");
                Some(self.add_rule(
                    &format!("{hint}-additional-kv"),
                    format!(r#"{string} {ws} ":" {ws} {value} {ws}"#),
                ))
            }
            None => None,
        };
        // What may follow once a pair was written: the later pairs (required or optional),
        // then any extra pairs, each after a comma.
        let continuation = |from: usize| -> String {
            let mut parts: Vec<String> = pairs[from..]
                .iter()
                .map(|(pair, required)| {
                    if *required {
                        format!(r#""," {ws} {pair}"#)
                    } else {
                        format!(r#"( "," {ws} {pair} )?"#)
                    }
                })
                .collect();
            if let Some(extra) = &extra {
                parts.push(format!(r#"( "," {ws} {extra} )*"#));
            }
            parts.join(" ")
        };
        // The first pair written: any optional one up to the first required one.
        let mut alternatives = Vec::new();
        let mut has_required = false;
        for (i, (pair, is_required)) in pairs.iter().enumerate() {
            let rest = continuation(i + 1);
            alternatives.push(if rest.is_empty() {
                pair.clone()
            } else {
                format!("{pair} {rest}")
            });
            if *is_required {
                has_required = true;
                break;
            }
        }
        if !has_required {
            if let Some(extra) = &extra {
                alternatives.push(format!(r#"{extra} ( "," {ws} {extra} )*"#));
            }
        }
        let inner = alternatives.join(" | ");
        Ok(match (inner.is_empty(), has_required) {
            (true, _) => format!(r#""{{" {ws} "}}""#),
            (false, true) => format!(r#""{{" {ws} ( {inner} ) "}}""#),
            (false, false) => format!(r#""{{" {ws} ( {inner} )? "}}""#),
        })
    }

    /// The rule name of a `$ref` target (expanded the first time it is met).
    fn reference(&mut self, target: &'a Value, at: &str) -> Result<String> {
        let mut reference = target
            .as_str()
            .ok_or_else(|| schema_error(at, "`$ref` must be a string"))?;
        // Follow chains of plain references, refusing a cycle without content.
        let mut seen = HashSet::new();
        loop {
            let pointer = local_pointer(reference, at)?;
            if let Some(name) = self.refs.get(pointer) {
                return Ok(name.clone());
            }
            if !seen.insert(pointer) {
                return Err(schema_error(
                    at,
                    format!("`$ref` `{reference}` is a cycle of references without content"),
                ));
            }
            let schema = self.root.pointer(pointer).ok_or_else(|| {
                schema_error(at, format!("`$ref` target `{reference}` not found"))
            })?;
            if let Some(next) = plain_reference(schema) {
                reference = next;
                continue;
            }
            let last = pointer.rsplit('/').next().unwrap_or("ref");
            let last = last.replace("~1", "/").replace("~0", "~");
            let name = self.fresh_name(&last);
            self.refs.insert(pointer.to_string(), name.clone());
            let index = self.rules.len();
            self.rules.push(Rule {
                name: name.clone(),
                body: None,
            });
            let body = self.body(schema, pointer, &name)?;
            self.rules[index].body = Some(body);
            return Ok(name);
        }
    }
}

/// The JSON pointer of a local reference (`#/a/b` → `/a/b`, `#` → ``).
fn local_pointer<'r>(reference: &'r str, at: &str) -> Result<&'r str> {
    match reference.strip_prefix('#') {
        Some(pointer) if pointer.is_empty() || pointer.starts_with('/') => Ok(pointer),
        _ => Err(schema_error(
            at,
            format!(
                "`$ref` `{reference}` is not supported (only local references: `#/$defs/name`)"
            ),
        )),
    }
}

/// The target of a schema that is only a `$ref` (and annotations).
fn plain_reference(schema: &Value) -> Option<&str> {
    let map = schema.as_object()?;
    let target = map.get("$ref")?.as_str()?;
    map.keys()
        .all(|k| k == "$ref" || IGNORED.contains(&k.as_str()))
        .then_some(target)
}

/// The kind of a schema without `type`, from its keywords; `any` when nothing tells.
fn infer_type(map: &Map<String, Value>) -> &'static str {
    let has = |keys: &[&str]| keys.iter().any(|k| map.contains_key(*k));
    if has(&["properties", "required", "additionalProperties"]) {
        "object"
    } else if has(&["items", "minItems", "maxItems"]) {
        "array"
    } else if has(&["minLength", "maxLength"]) {
        "string"
    } else {
        "any"
    }
}

/// A length keyword: a non-negative integer up to [`MAX_REPETITION`].
fn length(map: &Map<String, Value>, keyword: &str, path: &str) -> Result<Option<u64>> {
    let Some(value) = map.get(keyword) else {
        return Ok(None);
    };
    let at = format!("{path}/{keyword}");
    let n = value
        .as_u64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        })
        .ok_or_else(|| schema_error(&at, format!("`{keyword}` must be a non-negative integer")))?;
    if n > MAX_REPETITION {
        return Err(schema_error(
            &at,
            format!("`{keyword}` {n} is above {MAX_REPETITION}, the most a grammar repeats"),
        ));
    }
    Ok(Some(n))
}

fn check_range(
    min: Option<u64>,
    max: Option<u64>,
    min_name: &str,
    max_name: &str,
    path: &str,
) -> Result<()> {
    match (min, max) {
        (Some(min), Some(max)) if min > max => Err(schema_error(
            &format!("{path}/{min_name}"),
            format!("`{min_name}` {min} is above `{max_name}` {max}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grammar(schema: Value) -> String {
        gbnf_from_json_schema(&schema).unwrap()
    }

    fn error(schema: Value) -> String {
        match gbnf_from_json_schema(&schema) {
            Err(Error::InvalidArgument { parameter, reason }) => {
                assert_eq!(parameter, "json schema");
                reason
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn primitives() {
        assert_eq!(
            grammar(json!({"type": "integer"})),
            "root ::= integer\ninteger ::= \"-\"? integral-part\nintegral-part ::= \"0\" | [1-9] [0-9]{0,15}\n"
        );
        assert_eq!(
            grammar(json!({"type": "boolean"})),
            "root ::= boolean\nboolean ::= \"true\" | \"false\"\n"
        );
        assert_eq!(
            grammar(json!({"type": "null"})),
            "root ::= null\nnull ::= \"null\"\n"
        );
        let number = grammar(json!({"type": "number"}));
        assert!(number.starts_with("root ::= number\n"), "{number}");
        assert!(number
            .contains("number ::= integer ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?\n"));
        let string = grammar(json!({"type": "string", "format": "date"}));
        assert_eq!(
            string,
            "root ::= string\nstring ::= \"\\\"\" char* \"\\\"\"\nchar ::= [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )\n"
        );
    }

    #[test]
    fn string_lengths() {
        let g = grammar(json!({"type": "string", "minLength": 2, "maxLength": 5}));
        assert!(
            g.starts_with("root ::= \"\\\"\" char{2,5} \"\\\"\"\n"),
            "{g}"
        );
        let g = grammar(json!({"type": "string", "maxLength": 3}));
        assert!(
            g.starts_with("root ::= \"\\\"\" char{0,3} \"\\\"\"\n"),
            "{g}"
        );
        let g = grammar(json!({"type": "string", "minLength": 1}));
        assert!(g.starts_with("root ::= \"\\\"\" char+ \"\\\"\"\n"), "{g}");
        let g = grammar(json!({"maxLength": 4, "minLength": 4}));
        assert!(g.starts_with("root ::= \"\\\"\" char{4} \"\\\"\"\n"), "{g}");
        assert!(
            error(json!({"type": "string", "minLength": 3, "maxLength": 2}))
                .contains("at #/minLength")
        );
        assert!(error(json!({"type": "string", "maxLength": 5000})).contains("above 1000"));
        assert!(error(json!({"type": "string", "maxLength": -1})).contains("non-negative"));
    }

    #[test]
    fn enums_and_consts_are_escaped_json() {
        assert_eq!(
            grammar(json!({"enum": ["a\"b", 1, null, {"k": [true]}]})),
            "root ::= \"\\\"a\\\\\\\"b\\\"\" | \"1\" | \"null\" | \"{\\\"k\\\":[true]}\"\n"
        );
        assert_eq!(
            grammar(json!({"const": "line\nbreak ✓"})),
            "root ::= \"\\\"line\\\\nbreak ✓\\\"\"\n"
        );
        assert_eq!(literal("\u{1}\t\\"), "\"\\x01\\t\\\\\"");
        assert!(error(json!({"enum": []})).contains("#/enum"));
    }

    #[test]
    fn object_with_required_and_optional_properties() {
        let g = grammar(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 8},
                "age": {"type": "integer"},
                "tag": {"enum": ["x", "y"]}
            },
            "required": ["age"]
        }));
        let expected = concat!(
            "root ::= \"{\" ws ( root-name-kv ( \",\" ws root-age-kv ) ( \",\" ws root-tag-kv )? | root-age-kv ( \",\" ws root-tag-kv )? ) \"}\"\n",
            "root-name ::= \"\\\"\" char{0,8} \"\\\"\"\n",
            "root-name-kv ::= \"\\\"name\\\"\" ws \":\" ws root-name ws\n",
            "root-age-kv ::= \"\\\"age\\\"\" ws \":\" ws integer ws\n",
            "root-tag ::= \"\\\"x\\\"\" | \"\\\"y\\\"\"\n",
            "root-tag-kv ::= \"\\\"tag\\\"\" ws \":\" ws root-tag ws\n",
        );
        // The continuation writes required pairs without a group.
        let expected = expected.replace("( \",\" ws root-age-kv )", "\",\" ws root-age-kv");
        assert!(g.starts_with(&expected), "{g}");
        assert!(
            g.contains("\nws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n"),
            "{g}"
        );
    }

    #[test]
    fn all_optional_properties_allow_the_empty_object() {
        let g = grammar(json!({"properties": {"a": {"type": "boolean"}}}));
        assert!(
            g.starts_with("root ::= \"{\" ws ( root-a-kv )? \"}\"\n"),
            "{g}"
        );
        let g = grammar(json!({"type": "object", "properties": {}}));
        assert!(g.starts_with("root ::= \"{\" ws \"}\"\n"), "{g}");
    }

    #[test]
    fn additional_properties() {
        let g = grammar(json!({
            "type": "object",
            "properties": {"a": {"type": "null"}},
            "required": ["a"],
            "additionalProperties": {"type": "integer"}
        }));
        assert!(
            g.starts_with(
                "root ::= \"{\" ws ( root-a-kv ( \",\" ws root-additional-kv )* ) \"}\"\n"
            ),
            "{g}"
        );
        assert!(
            g.contains("root-additional-kv ::= string ws \":\" ws integer ws\n"),
            "{g}"
        );
        // No properties: any object (with values of the given schema).
        let any = grammar(json!({"type": "object"}));
        assert!(any.starts_with("root ::= \"{\" ws ( root-additional-kv ( \",\" ws root-additional-kv )* )? \"}\"\n"), "{any}");
        assert!(any.contains("root-additional-kv ::= string ws \":\" ws value ws\n"));
    }

    #[test]
    fn arrays() {
        let g = grammar(
            json!({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}),
        );
        assert!(
            g.starts_with("root ::= \"[\" ws integer ws ( \",\" ws integer ws ){0,2} \"]\"\n"),
            "{g}"
        );
        let g = grammar(json!({"type": "array", "items": {"type": "boolean"}}));
        assert!(
            g.starts_with("root ::= \"[\" ws ( boolean ws ( \",\" ws boolean ws )* )? \"]\"\n"),
            "{g}"
        );
        let g = grammar(json!({"type": "array", "maxItems": 0}));
        assert!(g.starts_with("root ::= \"[\" ws \"]\"\n"), "{g}");
        let g = grammar(json!({"type": "array", "minItems": 2}));
        assert!(
            g.starts_with("root ::= \"[\" ws value ws ( \",\" ws value ws )+ \"]\"\n"),
            "{g}"
        );
        assert!(error(json!({"type": "array", "items": [{"type": "string"}]})).contains("#/items"));
        assert!(error(json!({"type": "array", "prefixItems": []}))
            .contains("`prefixItems` at #/prefixItems"));
    }

    #[test]
    fn any_of_type_arrays_and_any_value() {
        let g = grammar(
            json!({"anyOf": [{"type": "string"}, {"type": "object", "properties": {"x": {"const": 1}}}]}),
        );
        assert!(g.starts_with("root ::= string | root-1\n"), "{g}");
        let g = grammar(json!({"type": ["integer", "null"]}));
        assert!(g.starts_with("root ::= integer | null\n"), "{g}");
        let g = grammar(json!({}));
        assert!(g.starts_with("root ::= value\n"), "{g}");
        assert!(g.contains("\nvalue ::= object | array | string | number | boolean | null\n"));
        assert_eq!(grammar(json!(true)), g);
        assert!(error(json!(false)).contains("matches nothing"));
        let reason = error(json!({"type": "strin"}));
        assert!(reason.starts_with("unknown type `strin` ("), "{reason}");
        assert!(reason.ends_with(" at #/type"), "{reason}");
        assert!(error(json!({"type": "object", "anyOf": [{}]})).contains("`type` next to `anyOf`"));
    }

    #[test]
    fn references_and_recursion() {
        let g = grammar(json!({
            "$defs": {"node": {
                "type": "object",
                "properties": {"v": {"type": "integer"}, "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}},
                "required": ["v", "next"]
            }},
            "$ref": "#/$defs/node"
        }));
        assert!(
            g.starts_with(
                "root ::= node\nnode ::= \"{\" ws ( node-v-kv \",\" ws node-next-kv ) \"}\"\n"
            ),
            "{g}"
        );
        assert!(g.contains("node-next ::= node | null\n"), "{g}");
        // A reference to the root.
        let g = grammar(json!({"type": "array", "items": {"$ref": "#"}, "maxItems": 2}));
        assert!(
            g.starts_with("root ::= \"[\" ws ( root ws ( \",\" ws root ws )? )? \"]\"\n"),
            "{g}"
        );
        // A definition named like a shared rule gets its own name.
        let g = grammar(
            json!({"definitions": {"string": {"const": 1}}, "$ref": "#/definitions/string"}),
        );
        assert!(
            g.starts_with("root ::= string-1\nstring-1 ::= \"1\"\n"),
            "{g}"
        );
        assert!(error(json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}))
            .contains("cycle"));
        assert!(error(json!({"$ref": "#/$defs/missing"})).contains("not found at #/$ref"));
        assert!(error(json!({"$ref": "other.json#/x"})).contains("only local"));
        assert!(
            error(json!({"$ref": "#/$defs/a", "type": "string", "$defs": {"a": {}}}))
                .contains("`type` next to `$ref`")
        );
    }

    #[test]
    fn unsupported_keywords_are_named_with_their_pointer() {
        let reason = error(json!({
            "type": "object",
            "properties": {"a/b": {"type": "string", "pattern": "^x$"}}
        }));
        assert_eq!(
            reason,
            "unsupported keyword `pattern` at #/properties/a~1b/pattern"
        );
        assert!(error(json!({"type": "integer", "minimum": 0})).contains("`minimum` at #/minimum"));
        assert!(error(json!({"allOf": [{}, {}]})).contains("`allOf` with 2 schemas"));
        assert!(error(json!({"type": "object", "required": ["zz"]}))
            .contains("`zz` is not in `properties`"));
    }

    #[test]
    fn single_all_of_and_one_of() {
        let g = grammar(json!({"allOf": [{"type": "boolean"}], "description": "x"}));
        assert!(g.starts_with("root ::= boolean\n"), "{g}");
        let g = grammar(json!({"oneOf": [{"const": "a"}, {"const": "b"}]}));
        assert!(
            g.starts_with("root ::= root-0 | root-1\nroot-0 ::= \"\\\"a\\\"\"\n"),
            "{g}"
        );
    }

    #[test]
    fn property_names_become_rule_names() {
        let g = grammar(json!({"properties": {"a b": {"const": 1}, "a-b": {"const": 2}}}));
        assert!(g.contains("\nroot-a-b ::= \"1\"\n"), "{g}");
        assert!(g.contains("\nroot-a-b-1 ::= \"2\"\n"), "{g}");
    }

    #[test]
    fn any_json_object() {
        let g = gbnf_any_json_object();
        assert!(g.starts_with("root ::= object\nvalue ::= "), "{g}");
        for rule in [
            "object", "array", "string", "char", "number", "integer", "ws",
        ] {
            assert!(g.contains(&format!("\n{rule} ::= ")), "{rule}: {g}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut schema = json!({"type": "integer"});
        for _ in 0..120 {
            schema = json!({"type": "array", "items": schema});
        }
        assert!(error(schema).contains("deeper than"));
    }
}
