//! Saving and restoring a context's memory (the KV cache), whole or one sequence, together
//! with its token history, to memory or to a file.
//!
//! # Container
//! llama.cpp's state blob is checked by llama.cpp only in part: a blob of another model with
//! the same architecture, a corrupt cell count or sequence id reach `GGML_ASSERT`s (in the KV
//! cache's `state_read` and in `apply_ubatch`) or silently give garbage. So the blob is never
//! handed to llama.cpp as it comes: it travels in this crate's container, and loading verifies
//! all of it before any C call. Little-endian throughout; strings are a `u32` length and UTF-8
//! bytes:
//!
//! | field | type |
//! |---|---|
//! | magic | 8 bytes `GGUFLST\0` |
//! | format version | `u32` (1) |
//! | kind | `u8`: 0 whole context, 1 one sequence |
//! | source sequence id | `i32` (-1 for the whole context) |
//! | llama.cpp version, ggml version | 2 strings (of the library that saved it) |
//! | architecture, description | 2 strings |
//! | n_vocab, n_embd, n_layer, n_head, n_head_kv | 5 × `i32` |
//! | n_params, model size in bytes | 2 × `u64` |
//! | n_ctx, n_ctx_seq, n_seq_max | 3 × `u32` |
//! | embeddings, unified KV cache | 2 × `u8` (0/1) |
//! | history length `n`, history | `u64`, `n` × `i32` |
//! | blob length `m`, blob | `u64`, `m` bytes (llama.cpp's state) |
//! | checksum | 32 bytes: SHA-256 of everything before it |
//!
//! The checksum detects damage, not tampering: a state is trusted as much as the file it
//! comes from.
//!
//! # Resuming
//! The history is every token in the saved sequence's memory, in position order (whole-context
//! states: sequence 0; other sequences travel in the blob but have no history here), and
//! saving checks that the memory holds positions `0..history.len()`. llama.cpp's state does
//! not carry the logits, so loading recomputes them: it restores the memory, drops the last
//! history token from it and decodes that token again with logits. After a successful load
//! the context is as if the history had just been decoded: `logits(-1)` (and
//! `Sampler::sample(context, -1)`) gives the next token, which goes to position
//! `history.len()`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::outputs::Outputs;
use super::Context;
use crate::batch::Batch;
use crate::error::{Error, Result, StateProblem};
use crate::token::Token;

const MAGIC: &[u8; 8] = b"GGUFLST\0";
const FORMAT_VERSION: u32 = 1;
const DIGEST_LEN: usize = 32;

/// Whole context or one sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Whole,
    Sequence,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Whole => "a whole-context state",
            Kind::Sequence => "a sequence state",
        }
    }
}

/// What identifies the model a state belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    architecture: String,
    description: String,
    ints: [(&'static str, i32); 5],
    n_params: u64,
    size: u64,
}

/// The context shape a state was saved from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    n_ctx: u32,
    n_ctx_seq: u32,
    n_seq_max: u32,
    embeddings: bool,
    unified: bool,
}

/// A parsed container; the blob borrows from the input.
struct Container<'a> {
    kind: Kind,
    source_seq: i32,
    llama_version: String,
    ggml_version: String,
    model: Fingerprint,
    shape: Shape,
    history: Vec<Token>,
    blob: &'a [u8],
}

fn state_error(path: Option<&Path>, problem: StateProblem, reason: impl Into<String>) -> Error {
    Error::State {
        path: path.map(Path::to_path_buf),
        problem,
        reason: reason.into(),
    }
}

/// Sets the path of a state error that has none (errors made before the file was known).
fn with_path(error: Error, path: &Path) -> Error {
    match error {
        Error::State {
            path: None,
            problem,
            reason,
        } => Error::State {
            path: Some(path.to_path_buf()),
            problem,
            reason,
        },
        other => other,
    }
}

impl Context {
    /// Serialises the whole context's memory and `tokens`, the history of sequence 0 (every
    /// token in its memory, in position order), into the crate's state container.
    ///
    /// # Errors
    /// `NotSupported` for models whose memory cannot be restored exactly (no memory,
    /// encoder-decoder, recurrent or hybrid models); [`Error::State`] with
    /// [`StateProblem::History`] when sequence 0 does not hold exactly positions
    /// `0..tokens.len()`; `TokenOutOfRange`; [`StateProblem::Rejected`] when llama.cpp
    /// produces no state.
    #[doc(alias = "llama_state_get_data")]
    #[doc(alias = "llama_state_get_size")]
    pub fn state_to_bytes(&mut self, tokens: &[Token]) -> Result<Vec<u8>> {
        self.save_state(None, tokens)
    }

    /// Restores a whole-context state made by [`Self::state_to_bytes`] and returns its token
    /// history (sequence 0's). Everything is verified before llama.cpp sees a byte: container,
    /// checksum, llama.cpp/ggml versions, model, context shape, kind and history. Afterwards
    /// the logits of the last history token are ready at index `-1` (see the module docs).
    ///
    /// # Errors
    /// `NotSupported` as for saving; [`Error::State`] naming the problem: not a state,
    /// truncated, corrupt, another build, another model, another context shape, a sequence
    /// state, a history that does not fit, or llama.cpp refusing it (the memory is cleared
    /// then); `Decode` when recomputing the last token's logits fails.
    #[doc(alias = "llama_state_set_data")]
    pub fn state_from_bytes(&mut self, bytes: &[u8]) -> Result<Vec<Token>> {
        self.load_state(None, bytes, None)
    }

    /// [`Self::state_to_bytes`] into a file: written to a temporary file in the same directory
    /// and renamed over `path`, so a crash never leaves a half-written state under that name.
    ///
    /// # Errors
    /// As [`Self::state_to_bytes`]; [`StateProblem::Io`] when the file cannot be written.
    #[doc(alias = "llama_state_save_file")]
    pub fn save_state_file(&mut self, path: impl AsRef<Path>, tokens: &[Token]) -> Result<()> {
        let path = path.as_ref();
        let bytes = self
            .state_to_bytes(tokens)
            .map_err(|e| with_path(e, path))?;
        write_atomically(path, &bytes)
    }

    /// [`Self::state_from_bytes`] from a file written by [`Self::save_state_file`].
    ///
    /// # Errors
    /// As [`Self::state_from_bytes`], naming the file; [`StateProblem::Io`] when it cannot be
    /// read (missing, a directory, ...).
    #[doc(alias = "llama_state_load_file")]
    pub fn load_state_file(&mut self, path: impl AsRef<Path>) -> Result<Vec<Token>> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        self.load_state(None, &bytes, Some(path))
    }

    /// Serialises sequence `seq_id`'s memory and its history `tokens` (every token in that
    /// sequence's memory, in position order).
    ///
    /// # Errors
    /// [`Error::SequenceOutOfRange`]; otherwise as [`Self::state_to_bytes`], for `seq_id`.
    #[doc(alias = "llama_state_seq_get_data")]
    #[doc(alias = "llama_state_seq_get_size")]
    pub fn seq_state_to_bytes(&mut self, seq_id: i32, tokens: &[Token]) -> Result<Vec<u8>> {
        self.check_seq(seq_id)?;
        self.save_state(Some(seq_id), tokens)
    }

    /// Restores a sequence state made by [`Self::seq_state_to_bytes`] into sequence `seq_id`
    /// (replacing what it held; other sequences keep theirs) and returns its history. The
    /// context may differ from the saving one in size and number of sequences as long as the
    /// history fits `n_ctx_seq`. Afterwards the logits of the last history token are ready at
    /// index `-1`.
    ///
    /// # Errors
    /// [`Error::SequenceOutOfRange`]; otherwise as [`Self::state_from_bytes`] (a whole-context
    /// state is [`StateProblem::WrongKind`]; on a refusal sequence `seq_id` is cleared).
    #[doc(alias = "llama_state_seq_set_data")]
    pub fn seq_state_from_bytes(&mut self, seq_id: i32, bytes: &[u8]) -> Result<Vec<Token>> {
        self.check_seq(seq_id)?;
        self.load_state(Some(seq_id), bytes, None)
    }

    /// [`Self::seq_state_to_bytes`] into a file (temporary file and rename, as
    /// [`Self::save_state_file`]).
    ///
    /// # Errors
    /// As [`Self::seq_state_to_bytes`]; [`StateProblem::Io`].
    #[doc(alias = "llama_state_seq_save_file")]
    pub fn save_seq_state_file(
        &mut self,
        seq_id: i32,
        path: impl AsRef<Path>,
        tokens: &[Token],
    ) -> Result<()> {
        let path = path.as_ref();
        let bytes = self
            .seq_state_to_bytes(seq_id, tokens)
            .map_err(|e| with_path(e, path))?;
        write_atomically(path, &bytes)
    }

    /// [`Self::seq_state_from_bytes`] from a file written by [`Self::save_seq_state_file`].
    ///
    /// # Errors
    /// As [`Self::seq_state_from_bytes`], naming the file; [`StateProblem::Io`].
    #[doc(alias = "llama_state_seq_load_file")]
    pub fn load_seq_state_file(
        &mut self,
        seq_id: i32,
        path: impl AsRef<Path>,
    ) -> Result<Vec<Token>> {
        let path = path.as_ref();
        self.check_seq(seq_id)?;
        let bytes = read_file(path)?;
        self.load_state(Some(seq_id), &bytes, Some(path))
    }

    /// Refuses models whose memory a state cannot restore exactly.
    fn check_state_supported(&self) -> Result<()> {
        let model = &self.model;
        let refuse = |reason: String| {
            Err(Error::NotSupported {
                operation: "saving or loading the context state",
                reason,
            })
        };
        if model.has_encoder() {
            return refuse(format!(
                "{} is an encoder-decoder model: the encoder output is not part of the state",
                model.path().display()
            ));
        }
        // SAFETY: a live model; plain getters.
        let (recurrent, hybrid) = unsafe {
            (
                model.api().model_is_recurrent(model.raw()),
                model.api().model_is_hybrid(model.raw()),
            )
        };
        if recurrent || hybrid {
            return refuse(format!(
                "{} has recurrent memory: its last token cannot be recomputed after loading",
                model.path().display()
            ));
        }
        // SAFETY: a live context; a plain getter.
        if unsafe { self.api().get_memory(self.raw.as_ptr()) }.is_null() {
            return refuse(format!(
                "{} ({}) keeps no memory between decodes",
                model.path().display(),
                model.architecture()
            ));
        }
        Ok(())
    }

    fn fingerprint(&self) -> Fingerprint {
        let m = &self.model;
        Fingerprint {
            architecture: m.architecture().to_string(),
            description: m.description(),
            ints: [
                ("n_vocab", m.n_vocab()),
                ("n_embd", m.n_embd()),
                ("n_layer", m.n_layer()),
                ("n_head", m.n_head()),
                ("n_head_kv", m.n_head_kv()),
            ],
            n_params: m.n_params(),
            size: m.size(),
        }
    }

    fn shape(&self) -> Shape {
        Shape {
            n_ctx: self.sizes.n_ctx,
            n_ctx_seq: self.sizes.n_ctx_seq,
            n_seq_max: self.sizes.n_seq_max,
            embeddings: self.sizes.embeddings,
            unified: self.sizes.n_ctx_seq == self.sizes.n_ctx,
        }
    }

    /// Checks that sequence `seq` holds exactly positions up to `len - 1`.
    fn check_positions(&self, seq: i32, len: usize, path: Option<&Path>, when: &str) -> Result<()> {
        let pos_max = self.memory_pos_max(seq)?;
        let expected = len.checked_sub(1).map(|p| p as i64);
        if pos_max.map(i64::from) != expected {
            return Err(state_error(
                path,
                StateProblem::History,
                format!(
                    "{when}: sequence {seq} holds {} but the history has {len} tokens (it must hold positions 0..{len})",
                    pos_max.map_or("no positions".to_string(), |p| format!("positions up to {p}")),
                ),
            ));
        }
        Ok(())
    }

    fn save_state(&mut self, seq: Option<i32>, tokens: &[Token]) -> Result<Vec<u8>> {
        self.check_state_supported()?;
        self.model.check_tokens(tokens)?;
        let history_seq = seq.unwrap_or(0);
        self.check_positions(history_seq, tokens.len(), None, "saving")?;
        let ctx = self.raw();
        let api = self.api();
        // SAFETY: a live context; seq ids in range (checked by the callers).
        let size = unsafe {
            match seq {
                None => api.state_get_size(ctx),
                Some(s) => api.state_seq_get_size(ctx, s),
            }
        };
        if size == 0 {
            return Err(state_error(
                None,
                StateProblem::Rejected,
                "llama.cpp reported a state size of 0 (see the llama.cpp log)",
            ));
        }
        let mut blob = vec![0u8; size];
        // SAFETY: `blob` has `size` writable bytes; seq id in range.
        let written = unsafe {
            match seq {
                None => api.state_get_data(ctx, blob.as_mut_ptr(), size),
                Some(s) => api.state_seq_get_data(ctx, blob.as_mut_ptr(), size, s),
            }
        };
        if written == 0 || written > size {
            return Err(state_error(
                None,
                StateProblem::Rejected,
                format!("llama.cpp wrote {written} bytes of a {size}-byte state"),
            ));
        }
        blob.truncate(written);
        let library = self.model.library();
        let container = Container {
            kind: if seq.is_some() {
                Kind::Sequence
            } else {
                Kind::Whole
            },
            source_seq: seq.unwrap_or(-1),
            llama_version: library.llama_version().to_string(),
            ggml_version: library.ggml_version().to_string(),
            model: self.fingerprint(),
            shape: self.shape(),
            history: tokens.to_vec(),
            blob: &blob,
        };
        Ok(container.encode())
    }

    fn load_state(
        &mut self,
        seq: Option<i32>,
        bytes: &[u8],
        path: Option<&Path>,
    ) -> Result<Vec<Token>> {
        self.check_state_supported()?;
        let container = Container::decode(bytes, path)?;
        self.verify(&container, seq, path)?;
        let history_seq = seq.unwrap_or(0);
        let blob = container.blob;
        self.outputs = Outputs::default();
        self.encoded = false;
        // A sequence blob starts with its cell count. Where restoring one with no cell
        // asserts (`Quirks::empty_sequence_state_asserts`), restoring nothing is removing the
        // sequence's cells, which is all it would do before that.
        let empty_sequence_asserts = self.api().quirks().empty_sequence_state_asserts
            && seq.is_some()
            && blob.get(..4) == Some(&0u32.to_le_bytes()[..]);
        let read = if empty_sequence_asserts {
            self.forget(seq);
            blob.len()
        } else {
            let ctx = self.raw();
            let api = self.api();
            // SAFETY: a live context; `blob` holds `blob.len()` readable bytes, written by
            // llama_state(_seq)_get_data of the same llama.cpp build for the same model and
            // a compatible context (all verified above, checksum included); seq id in range.
            unsafe {
                match seq {
                    None => api.state_set_data(ctx, blob.as_ptr(), blob.len()),
                    Some(s) => api.state_seq_set_data(ctx, blob.as_ptr(), blob.len(), s),
                }
            }
        };
        if read != blob.len() {
            self.forget(seq);
            return Err(state_error(
                path,
                StateProblem::Rejected,
                if read == 0 {
                    format!(
                        "llama.cpp could not restore the {}-byte state (see the llama.cpp log); the memory was cleared",
                        blob.len()
                    )
                } else {
                    format!(
                        "llama.cpp read {read} of the {} bytes of the state; the memory was cleared",
                        blob.len()
                    )
                },
            ));
        }
        let history = container.history;
        if let Err(e) = self.check_positions(history_seq, history.len(), path, "after loading") {
            self.forget(seq);
            return Err(e);
        }
        if let Err(e) = self.recompute_last(history_seq, &history, path) {
            self.forget(seq);
            return Err(e);
        }
        Ok(history)
    }

    /// Empties what a failed load may have left half-written.
    fn forget(&mut self, seq: Option<i32>) {
        match seq {
            None => self.clear_memory(),
            Some(s) => {
                // Removing a whole sequence always succeeds (the id was checked).
                let _ = self.memory_seq_rm(Some(s), None, None);
            }
        }
        self.outputs = Outputs::default();
    }

    /// Drops the last history token from sequence `seq`'s memory and decodes it again, so its
    /// logits are ready (llama.cpp's state does not carry them).
    fn recompute_last(&mut self, seq: i32, history: &[Token], path: Option<&Path>) -> Result<()> {
        let Some(&last) = history.last() else {
            return Ok(());
        };
        let pos = (history.len() - 1) as i32;
        if !self.memory_seq_rm(Some(seq), Some(pos), None)? {
            return Err(state_error(
                path,
                StateProblem::Rejected,
                format!("the memory cannot drop position {pos} to recompute its logits"),
            ));
        }
        let mut batch = Batch::new(1, 1)?;
        batch.add(last, pos, &[seq], true)?;
        self.decode(&mut batch)
    }

    /// Everything about `container` that must hold before llama.cpp sees its blob.
    fn verify(&self, c: &Container<'_>, seq: Option<i32>, path: Option<&Path>) -> Result<()> {
        let fail = |problem, reason: String| Err(state_error(path, problem, reason));
        let library = self.model.library();
        for (what, saved, loaded) in [
            (
                "llama.cpp",
                c.llama_version.as_str(),
                library.llama_version(),
            ),
            ("ggml", c.ggml_version.as_str(), library.ggml_version()),
        ] {
            if saved != loaded {
                return fail(
                    StateProblem::OtherBuild,
                    format!("saved by {what} {saved:?}, the loaded library is {what} {loaded:?}"),
                );
            }
        }
        let mine = self.fingerprint();
        if c.model != mine {
            let mut differences = Vec::new();
            if c.model.architecture != mine.architecture {
                differences.push(format!(
                    "architecture {:?} (this model: {:?})",
                    c.model.architecture, mine.architecture
                ));
            }
            if c.model.description != mine.description {
                differences.push(format!(
                    "description {:?} (this model: {:?})",
                    c.model.description, mine.description
                ));
            }
            for ((name, saved), (_, current)) in c.model.ints.iter().zip(mine.ints.iter()) {
                if saved != current {
                    differences.push(format!("{name} {saved} (this model: {current})"));
                }
            }
            if c.model.n_params != mine.n_params {
                differences.push(format!(
                    "n_params {} (this model: {})",
                    c.model.n_params, mine.n_params
                ));
            }
            if c.model.size != mine.size {
                differences.push(format!("size {} (this model: {})", c.model.size, mine.size));
            }
            return fail(
                StateProblem::OtherModel,
                format!(
                    "the state's model has {}; this context runs {}",
                    differences.join(", "),
                    self.model.path().display()
                ),
            );
        }
        let expected = if seq.is_some() {
            Kind::Sequence
        } else {
            Kind::Whole
        };
        if c.kind != expected {
            return fail(
                StateProblem::WrongKind,
                format!(
                    "this is {} (sequence {}), loaded as {}",
                    c.kind.name(),
                    c.source_seq,
                    expected.name()
                ),
            );
        }
        let mine = self.shape();
        if c.kind == Kind::Whole {
            // The blob holds every stream and every sequence id of the saving context.
            let saved = c.shape;
            for (name, a, b) in [
                ("n_seq_max", saved.n_seq_max, mine.n_seq_max),
                (
                    "kv_unified",
                    u32::from(saved.unified),
                    u32::from(mine.unified),
                ),
                (
                    "embeddings",
                    u32::from(saved.embeddings),
                    u32::from(mine.embeddings),
                ),
                ("n_ctx", saved.n_ctx, mine.n_ctx),
            ] {
                if a != b {
                    return fail(
                        StateProblem::ContextMismatch,
                        format!("saved from a context with {name} {a}, this one has {b}"),
                    );
                }
            }
        }
        // llama.cpp's blob starts each memory with its stream count and refuses another one.
        let streams = |s: Shape| if s.unified { 1 } else { s.n_seq_max };
        if streams(c.shape) != streams(mine) {
            return fail(
                StateProblem::ContextMismatch,
                format!(
                    "saved from a context with {} KV stream(s) (n_seq_max {}, kv_unified {}), this one has {} (n_seq_max {}, kv_unified {})",
                    streams(c.shape),
                    c.shape.n_seq_max,
                    c.shape.unified,
                    streams(mine),
                    mine.n_seq_max,
                    mine.unified
                ),
            );
        }
        let n = c.history.len();
        if n > mine.n_ctx_seq as usize {
            return fail(
                StateProblem::History,
                format!(
                    "the history has {n} tokens, more than this context's {} per sequence",
                    mine.n_ctx_seq
                ),
            );
        }
        if n > c.shape.n_ctx_seq as usize {
            return fail(
                StateProblem::Corrupt,
                format!(
                    "the history has {n} tokens, more than the saving context's {} per sequence",
                    c.shape.n_ctx_seq
                ),
            );
        }
        let n_vocab = self.model.n_vocab();
        if let Some((i, t)) = c
            .history
            .iter()
            .enumerate()
            .find(|(_, t)| t.0 < 0 || t.0 >= n_vocab)
        {
            return fail(
                StateProblem::History,
                format!("history token {i} is id {t}, outside the vocabulary 0..{n_vocab}"),
            );
        }
        if c.blob.is_empty() {
            return fail(StateProblem::Corrupt, "the llama.cpp state is empty".into());
        }
        Ok(())
    }
}

impl Container<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.blob.len() + self.history.len() * 4 + 256);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.push(match self.kind {
            Kind::Whole => 0,
            Kind::Sequence => 1,
        });
        out.extend_from_slice(&self.source_seq.to_le_bytes());
        for s in [
            &self.llama_version,
            &self.ggml_version,
            &self.model.architecture,
            &self.model.description,
        ] {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        for (_, v) in self.model.ints {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.model.n_params.to_le_bytes());
        out.extend_from_slice(&self.model.size.to_le_bytes());
        for v in [self.shape.n_ctx, self.shape.n_ctx_seq, self.shape.n_seq_max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(self.shape.embeddings));
        out.push(u8::from(self.shape.unified));
        out.extend_from_slice(&(self.history.len() as u64).to_le_bytes());
        for t in &self.history {
            out.extend_from_slice(&t.0.to_le_bytes());
        }
        out.extend_from_slice(&(self.blob.len() as u64).to_le_bytes());
        out.extend_from_slice(self.blob);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    fn decode<'a>(bytes: &'a [u8], path: Option<&Path>) -> Result<Container<'a>> {
        let err = |problem, reason: String| state_error(path, problem, reason);
        if bytes.is_empty() {
            return Err(err(
                StateProblem::Truncated,
                "the state is empty (0 bytes)".into(),
            ));
        }
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            if MAGIC.starts_with(bytes) {
                return Err(err(
                    StateProblem::Truncated,
                    format!("{} bytes end inside the magic", bytes.len()),
                ));
            }
            return Err(err(
                StateProblem::NotAState,
                format!(
                    "it starts with {:02x?}, not the magic {:02x?}",
                    &bytes[..bytes.len().min(MAGIC.len())],
                    MAGIC
                ),
            ));
        }
        let mut r = Reader {
            bytes,
            at: MAGIC.len(),
            path,
        };
        let version = r.u32("format version")?;
        if version != FORMAT_VERSION {
            return Err(err(
                StateProblem::FormatVersion,
                format!("format version {version}, this crate reads version {FORMAT_VERSION}"),
            ));
        }
        let kind = match r.u8("kind")? {
            0 => Kind::Whole,
            1 => Kind::Sequence,
            k => {
                return Err(err(
                    StateProblem::Corrupt,
                    format!("unknown state kind {k}"),
                ))
            }
        };
        let source_seq = r.i32("sequence id")?;
        let llama_version = r.string("llama.cpp version")?;
        let ggml_version = r.string("ggml version")?;
        let architecture = r.string("architecture")?;
        let description = r.string("model description")?;
        let mut ints = [
            ("n_vocab", 0),
            ("n_embd", 0),
            ("n_layer", 0),
            ("n_head", 0),
            ("n_head_kv", 0),
        ];
        for (name, value) in &mut ints {
            *value = r.i32(name)?;
        }
        let n_params = r.u64("n_params")?;
        let size = r.u64("model size")?;
        let n_ctx = r.u32("n_ctx")?;
        let n_ctx_seq = r.u32("n_ctx_seq")?;
        let n_seq_max = r.u32("n_seq_max")?;
        let embeddings = r.flag("embeddings")?;
        let unified = r.flag("kv_unified")?;
        let n_history = r.len("history length", 4)?;
        let history = r
            .take(n_history * 4, "history")?
            .chunks_exact(4)
            .map(|c| Token(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        let n_blob = r.len("llama.cpp state length", 1)?;
        let blob = r.take(n_blob, "llama.cpp state")?;
        let body_len = r.at;
        let digest = r.take(DIGEST_LEN, "checksum")?;
        if r.at != bytes.len() {
            return Err(err(
                StateProblem::Corrupt,
                format!(
                    "{} bytes follow the end of the state at byte {}",
                    bytes.len() - r.at,
                    r.at
                ),
            ));
        }
        if Sha256::digest(&bytes[..body_len]).as_slice() != digest {
            return Err(err(
                StateProblem::Corrupt,
                format!("the SHA-256 checksum of the {body_len} bytes does not match"),
            ));
        }
        let consistent = match kind {
            Kind::Whole => source_seq == -1,
            Kind::Sequence => source_seq >= 0 && (source_seq as u32) < n_seq_max,
        };
        if !consistent || n_ctx_seq > n_ctx || n_seq_max == 0 {
            return Err(err(
                StateProblem::Corrupt,
                format!(
                    "inconsistent header (sequence {source_seq}, n_ctx {n_ctx}, n_ctx_seq {n_ctx_seq}, n_seq_max {n_seq_max})"
                ),
            ));
        }
        Ok(Container {
            kind,
            source_seq,
            llama_version,
            ggml_version,
            model: Fingerprint {
                architecture,
                description,
                ints,
                n_params,
                size,
            },
            shape: Shape {
                n_ctx,
                n_ctx_seq,
                n_seq_max,
                embeddings,
                unified,
            },
            history,
            blob,
        })
    }
}

/// A bounds-checked little-endian reader: every read names the field that ran past the end.
struct Reader<'a, 'p> {
    bytes: &'a [u8],
    at: usize,
    path: Option<&'p Path>,
}

impl<'a> Reader<'a, '_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let left = self.bytes.len() - self.at;
        if n > left {
            return Err(state_error(
                self.path,
                StateProblem::Truncated,
                format!(
                    "the data ends at byte {} inside the {what} ({n} bytes needed from byte {}, {left} left)",
                    self.bytes.len(),
                    self.at
                ),
            ));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn flag(&mut self, what: &str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(state_error(
                self.path,
                StateProblem::Corrupt,
                format!("{what} flag is {v}, not 0 or 1"),
            )),
        }
    }

    /// A `u64` count of `unit`-byte items, checked against the bytes left before anything is
    /// allocated for it.
    fn len(&mut self, what: &str, unit: usize) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.bytes.len() - self.at) as u64;
        match n.checked_mul(unit as u64) {
            Some(bytes) if bytes <= left => Ok(n as usize),
            _ => Err(state_error(
                self.path,
                StateProblem::Truncated,
                format!(
                    "{what} {n} needs more than the {left} bytes left after byte {}",
                    self.at
                ),
            )),
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u32(what)? as usize;
        let at = self.at;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            state_error(
                self.path,
                StateProblem::Corrupt,
                format!("the {what} at byte {at} is not UTF-8"),
            )
        })
    }
}

fn io_error(path: &Path, action: &str, e: &std::io::Error) -> Error {
    state_error(
        Some(path),
        StateProblem::Io,
        format!("cannot {action}: {e}"),
    )
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(state_error(
            Some(path),
            StateProblem::Io,
            "is a directory, not a state file",
        ));
    }
    std::fs::read(path).map_err(|e| io_error(path, "read it", &e))
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    if path.is_dir() {
        return Err(state_error(
            Some(path),
            StateProblem::Io,
            "is a directory: give a file name",
        ));
    }
    let Some(name) = path.file_name() else {
        return Err(state_error(
            Some(path),
            StateProblem::Io,
            "has no file name",
        ));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let temp = dir.join(temp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        io_error(path, "write it", &e)
    })
}
