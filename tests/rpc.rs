//! ggml's RPC backend through the crate: `rpc_server` processes on loopback, `generate --rpc`
//! clients (which run the model in a worker process), the Rust-side checks of endpoints and
//! servers, and what the protocol costs.
//!
//! Every process runs one thread per context (`--threads 1`): two spinning ggml thread pools
//! per process contend on small machines. The tests that time or drive servers take
//! [`serial`], so their figures are not disturbed by each other.

#[macro_use]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use gguf_loader::loader::{LlamaLibrary, VariantDirectory};
use gguf_loader::rpc::{probe, ProbeOptions, RpcEndpoint, RpcProblem, RpcServer, RpcServerOptions};
use gguf_loader::{Error, Model, ModelParams};

const PROMPT: &str = "The three primary colors are";
/// A prompt SmolLM2 continues for hundreds of tokens (it counts on).
const LONG_PROMPT: &str = "1, 2, 3, 4, 5,";

/// Serialises the tests that run servers and time generations.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The cpu variant, loaded in this process with every plugin (RPC included).
fn library() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY
        .get_or_init(|| LlamaLibrary::open_dir(common::cpu_dir()).expect("loading the cpu variant"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn loopback(port: u16) -> RpcEndpoint {
    RpcEndpoint::ipv4(Ipv4Addr::LOCALHOST, port)
}

/// An `rpc_server` example process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let port = free_port();
        let mut child = Command::new(common::example("rpc_server"))
            .args([
                "--port",
                &port.to_string(),
                "--threads",
                "1",
                "--variant-dir",
            ])
            .arg(common::cpu_dir())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting rpc_server");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                seen.push_str(&line);
                seen.push('\n');
                if line.starts_with("listening on ") {
                    let _ = tx.send(Ok(seen.clone()));
                }
            }
            let _ = tx.send(Err(seen));
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(_)) => {}
            other => {
                let _ = child.kill();
                panic!("rpc_server on port {port} did not start: {other:?}");
            }
        }
        // "listening on" is printed right before ggml binds: wait until it accepts.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rpc_server on {port} never accepted"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, port }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to its end, killing it after `limit`; returns its status, stdout and stderr.
fn run(command: &mut Command, limit: Duration) -> (ExitStatus, String, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        out_thread.join().unwrap(),
        err_thread.join().unwrap(),
    )
}

fn generate(model: &PathBuf, rpc: Option<&str>, n: usize, prompt: &str) -> Command {
    let mut command = Command::new(common::example("generate"));
    command
        .arg("--model")
        .arg(model)
        .arg("--variant-dir")
        .arg(common::cpu_dir())
        .args([
            "--token-ids",
            "--greedy",
            "--threads",
            "1",
            "-n",
            &n.to_string(),
        ]);
    if let Some(rpc) = rpc {
        command.args(["--rpc", rpc]);
    }
    command.arg(prompt);
    command
}

fn ids(stdout: &str) -> Vec<i32> {
    stdout
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// `generated: N tokens, X tok/s` of generate's summary line.
fn tokens_per_second(stderr: &str) -> f64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("variant: "))
        .unwrap_or_else(|| panic!("no summary line in {stderr}"));
    let after = line.split("generated: ").nth(1).unwrap();
    let rate = after.split(", ").nth(1).unwrap();
    rate.trim_end_matches(|c: char| !c.is_ascii_digit())
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Layers placed on the device served at `endpoint`, from the `devices:` line.
fn layers_on(stderr: &str, endpoint: &str) -> u32 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("devices: "))
        .unwrap_or_else(|| panic!("no devices line in {stderr}"));
    let marker = format!("({endpoint}): ");
    let at = line
        .find(&marker)
        .unwrap_or_else(|| panic!("{endpoint} not in {line}"));
    line[at + marker.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn two_servers_match_local_cpu(model: PathBuf) {
    let _serial = serial();
    let (a, b) = (Server::start(&[]), Server::start(&[]));
    let servers = format!("{},{}", a.endpoint(), b.endpoint());
    let started = Instant::now();
    let (status, out, err) = run(
        &mut generate(&model, Some(&servers), 16, PROMPT),
        Duration::from_secs(300),
    );
    let remote_time = started.elapsed();
    assert!(status.success(), "generate --rpc failed: {err}");
    let (layers_a, layers_b) = (
        layers_on(&err, &a.endpoint()),
        layers_on(&err, &b.endpoint()),
    );
    println!("{}: {err}", model.display());
    assert!(
        layers_a > 0 && layers_b > 0,
        "layers not on both servers: {err}"
    );
    let (status, local_out, local_err) = run(
        &mut generate(&model, None, 16, PROMPT),
        Duration::from_secs(300),
    );
    assert!(status.success(), "local generate failed: {local_err}");
    let (remote, local) = (ids(&out), ids(&local_out));
    assert_eq!(remote.len(), 16, "{out}");
    println!(
        "{}: {layers_a} + {layers_b} layers on two servers, ids {remote:?} (run took {remote_time:?})",
        model.display()
    );
    assert_eq!(
        remote, local,
        "greedy ids over RPC differ from the local CPU's"
    );
}

#[test]
fn two_servers_match_local_cpu_smollm2() {
    two_servers_match_local_cpu(common::smollm2());
}

#[test]
fn two_servers_match_local_cpu_gemma3() {
    two_servers_match_local_cpu(common::gemma3());
}

#[test]
fn a_server_killed_mid_generation_is_a_typed_error() {
    let _serial = serial();
    let (a, mut b) = (Server::start(&[]), Server::start(&[]));
    let servers = format!("{},{}", a.endpoint(), b.endpoint());
    let mut child = generate(&common::smollm2(), Some(&servers), 3000, LONG_PROMPT)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // Wait for a few tokens, then kill the second server.
    let mut line = String::new();
    for _ in 0..5 {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "generation ended before the kill"
        );
    }
    b.child.kill().unwrap();
    let killed = Instant::now();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if killed.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the client did not end within 60 s of the kill");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = killed.elapsed();
    let err = err_thread.join().unwrap();
    println!("client ended {took:?} after the server was killed: {status}; stderr: {err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), None, "the client itself was killed: {err}");
    }
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: the worker process died")
            || err.contains("error: the worker process sent nothing"),
        "{err}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    drop(a);
}

#[test]
fn a_non_loopback_host_needs_allow_remote() {
    let port = free_port().to_string();
    let (status, _, err) = run(
        Command::new(common::example("rpc_server")).args(["--host", "0.0.0.0", "--port", &port]),
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("not a loopback address") && err.contains("--allow-remote"),
        "{err}"
    );

    let _serial = serial();
    let mut child = Command::new(common::example("rpc_server"))
        .args([
            "--host",
            "0.0.0.0",
            "--port",
            &port,
            "--allow-remote",
            "--threads",
            "1",
            "--variant-dir",
        ])
        .arg(common::cpu_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("listening on ") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.contains("no authentication and no encryption"),
        "{seen}"
    );
    assert!(
        seen.contains(&format!("listening on 0.0.0.0:{port}")),
        "{seen}"
    );
}

/// A one-connection TCP server that reads the HELLO and answers with `answer`.
fn fake_server(answer: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let mut hello = [0u8; 1 + 8 + 24];
            let _ = stream.read_exact(&mut hello);
            let _ = stream.write_all(&answer);
        }
    });
    port
}

fn hello_answer(major: u8, minor: u8) -> Vec<u8> {
    let mut answer = 28u64.to_le_bytes().to_vec();
    answer.extend_from_slice(&[major, minor, 0, 0]);
    answer.extend_from_slice(&[0; 24]);
    answer
}

fn rpc_problem(result: Result<impl std::fmt::Debug, Error>) -> (RpcProblem, String) {
    match result {
        Err(error @ Error::Rpc { problem, .. }) => (problem, error.to_string()),
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

#[test]
fn bad_servers_are_typed_errors_naming_the_endpoint() {
    let quick = ProbeOptions {
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(2),
    };
    // The fake servers first: a port freed before they bind could be handed to one of them.
    let fakes = [
        (fake_server(hello_answer(6, 0)), RpcProblem::Version),
        (fake_server(hello_answer(7, 1)), RpcProblem::Version),
        (
            fake_server(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
            RpcProblem::NotRpc,
        ),
        (fake_server(Vec::new()), RpcProblem::NotRpc),
    ];
    let closed = free_port();
    let cases = std::iter::once((closed, RpcProblem::Unreachable)).chain(fakes);
    for (port, expected) in cases {
        let started = Instant::now();
        let (problem, message) = rpc_problem(probe(&loopback(port), &quick));
        assert_eq!(problem, expected, "{message}");
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert!(started.elapsed() < Duration::from_secs(5), "{message}");
    }
    // A peer that accepts and never answers: no answer within the I/O timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let (problem, message) = rpc_problem(probe(&loopback(port), &quick));
    assert_eq!(problem, RpcProblem::NoAnswer, "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(silent);
}

#[test]
fn generate_reports_bad_endpoints_without_aborting() {
    let model = common::smollm2();
    let closed = free_port();
    let old = fake_server(hello_answer(6, 0));
    for (rpc, code, needle) in [
        (
            format!("127.0.0.1:{closed}"),
            1,
            format!("127.0.0.1:{closed}"),
        ),
        (format!("127.0.0.1:{old}"), 1, "protocol 6.0.0".to_string()),
        ("127.0.0.1".to_string(), 2, "malformed endpoint".to_string()),
        (
            "127.0.0.1:1,".to_string(),
            2,
            "malformed endpoint".to_string(),
        ),
        ("[::1]:5".to_string(), 1, "unsupported endpoint".to_string()),
    ] {
        let started = Instant::now();
        let (status, _, err) = run(
            &mut generate(&model, Some(&rpc), 4, PROMPT),
            Duration::from_secs(120),
        );
        let took = started.elapsed();
        assert_eq!(status.code(), Some(code), "--rpc {rpc}: {err}");
        assert!(err.contains(&needle), "--rpc {rpc}: {err}");
        assert!(!err.contains("worker process died"), "--rpc {rpc}: {err}");
        println!("--rpc {rpc}: exit {code} in {took:?}: {}", err.trim());
    }
}

#[test]
fn server_options_are_checked_before_ggml() {
    let library = library();
    let options = |port: u16| RpcServerOptions {
        port,
        threads: 1,
        ..RpcServerOptions::default()
    };
    let port = free_port();
    let server = RpcServer::new(library, options(port)).expect("a valid server");
    assert_eq!(server.endpoint().to_string(), format!("127.0.0.1:{port}"));
    assert_eq!(server.devices().len(), 1);
    assert_eq!(server.devices()[0].name, "CPU");

    let (problem, message) = rpc_problem(RpcServer::new(
        library,
        RpcServerOptions {
            devices: vec!["NoSuchDevice0".into()],
            ..options(port)
        },
    ));
    assert_eq!(problem, RpcProblem::Device, "{message}");
    assert!(
        message.contains("NoSuchDevice0") && message.contains("CPU"),
        "{message}"
    );
    let (problem, _) = rpc_problem(RpcServer::new(
        library,
        RpcServerOptions {
            devices: vec!["CPU".into(), "cpu".into()],
            ..options(port)
        },
    ));
    assert_eq!(problem, RpcProblem::Device);
    let (problem, _) = rpc_problem(RpcServer::new(
        library,
        RpcServerOptions {
            threads: 0,
            ..options(port)
        },
    ));
    assert_eq!(problem, RpcProblem::Threads);
    let file = tempfile::NamedTempFile::new().unwrap();
    let (problem, message) = rpc_problem(RpcServer::new(
        library,
        RpcServerOptions {
            cache_dir: Some(file.path().to_path_buf()),
            ..options(port)
        },
    ));
    assert_eq!(problem, RpcProblem::CacheDir, "{message}");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("rpc-cache");
    let server = RpcServer::new(
        library,
        RpcServerOptions {
            cache_dir: Some(cache.clone()),
            ..options(port)
        },
    )
    .unwrap();
    assert!(cache.is_dir() && server.cache_dir() == Some(cache.as_path()));
    let taken = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (problem, message) = rpc_problem(RpcServer::new(library, options(port)));
    assert_eq!(problem, RpcProblem::Bind, "{message}");
    assert!(message.contains("in use"), "{message}");
    drop(taken);
    let (problem, _) = rpc_problem(RpcServer::new(
        library,
        RpcServerOptions {
            host: Ipv4Addr::new(192, 0, 2, 1),
            ..options(port)
        },
    ));
    assert_eq!(problem, RpcProblem::Bind);
    let (problem, _) = rpc_problem(RpcServer::new(library, options(0)));
    assert_eq!(problem, RpcProblem::Malformed);
}

#[test]
fn the_pinned_protocol_constants_match_the_source() {
    let source = common::source_dir().join("ggml");
    let header = std::fs::read_to_string(source.join("include/ggml-rpc.h")).unwrap();
    let define = |name: &str| -> u64 {
        header
            .lines()
            .find_map(|l| {
                l.strip_prefix("#define ")
                    .and_then(|r| r.strip_prefix(name))
            })
            .unwrap_or_else(|| panic!("{name} not in ggml-rpc.h"))
            .trim()
            .parse()
            .unwrap()
    };
    let (major, minor, patch) = gguf_loader::rpc::PROTOCOL_VERSION;
    assert_eq!(define("RPC_PROTO_MAJOR_VERSION"), u64::from(major));
    assert_eq!(define("RPC_PROTO_MINOR_VERSION"), u64::from(minor));
    assert_eq!(define("RPC_PROTO_PATCH_VERSION"), u64::from(patch));
    assert_eq!(
        define("GGML_RPC_MAX_SERVERS"),
        gguf_loader::rpc::MAX_SERVERS as u64
    );
    let cpp = std::fs::read_to_string(source.join("src/ggml-rpc/ggml-rpc.cpp")).unwrap();
    let start = cpp.find("enum rpc_cmd {").unwrap();
    let body = &cpp[start..start + cpp[start..].find('}').unwrap()];
    let commands: Vec<&str> = body
        .lines()
        .skip(1)
        .map(|l| {
            l.trim()
                .trim_end_matches(',')
                .split('=')
                .next()
                .unwrap()
                .trim()
        })
        .filter(|l| l.starts_with("RPC_CMD_"))
        .collect();
    use gguf_loader::sys::upstream::rpc as sys;
    for (name, value) in [
        ("RPC_CMD_GET_DEVICE_MEMORY", sys::RPC_CMD_GET_DEVICE_MEMORY),
        ("RPC_CMD_HELLO", sys::RPC_CMD_HELLO),
        ("RPC_CMD_DEVICE_COUNT", sys::RPC_CMD_DEVICE_COUNT),
    ] {
        assert_eq!(
            commands.iter().position(|c| *c == name),
            Some(value as usize),
            "{name} in {commands:?}"
        );
    }
    let transport = std::fs::read_to_string(source.join("src/ggml-rpc/transport.h")).unwrap();
    assert!(transport.contains(&format!(
        "RPC_CONN_CAPS_SIZE = {};",
        sys::RPC_CONN_CAPS_SIZE
    )));
    for needle in [
        "struct rpc_msg_hello_rsp {\n    uint8_t major;\n    uint8_t minor;\n    uint8_t patch;\n    uint8_t padding;\n    uint8_t conn_caps[RPC_CONN_CAPS_SIZE];",
        "struct rpc_msg_hello_req {\n    uint8_t conn_caps[RPC_CONN_CAPS_SIZE];",
        "struct rpc_msg_get_device_memory_rsp {\n    uint64_t free_mem;\n    uint64_t total_mem;",
        "struct rpc_msg_device_count_rsp {\n    uint32_t device_count;",
    ] {
        assert!(cpp.contains(needle), "ggml-rpc.cpp changed: {needle}");
    }
}

/// Counts the bytes through a TCP proxy in front of `target`, in both directions.
struct Proxy {
    port: u16,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, down) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let counters = (Arc::clone(&up), Arc::clone(&down));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, target))
                else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                for (from, to, counter) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        Arc::clone(&counters.0),
                    ),
                    (server, client, Arc::clone(&counters.1)),
                ] {
                    std::thread::spawn(move || pump(from, to, &counter));
                }
            }
        });
        Proxy { port, up, down }
    }

    fn total(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::SeqCst),
            self.down.load(Ordering::SeqCst),
        )
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, counter: &AtomicU64) {
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                counter.fetch_add(n as u64, Ordering::SeqCst);
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

#[test]
fn rpc_throughput_and_bytes_per_token() {
    let _serial = serial();
    let model = common::smollm2();
    let (a, b) = (Server::start(&[]), Server::start(&[]));
    // Bytes both ways through counting proxies, and the generation rate.
    let measure = |n: usize, gpu_layers: &str| {
        let (pa, pb) = (Proxy::start(a.port), Proxy::start(b.port));
        let servers = format!("127.0.0.1:{},127.0.0.1:{}", pa.port, pb.port);
        let mut command = generate(&model, Some(&servers), n, LONG_PROMPT);
        command.args(["--gpu-layers", gpu_layers]);
        let (status, out, err) = run(&mut command, Duration::from_secs(300));
        assert!(status.success(), "{err}");
        assert_eq!(ids(&out).len(), n, "{err}");
        // The worker has exited: every connection is closed and counted.
        std::thread::sleep(Duration::from_millis(200));
        let ((ua, da), (ub, db)) = (pa.total(), pb.total());
        (ua + ub, da + db, tokens_per_second(&err))
    };
    let (short, long) = (16, 80);
    let per_token = |gpu_layers: &str| {
        let (up_short, down_short, _) = measure(short, gpu_layers);
        let (up_long, down_long, rate) = measure(long, gpu_layers);
        let tokens = (long - short) as f64;
        (
            (up_long - up_short) as f64 / tokens,
            (down_long - down_short) as f64 / tokens,
            rate,
            up_short,
        )
    };
    // Every layer remote (the output layer too: llama.cpp offloads the last N layers, output
    // first, so the logits come back over the network for each token).
    let (up_all, down_all, rate_all, loaded) = per_token("all");
    let (status, out, err) = run(
        &mut generate(&model, None, long, LONG_PROMPT),
        Duration::from_secs(300),
    );
    assert!(status.success() && ids(&out).len() == long, "{err}");
    let local_rate = tokens_per_second(&err);
    println!(
        "SmolLM2 Q4_1, 1 thread per process, {long} tokens: local CPU {local_rate:.1} tok/s, two loopback RPC servers {rate_all:.1} tok/s. Per generated token (both servers together) the client sends {up_all:.0} bytes and receives {down_all:.0} bytes; loading sent {} MB",
        loaded / 1_000_000
    );
    assert!(up_all > 0.0 && down_all > 0.0);
}

child_cases! {
    /// The probe's cases through `Model::load` with RPC servers: refused before anything
    /// reaches C (in a child process: a check that let one through would abort in ggml-rpc).
    fn model_loads_with_bad_servers_are_refused_before_c() {
        let closed = free_port();
        let library = library();
        let model = common::smollm2();
        let params = || ModelParams::new().with_gpu_layers(gguf_loader::GpuLayers::All);
        let (problem, message) = rpc_problem(Model::load(
            library,
            &model,
            params().with_rpc_servers(vec![loopback(closed)]),
        ));
        assert_eq!(problem, RpcProblem::InProcess, "{message}");
        for (port, expected) in [
            (closed, RpcProblem::Unreachable),
            (fake_server(hello_answer(6, 0)), RpcProblem::Version),
            (fake_server(b"garbage".to_vec()), RpcProblem::NotRpc),
        ] {
            let (problem, message) = rpc_problem(Model::load(
                library,
                &model,
                params()
                    .with_rpc_servers(vec![loopback(port)])
                    .with_rpc_in_process(true),
            ));
            assert_eq!(problem, expected, "{message}");
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        }
        // localhost resolves to the same IPv4 address: one server listed twice.
        let twice = vec![
            loopback(closed),
            format!("localhost:{closed}").parse().unwrap(),
        ];
        let (problem, _) = rpc_problem(Model::load(
            library,
            &model,
            params().with_rpc_servers(twice).with_rpc_in_process(true),
        ));
        assert_eq!(problem, RpcProblem::ServerList);
        let ipv6 = vec!["[::1]:50052".parse().unwrap()];
        let (problem, _) = rpc_problem(Model::load(
            library,
            &model,
            params().with_rpc_servers(ipv6).with_rpc_in_process(true),
        ));
        assert_eq!(problem, RpcProblem::Unsupported);
    }

    /// With one CPU module selected (no plugin but that module), the RPC plugin is loadable on
    /// demand and llama.cpp reports RPC support afterwards.
    fn the_rpc_plugin_loads_on_demand() {
        let dir = VariantDirectory::open(&common::cpu_dir()).unwrap();
        assert!(dir.aux_backends().contains(&gguf_loader::loader::AuxBackend::Rpc));
        assert!(dir.backends.iter().all(|b| b.name() != "rpc"), "rpc is not a variant backend");
        let module = dir.cpu_modules.iter().find(|m| *m == "x64").unwrap().clone();
        let library = LlamaLibrary::load(&dir, gguf_loader::loader::PluginSelection::CpuModule(module)).unwrap();
        assert!(library.supports_rpc());
        assert!(!library.llama_supports_rpc(), "{:?}", library.backend_names());
        library.load_rpc_plugin().unwrap();
        assert!(library.llama_supports_rpc());
        assert!(library.backend_names().iter().any(|n| n == "RPC"), "{:?}", library.backend_names());
        library.load_rpc_plugin().unwrap();
    }
}

/// The worker API directly: cancellation is forwarded and keeps the worker in step, and a
/// server that stops answering (SIGSTOP) trips the stall watchdog instead of hanging.
#[cfg(unix)]
#[test]
fn worker_cancellation_and_stall_watchdog() {
    use gguf_loader::worker::{WorkerModel, WorkerOptions, WorkerRequest, WorkerSpec};
    use gguf_loader::StopReason;
    let _serial = serial();
    let (a, b) = (Server::start(&[]), Server::start(&[]));
    let mut spec = WorkerSpec::new(common::smollm2());
    spec.variant_dir = Some(common::cpu_dir());
    spec.rpc_servers = vec![loopback(a.port), loopback(b.port)];
    spec.gpu_layers = gguf_loader::GpuLayers::All;
    spec.threads = Some(1);
    let stall = Duration::from_secs(3);
    let options = WorkerOptions::new(spec)
        .with_program(common::example("generate"), Vec::new())
        .with_stall_timeout(stall);
    let mut worker = WorkerModel::spawn(options).expect("spawning the worker");
    let info = worker.info().clone();
    assert!(info.pid > 0 && info.n_layer == 30, "{info:?}");
    let remote: u32 = info
        .devices
        .iter()
        .filter(|d| d.backend == "RPC")
        .map(|d| d.layers)
        .sum();
    assert_eq!(remote, 31, "{info:?}");

    // Cancel after three pieces: the generation ends as cancelled.
    let mut generation = worker
        .generate(WorkerRequest::greedy(LONG_PROMPT, 2000))
        .unwrap();
    for _ in 0..3 {
        generation.next().unwrap().unwrap();
    }
    generation.cancel();
    let rest = generation.by_ref().count();
    assert!(rest < 100, "{rest} pieces after the cancel");
    assert_eq!(
        generation.summary().unwrap().stop_reason,
        StopReason::Cancelled
    );
    drop(generation);
    // Dropped early: cancelled and drained, the next request is answered in step.
    {
        let mut generation = worker
            .generate(WorkerRequest::greedy(LONG_PROMPT, 2000))
            .unwrap();
        generation.next().unwrap().unwrap();
    }
    let pieces: Vec<_> = worker
        .generate(WorkerRequest::greedy(PROMPT, 8))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(pieces.iter().filter(|p| p.token.is_some()).count(), 8);

    // A stopped server: the worker blocks in ggml-rpc, the watchdog kills it.
    let mut generation = worker
        .generate(WorkerRequest::greedy(LONG_PROMPT, 2000))
        .unwrap();
    generation.next().unwrap().unwrap();
    let stop = |signal: &str| {
        let status = Command::new("kill")
            .args([signal, &b.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    stop("-STOP");
    let stopped = Instant::now();
    let error = generation
        .find_map(Result::err)
        .expect("an error after the server stopped");
    let took = stopped.elapsed();
    stop("-CONT");
    println!("stalled worker reported after {took:?}: {error}");
    assert!(
        matches!(error, Error::WorkerStalled { waited, .. } if waited == stall),
        "{error}"
    );
    assert!(took < stall + Duration::from_secs(10), "{took:?}");
    drop(generation);
    assert!(matches!(
        worker.generate(WorkerRequest::greedy(PROMPT, 1)),
        Err(Error::WorkerStalled { .. })
    ));
}
