//! `examples/serve` against the official `openai` Python client (tests/python/openai_client.py),
//! and the JSON Schema grammars of `sampler::json_schema` on the real llama.cpp: every grammar
//! made here builds a sampler, and greedy output under a schema is JSON that validates
//! (checked with Python's `jsonschema`).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::sampler::json_schema::{gbnf_any_json_object, gbnf_from_json_schema};
use gguf_loader::{
    ChatMessage, ChatRequest, ChatTemplate, Context, ContextParams, GenerateOptions, Model,
    ModelParams, Sampler, StopReason,
};
use serde_json::{json, Value};

const API_KEY: &str = "test-key";

/// A running `serve`; killed when dropped. Its stderr is collected as it comes.
struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(common::example("serve"))
            .arg("--model")
            .arg(common::smollm2())
            .arg("--variant-dir")
            .arg(common::cpu_dir())
            .args(["--threads", "1", "--port", "0", "--api-key", API_KEY])
            .args(["--parallel", "4", "--n-ctx", "1024"])
            .env_remove("GGUF_LOADER_SMOKE_DIR")
            .env_remove("GGUF_LOADER_SMOKE_BACKEND")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting examples/serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.strip_prefix("listening on http://") {
                    let port = address
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok());
                    let _ = port_tx.send(port);
                }
                let mut log = collected.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = Server {
            child,
            port: 0,
            log,
        };
        match port_rx.recv_timeout(Duration::from_secs(180)) {
            Ok(Some(port)) => server.port = port,
            _ => panic!(
                "serve did not print `listening on http://HOST:PORT`:\n{}",
                server.log()
            ),
        }
        server
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` to its end or `limit` (then kills it); returns (success, stdout + stderr).
fn run_with_limit(command: &mut Command, limit: Duration) -> (bool, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the Python client");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    match status {
        Some(status) => (status.success(), output),
        None => (false, format!("timed out after {limit:?}\n{output}")),
    }
}

#[test]
fn openai_client_checks_pass() {
    let server = Server::start();
    let started = Instant::now();
    let (ok, output) = run_with_limit(
        Command::new(common::python())
            .arg(common::repo_root().join("tests/python/openai_client.py"))
            .arg("--base-url")
            .arg(format!("http://127.0.0.1:{}/v1", server.port))
            .args(["--api-key", API_KEY])
            .arg("--smollm2")
            .arg(common::smollm2())
            .arg("--gemma3")
            .arg(common::gemma3()),
        Duration::from_secs(900),
    );
    eprintln!(
        "openai_client.py ({:.1} s):\n{output}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        ok,
        "openai_client.py failed:\n{output}\n--- server stderr\n{}",
        server.log()
    );
    assert!(output.contains("all checks passed"), "{output}");
    // The client that disconnected mid-stream was cancelled, and the swapped-out models were
    // released once their requests ended.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = server.log();
        if log.contains("cancelled after") && log.matches("released model").count() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server log lacks the cancellation or the releases:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn serve_help_and_usage_errors() {
    let help = Command::new(common::example("serve"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.starts_with("usage: serve "), "{text}");
    for flag in [
        "--model",
        "--host",
        "--port",
        "--parallel",
        "--api-key",
        "--n-ctx",
        "--threads",
        "--variant",
        "--variant-dir",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}: {text}");
    }
    for (args, message) in [
        (&["--frobnicate"][..], "error: unknown option --frobnicate"),
        (
            &["--parallel", "0"][..],
            "error: --parallel 0 must be 1 to 256",
        ),
        (&["--port", "http"][..], "error: invalid value for --port"),
    ] {
        let out = Command::new(common::example("serve"))
            .args(args)
            .env_remove("GGUF_LOADER_SMOKE_DIR")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(message), "{args:?}: {stderr}");
    }
}

fn library() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
    })
}

fn smollm2() -> Model {
    Model::load(library(), common::smollm2(), ModelParams::new()).unwrap()
}

/// Schemas of every supported construct.
fn schemas() -> Vec<Value> {
    vec![
        json!({"type": "string"}),
        json!({"type": "string", "minLength": 1, "maxLength": 12, "format": "email"}),
        json!({"type": "number"}),
        json!({"type": "integer"}),
        json!({"type": "boolean"}),
        json!({"type": "null"}),
        json!({"type": ["string", "null"]}),
        json!({"enum": ["a\"b", "c\\d", "é ✓", 1, 2.5, null, true, {"k": [1, "x"]}]}),
        json!({"const": "line\nbreak\ttab"}),
        json!({}),
        json!(true),
        json!({"type": "object"}),
        json!({"type": "object", "properties": {}}),
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 20},
                "quote\"key": {"type": "integer"},
                "ünïcode key": {"type": "boolean"},
                "opt": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 4}
            },
            "required": ["quote\"key"],
            "additionalProperties": false
        }),
        json!({
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "additionalProperties": {"type": "integer"}
        }),
        json!({"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 3}]}}),
        json!({"type": "array", "minItems": 2, "maxItems": 2}),
        // The largest repetitions accepted (llama.cpp expands each into one rule per repeat).
        json!({"type": "array", "items": {"type": "string", "minLength": 1000, "maxLength": 1000}, "minItems": 1000, "maxItems": 1000}),
        json!({"oneOf": [{"type": "object", "properties": {"x": {"const": 1}}, "required": ["x"]}, {"type": "array"}]}),
        json!({"allOf": [{"type": "integer"}], "description": "annotated"}),
        json!({
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "integer"},
                        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 3}
                    },
                    "required": ["value", "children"]
                }
            },
            "$ref": "#/$defs/node"
        }),
        json!({
            "definitions": {"color": {"enum": ["red", "green"]}},
            "type": "object",
            "properties": {"fg": {"$ref": "#/definitions/color"}, "bg": {"$ref": "#/definitions/color"}},
            "required": ["fg", "bg"]
        }),
        json!({"type": "array", "items": {"$ref": "#"}, "maxItems": 2}),
    ]
}

#[test]
fn json_schema_grammars_build_samplers_on_llama_cpp() {
    let model = smollm2();
    let mut grammars: Vec<(String, String)> = schemas()
        .iter()
        .map(|s| (s.to_string(), gbnf_from_json_schema(s).unwrap()))
        .collect();
    grammars.push(("json_object".into(), gbnf_any_json_object()));
    for (schema, grammar) in grammars {
        let built = Sampler::builder(&model)
            .grammar(&grammar, "root")
            .greedy()
            .build();
        assert!(
            built.is_ok(),
            "llama.cpp refused the grammar of {schema}: {:?}\n{grammar}",
            built.err()
        );
    }
}

/// Validates `value` against `schema` with Python's `jsonschema`.
fn validate(schema: &Value, value: &str) {
    let out = Command::new(common::python())
        .args([
            "-c",
            "import json, sys, jsonschema; jsonschema.validate(json.loads(sys.argv[2]), json.loads(sys.argv[1]))",
        ])
        .arg(schema.to_string())
        .arg(value)
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "{value} does not validate against {schema}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn generate_under(
    model: &Model,
    template: &ChatTemplate,
    question: &str,
    schema: &Value,
) -> String {
    let messages = [ChatMessage::new("user", question)];
    let prompt = template
        .render(&ChatRequest::new(&messages).with_generation_prompt(true))
        .unwrap();
    let grammar = gbnf_from_json_schema(schema).unwrap();
    let mut sampler = Sampler::builder(model)
        .grammar(&grammar, "root")
        .greedy()
        .build()
        .unwrap();
    let mut context = Context::new(
        model,
        ContextParams::default().with_n_ctx(1024).with_threads(1),
    )
    .unwrap();
    let options = GenerateOptions {
        add_special: false,
        ..GenerateOptions::default().with_max_tokens(300)
    };
    let mut generation = context.generate(prompt, &mut sampler, options).unwrap();
    let mut text = String::new();
    for piece in generation.by_ref() {
        text.push_str(&piece.unwrap().text);
    }
    let reason = generation.summary().unwrap().stop_reason.clone();
    assert!(
        matches!(reason, StopReason::EndOfGeneration(_)),
        "the grammar should end the output: {reason:?} after {text:?}"
    );
    text
}

#[test]
fn greedy_output_under_a_schema_parses_and_validates() {
    let model = smollm2();
    let template = ChatTemplate::from_model(&model).unwrap();
    let cases = [
        (
            "Describe a cat as JSON.",
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 16},
                    "color": {"enum": ["black", "white", "orange", "grey"]},
                    "age": {"type": "integer"},
                    "indoor": {"type": "boolean"},
                    "nickname": {"type": "string", "maxLength": 10}
                },
                "required": ["name", "color", "age", "indoor"],
                "additionalProperties": false
            }),
        ),
        (
            "List the primary colors as a JSON array.",
            json!({"type": "array", "items": {"enum": ["red", "yellow", "blue", "green"]}, "minItems": 1, "maxItems": 3}),
        ),
        (
            "Answer with a JSON object: is the sky blue?",
            json!({
                "$defs": {"answer": {"anyOf": [{"type": "boolean"}, {"type": "null"}]}},
                "type": "object",
                "properties": {"answer": {"$ref": "#/$defs/answer"}, "confidence": {"type": "number"}},
                "required": ["answer", "confidence"]
            }),
        ),
    ];
    for (question, schema) in cases {
        let text = generate_under(&model, &template, question, &schema);
        eprintln!("{question} -> {}", text.replace('\n', " "));
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
        assert!(!value.is_null(), "{text}");
        validate(&schema, &text);
    }
}
