//! Checks the function tables of `src/sys/upstream` against the pinned headers.
//!
//! `include/llama.h` is parsed (comments and preprocessor lines removed): every `LLAMA_API`
//! declaration, including `DEPRECATED(LLAMA_API decl, "hint")` and `LLAMA_API DEPRECATED(decl,
//! "hint")`, is split into return type, name and parameters, and the C types are mapped to the
//! Rust tokens the tables use. Every declared function must be in `LlamaFunctions::SIGNATURES`
//! with the same parameter names, parameter types and return type, deprecated exactly when the
//! entry is optional, and the table must have nothing the header lacks. The ggml tables are
//! checked the same way against `GGML_API` declarations in ggml.h and ggml-backend.h, and the CPU
//! module entry points against `ggml/src/ggml-backend-impl.h`.
//!
//! The BitNet fork's tables (`src/sys/bitnet`, the `bitnet_*` tests) are checked the same way
//! against the fork's `3rdparty/llama.cpp/include/llama.h` and ggml headers; its fingerprint
//! lists are checked against both generations' tables, and each built fork variant must resolve
//! every entry (and export or lack the fingerprint symbols) when dlopened, one child process per
//! variant.
//!
//! The pinned sources (and the fork's built variants) are required: the tests fail (never skip)
//! when they are missing.

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gguf_loader::sys::upstream::{
    CpuModuleFunctions, GgmlBaseFunctions, GgmlFunctions, LlamaFunctions,
};
use gguf_loader::sys::{bitnet, upstream, Signature};

/// One C function declaration, types already mapped to Rust tokens (whitespace removed).
#[derive(Debug, Clone)]
struct Decl {
    name: String,
    deprecated: bool,
    /// Parameter names (`None` where the header gives none).
    param_names: Vec<Option<String>>,
    param_types: Vec<String>,
    return_type: String,
}

// ---------------------------------------------------------------------------------------------
// Reading the header.

fn read_source(path: &str) -> String {
    read_in(&common::source_dir(), path)
}

/// `path` under `root`.
fn read_in(root: &Path, path: &str) -> String {
    let full = root.join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// The fork's vendored llama.cpp tree (`include/llama.h`, `ggml/include`).
fn bitnet_llama_cpp() -> PathBuf {
    common::bitnet_source_dir().join("3rdparty/llama.cpp")
}

/// Removes preprocessor lines, with their `\` continuations.
fn strip_preprocessor(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut continued = false;
    for line in text.lines() {
        let directive = continued || line.trim_start().starts_with('#');
        continued = directive && line.trim_end().ends_with('\\');
        if !directive {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Joins `\`-continued lines (to read declarations inside macro definitions).
fn join_continuations(text: &str) -> String {
    text.replace("\\\r\n", " ").replace("\\\n", " ")
}

/// Splits text into statements at the `;` outside parentheses and string literals; each
/// statement is the text after the last brace before it (so `extern "C" {` and struct bodies
/// drop out).
fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            current.push(c);
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                current.push(c);
            }
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth -= 1;
                current.push(c);
            }
            '{' | '}' if depth == 0 => current.clear(),
            ';' if depth == 0 => {
                out.push(current.split_whitespace().collect::<Vec<_>>().join(" "));
                current.clear();
            }
            _ => current.push(c),
        }
    }
    out
}

/// The byte offset of `word` as a whole identifier in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(found) = text[from..].find(word) {
        let at = from + found;
        let before = text[..at].chars().next_back().is_some_and(is_ident);
        let after = text[at + word.len()..].chars().next().is_some_and(is_ident);
        if !before && !after {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// The index of the `)` matching the `(` at `open`.
fn matching_paren(text: &str, open: usize) -> Result<usize, String> {
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[open..].char_indices() {
        if in_string {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(open + i);
                }
            }
            _ => {}
        }
    }
    Err(format!("unbalanced parentheses in {text:?}"))
}

/// Splits at the commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start, mut in_string) = (0, 0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => depth -= 1,
            ',' if depth == 0 && !in_string => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// `DEPRECATED(decl, "hint")` → `decl`, when `text` (trimmed) is such a call.
fn deprecated_inner<'a>(text: &'a str, macro_name: &str) -> Result<Option<&'a str>, String> {
    let text = text.trim();
    let Some(rest) = text.strip_prefix(macro_name) else {
        return Ok(None);
    };
    let rest = rest.trim_start();
    if !rest.starts_with('(') {
        return Ok(None);
    }
    let open = text.len() - rest.len();
    let close = matching_paren(text, open)?;
    let args = split_top_level(&text[open + 1..close]);
    if args.len() < 2 {
        return Err(format!("{macro_name}(...) without a hint: {text:?}"));
    }
    // The declaration is everything before the last top-level comma (the hint).
    let hint_len = args.last().unwrap().len() + 1;
    Ok(Some(&text[open + 1..close - hint_len]))
}

/// Parses the statements of `text` that carry `api` (e.g. `LLAMA_API`). Returns the
/// declarations and the statements that could not be parsed (with why).
fn declarations(text: &str, api: &str, deprecated_macro: &str) -> (Vec<Decl>, Vec<String>) {
    let (mut decls, mut errors) = (Vec::new(), Vec::new());
    for statement in statements(text) {
        let Some(at) = find_word(&statement, api) else {
            continue;
        };
        match declaration(&statement, at, api, deprecated_macro) {
            Ok(decl) => decls.push(decl),
            Err(e) => errors.push(format!("{statement}\n      -> {e}")),
        }
    }
    (decls, errors)
}

/// One statement: `[DEPRECATED(] API [DEPRECATED(] ret name(params) [, "hint")]`.
fn declaration(
    statement: &str,
    at: usize,
    api: &str,
    deprecated_macro: &str,
) -> Result<Decl, String> {
    let before = statement[..at].trim_end();
    let after = &statement[at + api.len()..];
    let (decl, deprecated) = if before.ends_with('(')
        && before[..before.len() - 1]
            .trim_end()
            .ends_with(deprecated_macro)
    {
        // `DEPRECATED(API decl, "hint")`
        let start = before[..before.len() - 1].trim_end().len() - deprecated_macro.len();
        let inner = deprecated_inner(&statement[start..], deprecated_macro)?
            .ok_or("malformed DEPRECATED")?;
        let inner = inner.trim_start();
        (
            inner
                .strip_prefix(api)
                .ok_or("DEPRECATED( without the API macro")?
                .to_string(),
            true,
        )
    } else if let Some(inner) = deprecated_inner(after, deprecated_macro)? {
        // `API DEPRECATED(decl, "hint")`
        (inner.to_string(), true)
    } else {
        (after.to_string(), false)
    };
    let mut parsed = function(&decl)?;
    parsed.deprecated = deprecated;
    Ok(parsed)
}

/// `ret name(params)` → a declaration with mapped types.
fn function(decl: &str) -> Result<Decl, String> {
    let open = decl
        .find('(')
        .ok_or_else(|| format!("no parameter list in {decl:?}"))?;
    let close = matching_paren(decl, open)?;
    let head = tokens(&decl[..open])?;
    let (name, ret) = match head.split_last() {
        Some((name, ret)) if is_identifier(name) && !ret.is_empty() => (name.clone(), ret),
        _ => return Err(format!("no return type and name in {decl:?}")),
    };
    let params_text = decl[open + 1..close].trim();
    let (mut param_names, mut param_types) = (Vec::new(), Vec::new());
    if params_text != "void" && !params_text.is_empty() {
        for param in split_top_level(params_text) {
            if param.contains('(') || param.contains('[') || param.contains("...") {
                return Err(format!("unsupported parameter {param:?} of {name}"));
            }
            let mut toks = tokens(param)?;
            let has_name = toks.len() >= 2
                && toks
                    .last()
                    .is_some_and(|t| is_identifier(t) && !is_qualifier(t))
                && toks[..toks.len() - 1]
                    .iter()
                    .any(|t| is_identifier(t) && !is_qualifier(t));
            param_names.push(if has_name { toks.pop() } else { None });
            param_types.push(rust_type(&toks, false)?);
        }
    }
    Ok(Decl {
        name,
        deprecated: false,
        param_names,
        param_types,
        return_type: rust_type(ret, true)?,
    })
}

/// Identifiers and `*` of a C type/declarator.
fn tokens(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '*' {
            out.push("*".to_string());
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars
                .peek()
                .filter(|c| c.is_ascii_alphanumeric() || **c == '_')
            {
                word.push(c);
                chars.next();
            }
            out.push(word);
        } else {
            return Err(format!("unexpected {c:?} in {text:?}"));
        }
    }
    Ok(out)
}

fn is_identifier(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
}

fn is_qualifier(token: &str) -> bool {
    matches!(
        token,
        "const" | "volatile" | "restrict" | "struct" | "enum" | "union" | "unsigned" | "signed"
    )
}

/// Maps a C type to the Rust tokens of the tables (whitespace removed).
///
/// `struct`/`enum` are dropped; the fixed-width and C scalar types become their Rust names; other
/// names (typedefs) stay. The first `*` is `*const` when the base type is `const`, each further
/// `*` is `*const` when the pointer it points to is `const` (`char * const *`), else `*mut`.
fn rust_type(tokens: &[String], is_return: bool) -> Result<String, String> {
    let mut base = Vec::new();
    let mut const_at = vec![false];
    for token in tokens {
        match token.as_str() {
            "struct" | "enum" | "union" | "volatile" | "restrict" => {}
            "const" => *const_at.last_mut().unwrap() = true,
            "*" => const_at.push(false),
            word if const_at.len() == 1 => base.push(word),
            word => return Err(format!("{word:?} after a '*' in {tokens:?}")),
        }
    }
    let pointers = const_at.len() - 1;
    let base = match base.as_slice() {
        ["void"] if pointers == 0 && is_return => "()",
        ["void"] if pointers > 0 => "c_void",
        ["void"] => return Err("a `void` parameter among others".into()),
        ["char"] => "c_char",
        ["int"] => "c_int",
        ["int8_t"] => "i8",
        ["uint8_t"] => "u8",
        ["int16_t"] => "i16",
        ["uint16_t"] => "u16",
        ["int32_t"] => "i32",
        ["uint32_t"] => "u32",
        ["int64_t"] => "i64",
        ["uint64_t"] => "u64",
        ["size_t"] => "usize",
        ["float"] => "f32",
        ["double"] => "f64",
        ["bool"] => "bool",
        [name] if !is_qualifier(name) => name,
        other => return Err(format!("unsupported C type {other:?}")),
    };
    let mut rust = base.to_string();
    for &pointee_const in const_at.iter().take(pointers) {
        rust = format!("{}{rust}", if pointee_const { "*const" } else { "*mut" });
    }
    Ok(rust)
}

/// A table's Rust tokens, normalised like [`rust_type`]'s output.
fn normalise(rust: &str) -> String {
    let mut s: String = rust.chars().filter(|c| !c.is_whitespace()).collect();
    for path in ["::std::ffi::", "std::ffi::", "::core::ffi::", "core::ffi::"] {
        s = s.replace(path, "");
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Comparing.

/// The differences between one table entry and its declaration.
fn compare(sig: &Signature, decl: &Decl, out: &mut Vec<String>) {
    let name = sig.name;
    if sig.required == decl.deprecated {
        out.push(format!(
            "{name}: the header {} it deprecated but the table has it {}",
            if decl.deprecated {
                "declares"
            } else {
                "does not declare"
            },
            if sig.required { "required" } else { "optional" }
        ));
    }
    let ret = normalise(sig.return_type);
    if ret != decl.return_type {
        out.push(format!(
            "{name}: returns {} in the header, {} in the table",
            decl.return_type, ret
        ));
    }
    if sig.param_types.len() != decl.param_types.len() {
        out.push(format!(
            "{name}: {} parameters in the header ({}), {} in the table ({})",
            decl.param_types.len(),
            decl.param_types.join(", "),
            sig.param_types.len(),
            sig.param_types
                .iter()
                .map(|t| normalise(t))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return;
    }
    for (i, (table_type, header_type)) in sig.param_types.iter().zip(&decl.param_types).enumerate()
    {
        let table_type = normalise(table_type);
        if &table_type != header_type {
            out.push(format!(
                "{name}: parameter {i} is {header_type} in the header, {table_type} in the table"
            ));
        }
    }
    for (i, (table_name, header_name)) in sig.param_names.iter().zip(&decl.param_names).enumerate()
    {
        let table_name = table_name.strip_prefix("r#").unwrap_or(table_name);
        if header_name.as_deref().is_some_and(|h| h != table_name) {
            out.push(format!(
                "{name}: parameter {i} is named {} in the header, {table_name} in the table",
                header_name.as_deref().unwrap_or_default()
            ));
        }
    }
}

fn by_name(decls: Vec<Decl>, what: &str) -> BTreeMap<String, Decl> {
    let mut map = BTreeMap::new();
    let mut duplicates = Vec::new();
    for decl in decls {
        if let Some(previous) = map.insert(decl.name.clone(), decl) {
            duplicates.push(previous.name);
        }
    }
    assert!(
        duplicates.is_empty(),
        "{what} declares these functions twice: {duplicates:?}"
    );
    map
}

fn fail_on(differences: &[String], what: &str) {
    assert!(
        differences.is_empty(),
        "{what}: {} differences:\n  {}",
        differences.len(),
        differences.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn type_mapping() {
    let map = |c: &str, ret: bool| rust_type(&tokens(c).unwrap(), ret).unwrap();
    assert_eq!(map("const char **", false), "*mut*constc_char");
    assert_eq!(
        map("struct llama_adapter_lora **", false),
        "*mut*mutllama_adapter_lora"
    );
    assert_eq!(map("char * const *", false), "*const*mutc_char");
    assert_eq!(map("const struct llama_model *", true), "*constllama_model");
    assert_eq!(map("void", true), "()");
    assert_eq!(map("void **", false), "*mut*mutc_void");
    assert_eq!(map("enum llama_ftype", false), "llama_ftype");
    assert_eq!(map("int", false), "c_int");
    assert_eq!(map("size_t *", false), "*mutusize");

    let decl = function("const char * f(const struct llama_vocab * vocab, llama_token token, int)")
        .unwrap();
    assert_eq!(
        decl.param_names,
        [Some("vocab".to_string()), Some("token".to_string()), None]
    );
    assert_eq!(
        decl.param_types,
        ["*constllama_vocab", "llama_token", "c_int"]
    );
    assert!(function("void f(void)").unwrap().param_types.is_empty());

    let text = "extern \"C\" {\n LLAMA_API int a(void);\n DEPRECATED(LLAMA_API void b(int x), \"use a, not b\");\n LLAMA_API DEPRECATED(bool c(float y), \"use (a)\");\n}";
    let (decls, errors) = declarations(text, "LLAMA_API", "DEPRECATED");
    assert!(errors.is_empty(), "{errors:?}");
    let summary: Vec<_> = decls
        .iter()
        .map(|d| (d.name.as_str(), d.deprecated, d.param_types.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("a", false, vec![]),
            ("b", true, vec!["c_int".to_string()]),
            ("c", true, vec!["f32".to_string()])
        ]
    );
}

#[test]
fn llama_table_matches_llama_h() {
    let text = read_source("include/llama.h");
    check_llama_table(&text, LlamaFunctions::SIGNATURES, "LlamaFunctions", 240);
}

/// Every function `llama_h` declares is in `table` with the same signature, deprecated exactly
/// when optional, and the table has nothing else; `table` has at least `min_entries` entries.
fn check_llama_table(llama_h: &str, table: &[Signature], table_name: &str, min_entries: usize) {
    let text = strip_preprocessor(&common::strip_comments(llama_h));
    let (decls, errors) = declarations(&text, "LLAMA_API", "DEPRECATED");
    assert!(
        errors.is_empty(),
        "llama.h declarations that could not be parsed:\n  {}",
        errors.join("\n  ")
    );
    let header = by_name(decls, "llama.h");

    let mut entries = BTreeMap::new();
    for sig in table {
        assert!(
            entries.insert(sig.name, sig).is_none(),
            "{table_name} lists {} twice",
            sig.name
        );
    }

    let mut differences = Vec::new();
    for (name, decl) in &header {
        match entries.get(name.as_str()) {
            Some(sig) => compare(sig, decl, &mut differences),
            None => differences.push(format!(
                "{name}: declared in llama.h, missing from {table_name}"
            )),
        }
    }
    for name in entries.keys().filter(|name| !header.contains_key(**name)) {
        differences.push(format!("{name}: in {table_name}, not declared in llama.h"));
    }

    let required = table.iter().filter(|s| s.required).count();
    let deprecated = header.values().filter(|d| d.deprecated).count();
    println!(
        "llama.h declares {} functions ({deprecated} deprecated); {table_name} has {} entries: {required} required, {} optional",
        header.len(),
        table.len(),
        table.len() - required
    );
    fail_on(&differences, &format!("{table_name} against llama.h"));
    assert!(
        table.len() >= min_entries,
        "{table_name} has only {} entries",
        table.len()
    );
}

#[test]
fn ggml_tables_match_ggml_headers() {
    check_ggml_tables(
        &common::source_dir(),
        &[
            ("GgmlBaseFunctions", GgmlBaseFunctions::SIGNATURES),
            ("GgmlFunctions", GgmlFunctions::SIGNATURES),
        ],
    );
}

/// Every entry of `tables` has a matching `GGML_API` declaration in `root`'s ggml.h or
/// ggml-backend.h.
fn check_ggml_tables(root: &Path, tables: &[(&str, &[Signature])]) {
    let mut decls = Vec::new();
    for path in ["ggml/include/ggml.h", "ggml/include/ggml-backend.h"] {
        let text = strip_preprocessor(&common::strip_comments(&read_in(root, path)));
        // Only the functions the tables name are checked, so declarations this parser does not
        // handle (function-pointer or array parameters) elsewhere in these headers are skipped.
        decls.extend(declarations(&text, "GGML_API", "GGML_DEPRECATED").0);
    }
    let header = by_name(decls, "ggml.h and ggml-backend.h");

    let mut differences = Vec::new();
    let mut checked = 0;
    for &(table, signatures) in tables {
        for sig in signatures {
            match header.get(sig.name) {
                Some(decl) => compare(sig, decl, &mut differences),
                None => differences.push(format!(
                    "{}: in {table}, not declared in ggml.h or ggml-backend.h",
                    sig.name
                )),
            }
            checked += 1;
        }
    }
    println!(
        "{checked} ggml functions checked against {} GGML_API declarations",
        header.len()
    );
    fail_on(&differences, "ggml tables against ggml.h/ggml-backend.h");
}

/// `ggml_backend_score` and `ggml_backend_init` are declared only inside the
/// `GGML_BACKEND_DL_IMPL` macros of `ggml/src/ggml-backend-impl.h`.
#[test]
fn cpu_module_table_matches_backend_impl_h() {
    let raw = read_source("ggml/src/ggml-backend-impl.h");
    let text = join_continuations(&common::strip_comments(&raw));
    let (decls, _) = declarations(&text, "GGML_BACKEND_API", "GGML_DEPRECATED");

    let mut differences = Vec::new();
    for sig in CpuModuleFunctions::SIGNATURES {
        assert!(
            find_word(&raw, sig.name).is_some(),
            "{} does not occur in ggml/src/ggml-backend-impl.h",
            sig.name
        );
        let found: Vec<_> = decls.iter().filter(|d| d.name == sig.name).collect();
        assert!(
            !found.is_empty(),
            "no GGML_BACKEND_API declaration of {} in ggml-backend-impl.h",
            sig.name
        );
        for decl in found {
            compare(sig, decl, &mut differences);
        }
    }
    fail_on(
        &differences,
        "CpuModuleFunctions against ggml-backend-impl.h",
    );
}

// ---------------------------------------------------------------------------------------------
// The BitNet fork (`src/sys/bitnet`).

#[test]
fn bitnet_llama_table_matches_llama_h() {
    let text = read_in(&bitnet_llama_cpp(), "include/llama.h");
    check_llama_table(
        &text,
        bitnet::LlamaFunctions::SIGNATURES,
        "bitnet::LlamaFunctions",
        160,
    );
}

#[test]
fn bitnet_ggml_table_matches_ggml_headers() {
    check_ggml_tables(
        &bitnet_llama_cpp(),
        &[("bitnet::GgmlFunctions", bitnet::GgmlFunctions::SIGNATURES)],
    );
}

fn names(table: &[Signature]) -> BTreeSet<&'static str> {
    table.iter().map(|s| s.name).collect()
}

/// The fingerprints tell the generations apart by their tables: each present marker is in the
/// fork's table and not upstream's, each absent marker the other way round, with no repeats.
#[test]
fn bitnet_markers_separate_the_generations() {
    let fork = names(bitnet::LlamaFunctions::SIGNATURES);
    let pinned = names(upstream::LlamaFunctions::SIGNATURES);
    let mut problems = Vec::new();
    for marker in bitnet::PRESENT_MARKERS {
        if !fork.contains(marker) {
            problems.push(format!(
                "present marker {marker} is not in bitnet::LlamaFunctions"
            ));
        }
        if pinned.contains(marker) {
            problems.push(format!(
                "present marker {marker} is also in upstream::LlamaFunctions"
            ));
        }
    }
    for marker in bitnet::ABSENT_MARKERS {
        if fork.contains(marker) {
            problems.push(format!(
                "absent marker {marker} is in bitnet::LlamaFunctions"
            ));
        }
        if !pinned.contains(marker) {
            problems.push(format!(
                "absent marker {marker} is not in upstream::LlamaFunctions"
            ));
        }
    }
    for list in [
        bitnet::PRESENT_MARKERS,
        bitnet::ABSENT_MARKERS,
        bitnet::GGML_PRESENT_MARKERS,
    ] {
        let unique: BTreeSet<_> = list.iter().collect();
        if unique.len() != list.len() {
            problems.push(format!("repeated entries in {list:?}"));
        }
    }
    assert!(
        !bitnet::PRESENT_MARKERS.is_empty()
            && !bitnet::ABSENT_MARKERS.is_empty()
            && !bitnet::GGML_PRESENT_MARKERS.is_empty(),
        "a fingerprint list is empty"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// dlopens one built fork variant (libggml first, so libllama binds to the one beside it) and
/// checks that both tables resolve completely and the fingerprints hold.
fn bitnet_variant_resolves(isa: &str) {
    use gguf_loader::loader::RawLibrary;
    use gguf_loader::sys::SymbolSource;

    let (_, dir) = common::bitnet_dirs()
        .into_iter()
        .find(|(level, _)| *level == isa)
        .unwrap_or_else(|| panic!("no BitNet variant for {isa}"));
    // SAFETY: the provisioned fork build; its initialisers are plain C++ static constructors.
    let ggml = unsafe { RawLibrary::open(&dir.join("libggml.so")) }
        .unwrap_or_else(|e| panic!("opening the {isa} libggml.so: {e:?}"));
    // SAFETY: as above.
    let llama = unsafe { RawLibrary::open(&dir.join("libllama.so")) }
        .unwrap_or_else(|e| panic!("opening the {isa} libllama.so: {e:?}"));

    let mut problems = Vec::new();
    if let Err(missing) = bitnet::LlamaFunctions::load(&llama) {
        problems.push(format!("bitnet::LlamaFunctions: {missing:?}"));
    }
    if let Err(missing) = bitnet::GgmlFunctions::load(&ggml) {
        problems.push(format!("bitnet::GgmlFunctions: {missing:?}"));
    }
    let exported = |library: &RawLibrary, name: &str| {
        let name = std::ffi::CString::new(name).expect("a symbol name without NUL");
        library.lookup(&name).is_some()
    };
    // Deprecated entries are optional in the table, but this build still exports them all.
    for sig in bitnet::LlamaFunctions::SIGNATURES {
        if !exported(&llama, sig.name) {
            problems.push(format!("libllama.so lacks {}", sig.name));
        }
    }
    for marker in bitnet::PRESENT_MARKERS {
        if !exported(&llama, marker) {
            problems.push(format!("libllama.so lacks the present marker {marker}"));
        }
    }
    for marker in bitnet::ABSENT_MARKERS {
        if exported(&llama, marker) {
            problems.push(format!("libllama.so exports the absent marker {marker}"));
        }
    }
    for marker in bitnet::GGML_PRESENT_MARKERS {
        if !exported(&ggml, marker) {
            problems.push(format!("libggml.so lacks the marker {marker}"));
        }
    }
    println!(
        "{isa}: {} llama and {} ggml entries resolved from {}",
        bitnet::LlamaFunctions::SIGNATURES.len(),
        bitnet::GgmlFunctions::SIGNATURES.len(),
        dir.display()
    );
    // llama.cpp keeps state in the libraries; never unmap them.
    llama.leak();
    ggml.leak();
    assert!(
        problems.is_empty(),
        "the {isa} BitNet variant:\n  {}",
        problems.join("\n  ")
    );
}

// In a child process: the fork's libraries have unversioned sonames (libggml.so), so another
// build of the fork in the same process would bind to the first one's libggml.so.
child_cases! {
    fn bitnet_avx2_variant_resolves_the_tables() {
        bitnet_variant_resolves("avx2");
    }
}
