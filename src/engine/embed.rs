//! [`Embedder`]: embeddings (and rerank scores) of many texts in as few decodes as possible.
//!
//! Every text becomes one sequence; as many sequences as fit go into one batch (at most
//! `n_seq_max` sequences and the tokens one decode takes), the context's memory is cleared
//! before each batch, and each sequence's pooled embedding is read back with
//! [`Context::embeddings_seq`]. A sequence is never split across decodes: pooled embeddings and
//! non-causal models need a whole sequence in one physical batch (`n_ubatch`), so a text longer
//! than that is refused with an error naming its index.
//!
//! ```no_run
//! use gguf_loader::engine::embed::Embedder;
//! use gguf_loader::{ContextParams, Model, ModelParams, Pooling};
//! # fn run(library: &gguf_loader::loader::LlamaLibrary) -> gguf_loader::Result<()> {
//! let model = Model::load(library, "bge-small.gguf", ModelParams::new())?;
//! let mut embedder = Embedder::new(&model, Pooling::Mean, true, ContextParams::default())?;
//! let vectors = embedder.embed(&["first text", "second text"])?;
//! assert_eq!(vectors.len(), 2);
//! # Ok(()) }
//! ```

use crate::batch::Batch;
use crate::context::{Context, ContextParams, Pooling};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::token::Token;

/// Sequences per decode when [`ContextParams::n_seq_max`] is not set.
pub const DEFAULT_N_SEQ_MAX: u32 = 8;

/// Embeddings of many texts over one embedding [`Context`].
///
/// One text is one sequence; sequences are packed into as few decodes as the context allows.
/// Between calls (and between decodes) the context's memory is cleared, so texts never see
/// each other.
#[derive(Debug)]
pub struct Embedder {
    context: Context,
    normalize: bool,
    batch: Batch,
    /// Most tokens of one decode (all sequences together).
    max_batch_tokens: usize,
    /// Most tokens of one text.
    max_text_tokens: usize,
    /// Most sequences of one decode.
    max_sequences: usize,
}

/// One input, tokenized, with the index it had in the caller's slice.
struct Input {
    tokens: Vec<Token>,
}

impl Embedder {
    /// Creates an embedding context over `model` with `pooling` (see [`Pooling`];
    /// [`Pooling::Unspecified`] keeps the model's own) and, when `normalize` is set, L2
    /// normalisation of every returned vector.
    ///
    /// `params` gives the sizes and threads; its `embeddings` and `pooling` are replaced.
    /// Unless set, `n_seq_max` becomes the largest divisor of `n_ubatch` up to
    /// [`DEFAULT_N_SEQ_MAX`] (and `n_batch`), and `kv_unified` becomes `true`, so sequences of
    /// any length share one KV buffer and a batch of several sequences is one physical batch.
    ///
    /// # Errors
    /// `InvalidArgument` (parameter `n_seq_max`) when a given `n_seq_max` does not divide
    /// `n_ubatch` (llama.cpp aborts creating a mean-pooling context then); as
    /// [`Context::new`]: `InvalidArgument` for out-of-range sizes; `NotSupported` for rank
    /// pooling on a model without a classifier head (not a reranker) or a vocab-only model;
    /// `Null` when llama.cpp cannot create the context.
    pub fn new(
        model: &Model,
        pooling: Pooling,
        normalize: bool,
        params: ContextParams,
    ) -> Result<Self> {
        let mut params = params;
        params.embeddings = Some(true);
        params.pooling = Some(pooling);
        // llama.cpp reserves its worst-case graph for n_ubatch tokens rounded up to a multiple
        // of n_seq_max but with n_ubatch outputs; mean pooling then multiplies mismatched
        // matrices and aborts (GGML_ASSERT(ggml_can_mul_mat) in build_pooling). n_seq_max must
        // divide n_ubatch (as Context::new will settle it).
        let defaults = crate::ffi::params::context_defaults(model.api());
        let n_ctx = params
            .n_ctx
            .unwrap_or_else(|| u32::try_from(model.n_ctx_train().max(1)).unwrap_or(1));
        let n_batch = params.n_batch.unwrap_or(defaults.n_batch).min(n_ctx);
        let n_ubatch = params.n_ubatch.unwrap_or(defaults.n_ubatch).min(n_batch);
        match params.n_seq_max {
            Some(n_seq) if n_seq > 0 && n_ubatch > 0 && n_ubatch % n_seq != 0 => {
                return Err(Error::InvalidArgument {
                    parameter: "n_seq_max",
                    reason: format!(
                        "{n_seq} sequences must divide n_ubatch {n_ubatch} for pooled embeddings (llama.cpp's mean pooling aborts otherwise); leave n_seq_max unset to have one chosen"
                    ),
                });
            }
            Some(_) => {}
            None => {
                let most = DEFAULT_N_SEQ_MAX.min(n_batch).max(1);
                let n_seq = (1..=most)
                    .rev()
                    .find(|d| n_ubatch == 0 || n_ubatch % d == 0)
                    .unwrap_or(1);
                params.n_seq_max = Some(n_seq);
            }
        }
        params.kv_unified.get_or_insert(true);
        let context = Context::new(model, params)?;
        Self::with_context(context, normalize)
    }

    /// An embedder over an existing context (created with embeddings on). With a non-unified
    /// KV cache and pooling, one sequence goes into each decode (llama.cpp may split a batch
    /// of several sequences into several physical batches there, which pooling cannot take).
    ///
    /// # Errors
    /// `NotSupported` when the context was created without embeddings; `InvalidArgument` when
    /// the batch cannot be allocated.
    pub fn with_context(context: Context, normalize: bool) -> Result<Self> {
        if !context.embeddings_enabled() {
            return Err(Error::NotSupported {
                operation: "embedding",
                reason: "the context was created without embeddings (ContextParams::embeddings)"
                    .into(),
            });
        }
        let facts = context.model().facts();
        let pooled = context.pooling() != Pooling::None;
        // As Context::decode checks: these take a whole batch in one physical batch.
        let whole_ubatch = !facts.causal_attention || !facts.has_output_head || pooled;
        let max_batch_tokens = if whole_ubatch {
            context.n_ubatch()
        } else {
            context.n_batch()
        } as usize;
        let unified = context.n_ctx_seq() == context.n_ctx();
        let max_sequences = if pooled && !unified {
            1
        } else {
            context.n_seq_max() as usize
        };
        let max_text_tokens = max_batch_tokens.min(context.n_ctx_seq() as usize);
        let batch = Batch::new(max_batch_tokens.max(1), 1)?;
        Ok(Embedder {
            context,
            normalize,
            batch,
            max_batch_tokens,
            max_text_tokens,
            max_sequences,
        })
    }

    /// The context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Gives the context back.
    pub fn into_context(self) -> Context {
        self.context
    }

    /// The pooling the context settled on.
    pub fn pooling(&self) -> Pooling {
        self.context.pooling()
    }

    /// Whether returned embeddings are L2-normalised.
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// Most tokens one text may have (after tokenization with the model's special tokens).
    pub fn max_text_tokens(&self) -> usize {
        self.max_text_tokens
    }

    /// Length of each returned vector: `n_cls_out` for [`Pooling::Rank`], `n_embd_out`
    /// otherwise.
    pub fn dimension(&self) -> usize {
        let model = self.context.model();
        match self.context.pooling() {
            Pooling::Rank => model.n_cls_out() as usize,
            _ => model.n_embd_out().max(0) as usize,
        }
    }

    /// Each text tokenized with its special tokens, checked (not empty, fits one decode).
    fn tokenize_texts(&self, texts: &[&str]) -> Result<Vec<Input>> {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                if text.is_empty() {
                    return Err(text_error("texts", "text", i, "is empty".into()));
                }
                let tokens = self.context.model().tokenize(text, true, false)?;
                self.check_length("texts", "text", i, tokens)
            })
            .collect()
    }

    /// One pooled vector per text, in order (the classifier outputs for [`Pooling::Rank`]).
    /// Texts are tokenized with the model's special tokens (`add_special`), special-token text
    /// is not parsed. An empty slice gives an empty result without decoding.
    ///
    /// # Errors
    /// `NotSupported` for a context without pooling ([`Pooling::None`]: use
    /// [`Self::embed_tokens`]); `InvalidArgument` with parameter `texts` naming the index
    /// (`text 3 ...`) of an empty text or one longer than [`Self::max_text_tokens`];
    /// tokenizer and decode errors as [`Model::tokenize`] and [`Context::decode`].
    pub fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if self.context.pooling() == Pooling::None {
            return Err(Error::NotSupported {
                operation: "pooled embeddings",
                reason: "the embedder has no pooling (Pooling::None): use embed_tokens".into(),
            });
        }
        let inputs = self.tokenize_texts(texts)?;
        let normalize = self.normalize;
        self.run(&inputs, |context, seq, _| {
            let mut v = context.embeddings_seq(seq)?.to_vec();
            if normalize {
                l2_normalize(&mut v);
            }
            Ok(v)
        })
    }

    /// Per-token embeddings of each text ([`Pooling::None`] only): for every text, one vector
    /// per token, in order.
    ///
    /// # Errors
    /// `NotSupported` when the context pools (use [`Self::embed`]); otherwise as
    /// [`Self::embed`].
    pub fn embed_tokens(&mut self, texts: &[&str]) -> Result<Vec<Vec<Vec<f32>>>> {
        if self.context.pooling() != Pooling::None {
            return Err(Error::NotSupported {
                operation: "per-token embeddings",
                reason: format!(
                    "the embedder pools ({:?}): use embed, or create it with Pooling::None",
                    self.context.pooling()
                ),
            });
        }
        let inputs = self.tokenize_texts(texts)?;
        let normalize = self.normalize;
        self.run(&inputs, |context, _, rows| {
            rows.map(|row| {
                let mut v = context.embeddings_ith(row)?.to_vec();
                if normalize {
                    l2_normalize(&mut v);
                }
                Ok(v)
            })
            .collect()
        })
    }

    /// Relevance scores of `documents` for `query` ([`Pooling::Rank`] on a reranker): one
    /// score per document, in order, the classifier's first output (raw, never normalised).
    ///
    /// The pair is formatted as llama.cpp's server does: with the model's `rerank` chat
    /// template, `{query}` and `{document}` are replaced and the result tokenized with special
    /// tokens parsed; otherwise the query as the tokenizer encodes one text (with its BOS and
    /// trailing EOS/SEP; a SEP (else EOS) is appended when it ends with neither), followed by
    /// the document encoded the same way without its BOS. For BERT rerankers:
    /// `[CLS] query [SEP] document [SEP]`.
    ///
    /// # Errors
    /// `NotSupported` when the embedder does not use rank pooling (not a reranker);
    /// `InvalidArgument` for an empty query, or with parameter `documents` naming the index of
    /// an empty document or a pair longer than [`Self::max_text_tokens`]; tokenizer and decode
    /// errors as [`Self::embed`].
    pub fn rerank(&mut self, query: &str, documents: &[&str]) -> Result<Vec<f32>> {
        if self.context.pooling() != Pooling::Rank {
            return Err(Error::NotSupported {
                operation: "rerank",
                reason: format!(
                    "the embedder pools {:?}: reranking needs Pooling::Rank on a model with a classifier head",
                    self.context.pooling()
                ),
            });
        }
        if documents.is_empty() {
            return Ok(Vec::new());
        }
        if query.is_empty() {
            return Err(Error::InvalidArgument {
                parameter: "query",
                reason: "is empty".into(),
            });
        }
        let model = self.context.model().clone();
        let template = model.chat_template(Some("rerank"))?;
        let inputs = documents
            .iter()
            .enumerate()
            .map(|(i, document)| {
                if document.is_empty() {
                    return Err(text_error("documents", "document", i, "is empty".into()));
                }
                let tokens = pair_tokens(&model, template.as_deref(), query, document)?;
                self.check_length("documents", "document", i, tokens)
            })
            .collect::<Result<Vec<_>>>()?;
        let scores = self.run(&inputs, |context, seq, _| {
            let out = context.embeddings_seq(seq)?;
            out.first().copied().ok_or(Error::NotSupported {
                operation: "rerank",
                reason: "the model's classifier has no output".into(),
            })
        })?;
        Ok(scores)
    }

    fn check_length(
        &self,
        parameter: &'static str,
        what: &str,
        index: usize,
        tokens: Vec<Token>,
    ) -> Result<Input> {
        if tokens.is_empty() {
            return Err(text_error(parameter, what, index, "gives no tokens".into()));
        }
        if tokens.len() > self.max_text_tokens {
            return Err(text_error(
                parameter,
                what,
                index,
                format!(
                    "has {} tokens, more than the {} one sequence may have here (n_batch {}, n_ubatch {}, n_ctx_seq {}; a pooled or non-causal sequence must fit n_ubatch in one decode)",
                    tokens.len(),
                    self.max_text_tokens,
                    self.context.n_batch(),
                    self.context.n_ubatch(),
                    self.context.n_ctx_seq()
                ),
            ));
        }
        Ok(Input { tokens })
    }

    /// Decodes `inputs` in groups that fit one decode; `read(context, seq_id, rows)` reads
    /// each input's result (`rows`: its tokens' batch indices).
    fn run<T>(
        &mut self,
        inputs: &[Input],
        mut read: impl FnMut(&Context, i32, std::ops::Range<i32>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut results = Vec::with_capacity(inputs.len());
        let mut start = 0;
        while start < inputs.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < inputs.len()
                && end - start < self.max_sequences
                && tokens + inputs[end].tokens.len() <= self.max_batch_tokens
            {
                tokens += inputs[end].tokens.len();
                end += 1;
            }
            debug_assert!(end > start, "every input fits one decode (checked)");
            self.batch.clear();
            let mut spans = Vec::with_capacity(end - start);
            for (seq, input) in inputs[start..end].iter().enumerate() {
                let first = self.batch.len() as i32;
                for (pos, token) in input.tokens.iter().enumerate() {
                    self.batch.add(*token, pos as i32, &[seq as i32], true)?;
                }
                spans.push(first..self.batch.len() as i32);
            }
            self.context.clear_memory();
            let decoded = self.context.decode(&mut self.batch);
            if let Err(e) = decoded {
                self.context.clear_memory();
                return Err(e);
            }
            for (seq, rows) in spans.into_iter().enumerate() {
                results.push(read(&self.context, seq as i32, rows)?);
            }
            start = end;
        }
        self.context.clear_memory();
        Ok(results)
    }
}

fn text_error(parameter: &'static str, what: &str, index: usize, reason: String) -> Error {
    Error::InvalidArgument {
        parameter,
        reason: format!("{what} {index} {reason}"),
    }
}

/// Divides `v` by its Euclidean norm (left as is when the norm is 0), as llama.cpp's
/// `common_embd_normalize(.., 2)`.
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        let scale = (1.0 / norm) as f32;
        v.iter_mut().for_each(|x| *x *= scale);
    }
}

/// The tokens of one query/document pair (see [`Embedder::rerank`]).
fn pair_tokens(
    model: &Model,
    template: Option<&str>,
    query: &str,
    document: &str,
) -> Result<Vec<Token>> {
    if let Some(template) = template {
        let prompt = template
            .replace("{query}", query)
            .replace("{document}", document);
        return model.tokenize(&prompt, false, true);
    }
    let mut tokens = model.tokenize(query, true, false)?;
    let ends = [model.token_eos(), model.token_sep()];
    if !tokens.last().is_some_and(|t| ends.contains(&Some(*t))) {
        if let Some(separator) = model.token_sep().or(model.token_eos()) {
            tokens.push(separator);
        }
    }
    let mut doc = model.tokenize(document, true, false)?;
    let plain = model.tokenize(document, false, false)?;
    let bos = model.token_bos();
    if bos.is_some() && doc.first().copied() == bos && plain.first().copied() != bos {
        doc.remove(0);
    }
    tokens.extend(doc);
    Ok(tokens)
}
