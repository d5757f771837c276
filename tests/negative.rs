//! Misuse of the safe API, on the real llama.cpp libraries and models: every case must end in a
//! typed error (or the right answer), never an abort, a segfault or a C++ exception.
//!
//! Each case runs in a child process (this test binary, re-executed with `GGUF_LOADER_TEST_CASE` set: `common::child_cases!`),
//! so a case that aborts fails its own test and the others still run. The parent checks that
//! the child exited normally and printed the case's closing line.

#[macro_use]
mod common;

use std::sync::OnceLock;

use gguf_loader::loader::{LlamaLibrary, PluginSelection, VariantDirectory};
use gguf_loader::{
    Batch, Context, ContextParams, Error, GenerateOptions, MetadataValue, Model, ModelParams,
    Pooling, Prompt, Sampler, Token,
};

fn library() -> &'static LlamaLibrary {
    static LIBRARY: OnceLock<LlamaLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = VariantDirectory::open(&common::cpu_dir()).expect("cpu variant");
        LlamaLibrary::load(&dir, PluginSelection::AllInDirectory).expect("load cpu variant")
    })
}

fn load(path: std::path::PathBuf) -> Model {
    Model::load(library(), path, ModelParams::new()).expect("model")
}

fn tiny() -> Model {
    load(common::tiny_llama())
}

fn params() -> ContextParams {
    ContextParams::default()
        .with_n_ctx(128)
        .with_n_batch(64)
        .with_threads(1)
}

fn ctx(model: &Model) -> Context {
    Context::new(model, params()).expect("context")
}

/// A context that decoded `tokens` in sequence 0 with logits for the last one.
fn decoded(model: &Model, tokens: &[Token]) -> Context {
    let mut context = ctx(model);
    let mut batch = Batch::new(64, 1).unwrap();
    batch.add_sequence(tokens, 0, 0, true).unwrap();
    context.decode(&mut batch).unwrap();
    context
}

/// The token whose text is exactly `piece` (the tiny model has whole-word tokens like " the").
fn token_of(model: &Model, piece: &str) -> Token {
    (0..model.n_vocab())
        .map(Token)
        .find(|t| model.token_to_piece(*t, true).ok().as_deref() == Some(piece))
        .unwrap_or_else(|| panic!("no token {piece:?}"))
}

fn words(model: &Model, text: &str) -> Vec<Token> {
    model.tokenize(text, true, false).unwrap()
}

#[track_caller]
fn invalid<T: std::fmt::Debug>(result: gguf_loader::Result<T>, parameter: &str) {
    match result {
        Err(Error::InvalidArgument {
            parameter: p,
            reason,
        }) if p == parameter => {
            println!("{parameter}: {reason}");
        }
        other => panic!("expected InvalidArgument {{ parameter: {parameter} }}, got {other:?}"),
    }
}

#[track_caller]
fn not_supported<T: std::fmt::Debug>(result: gguf_loader::Result<T>) {
    match result {
        Err(e @ Error::NotSupported { .. }) => println!("{e}"),
        other => panic!("expected NotSupported, got {other:?}"),
    }
}

const DIGITS: &str = r#"root ::= [0-9]+"#;

child_cases! {
    // ---- 1. Sampler chains: pickers, and filters llama.cpp would silently ignore.
    fn filters_that_llama_cpp_ignores_are_refused() {
        let m = tiny();
        invalid(Sampler::builder(&m).top_k(0).greedy().build(), "top_k");
        invalid(Sampler::builder(&m).top_k(-5).greedy().build(), "top_k");
        invalid(Sampler::builder(&m).top_n_sigma(0.0).greedy().build(), "top_n_sigma");
        invalid(Sampler::builder(&m).xtc(0.5, 0.7, 1, 1).dist(1).build(), "xtc_threshold");
        invalid(Sampler::builder(&m).xtc(0.0, 0.1, 1, 1).dist(1).build(), "xtc_probability");
        invalid(Sampler::builder(&m).penalties(0, 1.1, 0.0, 0.0).greedy().build(), "penalty_last_n");
        invalid(Sampler::builder(&m).penalties(-1, 1.1, 0.0, 0.0).greedy().build(), "penalty_last_n");
        invalid(Sampler::builder(&m).dry(0.8, 0.5, 2, 64, &["\n"]).greedy().build(), "dry_base");
        invalid(Sampler::builder(&m).dry(0.8, 1.75, 2, 0, &["\n"]).greedy().build(), "dry_penalty_last_n");
        // Identity settings add nothing (the chain is just the picker).
        let s = Sampler::builder(&m).temp(1.0).top_p(1.0, 1).min_p(0.0, 1).greedy().build().unwrap();
        assert_eq!(s.names(), vec!["greedy".to_string()]);
    }

    fn every_picker_finishes_a_working_chain() {
        let m = tiny();
        let prompt = words(&m, "hello world");
        for sampler in [
            Sampler::builder(&m).greedy().build(),
            Sampler::builder(&m).top_k(10).temp(0.7).dist(3).build(),
            Sampler::builder(&m).mirostat(3, 5.0, 0.1, 100).build(),
            Sampler::builder(&m).mirostat_v2(3, 5.0, 0.1).build(),
        ] {
            let mut sampler = sampler.unwrap();
            let mut context = decoded(&m, &prompt);
            let token = sampler.sample(&mut context, -1).unwrap();
            m.check_token(token).unwrap();
        }
    }

    // ---- 2. Samplers are bound to their model; accept is checked.
    fn sampler_of_another_model_is_refused() {
        let a = tiny();
        let b = load(common::smollm2());
        let mut sampler = Sampler::greedy(&a).unwrap();
        let mut context = decoded(&b, &words(&b, "Hello"));
        match sampler.sample(&mut context, -1) {
            Err(e @ Error::ModelMismatch { .. }) => println!("{e}"),
            other => panic!("{other:?}"),
        }
        let mut greedy_a = Sampler::greedy(&a).unwrap();
        match context.generate("Hi", &mut greedy_a, GenerateOptions::default()) {
            Err(Error::ModelMismatch { .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    fn same_file_loaded_twice_is_another_model() {
        let a = tiny();
        let b = tiny();
        let mut sampler = Sampler::greedy(&a).unwrap();
        let mut context = decoded(&b, &words(&b, "hello"));
        assert!(matches!(sampler.sample(&mut context, -1), Err(Error::ModelMismatch { .. })));
    }

    fn accept_checks_token_ids() {
        let m = tiny();
        let mut sampler = Sampler::builder(&m).penalties(16, 1.1, 0.0, 0.0).greedy().build().unwrap();
        for bad in [-1, m.n_vocab(), i32::MAX, i32::MIN] {
            assert!(matches!(sampler.accept(Token(bad)), Err(Error::TokenOutOfRange { .. })), "{bad}");
        }
        sampler.accept(Token(5)).unwrap();
    }

    fn grammar_rejected_token_is_an_error() {
        let m = tiny();
        let mut sampler = Sampler::builder(&m).grammar(DIGITS, "root").greedy().build().unwrap();
        let hello = words(&m, "hello")[1];
        match sampler.accept(hello) {
            Err(e @ Error::GrammarRejected { .. }) => println!("{e}"),
            other => panic!("{other:?}"),
        }
        // The grammar is unchanged: a digit is still accepted.
        let one = m.tokenize("1", false, false).unwrap();
        sampler.accept(*one.last().unwrap()).unwrap();
    }

    fn end_of_generation_before_the_grammar_is_complete() {
        let m = tiny();
        let grammar = r#"root ::= "the" " " "cat""#;
        let mut sampler = Sampler::builder(&m).grammar(grammar, "root").greedy().build().unwrap();
        let eos = m.token_eos().unwrap();
        match sampler.accept(eos) {
            Err(Error::GrammarRejected { token: Some(t), reason }) => {
                assert_eq!(t, eos);
                assert!(reason.contains("end of generation"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    fn grammar_that_allows_nothing_more_stops_with_an_error() {
        // After "7" the grammar is complete; on a model whose EOS is then the only allowed
        // token the picker still finds it; generation ends cleanly or with a typed error.
        let m = tiny();
        let mut sampler = Sampler::builder(&m).grammar(r#"root ::= "7""#, "root").dist(1).build().unwrap();
        let mut context = ctx(&m);
        let result: Vec<_> = context
            .generate("hello", &mut sampler, GenerateOptions::default().with_max_tokens(5))
            .unwrap()
            .collect();
        for piece in &result {
            if let Err(e) = piece {
                assert!(matches!(e, Error::GrammarRejected { .. }), "{e:?}");
            }
        }
    }

    fn banning_every_token_is_a_typed_error() {
        let m = tiny();
        let all: Vec<(Token, f32)> = (0..m.n_vocab()).map(|t| (Token(t), f32::NEG_INFINITY)).collect();
        for mut sampler in [
            Sampler::builder(&m).logit_bias(&all).greedy().build().unwrap(),
            Sampler::builder(&m).logit_bias(&all).dist(1).build().unwrap(),
            Sampler::builder(&m).logit_bias(&all).mirostat_v2(1, 5.0, 0.1).build().unwrap(),
        ] {
            let mut context = decoded(&m, &words(&m, "hello"));
            match sampler.sample(&mut context, -1) {
                Err(e @ Error::Sampling { .. }) => println!("{e}"),
                other => panic!("{other:?}"),
            }
        }
    }

    fn sampler_outlives_model_and_builder_drop_order() {
        let m = tiny();
        let builder = Sampler::builder(&m).grammar(DIGITS, "root").dry(0.8, 1.75, 2, 64, &["\n"]);
        drop(m);
        drop(builder); // grammar and DRY samplers freed while the vocabulary is alive
        let m = tiny();
        let sampler = Sampler::builder(&m).grammar(DIGITS, "root").greedy().build().unwrap();
        let clone = sampler.try_clone().unwrap();
        drop(m);
        drop(sampler);
        drop(clone);
    }

    // ---- 3. Inputs that make llama.cpp throw, allocate without bound or compute NaN.
    fn lazy_grammar_patterns_are_compiled_in_rust() {
        let m = tiny();
        invalid(Sampler::builder(&m).grammar_lazy(DIGITS, "root", &["(unclosed"], &[]).greedy().build(), "trigger pattern");
        invalid(Sampler::builder(&m).grammar_lazy(DIGITS, "root", &["[z-a]"], &[]).greedy().build(), "trigger pattern");
        invalid(Sampler::builder(&m).grammar_lazy(DIGITS, "root", &[], &[]).greedy().build(), "grammar triggers");
        assert!(matches!(
            Sampler::builder(&m).grammar_lazy(DIGITS, "root", &[], &[Token(m.n_vocab())]).greedy().build(),
            Err(Error::TokenOutOfRange { .. })
        ));
    }

    fn lazy_trigger_text_that_does_not_fit_the_grammar() {
        let m = tiny();
        let mut sampler = Sampler::builder(&m)
            .grammar_lazy(DIGITS, "root", &["[\\s\\S]*?(cat)[\\s\\S]*"], &[])
            .greedy()
            .build()
            .unwrap();
        let tokens = m.tokenize(" the cat", false, false).unwrap();
        let mut outcome = Ok(());
        for t in tokens {
            outcome = sampler.accept(t);
            if outcome.is_err() {
                break;
            }
        }
        match outcome {
            Err(e @ Error::GrammarRejected { .. }) => println!("{e}"),
            other => panic!("{other:?}"),
        }
        // Re-armed: text that does not trigger is accepted again.
        sampler.accept(token_of(&m, " dog")).unwrap();
    }

    fn lazy_trigger_token_the_grammar_rejects() {
        let m = tiny();
        let trigger = token_of(&m, " cat");
        let mut sampler = Sampler::builder(&m)
            .grammar_lazy(DIGITS, "root", &[], &[trigger])
            .greedy()
            .build()
            .unwrap();
        sampler.accept(token_of(&m, " dog")).unwrap();
        assert!(matches!(sampler.accept(trigger), Err(Error::GrammarRejected { .. })));
    }

    fn lazy_grammar_generates_after_its_trigger() {
        let m = tiny();
        let trigger = token_of(&m, " the");
        let mut sampler = Sampler::builder(&m)
            .grammar_lazy(r#"root ::= " the" [0-9]+"#, "root", &[], &[trigger])
            .greedy()
            .build()
            .unwrap();
        let mut context = decoded(&m, &words(&m, "hello"));
        sampler.accept(trigger).unwrap();
        // Once triggered, only digits can follow.
        for _ in 0..3 {
            let t = sampler.sample(&mut context, -1).unwrap();
            let piece = m.token_to_piece(t, true).unwrap_or_default();
            assert!(piece.chars().all(|c| c.is_ascii_digit()) || m.is_end_of_generation(t), "{piece:?}");
            let mut batch = Batch::new(1, 1).unwrap();
            let pos = context.memory_pos_max(0).unwrap().unwrap() + 1;
            batch.add(t, pos, &[0], true).unwrap();
            context.decode(&mut batch).unwrap();
        }
    }

    fn unbounded_and_nan_parameters_are_refused() {
        let m = tiny();
        invalid(Sampler::builder(&m).temp(f32::NAN).greedy().build(), "temperature");
        invalid(Sampler::builder(&m).temp(f32::INFINITY).greedy().build(), "temperature");
        invalid(Sampler::builder(&m).temp(-1.0).greedy().build(), "temperature");
        invalid(Sampler::builder(&m).top_p(f32::NAN, 1).greedy().build(), "top_p");
        invalid(Sampler::builder(&m).min_p(2.0, 1).greedy().build(), "min_p");
        invalid(Sampler::builder(&m).typical(f32::NEG_INFINITY, 1).greedy().build(), "typical_p");
        invalid(Sampler::builder(&m).temp_ext(0.8, f32::NAN, 1.0).greedy().build(), "dynatemp_range");
        invalid(Sampler::builder(&m).mirostat(1, f32::NAN, 0.1, 100).build(), "mirostat_tau");
        invalid(Sampler::builder(&m).mirostat_v2(1, 5.0, f32::INFINITY).build(), "mirostat_eta");
        invalid(Sampler::builder(&m).mirostat(1, 5.0, 0.1, 0).build(), "mirostat_m");
        invalid(Sampler::builder(&m).mirostat(1, 5.0, 0.1, 1).build(), "mirostat_m");
        invalid(Sampler::builder(&m).temp(1e-30).greedy().build(), "temperature");
        invalid(Sampler::builder(&m).dry(0.8, 1.75, 65, 64, &["\n"]).greedy().build(), "dry_allowed_length");
        invalid(Sampler::builder(&m).mirostat(1, 5.0, 0.1, m.n_vocab() + 1).build(), "mirostat_m");
        invalid(Sampler::builder(&m).logit_bias(&[(Token(3), f32::NAN)]).greedy().build(), "logit_bias");
        invalid(Sampler::builder(&m).logit_bias(&[(Token(3), f32::INFINITY)]).greedy().build(), "logit_bias");
        invalid(Sampler::builder(&m).penalties(i32::MAX, 1.1, 0.0, 0.0).greedy().build(), "penalty_last_n");
        invalid(Sampler::builder(&m).penalties(64, f32::NAN, 0.0, 0.0).greedy().build(), "repeat_penalty");
        invalid(Sampler::builder(&m).penalties(64, 0.0, 0.0, 0.0).greedy().build(), "repeat_penalty");
        invalid(Sampler::builder(&m).dry(0.8, 1.75, 2, i32::MAX, &["\n"]).greedy().build(), "dry_penalty_last_n");
        invalid(Sampler::builder(&m).dry(0.8, 1.75, -1, 64, &["\n"]).greedy().build(), "dry_allowed_length");
        let many = vec!["x"; 1000];
        invalid(Sampler::builder(&m).dry(0.8, 1.75, 2, 64, &many).greedy().build(), "dry_sequence_breakers");
        let long = "y".repeat(100);
        invalid(Sampler::builder(&m).dry(0.8, 1.75, 2, 64, &[&long]).greedy().build(), "dry_sequence_breakers");
        invalid(Sampler::builder(&m).dry(0.8, 1.75, 2, 64, &[""]).greedy().build(), "dry_sequence_breakers");
    }

    fn grammar_inputs_are_bounded() {
        let m = tiny();
        invalid(Sampler::builder(&m).grammar("", "root").greedy().build(), "grammar");
        let deep = format!("root ::= {}\"a\"{}", "(".repeat(100_000), ")".repeat(100_000));
        invalid(Sampler::builder(&m).grammar(&deep, "root").greedy().build(), "grammar");
        invalid(Sampler::builder(&m).grammar(DIGITS, "").greedy().build(), "grammar root");
        invalid(Sampler::builder(&m).grammar(DIGITS, "missing").greedy().build(), "grammar");
        invalid(Sampler::builder(&m).grammar("root ::= root \"a\"", "root").greedy().build(), "grammar");
        invalid(Sampler::builder(&m).grammar("root ::= \"a\"{99999999}", "root").greedy().build(), "grammar");
        invalid(Sampler::builder(&m).grammar("root ::= <[99999999999999999999]>", "root").greedy().build(), "grammar");
        invalid(Sampler::builder(&m).grammar(DIGITS, "root").grammar(DIGITS, "root").greedy().build(), "grammar");
    }

    fn infill_needs_a_bounded_candidate_set() {
        let m = tiny();
        invalid(Sampler::builder(&m).infill().dist(1).build(), "infill");
        invalid(Sampler::builder(&m).top_k(5000).infill().dist(1).build(), "infill");
        let mut sampler = Sampler::builder(&m).top_k(40).top_p(0.9, 1).infill().dist(1).build().unwrap();
        let mut context = decoded(&m, &words(&m, "hello"));
        m.check_token(sampler.sample(&mut context, -1).unwrap()).unwrap();
    }

    fn thread_counts_are_bounded() {
        let m = tiny();
        invalid(Context::new(&m, params().with_threads(0)), "n_threads");
        invalid(Context::new(&m, params().with_threads(100_000)), "n_threads");
        invalid(Context::new(&m, params().with_threads(Context::max_threads() + 1)), "n_threads");
        let mut context = ctx(&m);
        invalid(context.set_threads(1, 1_000_000), "n_threads_batch");
        invalid(context.set_threads(-3, 1), "n_threads");
        context.set_threads(1, 2).unwrap();
    }

    fn context_parameters_are_checked() {
        let m = tiny();
        invalid(Context::new(&m, params().with_n_ctx(0)), "n_ctx");
        invalid(Context::new(&m, params().with_n_ctx(u32::MAX)), "n_ctx");
        // A KV cache larger than the memory available is refused before llama.cpp allocates
        // and clears it (with overcommit the clearing would get the process killed).
        invalid(Context::new(&load(common::smollm2()), params().with_n_ctx(1 << 30)), "n_ctx");
        invalid(Context::new(&load(common::smollm2()), params().with_n_ctx(1 << 22)), "n_ctx");
        invalid(Context::new(&m, params().with_n_seq_max(0)), "n_seq_max");
        invalid(Context::new(&m, params().with_n_seq_max(100_000)), "n_seq_max");
        invalid(Context::new(&m, params().with_n_batch(2).with_n_seq_max(4)), "n_seq_max");
        invalid(Context::new(&m, ContextParams { rope_freq_base: Some(f32::NAN), ..params() }), "rope_freq_base");
        invalid(Context::new(&m, ContextParams { yarn_ext_factor: Some(f32::NAN), ..params() }), "yarn_ext_factor");
        invalid(Context::new(&m, ContextParams {
            type_v: Some(gguf_loader::CacheType::Q8_0),
            flash_attention: Some(gguf_loader::FlashAttention::Disabled),
            ..params()
        }), "type_v");
    }

    // ---- 4. Context and batch invariants.
    fn batch_sizes_are_bounded() {
        invalid(Batch::new(usize::MAX, 1), "capacity");
        invalid(Batch::new(0, 1), "capacity");
        invalid(Batch::new(1, 0), "n_seq_max");
        invalid(Batch::new(1, 100_000), "n_seq_max");
        invalid(Batch::new(i32::MAX as usize, 256), "capacity");
        let mut big = Batch::new(1 << 20, 256).unwrap();
        let all: Vec<i32> = (0..256).collect();
        big.add(Token(1), 0, &all, true).unwrap();
        invalid(big.add(Token(1), 1, &[0; 257], true), "seq_ids");
        invalid(big.add(Token(1), -1, &[0], true), "position");
    }

    fn encode_needs_an_encoder() {
        let m = tiny();
        let mut context = ctx(&m);
        let mut batch = Batch::new(8, 1).unwrap();
        batch.add_sequence(&words(&m, "hello"), 0, 0, true).unwrap();
        not_supported(context.encode(&mut batch));
    }

    fn encoder_batches_fit_n_ubatch() {
        let m = load(common::tiny_t5());
        assert!(m.has_encoder());
        invalid(Context::new(&m, params().with_n_seq_max(2)), "n_seq_max");
        Context::new(&m, ContextParams { kv_unified: Some(true), ..params().with_n_seq_max(2) }).unwrap();
        let mut context = Context::new(&m, params().with_n_ubatch(4)).unwrap();
        let tokens: Vec<Token> = (0..10).map(|i| Token(10 + i)).collect();
        let mut batch = Batch::new(16, 1).unwrap();
        batch.add_sequence(&tokens, 0, 0, false).unwrap();
        invalid(context.encode(&mut batch), "batch");
        // Decoding before encoding is refused too.
        let mut one = Batch::new(1, 1).unwrap();
        one.add(Token(0), 0, &[0], true).unwrap();
        not_supported(context.decode(&mut one));
        // A batch that fits encodes, then the decoder runs.
        let mut small = Batch::new(4, 1).unwrap();
        small.add_sequence(&tokens[..4], 0, 0, false).unwrap();
        context.encode(&mut small).unwrap();
        let start = m.decoder_start_token().or(m.token_bos()).unwrap();
        let mut first = Batch::new(1, 1).unwrap();
        first.add(start, 0, &[0], true).unwrap();
        context.decode(&mut first).unwrap();
        assert!(context.logits(-1).unwrap().iter().all(|v| v.is_finite()));
    }

    fn non_causal_batches_fit_n_ubatch() {
        let m = load(common::tiny_bert());
        let mut context = Context::new(&m, params().with_n_ubatch(4).with_embeddings(Pooling::Mean)).unwrap();
        let tokens: Vec<Token> = (0..10).map(|i| Token(5 + i)).collect();
        let mut batch = Batch::new(16, 1).unwrap();
        batch.add_sequence(&tokens, 0, 0, true).unwrap();
        invalid(context.decode(&mut batch), "batch");
    }

    fn pooled_embeddings_of_a_causal_model_fit_n_ubatch() {
        let m = tiny();
        let mut context = Context::new(&m, params().with_n_ubatch(4).with_embeddings(Pooling::Mean)).unwrap();
        let tokens: Vec<Token> = (0..10).map(|i| Token(10 + i)).collect();
        let mut batch = Batch::new(16, 1).unwrap();
        batch.add_sequence(&tokens, 0, 0, true).unwrap();
        invalid(context.decode(&mut batch), "batch");
        let mut small = Batch::new(4, 1).unwrap();
        small.add_sequence(&tokens[..4], 0, 0, true).unwrap();
        context.decode(&mut small).unwrap();
        assert_eq!(context.embeddings_seq(0).unwrap().len(), m.n_embd_out() as usize);
    }

    fn vocab_only_model_cannot_make_a_context() {
        let m = Model::load(library(), common::tiny_llama(), ModelParams::new().vocab_only(true)).unwrap();
        assert!(!m.tokenize("hello", true, false).unwrap().is_empty());
        not_supported(Context::new(&m, params()));
        let mut sampler = Sampler::greedy(&m).unwrap();
        sampler.accept(Token(3)).unwrap();
    }

    fn sequence_ids_are_checked_in_every_memory_call() {
        let m = tiny();
        let mut context = Context::new(&m, params().with_n_seq_max(2)).unwrap();
        let seq = |r: gguf_loader::Result<_>| {
            assert!(matches!(r, Err(Error::SequenceOutOfRange { .. })), "{r:?}");
        };
        for bad in [2, 3, 255, 256, 1000, -2, i32::MAX] {
            seq(context.memory_seq_rm(Some(bad), None, None).map(|_| ()));
            seq(context.memory_seq_cp(0, bad, None, None));
            seq(context.memory_seq_cp(bad, 0, None, None));
            seq(context.memory_seq_keep(bad));
            seq(context.memory_seq_add(bad, None, None, 1));
            seq(context.memory_pos_max(bad).map(|_| ()));
            seq(context.memory_pos_min(bad).map(|_| ()));
            seq(context.embeddings_seq(bad).map(|_| ()).map_err(|e| match e {
                Error::NotSupported { .. } => Error::SequenceOutOfRange { seq_id: bad, n_seq_max: 2 },
                e => e,
            }));
            let mut batch = Batch::new(1, 1).unwrap();
            if batch.add(Token(5), 0, &[bad], true).is_ok() {
                seq(context.decode(&mut batch));
            }
        }
        invalid(context.memory_seq_rm(Some(0), Some(5), Some(2)).map(|_| ()), "p0/p1");
        let mut batch = Batch::new(16, 1).unwrap();
        batch.add_sequence(&words(&m, "hello"), 0, 0, true).unwrap();
        context.decode(&mut batch).unwrap();
        invalid(context.memory_seq_add(0, None, None, i32::MAX), "delta");
        context.memory_seq_add(0, None, None, 3).unwrap();
        assert!(context.memory_seq_rm(None, None, None).unwrap());
        context.memory_seq_cp(0, 1, None, None).unwrap();
        assert_eq!(context.memory_pos_max(1).unwrap(), None);
    }

    fn per_sequence_context_bounds_generation() {
        let m = tiny();
        let mut context = Context::new(&m, ContextParams {
            n_seq_max: Some(4),
            kv_unified: Some(false),
            ..ContextParams::default().with_n_ctx(1024).with_n_batch(512).with_threads(1)
        }).unwrap();
        let per_seq = context.n_ctx_seq() as usize;
        assert!(per_seq < context.n_ctx() as usize, "{per_seq} vs {}", context.n_ctx());
        let long: Vec<Token> = vec![Token(20); per_seq + 3];
        let mut sampler = Sampler::greedy(&m).unwrap();
        match context.generate(Prompt::Tokens(long), &mut sampler, GenerateOptions::default()) {
            Err(Error::ContextOverflow { n_ctx, .. }) => assert_eq!(n_ctx as usize, per_seq),
            other => panic!("{other:?}"),
        }
        // Generation stops with ContextFull at the sequence's end, not the context's.
        let prompt: Vec<Token> = vec![Token(20); per_seq - 4];
        let mut sampler = Sampler::builder(&m).dist(7).build().unwrap();
        let mut generation = context.generate(Prompt::Tokens(prompt), &mut sampler, GenerateOptions::default().with_max_tokens(100)).unwrap();
        for piece in generation.by_ref() {
            piece.unwrap();
        }
        let summary = generation.summary().unwrap();
        assert_eq!(summary.stop_reason, gguf_loader::StopReason::ContextFull, "{summary:?}");
    }

    fn logits_are_checked_against_the_last_outputs() {
        let m = tiny();
        let mut context = ctx(&m);
        assert!(matches!(context.logits(-1), Err(Error::OutputOutOfRange { .. })), "before any decode");
        let tokens = words(&m, "hello world the cat");
        let mut batch = Batch::new(64, 1).unwrap();
        batch.add_sequence(&tokens, 0, 0, true).unwrap();
        context.decode(&mut batch).unwrap();
        let last = tokens.len() as i32 - 1;
        assert_eq!(context.logits(last).unwrap().len(), m.n_vocab() as usize);
        assert_eq!(context.logits(-1).unwrap().len(), m.n_vocab() as usize);
        for bad in [0, last - 1, last + 1, 1000, -2, i32::MIN] {
            match context.logits(bad) {
                Err(Error::OutputOutOfRange { index, .. }) => assert_eq!(index, bad),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let mut sampler = Sampler::greedy(&m).unwrap();
        assert!(matches!(sampler.sample(&mut context, 0), Err(Error::OutputOutOfRange { .. })));
        // A failed decode leaves no outputs behind.
        let mut bad = Batch::new(1, 1).unwrap();
        bad.add(Token(m.n_vocab()), 0, &[0], true).unwrap();
        assert!(context.decode(&mut bad).is_err());
        assert!(context.logits(-1).is_ok(), "a batch refused before C keeps the last outputs");
        assert!(context.embeddings_ith(-1).is_err(), "no embeddings in this context");
    }

    fn embedding_model_has_no_logits() {
        let m = load(common::tiny_bert());
        assert!(!m.has_output_head());
        let mut context = Context::new(&m, params().with_embeddings(Pooling::Mean)).unwrap();
        let mut batch = Batch::new(8, 1).unwrap();
        batch.add_sequence(&[Token(2), Token(10), Token(11), Token(3)], 0, 0, true).unwrap();
        context.decode(&mut batch).unwrap();
        not_supported(context.logits(-1));
        not_supported(context.embeddings_ith(-1));
        let pooled = context.embeddings_seq(0).unwrap();
        assert_eq!(pooled.len(), m.n_embd_out() as usize);
        assert!(pooled.iter().all(|v| v.is_finite()));
        let mut sampler = Sampler::greedy(&m).unwrap();
        not_supported(context.generate("hello", &mut sampler, GenerateOptions::default()).map(|_| ()));
    }

    fn reranker_scores_are_sized_by_n_cls_out() {
        let m = load(common::tiny_reranker());
        let n_cls = m.n_cls_out() as usize;
        assert!(n_cls >= 1);
        let mut context = Context::new(&m, params().with_n_seq_max(2).with_embeddings(Pooling::Rank)).unwrap();
        let mut batch = Batch::new(16, 2).unwrap();
        batch.add_sequence(&[Token(2), Token(10), Token(3)], 0, 0, true).unwrap();
        batch.add_sequence(&[Token(2), Token(11), Token(12), Token(3)], 0, 1, true).unwrap();
        context.decode(&mut batch).unwrap();
        for seq in [0, 1] {
            let scores = context.embeddings_seq(seq).unwrap();
            assert_eq!(scores.len(), n_cls);
            assert!(scores.iter().all(|v| v.is_finite()));
        }
    }

    fn pooled_embeddings_need_n_ubatch_divisible_by_n_seq_max() {
        // llama.cpp asserts while reserving the pooling graph otherwise.
        let m = load(common::tiny_bert());
        invalid(
            Context::new(&m, params().with_n_ctx(512).with_n_ubatch(256).with_n_batch(256).with_n_seq_max(3).with_embeddings(Pooling::Mean)),
            "n_ubatch",
        );
        let m = load(common::smollm2());
        invalid(
            Context::new(&m, params().with_n_ctx(512).with_n_ubatch(250).with_n_batch(256).with_n_seq_max(4).with_embeddings(Pooling::Mean)),
            "n_ubatch",
        );
        Context::new(&m, params().with_n_ctx(512).with_n_ubatch(256).with_n_batch(256).with_n_seq_max(4).with_embeddings(Pooling::Mean)).unwrap();
    }

    fn rank_pooling_needs_a_classifier() {
        let m = load(common::tiny_bert());
        not_supported(Context::new(&m, params().with_embeddings(Pooling::Rank)));
        let m = tiny();
        not_supported(Context::new(&m, params().with_embeddings(Pooling::Rank)));
    }

    fn pooled_embeddings_need_pooling_and_embeddings() {
        let m = tiny();
        let context = decoded(&m, &words(&m, "hello"));
        not_supported(context.embeddings_seq(0));
        let mut context = Context::new(&m, params().with_embeddings(Pooling::None)).unwrap();
        let mut batch = Batch::new(8, 1).unwrap();
        batch.add_sequence(&words(&m, "hello"), 0, 0, true).unwrap();
        context.decode(&mut batch).unwrap();
        not_supported(context.embeddings_seq(0));
        assert_eq!(context.embeddings_ith(-1).unwrap().len(), m.n_embd_out() as usize);
        assert_eq!(context.embeddings_ith(0).unwrap().len(), m.n_embd_out() as usize);
    }

    // ---- 6. The shared model.
    fn contexts_created_concurrently_from_one_model() {
        let m = tiny();
        std::thread::scope(|scope| {
            for i in 0..6 {
                let m = m.clone();
                scope.spawn(move || {
                    for _ in 0..4 {
                        let mut context = Context::new(&m, params().with_threads(1)).unwrap();
                        let mut sampler = Sampler::builder(&m).dist(i).build().unwrap();
                        let n = context
                            .generate("hello", &mut sampler, GenerateOptions::default().with_max_tokens(4))
                            .unwrap()
                            .count();
                        assert!(n >= 1);
                        assert_eq!(m.n_ctx_train(), 256);
                    }
                });
            }
        });
    }

    fn yarn_parameters_that_would_rewrite_the_model_are_refused() {
        let m = Model::load(
            library(),
            common::tiny_llama(),
            ModelParams::new().with_override("llama.rope.scaling.type", MetadataValue::Str("yarn".into())),
        )
        .unwrap();
        invalid(Context::new(&m, ContextParams { rope_freq_scale: Some(0.25), ..params() }), "rope_freq_scale");
        assert_eq!(m.n_ctx_train(), 256);
        Context::new(&m, params()).unwrap();
    }

    fn tensor_split_is_bounded_by_llama_max_devices() {
        // llama.cpp reads llama_max_devices() floats from the pointer: a shorter list is padded,
        // a longer one or a bad proportion refused.
        let load = |split: Vec<f32>| {
            let mut params = ModelParams::new();
            params.tensor_split = split;
            Model::load(library(), common::tiny_llama(), params)
        };
        invalid(load(vec![1.0; 100_000]), "tensor_split");
        invalid(load(vec![f32::NAN]), "tensor_split");
        invalid(load(vec![-1.0]), "tensor_split");
        load(vec![1.0]).unwrap();
    }

    fn metadata_overrides_are_checked() {
        invalid(
            Model::load(library(), common::tiny_llama(), ModelParams::new().with_override("llama.rope.freq_base", MetadataValue::Float(f64::NAN))),
            "metadata_overrides",
        );
        invalid(
            Model::load(library(), common::tiny_llama(), ModelParams::new().with_override("k".repeat(200), MetadataValue::Int(1))),
            "metadata_overrides",
        );
        match Model::load(library(), common::tiny_llama(), ModelParams::new().with_override("llama.block_count", MetadataValue::Int(0))) {
            Err(e @ Error::Gguf(_)) => println!("{e}"),
            other => panic!("{other:?}"),
        }
    }
}
