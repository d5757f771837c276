//! A multi-turn chat over a [`Session`]: the conversation is rendered with the model's chat
//! template (or one of llama.cpp's built-in templates) every turn, and only the new tokens are
//! decoded.
//!
//! ```text
//! chat [--model PATH] [--system TEXT] [--template NAME] [--greedy] [-n N] [--threads T]
//!      [--variant NAME] [--variant-dir DIR]                  interactive
//! chat --model PATH --messages FILE --render [--template NAME] print the rendered prompt
//! chat --model PATH --script FILE [--greedy] [-n N]           play user messages
//! ```
//! Interactive commands: `/save FILE`, `/load FILE`, `/reset`, `/quit`.

mod support;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gguf_loader::chat::{apply_builtin, parse_messages_json};
use gguf_loader::{
    ChatMessage, ChatRequest, ChatTemplate, Context, ContextParams, GenerateOptions, Model,
    ModelParams, Sampler, Session,
};

const USAGE: &str = "usage: chat [--model PATH] [--system TEXT] [--template NAME] [--greedy] [-n N] [--threads T] [--variant NAME] [--variant-dir DIR] [--messages FILE --render | --script FILE]";

const OPTIONS: &str = "\
A multi-turn chat: the conversation is rendered with the model's chat template (or a built-in
one) every turn and only the new tokens are decoded. Interactive commands: /save FILE,
/load FILE, /reset, /quit.

options:
  -m, --model PATH          GGUF model (default: $GGUF_LOADER_SMOLLM2, else the cached SmolLM2)
      --system TEXT         system prompt
      --template NAME       one of llama.cpp's built-in templates instead of the model's
      --messages FILE       a JSON list of {\"role\", \"content\"} (or {\"messages\", \"tools\"})
      --render              print the rendered --messages prompt and exit
      --script FILE         play a JSON list of user messages; stderr gets one line per turn:
                            turn K: decoded D reused R
      --greedy              greedy sampling (default: temperature 0.7, top-k 40, seed 42)
  -n, --n-predict N         most tokens per reply (default 256)
  -t, --threads T           threads
      --variant NAME        force a variant (cpu, cpu-haswell, vulkan, ...)
      --variant-dir DIR     search only this directory for variants
  -h, --help                print this help";

#[derive(Debug, Default)]
struct Args {
    model: Option<PathBuf>,
    system: Option<String>,
    template: Option<String>,
    messages: Option<PathBuf>,
    render: bool,
    script: Option<PathBuf>,
    greedy: bool,
    n: usize,
    threads: Option<i32>,
    variant: Option<String>,
    variant_dir: Option<PathBuf>,
}

fn parse_args(raw: impl IntoIterator<Item = OsString>) -> Result<Option<Args>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut args = Args {
        n: 256,
        ..Args::default()
    };
    let mut parser = lexopt::Parser::from_args(raw);
    while let Some(arg) = parser.next().map_err(|e| format!("{e}\n{USAGE}"))? {
        let flag = support::flag_name(&arg);
        match arg {
            Short('m') | Long("model") => args.model = Some(support::path(&mut parser, &flag)?),
            Long("system") => args.system = Some(support::text(&mut parser, &flag)?),
            Long("template") => args.template = Some(support::text(&mut parser, &flag)?),
            Long("messages") => args.messages = Some(support::path(&mut parser, &flag)?),
            Long("render") => args.render = true,
            Long("script") => args.script = Some(support::path(&mut parser, &flag)?),
            Long("greedy") => args.greedy = true,
            Short('n') | Long("n-predict") => args.n = support::parsed(&mut parser, &flag)?,
            Short('t') | Long("threads") => {
                args.threads = Some(support::parsed(&mut parser, &flag)?)
            }
            Long("variant") => args.variant = Some(support::text(&mut parser, &flag)?),
            Long("variant-dir") => args.variant_dir = Some(support::path(&mut parser, &flag)?),
            Short('h') | Long("help") => return Ok(None),
            Value(v) => return Err(format!("unexpected argument {v:?}\n{USAGE}")),
            Short(_) | Long(_) => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if args.render && args.messages.is_none() {
        return Err("--render needs --messages FILE".into());
    }
    if args.messages.is_some() && !args.render {
        return Err("--messages is for --render".into());
    }
    if args.script.is_some() && args.render {
        return Err("--script and --render exclude each other".into());
    }
    Ok(Some(args))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Renders `messages` with the chosen template, ending with the assistant's turn.
fn render(
    model: &Model,
    template: &Option<String>,
    messages: &[ChatMessage],
    tools: Option<serde_json::Value>,
) -> gguf_loader::Result<String> {
    match template {
        Some(name) => apply_builtin(model.library(), name, messages, true),
        None => {
            let mut request = ChatRequest::new(messages).with_generation_prompt(true);
            if let Some(tools) = tools {
                request = request.with_tools(tools);
            }
            ChatTemplate::from_model(model)?.render(&request)
        }
    }
}

/// Whether the rendered prompt already starts with the BOS text (then none is added).
fn options_for(model: &Model, prompt: &str, n: usize) -> GenerateOptions {
    let bos = model
        .token_bos()
        .and_then(|t| model.token_to_piece(t, true).ok())
        .filter(|b| !b.is_empty());
    GenerateOptions {
        add_special: !bos.is_some_and(|b| prompt.starts_with(&b)),
        ..GenerateOptions::default().with_max_tokens(n)
    }
}

struct Chat {
    model: Model,
    session: Session,
    sampler: Sampler,
    template: Option<String>,
    messages: Vec<ChatMessage>,
    n: usize,
}

impl Chat {
    /// One turn: streams the reply to stdout and returns (reply, decoded, reused).
    fn turn(&mut self, user: &str) -> Result<(usize, usize), Box<dyn std::error::Error>> {
        self.messages.push(ChatMessage::new("user", user));
        let prompt = render(&self.model, &self.template, &self.messages, None)?;
        let options = options_for(&self.model, &prompt, self.n);
        let mut stdout = std::io::stdout().lock();
        let mut reply = String::new();
        let mut generation = self.session.generate(prompt, &mut self.sampler, options)?;
        for piece in generation.by_ref() {
            let piece = piece?;
            write!(stdout, "{}", piece.text)?;
            stdout.flush()?;
            reply.push_str(&piece.text);
        }
        writeln!(stdout)?;
        let summary = generation.summary().cloned().ok_or("no summary")?;
        self.messages
            .push(ChatMessage::new("assistant", reply.trim()));
        Ok((summary.prompt_tokens, summary.reused_tokens))
    }

    fn save(&mut self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        self.session.save_state_file(path)?;
        let messages = serde_json::to_string_pretty(&self.messages)?;
        std::fs::write(messages_path(path), messages)?;
        Ok(())
    }

    fn load(&mut self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let (messages, _) = parse_messages_json(&read(&messages_path(path))?)?;
        self.session.load_state_file(path)?;
        self.messages = messages;
        Ok(())
    }
}

/// Where `/save FILE` keeps the conversation's messages.
fn messages_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".messages.json");
    PathBuf::from(name)
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let options = support::select_options(args.variant.as_deref(), args.variant_dir.as_deref())?;
    let model_path = args.model.clone().unwrap_or_else(support::default_model);
    if args.render {
        let file = args.messages.as_ref().ok_or("--render needs --messages")?;
        let (messages, tools) = parse_messages_json(&read(file)?)?;
        // Rendering needs the vocabulary and the template only.
        let (_, model) = Model::load_best(&options, &model_path, |_| {
            ModelParams::new().vocab_only(true)
        })?;
        print!("{}", render(&model, &args.template, &messages, tools)?);
        std::io::stdout().flush()?;
        return Ok(());
    }
    let (_, model) = Model::load_best(&options, &model_path, |_| ModelParams::new())?;
    let mut params =
        ContextParams::default().with_n_ctx(4096.min(model.n_ctx_train().max(256) as u32));
    if let Some(threads) = args.threads {
        params = params.with_threads(threads);
    }
    let session = Session::new(Context::new(&model, params)?);
    let sampler = if args.greedy {
        Sampler::greedy(&model)?
    } else {
        Sampler::builder(&model)
            .top_k(40)
            .temp(0.7)
            .dist(42)
            .build()?
    };
    let mut chat = Chat {
        model,
        session,
        sampler,
        template: args.template.clone(),
        messages: args
            .system
            .iter()
            .map(|s| ChatMessage::new("system", s.as_str()))
            .collect(),
        n: args.n,
    };
    if let Some(script) = &args.script {
        let text = read(script)?;
        let turns: Vec<String> = serde_json::from_str(&text)
            .map_err(|e| format!("{}: expected a JSON list of strings: {e}", script.display()))?;
        for (k, user) in turns.iter().enumerate() {
            let (decoded, reused) = chat.turn(user)?;
            eprintln!("turn {}: decoded {decoded} reused {reused}", k + 1);
        }
        return Ok(());
    }
    let stdin = std::io::stdin();
    eprint!("> ");
    for line in stdin.lock().lines() {
        let line = line?;
        let line = line.trim();
        let result = match line.split_once(' ').unwrap_or((line, "")) {
            ("/quit", _) => break,
            ("/reset", _) => {
                chat.session.reset();
                chat.messages.retain(|m| m.role == "system");
                Ok(())
            }
            ("/save", file) if !file.is_empty() => chat.save(Path::new(file.trim())),
            ("/load", file) if !file.is_empty() => chat.load(Path::new(file.trim())),
            _ if line.is_empty() => Ok(()),
            _ => chat.turn(line).map(|_| ()),
        };
        if let Err(e) = result {
            eprintln!("error: {e}");
        }
        eprint!("> ");
    }
    Ok(())
}

fn main() -> ExitCode {
    support::main_with(
        USAGE,
        OPTIONS,
        || parse_args(std::env::args_os().skip(1)),
        run,
    )
}
