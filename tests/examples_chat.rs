//! The contracts of `examples/chat` and of `examples/generate --save-state/--resume`, run as
//! programs on the real libraries and models.

mod common;

use std::process::{Command, Output};

use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{ChatRequest, ChatTemplate, Model, ModelParams};

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(common::example(name))
        .args(args)
        .env("GGUF_LOADER_VARIANTS_DIR", common::cpu_dir())
        .env_remove("GGUF_LOADER_SMOKE_DIR")
        .output()
        .expect("running the example")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const MESSAGES: &str = r#"[
  {"role": "system", "content": "You answer in one sentence."},
  {"role": "user", "content": "What is the capital of France?"},
  {"role": "assistant", "content": "Paris."},
  {"role": "user", "content": "And of Italy? Ünïcødé ✓"}
]"#;

#[test]
fn render_prints_exactly_the_rendered_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages.json");
    std::fs::write(&file, MESSAGES).unwrap();
    let smollm2 = common::smollm2();
    let out = run(
        "chat",
        &[
            "--model",
            smollm2.to_str().unwrap(),
            "--messages",
            file.to_str().unwrap(),
            "--render",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The same rendering through the library.
    let library = LlamaLibrary::load(
        &VariantDirectory::open(&common::cpu_dir()).unwrap(),
        PluginSelection::AllInDirectory,
    )
    .unwrap();
    let model = Model::load(&library, &smollm2, ModelParams::new().vocab_only(true)).unwrap();
    let (messages, _) = gguf_loader::chat::parse_messages_json(MESSAGES).unwrap();
    let expected = ChatTemplate::from_model(&model)
        .unwrap()
        .render(&ChatRequest::new(&messages).with_generation_prompt(true))
        .unwrap();
    assert_eq!(text(&out.stdout), expected);
    assert!(expected.ends_with("<|im_start|>assistant\n"), "{expected}");
    // A built-in template by name.
    let out = run(
        "chat",
        &[
            "--model",
            smollm2.to_str().unwrap(),
            "--messages",
            file.to_str().unwrap(),
            "--render",
            "--template",
            "llama3",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = gguf_loader::chat::apply_builtin(&library, "llama3", &messages, true).unwrap();
    assert_eq!(text(&out.stdout), expected);
}

#[test]
fn bad_messages_and_missing_templates_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let smollm2 = common::smollm2();
    for (content, expect) in [
        ("[{\"role\": \"user\"", "JSON"),
        ("[{\"role\": \"wizard\", \"content\": \"hi\"}]", "0"),
        (
            "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\"}]",
            "1",
        ),
    ] {
        let file = dir.path().join("bad.json");
        std::fs::write(&file, content).unwrap();
        let out = run(
            "chat",
            &[
                "--model",
                smollm2.to_str().unwrap(),
                "--messages",
                file.to_str().unwrap(),
                "--render",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{content}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.contains(expect),
            "{content}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    let file = dir.path().join("ok.json");
    std::fs::write(&file, MESSAGES).unwrap();
    let gemma = common::gemma3();
    let out = run(
        "chat",
        &[
            "--model",
            gemma.to_str().unwrap(),
            "--messages",
            file.to_str().unwrap(),
            "--render",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("chat template"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn script_turns_reuse_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.json");
    std::fs::write(
        &script,
        r#"["Name a color.", "And a fruit?", "And an animal?"]"#,
    )
    .unwrap();
    let smollm2 = common::smollm2();
    let out = run(
        "chat",
        &[
            "--model",
            smollm2.to_str().unwrap(),
            "--script",
            script.to_str().unwrap(),
            "--greedy",
            "-n",
            "12",
            "--threads",
            "2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let turns: Vec<(usize, usize, usize)> = err
        .lines()
        .map(|line| {
            let rest = line
                .strip_prefix("turn ")
                .unwrap_or_else(|| panic!("stray stderr line {line:?}"));
            let (k, rest) = rest.split_once(": decoded ").unwrap();
            let (d, r) = rest.split_once(" reused ").unwrap();
            (k.parse().unwrap(), d.parse().unwrap(), r.parse().unwrap())
        })
        .collect();
    assert_eq!(
        turns.iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "{err}"
    );
    assert_eq!(turns[0].2, 0);
    for (k, decoded, reused) in &turns[1..] {
        assert!(*reused > turns[0].1, "turn {k} reused only {reused}: {err}");
        assert!(decoded < reused, "turn {k}: {err}");
    }
    assert!(text(&out.stdout).lines().filter(|l| !l.is_empty()).count() >= 3);
}

#[test]
fn generate_resumes_a_saved_session_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("session.state");
    let prompt = "The capital of France is Paris. The capital of Germany is";
    for model in [common::smollm2(), common::gemma3()] {
        let model = model.to_str().unwrap();
        let ids = |out: &Output| -> Vec<String> {
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout).lines().map(str::to_string).collect()
        };
        let common_args = [
            "--model",
            model,
            "--greedy",
            "--token-ids",
            "--threads",
            "2",
        ];
        let full = ids(&run(
            "generate",
            &[&common_args[..], &["-n", "32", prompt]].concat(),
        ));
        let first = ids(&run(
            "generate",
            &[
                &common_args[..],
                &["-n", "20", "--save-state", state.to_str().unwrap(), prompt],
            ]
            .concat(),
        ));
        let rest = ids(&run(
            "generate",
            &[
                &common_args[..],
                &["-n", "12", "--resume", state.to_str().unwrap()],
            ]
            .concat(),
        ));
        assert_eq!([first, rest].concat(), full, "{model}");
        // A damaged state is a typed error naming the file.
        let bytes = std::fs::read(&state).unwrap();
        std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();
        let out = run(
            "generate",
            &[
                &common_args[..],
                &["-n", "4", "--resume", state.to_str().unwrap()],
            ]
            .concat(),
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("session.state"),
            "{}",
            text(&out.stderr)
        );
    }
}
