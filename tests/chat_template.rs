//! Chat templates on the real libraries and models, against the references:
//! - Jinja templates byte-identical to Python jinja2 configured as Hugging Face transformers
//!   configures it (tests/python/render_chat.py, run with the provisioned venv);
//! - built-in templates byte-identical to `llama_chat_apply_template` called from C
//!   (tests/c/chat_builtin.c) over the same libraries;
//! - bad input ends in typed errors (cases that reach C run in a child process).
//!
//! Nothing here skips: missing libraries, models or the venv fail the tests (run
//! `variants/provision test`, or `variants/provision tiny` for the venv).

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gguf_loader::chat::{
    apply_builtin, builtin_template_names, parse_messages_json, ChatMessage, ChatRequest,
    ChatTemplate, TemplateErrorKind,
};
use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{Category, Error, Model, ModelParams};
use serde_json::{json, Value};

fn library() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
    })
}

fn vocab_only(path: PathBuf) -> Model {
    Model::load(library(), path, ModelParams::new().vocab_only(true)).expect("model")
}

// ---------------------------------------------------------------------------------------------
// The Python reference.

/// What jinja2 made of a request: the rendered bytes, or the message of `raise_exception`.
#[derive(Debug, PartialEq, Eq)]
enum Rendered {
    Text(Vec<u8>),
    Raised(String),
}

fn python_render(template: &str, bos: &str, eos: &str, request: &ChatRequest<'_>) -> Rendered {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    let body = json!({
        "template": template,
        "messages": request.messages,
        "tools": request.tools,
        "documents": request.documents,
        "add_generation_prompt": request.add_generation_prompt,
        "bos_token": bos,
        "eos_token": eos,
    });
    std::fs::write(&path, serde_json::to_vec(&body).unwrap()).unwrap();
    let output = Command::new(common::python())
        .arg(common::repo_root().join("tests/python/render_chat.py"))
        .arg(&path)
        // strftime_now: Python uses the local zone, the crate UTC.
        .env("TZ", "UTC")
        .output()
        .expect("running the provisioned python");
    match output.status.code() {
        Some(0) => Rendered::Text(output.stdout),
        Some(3) => {
            let text = String::from_utf8(output.stdout).unwrap();
            Rendered::Raised(text.strip_prefix("RAISED\n").unwrap().to_string())
        }
        _ => panic!(
            "render_chat.py failed ({}); is jinja2 installed? (`variants/provision tiny`)\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn rust_render(template: &ChatTemplate, request: &ChatRequest<'_>) -> Rendered {
    match template.render(request) {
        Ok(text) => Rendered::Text(text.into_bytes()),
        Err(Error::ChatTemplate {
            kind: TemplateErrorKind::Raised,
            message,
            ..
        }) => Rendered::Raised(message),
        Err(e) => panic!("render failed: {e}"),
    }
}

fn show(r: &Rendered) -> String {
    match r {
        Rendered::Text(bytes) => format!("TEXT:\n{}", String::from_utf8_lossy(bytes)),
        Rendered::Raised(m) => format!("RAISED: {m}"),
    }
}

/// Renders with both engines and requires identical results; returns the result.
fn compare(label: &str, template: &ChatTemplate, request: &ChatRequest<'_>) -> Rendered {
    let ours = rust_render(template, request);
    let theirs = python_render(
        template.source(),
        template.bos_token(),
        template.eos_token(),
        request,
    );
    assert!(
        ours == theirs,
        "{label}: differs from jinja2\n--- ours\n{}\n--- jinja2\n{}",
        show(&ours),
        show(&theirs)
    );
    ours
}

fn m(role: &str, content: &str) -> ChatMessage {
    ChatMessage::new(role, content)
}

/// Conversations: with and without system prompt, multi-turn, non-ASCII, whitespace.
fn conversations() -> Vec<Vec<ChatMessage>> {
    vec![
        vec![m("user", "Hello!")],
        vec![
            m("system", "You are a helpful assistant."),
            m("user", "  Hello, world?  "),
            m("assistant", "Hi there. How can I help?"),
            m("user", "Grüß dich 👋 — say \"a, b, c\"\nplease."),
        ],
        vec![
            m("user", "What is 2+2?"),
            m("assistant", "4"),
            m("user", "And 3+3?"),
            m("assistant", "6"),
            m("user", "lalala, la"),
        ],
    ]
}

fn tools() -> Value {
    json!([
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Wetter für eine Stadt — \"quoted\"\n",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "enum": ["Zürich", "Paris"]},
                        "days": {"type": "integer", "minimum": 1, "default": 3.5, "nullable": null, "strict": true}
                    },
                    "required": ["city"]
                }
            }
        },
        {"type": "function", "function": {"name": "noop", "parameters": {}}}
    ])
}

fn documents() -> Value {
    json!([
        {"title": "Doc A", "text": "First document."},
        {"title": "Doc B", "text": "Zweites Dokument: ä ö ü."}
    ])
}

/// Every conversation, with and without generation prompt, tools and documents.
fn compare_all(label: &str, template: &ChatTemplate) {
    for (i, messages) in conversations().iter().enumerate() {
        for agp in [false, true] {
            let plain = ChatRequest::new(messages).with_generation_prompt(agp);
            compare(&format!("{label} conv {i} agp {agp}"), template, &plain);
            let full = plain.with_tools(tools()).with_documents(documents());
            compare(
                &format!("{label} conv {i} agp {agp} tools"),
                template,
                &full,
            );
        }
    }
}

const TOOLS_TOJSON: &str = r#"{%- if tools %}
<|tools|>
{%- for tool in tools %}
{{ tool | tojson }}
{{ tool | tojson(indent=2) }}
{{ tool.function | tojson(indent=4, sort_keys=True) }}
{{ tool.function.parameters | tojson(ensure_ascii=True) }}
{%- endfor %}
<|/tools|>
{%- endif %}
{% for message in messages %}
<|{{ message.role }}|>{{ message['content'] }}{{ eos_token }}
{% endfor %}
{%- if add_generation_prompt %}<|assistant|>{% endif %}"#;

const NAMESPACE_LOOPS: &str = r#"{%- set ns = namespace(system='', count=0, last_user=-1) %}
{%- for m in messages %}
  {%- if m.role == 'system' %}
    {%- set ns.system = m.content %}
    {%- continue %}
  {%- endif %}
  {%- if m.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}
  {%- set ns.count = ns.count + 1 %}
  {%- if ns.count > 3 %}{% break %}{% endif %}
[{{ ns.count }}/{{ loop.length }}{% if loop.first %} first{% endif %}{% if loop.last %} last{% endif %}] {{ m.role }}: {{ m.content }}
{% endfor %}
SYSTEM={{ ns.system or 'none' }} COUNT={{ ns.count }} LAST_USER={{ ns.last_user }}
{% for i in range(3) %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}"#;

const STRING_METHODS: &str = r#"{% for m in messages %}
{{ m.content.strip() }}|{{ m.content.lstrip() }}|{{ m.content.rstrip() }}|{{ m.role.upper() }}|{{ m.content.lower() }}
{{ m.content.replace('a', 'A') }}|{{ m.content.split() }}|{{ m.content.split(',') }}|{{ m.content.split(',', 1) }}
{{ m.content.strip().startswith('Hel') }}|{{ m.content.endswith('?') }}|{{ m.content.startswith(('Hi', 'Wh')) }}
{{ m.role.title() }}|{{ m.content.title() }}|{{ m.role.capitalize() }}|{{ m.content.count('l') }}|{{ m.content.find('l') }}|{{ m.content.strip('? ') }}
{{ '-'.join(m.content.split()) }}|{{ m.content | trim }}|{{ m.content | length }}|{{ m.content | upper }}
{% endfor %}"#;

const SLICING_SELECTATTR: &str = r#"{%- set users = messages | selectattr('role', 'equalto', 'user') | list %}
{{ users | length }} user messages; last: {{ users[-1].content }}
{% for m in messages[1:] %}{{ m.role }}{% if not loop.last %},{% endif %}{% endfor %}

{{ messages[0].content[:5] }}|{{ messages[0].content[-3:] }}|{{ messages[0].content[::-1] }}
{{ messages[::2] | map(attribute='role') | join(' ') }}
{{ messages | rejectattr('role', 'equalto', 'system') | map(attribute='content') | first }}
{%- if messages[0]['role'] == 'system' %}
{%- set loop_messages = messages[1:] %}
{%- else %}
{%- set loop_messages = messages %}
{%- endif %}
{% for message in loop_messages %}{{ loop.index }}:{{ message.role }} {% endfor %}"#;

const ROLE_ORDER: &str = r#"{{ bos_token }}
{%- if messages[0]['role'] == 'system' %}
{%- set loop_messages = messages[1:] %}
{%- set system_message = messages[0]['content'] %}
{%- else %}
{%- set loop_messages = messages %}
{%- set system_message = false %}
{%- endif %}
{%- for message in loop_messages %}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
{%- endif %}
{%- if loop.index0 == 0 and system_message != false %}
{%- set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}
{%- else %}
{%- set content = message['content'] %}
{%- endif %}
{%- if message['role'] == 'user' %}
{{- '[INST] ' + content.strip() + ' [/INST]' }}
{%- elif message['role'] == 'assistant' %}
{{- ' ' + content.strip() + ' ' + eos_token }}
{%- endif %}
{%- endfor %}"#;

const VALUES_AND_GLOBALS: &str = r#"{{ bos_token }}tools={{ tools }} documents_none={{ documents is none }} agp={{ add_generation_prompt }}
{% if documents %}{% for d in documents %}<doc id={{ loop.index }}>{{ d.title }}: {{ d.text }}</doc>
{% endfor %}{% endif %}
{{ messages | length }} {{ (messages | last).content | tojson }} {{ messages[0] | tojson }}
{{ messages | map(attribute='role') | list }} {{ {'a': 1, 'b': [true, none, 2.5]} }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 1.5 * 2 }}
{{ 'yes' if tools is not none else 'no' }} {{ tools | tojson if tools else '[]' }}
date={{ strftime_now('%d %b %Y') }}
{%- if add_generation_prompt %}
<|assistant|>
{% endif %}"#;

#[test]
fn own_templates_match_jinja2() {
    for (label, source) in [
        ("tools+tojson", TOOLS_TOJSON),
        ("namespace+loops", NAMESPACE_LOOPS),
        ("string methods", STRING_METHODS),
        ("slicing+selectattr", SLICING_SELECTATTR),
        ("values+globals", VALUES_AND_GLOBALS),
    ] {
        let template = ChatTemplate::new(source, "<s>", "</s>").expect(label);
        compare_all(label, &template);
    }
}

#[test]
fn smollm2_template_matches_jinja2() {
    let model = vocab_only(common::smollm2());
    let template = ChatTemplate::from_model(&model).expect("SmolLM2 has a chat template");
    assert!(template.source().contains("<|im_start|>"));
    assert_eq!(template.eos_token(), "<|im_end|>");
    compare_all("SmolLM2", &template);
    // The template's own default system prompt appears when there is none.
    let one = [m("user", "Hi")];
    let Rendered::Text(text) = compare(
        "SmolLM2 default system",
        &template,
        &ChatRequest::new(&one).with_generation_prompt(true),
    ) else {
        unreachable!()
    };
    let text = String::from_utf8(text).unwrap();
    assert!(text.starts_with("<|im_start|>system\n"), "{text}");
    assert!(text.ends_with("<|im_start|>assistant\n"), "{text}");
}

#[test]
fn tiny_llama_template_matches_jinja2() {
    let model = vocab_only(common::tiny_llama());
    let template = ChatTemplate::from_model(&model).expect("the tiny llama has a chat template");
    compare_all("tiny llama", &template);
}

#[test]
fn raise_exception_matches_jinja2() {
    let template = ChatTemplate::new(ROLE_ORDER, "<s>", "</s>").unwrap();
    // Alternating roles render.
    compare_all("role order", &template);
    // Two user messages in a row: both engines raise the template's message.
    let bad = [m("system", "S"), m("user", "a"), m("user", "b")];
    let ours = compare("bad role order", &template, &ChatRequest::new(&bad));
    assert_eq!(
        ours,
        Rendered::Raised(
            "Conversation roles must alternate user/assistant/user/assistant/...".into()
        )
    );
    let err = template.render(&ChatRequest::new(&bad)).unwrap_err();
    assert_eq!(err.category(), Category::Configuration);
    assert!(
        err.to_string()
            .contains("Conversation roles must alternate"),
        "{err}"
    );
}

#[test]
fn template_syntax_errors_are_typed_with_line() {
    for (source, line) in [
        // minijinja names the last line with text for an unexpected end of input.
        ("{% for m in messages %}\n{{ m.content }}\n", 2),
        ("ok\n{{ messages[0] }\n", 2),
        ("{% if %}", 1),
    ] {
        match ChatTemplate::new(source, "", "") {
            Err(
                e @ Error::ChatTemplate {
                    kind: TemplateErrorKind::Syntax,
                    ..
                },
            ) => {
                let Error::ChatTemplate {
                    line: got, message, ..
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!(*got, Some(line), "{source:?}: {message}");
                assert!(!message.is_empty());
                assert_eq!(e.category(), Category::Model);
                assert!(!e.hint().is_empty());
            }
            other => panic!("{source:?}: expected a syntax error, got {other:?}"),
        }
    }
}

#[test]
fn render_errors_are_typed() {
    let template = ChatTemplate::new("{{ messages[0].content.no_such_method() }}", "", "").unwrap();
    let one = [m("user", "x")];
    match template.render(&ChatRequest::new(&one)) {
        Err(Error::ChatTemplate {
            kind: TemplateErrorKind::Render,
            line: Some(1),
            ..
        }) => {}
        other => panic!("expected a render error, got {other:?}"),
    }
    // Extra variables may not replace the standard ones.
    let t = ChatTemplate::new("{{ x }}", "", "").unwrap();
    assert_eq!(
        t.render(&ChatRequest::new(&one).with_variable("x", json!(true)))
            .unwrap(),
        "True"
    );
    assert!(matches!(
        t.render(&ChatRequest::new(&one).with_variable("messages", json!([]))),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn messages_json_errors_name_the_index() {
    let (messages, tools) = parse_messages_json(
        r#"{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]}"#,
    )
    .unwrap();
    assert_eq!(messages, [m("system", "s"), m("user", "u")]);
    assert_eq!(tools.unwrap()[0]["function"]["name"], "f");
    for (text, index, needle) in [
        ("[{\"role\": \"user\", ", None, "malformed JSON"),
        ("42", None, "expected a list"),
        (r#"{"tools": []}"#, None, "no \"messages\""),
        (
            r#"[{"role": "user", "content": "a"}, {"role": "user"}]"#,
            Some(1),
            "no \"content\"",
        ),
        (
            r#"[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "wizard", "content": "c"}]"#,
            Some(2),
            "unknown role",
        ),
        (
            r#"[{"role": "user", "content": ["a"]}]"#,
            Some(0),
            "must be a string",
        ),
        (r#"[{"content": "a"}]"#, Some(0), "no \"role\""),
    ] {
        match parse_messages_json(text) {
            Err(e) => {
                let Error::ChatMessages { index: got, reason } = &e else {
                    panic!("{text}: expected ChatMessages, got {e:?}");
                };
                let got = *got;
                assert_eq!(got, index, "{text}: {reason}");
                assert!(reason.contains(needle), "{text}: {reason}");
                if let Some(i) = index {
                    assert!(e.to_string().contains(&format!("message {i}")), "{e}");
                }
                assert_eq!(e.category(), Category::Configuration);
            }
            Ok(other) => panic!("{text}: expected an error, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Built-in templates against C.

fn c_chat_builtin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let variant_dir = common::cpu_dir();
        let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-chat-builtin");
        std::fs::create_dir_all(&out_dir).unwrap();
        let bin = out_dir.join(format!("chat_builtin-{}", std::process::id()));
        let src =
            std::fs::read_to_string(common::repo_root().join("tests/c/chat_builtin.c")).unwrap();
        let source = common::source_dir();
        common::compile_c(
            &src,
            &bin,
            &[
                &format!("-I{}", source.join("include").display()),
                &format!("-I{}", source.join("ggml/include").display()),
                &format!("-L{}", variant_dir.display()),
                &format!("-Wl,-rpath,{}", variant_dir.display()),
                "-lllama",
                "-lggml",
                "-lggml-base",
            ],
        );
        bin
    })
    .clone()
}

fn run_c(args: &[&str]) -> std::process::Output {
    Command::new(c_chat_builtin())
        .args(args)
        .output()
        .expect("running the C reference")
}

fn c_apply(name: &str, messages: &[ChatMessage], add_ass: bool) -> Option<Vec<u8>> {
    let mut args = vec![name, if add_ass { "1" } else { "0" }];
    for message in messages {
        args.push(&message.role);
        args.push(&message.content);
    }
    let output = run_c(&args);
    output.status.success().then_some(output.stdout)
}

#[test]
fn builtin_names_match_c() {
    let ours = builtin_template_names(library()).unwrap();
    let output = run_c(&["--list"]);
    assert!(output.status.success());
    let theirs: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ours, theirs);
    for name in [
        "chatml",
        "llama3",
        "gemma",
        "phi3",
        "mistral-v7",
        "llama2",
        "zephyr",
    ] {
        assert!(
            ours.iter().any(|n| n == name),
            "{name} missing from {ours:?}"
        );
    }
}

#[test]
fn builtin_templates_match_c() {
    let names = builtin_template_names(library()).unwrap();
    let mut conversations = conversations();
    // A long conversation: the first buffer guess is too small for some templates.
    conversations.push(
        (0..40)
            .map(|i| {
                m(
                    if i % 2 == 0 { "user" } else { "assistant" },
                    &format!("turn {i}: {}", "x".repeat(i * 7)),
                )
            })
            .collect(),
    );
    let mut checked = 0;
    for name in &names {
        for messages in &conversations {
            for add_ass in [false, true] {
                let ours = apply_builtin(library(), name, messages, add_ass);
                let theirs = c_apply(name, messages, add_ass);
                match (ours, theirs) {
                    (Ok(text), Some(bytes)) => {
                        assert_eq!(
                            text.as_bytes(),
                            bytes.as_slice(),
                            "{name} add_ass={add_ass}: differs from C\n--- ours\n{text}\n--- C\n{}",
                            String::from_utf8_lossy(&bytes)
                        );
                        checked += 1;
                    }
                    (Err(_), None) => {}
                    (ours, theirs) => panic!(
                        "{name}: Rust {ours:?}, C {:?}",
                        theirs.map(|b| String::from_utf8_lossy(&b).into_owned())
                    ),
                }
            }
        }
    }
    assert!(checked >= 100, "only {checked} comparisons");
    // The model's own template text is recognised by its markers, as llama.cpp does.
    let model = vocab_only(common::smollm2());
    let source = model.chat_template(None).unwrap().unwrap();
    let one = [m("user", "hi")];
    assert_eq!(
        apply_builtin(library(), &source, &one, true).unwrap(),
        apply_builtin(library(), "chatml", &one, true).unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input that reaches C (or loads a model): each case in a child process.

fn expect_missing(path: &Path) {
    let model = vocab_only(path.to_path_buf());
    assert_eq!(model.chat_template(None).unwrap(), None);
    match ChatTemplate::from_model(&model) {
        Err(
            e @ Error::ChatTemplate {
                kind: TemplateErrorKind::Missing,
                ..
            },
        ) => {
            assert_eq!(e.category(), Category::Model);
            assert!(e.to_string().contains("no chat template"), "{e}");
        }
        other => panic!("expected a missing-template error, got {other:?}"),
    }
}

child_cases! {
    fn gemma3_has_no_template() {
        expect_missing(&common::gemma3());
    }

    fn unknown_builtin_name() {
        let one = [m("user", "hi")];
        for name in ["no-such-template", ""] {
            match apply_builtin(library(), name, &one, true) {
                Err(e @ Error::ChatTemplate { kind: TemplateErrorKind::UnknownBuiltin, .. }) => {
                    assert_eq!(e.category(), Category::Configuration);
                    assert!(e.to_string().contains(name), "{e}");
                }
                other => panic!("{name:?}: expected UnknownBuiltin, got {other:?}"),
            }
        }
        assert!(matches!(
            apply_builtin(library(), "chat\0ml", &one, true),
            Err(Error::InvalidArgument { .. })
        ));
    }

    fn interior_nul_in_builtin_messages() {
        let bad = [m("user", "fine"), m("assistant", "ok"), m("user", "a\0b")];
        match apply_builtin(library(), "chatml", &bad, true) {
            Err(Error::ChatMessages { index: Some(2), reason }) => {
                assert!(reason.contains("content") && reason.contains("NUL"), "{reason}");
            }
            other => panic!("expected ChatMessages for message 2, got {other:?}"),
        }
        let bad_role = [m("us\0er", "x")];
        assert!(matches!(
            apply_builtin(library(), "chatml", &bad_role, true),
            Err(Error::ChatMessages { index: Some(0), .. })
        ));
        // Empty conversation: fine.
        assert_eq!(apply_builtin(library(), "chatml", &[], true).unwrap(), "<|im_start|>assistant\n");
    }
}
