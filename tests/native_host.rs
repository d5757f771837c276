//! `examples/native_host` driven as a browser drives it: length-prefixed JSON frames on its
//! stdin, and its stdout read as raw bytes and parsed strictly as frames (any byte outside a
//! frame fails the test). Every host runs the cpu variant with one thread per context.

mod common;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one frame may take to arrive (the suite shares two cores).
const FRAME_TIMEOUT: Duration = Duration::from_secs(300);

/// Frames from the host are promised to stay under this.
const MAX_OUTBOUND: usize = 1024 * 1024;

/// A frame as the harness received it, or why the stream broke the framing.
type Received = Result<Value, String>;

/// Reads `stdout` as frames until it ends: a 4-byte native-order length, then a JSON object
/// with `id` and `event`. Anything else (a short prefix or body, a length of 1 MiB or more,
/// invalid UTF-8 or JSON, another shape) is sent as an `Err` and ends the reading.
fn read_frames(mut stdout: impl Read, frames: mpsc::Sender<Received>) {
    loop {
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match stdout.read(&mut prefix[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => {
                    let _ = frames.send(Err(format!("reading stdout: {e}")));
                    return;
                }
            }
        }
        match got {
            0 => return,
            4 => {}
            _ => {
                let _ = frames.send(Err(format!(
                    "stdout ended inside a length prefix: {:?}",
                    &prefix[..got]
                )));
                return;
            }
        }
        let length = u32::from_ne_bytes(prefix) as usize;
        if length >= MAX_OUTBOUND {
            let _ = frames.send(Err(format!(
                "a frame of {length} bytes (prefix {prefix:?} = {:?}): over the 1 MiB limit, or bytes outside a frame",
                String::from_utf8_lossy(&prefix)
            )));
            return;
        }
        let mut body = vec![0u8; length];
        if let Err(e) = stdout.read_exact(&mut body) {
            let _ = frames.send(Err(format!(
                "stdout ended inside a frame of {length} bytes: {e}"
            )));
            return;
        }
        let frame = std::str::from_utf8(&body)
            .map_err(|e| format!("a frame is not UTF-8: {e}"))
            .and_then(|text| {
                serde_json::from_str::<Value>(text)
                    .map_err(|e| format!("a frame is not JSON ({e}): {text:?}"))
            })
            .and_then(|value| {
                if value.get("id").is_some() && value["event"].is_string() {
                    Ok(value)
                } else {
                    Err(format!("a frame without \"id\" and \"event\": {value}"))
                }
            });
        let broken = frame.is_err();
        if frames.send(frame).is_err() || broken {
            return;
        }
    }
}

/// A running host and the harness's view of its output.
struct Host {
    child: Child,
    stdin: Option<ChildStdin>,
    frames: Receiver<Received>,
    /// Frames received while waiting for another request's frames.
    backlog: VecDeque<Value>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Host {
    /// Starts the host on the cpu variant, one thread per context, with `args`.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Host {
        let mut command = Command::new(common::example("native_host"));
        command
            .arg("--variant-dir")
            .arg(common::cpu_dir())
            .args(["--threads", "1"])
            .args(args)
            .env_remove("GGUF_LOADER_SMOKE_DIR")
            .env_remove("GGUF_LOADER_HOST_STRAY_STDOUT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting examples/native_host");
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let (tx, frames) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let readers = vec![
            std::thread::spawn(move || read_frames(stdout, tx)),
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr_pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }),
        ];
        Host {
            stdin: child.stdin.take(),
            child,
            frames,
            backlog: VecDeque::new(),
            stderr,
            readers,
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Writes raw bytes to the host's stdin.
    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).expect("writing to the host");
        stdin.flush().unwrap();
    }

    /// Sends `bytes` as one frame.
    fn send_frame(&mut self, bytes: &[u8]) {
        let mut frame = (bytes.len() as u32).to_ne_bytes().to_vec();
        frame.extend_from_slice(bytes);
        self.send_raw(&frame);
    }

    /// Sends a request.
    fn send(&mut self, request: &Value) {
        self.send_frame(request.to_string().as_bytes());
    }

    /// The next frame from the host (failing on a framing violation or a timeout).
    fn next_frame(&mut self) -> Value {
        match self.frames.recv_timeout(FRAME_TIMEOUT) {
            Ok(Ok(frame)) => frame,
            Ok(Err(violation)) => {
                panic!("framing violation: {violation}\nstderr:\n{}", self.stderr())
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "no frame within {FRAME_TIMEOUT:?}\nstderr:\n{}",
                    self.stderr()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the host's stdout ended\nstderr:\n{}", self.stderr())
            }
        }
    }

    /// The next frame whose id is `id`; frames of other requests are kept for later.
    fn next_for(&mut self, id: &Value) -> Value {
        if let Some(i) = self.backlog.iter().position(|f| &f["id"] == id) {
            return self.backlog.remove(i).unwrap();
        }
        loop {
            let frame = self.next_frame();
            if &frame["id"] == id {
                return frame;
            }
            self.backlog.push_back(frame);
        }
    }

    /// Sends `request` and returns its reply (a `result` or an `error`).
    fn call(&mut self, request: Value) -> Value {
        let id = request["id"].clone();
        self.send(&request);
        self.next_for(&id)
    }

    /// Sends `request` and expects a `result`; returns it.
    fn result(&mut self, request: Value) -> Value {
        let reply = self.call(request.clone());
        assert_eq!(reply["event"], "result", "{request} -> {reply}");
        reply["result"].clone()
    }

    /// Sends `request` and expects an error frame of `category`; returns its message.
    fn error(&mut self, request: Value, category: &str) -> String {
        let reply = self.call(request.clone());
        assert_error(&reply, &request["id"], category);
        reply["error"]["message"].as_str().unwrap().to_string()
    }

    /// The token frames of generation `id` until its `done` (an error frame fails).
    fn stream(&mut self, id: &Value) -> (Vec<Value>, Value) {
        let mut tokens = Vec::new();
        loop {
            let frame = self.next_for(id);
            match frame["event"].as_str() {
                Some("token") => tokens.push(frame),
                Some("done") => return (tokens, frame["summary"].clone()),
                _ => panic!("unexpected frame in the stream of {id}: {frame}"),
            }
        }
    }

    /// Closes stdin and waits for the exit; returns the status, the frames that were left
    /// and stderr. Fails on a framing violation or an exit that takes too long.
    fn close(mut self) -> (ExitStatus, Vec<Value>, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + FRAME_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the host did not exit after stdin closed\nstderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let mut left: Vec<Value> = self.backlog.drain(..).collect();
        for frame in self.frames.try_iter() {
            match frame {
                Ok(frame) => left.push(frame),
                Err(violation) => {
                    panic!("framing violation: {violation}\nstderr:\n{}", self.stderr())
                }
            }
        }
        let stderr = self.stderr();
        (status, left, stderr)
    }
}

fn assert_error(reply: &Value, id: &Value, category: &str) {
    assert_eq!(reply["event"], "error", "{reply}");
    assert_eq!(&reply["id"], id, "{reply}");
    assert_eq!(reply["error"]["category"], category, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{reply}"
    );
}

fn path_text(path: &std::path::Path) -> String {
    path.to_str().expect("UTF-8 path").to_string()
}

/// Token ids of `examples/generate --greedy --token-ids` for `prompt`.
fn generate_example_ids(prompt: &str, n: usize) -> Vec<i64> {
    let output = Command::new(common::example("generate"))
        .args([
            "--greedy",
            "-n",
            &n.to_string(),
            "--threads",
            "1",
            "--token-ids",
        ])
        .arg("--variant-dir")
        .arg(common::cpu_dir())
        .arg("--model")
        .arg(common::smollm2())
        .arg(prompt)
        .env_remove("GGUF_LOADER_SMOKE_DIR")
        .output()
        .expect("running examples/generate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim().parse().expect("a token id per line"))
        .collect()
}

fn token_ids(tokens: &[Value]) -> Vec<i64> {
    tokens.iter().filter_map(|t| t["token"].as_i64()).collect()
}

fn text_of(tokens: &[Value]) -> String {
    tokens
        .iter()
        .map(|t| t["text"].as_str().expect("token text"))
        .collect()
}

#[test]
fn smollm2_info_generate_chat_embed_cancel() {
    let smollm2 = common::smollm2();
    let mut host = Host::start(&["--model", &path_text(&smollm2)], &[]);

    let info = host.result(json!({"id": 1, "method": "info"}));
    assert_eq!(info["loaded"], true, "{info}");
    assert_eq!(info["model"], path_text(&smollm2));
    assert_eq!(info["n_ctx"], 2048);
    assert_eq!(info["n_vocab"], 49152);
    assert_eq!(info["parallel"], 4);
    assert!(
        info["variant"]
            .as_str()
            .is_some_and(|v| v.starts_with("cpu")),
        "{info}"
    );

    // Greedy generation: the same tokens as examples/generate --greedy.
    let prompt = "The three primary colors are";
    let n = 16;
    let id = json!({"request": "greedy", "n": 1});
    host.send(&json!({"id": id, "method": "generate",
        "params": {"prompt": prompt, "max_tokens": n, "greedy": true}}));
    let (tokens, summary) = host.stream(&id);
    let expected = generate_example_ids(prompt, n);
    assert_eq!(
        token_ids(&tokens),
        expected,
        "host vs examples/generate --greedy"
    );
    assert_eq!(summary["generated_tokens"], expected.len(), "{summary}");
    assert_eq!(summary["cancelled"], false);
    assert_eq!(
        summary["stop"],
        if expected.len() == n {
            "max_tokens"
        } else {
            "end_of_generation"
        }
    );
    assert!(summary["prompt_tokens"].as_u64().unwrap() > 0);

    // Chat: rendered with the model's template.
    host.send(&json!({"id": "chat", "method": "chat", "params": {
        "messages": [{"role": "system", "content": "You answer in one word."},
                     {"role": "user", "content": "What color is the sky?"}],
        "max_tokens": 8, "greedy": true}}));
    let (tokens, summary) = host.stream(&json!("chat"));
    assert!(!tokens.is_empty(), "{summary}");
    assert!(!text_of(&tokens).trim().is_empty(), "{tokens:?}");
    assert!(
        summary["generated_tokens"].as_u64().unwrap() <= 8,
        "{summary}"
    );

    // Embeddings of two texts.
    let result = host.result(json!({"id": 3, "method": "embed",
        "params": {"texts": ["The sky is blue.", "Une phrase en français."]}}));
    let vectors = result["vectors"].as_array().expect("vectors");
    assert_eq!(vectors.len(), 2, "{result}");
    let dimension = info["n_embd"].as_u64().unwrap() as usize;
    assert_eq!(result["dimension"], dimension);
    let vectors: Vec<Vec<f64>> = vectors
        .iter()
        .map(|v| {
            v.as_array()
                .expect("a vector")
                .iter()
                .map(|x| x.as_f64().expect("a finite number"))
                .collect()
        })
        .collect();
    for v in &vectors {
        assert_eq!(v.len(), dimension);
        assert!(v.iter().all(|x| x.is_finite()));
    }
    assert_ne!(vectors[0], vectors[1]);
    // A reply over the 1 MiB limit of a message from the host becomes an error frame saying
    // so. The request's id is echoed in every reply: a long one makes the embed result too
    // long while its error frame still fits...
    let long_id = json!("i".repeat(1_040_000));
    let reply = host.call(json!({"id": long_id, "method": "embed",
        "params": {"texts": ["The sky is blue.", "Une phrase en français."]}}));
    assert_error(&reply, &long_id, "protocol");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1 MiB"));
    // ...and a longer one leaves the error frame with id null.
    host.send(&json!({"id": "i".repeat(1_100_000), "method": "info"}));
    let reply = host.next_for(&Value::Null);
    assert_error(&reply, &Value::Null, "protocol");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1 MiB"));
    assert_eq!(
        host.result(json!({"id": 4, "method": "info"}))["loaded"],
        true
    );

    // Cancel mid-stream.
    let max = 400;
    host.send(&json!({"id": 7, "method": "generate", "params": {
        "prompt": "Once upon a time", "max_tokens": max, "temperature": 0.7, "seed": 3}}));
    for _ in 0..3 {
        let frame = host.next_for(&json!(7));
        assert_eq!(frame["event"], "token", "{frame}");
    }
    // Another request may not take the id of a running one (its error shares the id).
    host.send(&json!({"id": 7, "method": "generate", "params": {"prompt": "x"}}));
    let reply = loop {
        let frame = host.next_for(&json!(7));
        if frame["event"] != "token" {
            break frame;
        }
    };
    assert_error(&reply, &json!(7), "protocol");
    let cancel = host.result(json!({"id": "c", "method": "cancel", "params": {"target": 7}}));
    assert_eq!(cancel, json!({"target": 7, "found": true}));
    let (_, summary) = host.stream(&json!(7));
    assert_eq!(summary["cancelled"], true, "{summary}");
    assert_eq!(summary["stop"], "cancelled");
    assert!(
        summary["generated_tokens"].as_u64().unwrap() < max,
        "{summary}"
    );
    let cancel = host.result(json!({"id": "c2", "method": "cancel", "params": {"target": 7}}));
    assert_eq!(cancel["found"], false);

    // End of stdin: the request in flight still completes, then the host exits with 0.
    host.send(&json!({"id": "last", "method": "generate",
        "params": {"prompt": prompt, "max_tokens": 4, "greedy": true}}));
    let (status, left, stderr) = host.close();
    assert!(status.success(), "{status}\n{stderr}");
    assert_eq!(
        left.last().map(|f| &f["event"]),
        Some(&json!("done")),
        "{left:?}"
    );
    assert_eq!(token_ids(&left), expected[..4], "{left:?}");
}

#[test]
fn hot_swap_to_gemma3_while_a_generation_streams() {
    let smollm2 = common::smollm2();
    let gemma3 = common::gemma3();
    let mut host = Host::start(&["--model", &path_text(&smollm2)], &[]);
    let streaming = json!("long");
    let n = 200;
    host.send(&json!({"id": streaming, "method": "generate", "params": {
        "prompt": "Once upon a time", "max_tokens": n, "greedy": true}}));
    let first = host.next_for(&streaming);
    assert_eq!(first["event"], "token", "{first}");
    let loaded = host.result(json!({"id": "load", "method": "load",
        "params": {"model": path_text(&gemma3)}}));
    assert_eq!(loaded["model"], path_text(&gemma3), "{loaded}");
    // The smollm2 generation was still streaming when the load answered...
    assert!(
        !host
            .backlog
            .iter()
            .any(|f| f["id"] == streaming && f["event"] == "done"),
        "the generation ended before the swap: make it longer"
    );
    // ...and completes on the old model.
    let (tokens, summary) = host.stream(&streaming);
    assert_eq!(summary["cancelled"], false, "{summary}");
    assert!(
        summary["stop"] == "max_tokens" || summary["stop"] == "end_of_generation",
        "{summary}"
    );
    assert_eq!(
        summary["generated_tokens"].as_u64().unwrap() as usize,
        token_ids(&tokens).len() + 1,
        "{summary}"
    );
    let info = host.result(json!({"id": "info", "method": "info"}));
    assert_eq!(info["model"], path_text(&gemma3), "{info}");
    assert_eq!(info["architecture"], "gemma3", "{info}");
    assert_eq!(info["chat_template"], false, "{info}");
    // Gemma 3's GGUF has no chat template.
    let message = host.error(
        json!({"id": "chat", "method": "chat", "params": {
            "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}}),
        "model",
    );
    assert!(message.contains("template"), "{message}");
    host.send(&json!({"id": "gen", "method": "generate",
        "params": {"prompt": "The capital of France is", "max_tokens": 6, "greedy": true}}));
    let (tokens, summary) = host.stream(&json!("gen"));
    assert!(!tokens.is_empty(), "{summary}");
    assert_eq!(summary["cancelled"], false);
    let (status, left, stderr) = host.close();
    assert!(status.success(), "{status}\n{stderr}");
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn malformed_input_is_answered_and_the_host_serves_on() {
    // No model: the framing and the protocol checks come before any model is needed.
    let mut host = Host::start(&["--max-message-bytes", "4096"], &[]);
    let alive = |host: &mut Host, n: u64| {
        let info = host.result(json!({"id": n, "method": "info"}));
        assert_eq!(info["loaded"], false, "{info}");
    };
    alive(&mut host, 0);

    // Over the cap: skipped without being read into memory, answered with id null.
    let mut big = b"{\"id\": 1, \"method\": \"info\", \"params\": {\"x\": \"".to_vec();
    big.resize(100_000, b'a');
    big.extend_from_slice(b"\"}}");
    host.send_frame(&big);
    let reply = host.next_frame();
    assert_error(&reply, &Value::Null, "protocol");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100003"),
        "{reply}"
    );
    alive(&mut host, 1);

    // Invalid UTF-8, invalid JSON (NaN is not JSON), not an object, no id.
    for bytes in [
        &b"{\"id\": 2, \"method\": \"info\xff\"}"[..],
        b"{\"id\": 2, \"method\": ",
        b"{\"id\": 2, \"method\": \"generate\", \"params\": {\"prompt\": \"a\", \"temperature\": NaN}}",
        b"",
        b"[1, 2]",
        b"{\"method\": \"info\"}",
    ] {
        host.send_frame(bytes);
        let reply = host.next_frame();
        assert_error(&reply, &Value::Null, "protocol");
        alive(&mut host, 2);
    }

    // Unknown method, bad request shapes and bad parameters: answered with the request's id.
    let bad = [
        json!({"id": "m", "method": "summon"}),
        json!({"id": "m", "method": 5}),
        json!({"id": "m"}),
        json!({"id": "m", "method": "info", "params": [1]}),
        json!({"id": "m", "method": "info", "extra": true}),
        json!({"id": "m", "method": "info", "params": {"verbose": true}}),
        json!({"id": "m", "method": "generate", "params": {"max_tokens": 4}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": 5}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "max_tokens": -1}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "max_tokens": 2.5}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "temperature": "hot"}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "temperature": -1}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "temperature": 1e39}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "top_p": 0}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "seed": 1u64 << 40}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "stop": [1]}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "greedy": "yes"}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "greedy": true, "top_k": 5}}),
        json!({"id": "m", "method": "generate", "params": {"prompt": "a", "max_token": 5}}),
        json!({"id": "m", "method": "chat", "params": {"messages": "hi"}}),
        json!({"id": "m", "method": "chat", "params": {"messages": [{"role": "wizard", "content": "hi"}]}}),
        json!({"id": "m", "method": "chat", "params": {"messages": [{"role": "user"}]}}),
        json!({"id": "m", "method": "embed", "params": {"texts": [1]}}),
        json!({"id": "m", "method": "embed", "params": {}}),
        json!({"id": "m", "method": "load", "params": {}}),
        json!({"id": "m", "method": "cancel", "params": {}}),
    ];
    for (i, request) in bad.into_iter().enumerate() {
        let id = json!({"case": i});
        let mut request = request;
        request["id"] = id.clone();
        host.error(request, "protocol");
        alive(&mut host, 3);
    }
    // Valid requests that need a model, and a model that cannot be loaded.
    host.error(
        json!({"id": [1, "x"], "method": "generate", "params": {"prompt": "a"}}),
        "configuration",
    );
    let missing = std::env::temp_dir().join("native-host-no-such-model.gguf");
    let reply = host.call(json!({"id": "load", "method": "load",
        "params": {"model": path_text(&missing)}}));
    assert_eq!(reply["event"], "error", "{reply}");
    alive(&mut host, 4);

    // A length prefix that promises more than follows, then the end of the input: an error
    // frame, and a clean exit.
    let mut truncated = 50u32.to_ne_bytes().to_vec();
    truncated.extend_from_slice(b"{\"id\": 9");
    host.send_raw(&truncated);
    let (status, left, stderr) = host.close();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_error(&left[0], &Value::Null, "protocol");
    assert!(
        left[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("8 of 50"),
        "{left:?}"
    );
}

#[test]
fn stray_stdout_lands_on_stderr_only() {
    // Started as Chrome starts a host: the caller's origin as the argument.
    let origin = "chrome-extension://abcdefghijklmnopabcdefghijklmnop/";
    let mut host = Host::start(&[origin], &[("GGUF_LOADER_HOST_STRAY_STDOUT", "1")]);
    let info = host.result(json!({"id": null, "method": "info"}));
    assert_eq!(info["loaded"], false);
    assert_eq!(info["caller"], json!([origin]));
    let (status, left, stderr) = host.close();
    assert!(status.success(), "{stderr}");
    assert!(left.is_empty(), "{left:?}");
    assert!(stderr.contains("stray stdout marker"), "{stderr}");
}

#[test]
fn end_of_stdin_exits_zero() {
    let host = Host::start(&[], &[]);
    let (status, left, stderr) = host.close();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn print_manifest_for_both_browsers() {
    let exe = common::example("native_host");
    let run = |args: &[&str]| Command::new(&exe).args(args).output().unwrap();
    let chrome_id = "abcdefghijklmnopabcdefghijklmnop";
    let out = run(&["--print-manifest", "--extension-id", chrome_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value = serde_json::from_slice(&out.stdout).expect("JSON manifest");
    let path = manifest["path"].as_str().unwrap();
    assert!(std::path::Path::new(path).is_absolute(), "{manifest}");
    assert_eq!(
        std::fs::canonicalize(path).unwrap(),
        std::fs::canonicalize(&exe).unwrap()
    );
    assert_eq!(manifest["name"], "gguf_loader");
    assert_eq!(manifest["type"], "stdio");
    assert!(manifest["description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    assert_eq!(
        manifest["allowed_origins"],
        json!([format!("chrome-extension://{chrome_id}/")])
    );
    let mut keys: Vec<_> = manifest.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["allowed_origins", "description", "name", "path", "type"]
    );

    let out = run(&[
        "--print-manifest",
        "--browser",
        "firefox",
        "--extension-id",
        "host@example.org",
        "--host-name",
        "org.example.gguf_host",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value = serde_json::from_slice(&out.stdout).expect("JSON manifest");
    assert_eq!(manifest["name"], "org.example.gguf_host");
    assert_eq!(manifest["allowed_extensions"], json!(["host@example.org"]));
    let mut keys: Vec<_> = manifest.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["allowed_extensions", "description", "name", "path", "type"]
    );

    // Invalid ids and names are refused; --extension-id is required.
    for args in [
        &[
            "--print-manifest",
            "--extension-id",
            "ABCDEFGHIJKLMNOPABCDEFGHIJKLMNOP",
        ][..],
        &["--print-manifest", "--extension-id", "abcdefghijklmnopq"],
        &[
            "--print-manifest",
            "--extension-id",
            chrome_id,
            "--host-name",
            "Bad-Name",
        ],
        &[
            "--print-manifest",
            "--extension-id",
            chrome_id,
            "--host-name",
            "a..b",
        ],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = run(&["--print-manifest"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&[
        "--print-manifest",
        "--extension-id",
        chrome_id,
        "--browser",
        "safari",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_model_that_cannot_load_at_start_is_an_error_frame() {
    let missing = std::env::temp_dir().join("native-host-missing-model.gguf");
    let mut host = Host::start(&["--model", &path_text(&missing)], &[]);
    let reply = host.next_frame();
    assert_eq!(reply["id"], Value::Null, "{reply}");
    assert_eq!(reply["event"], "error", "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("native-host-missing-model"),
        "{reply}"
    );
    // The host serves on, without a model.
    let info = host.result(json!({"id": 1, "method": "info"}));
    assert_eq!(info["loaded"], false, "{info}");
    let (status, left, stderr) = host.close();
    assert!(status.success(), "{stderr}");
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn end_of_stdin_inside_a_length_prefix() {
    let mut host = Host::start(&[], &[]);
    host.send_raw(&[7, 0]);
    let (status, left, stderr) = host.close();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_error(&left[0], &Value::Null, "protocol");
    assert!(
        left[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 of 4 bytes of the length prefix"),
        "{left:?}"
    );
}
