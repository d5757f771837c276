//! Many sequences in one context: continuous batching.
//!
//! [`ParallelEngine`] runs one request per sequence of a [`Context`] with `n_seq_max`
//! sequences. Every [`ParallelEngine::step`] builds one batch: the pending token of every
//! generating request, then prompt chunks of joining requests in the room that is left; one
//! decode; then each request whose row has logits samples with its own chain. A request that
//! ends frees its sequence, and a queued one takes it at the next step. [`EngineHandle`] runs
//! an engine on its own thread so requests can be submitted and streamed from any thread.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::batch::Batch;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::generate::{
    GenerateOptions, Piece, Prompt, StopMatcher, StopReason, Summary, Utf8Carry,
};
use crate::sampler::Sampler;
use crate::token::Token;

/// Identifies a submitted request.
pub type RequestId = u64;

/// One generation request: its prompt, its own sampler chain and options (max tokens, stop
/// strings).
#[derive(Debug)]
pub struct Request {
    /// The prompt (text is tokenized with the options' `add_special` / `parse_special`).
    pub prompt: Prompt,
    /// The request's sampler chain (of the engine's model).
    pub sampler: Sampler,
    /// Max tokens, stop strings, special-token handling.
    pub options: GenerateOptions,
}

/// What a step produced for a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Generated text.
    Piece {
        /// The request.
        request: RequestId,
        /// The piece.
        piece: Piece,
    },
    /// The request ended; its sequence is free.
    Finished {
        /// The request.
        request: RequestId,
        /// Its statistics and stop reason.
        summary: Summary,
    },
    /// The request failed; its sequence is free.
    Failed {
        /// The request.
        request: RequestId,
        /// Why.
        error: Error,
    },
}

struct Slot {
    id: RequestId,
    seq: i32,
    sampler: Sampler,
    options: GenerateOptions,
    /// Prompt tokens not decoded yet.
    prompt: VecDeque<Token>,
    prompt_tokens: usize,
    position: i32,
    pending: Option<Token>,
    row: Option<i32>,
    generated: usize,
    utf8: Utf8Carry,
    stop: StopMatcher,
    joined: Instant,
    prompt_time: Option<Duration>,
    generation_started: Option<Instant>,
    cancelled: bool,
}

/// Continuous batching over one context (see the module docs).
pub struct ParallelEngine {
    context: Context,
    slots: Vec<Option<Slot>>,
    queue: VecDeque<(RequestId, Vec<Token>, Request)>,
    next_id: RequestId,
    batch: Batch,
    /// Queued requests cancelled before they started (reported at the next step).
    cancelled_queued: Vec<(RequestId, usize)>,
}

impl std::fmt::Debug for ParallelEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelEngine")
            .field("active", &self.active())
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl ParallelEngine {
    /// An engine over `context` (its memory is cleared); it runs up to `n_seq_max` requests
    /// at once.
    ///
    /// # Errors
    /// `NotSupported` for encoder-decoder and embedding-only models.
    pub fn new(mut context: Context) -> Result<Self> {
        let model = context.model();
        if model.has_encoder() || !model.has_output_head() {
            return Err(Error::NotSupported {
                operation: "parallel generation",
                reason: format!(
                    "{} is not a decoder-only language model",
                    model.path().display()
                ),
            });
        }
        context.clear_memory();
        let batch = Batch::new(context.n_batch() as usize, 1)?;
        let slots = (0..context.n_seq_max()).map(|_| None).collect();
        Ok(ParallelEngine {
            context,
            slots,
            queue: VecDeque::new(),
            next_id: 0,
            batch,
            cancelled_queued: Vec::new(),
        })
    }

    /// The context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Requests generating or feeding their prompt.
    pub fn active(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Whether nothing is running or queued.
    pub fn is_idle(&self) -> bool {
        self.active() == 0 && self.queue.is_empty() && self.cancelled_queued.is_empty()
    }

    /// Queues `request`; it starts at the next step with a free sequence.
    ///
    /// # Errors
    /// `ModelMismatch` for a sampler of another model; `InvalidArgument` / `TokenOutOfRange`
    /// for an empty or invalid prompt; `ContextOverflow` when the prompt does not fit one
    /// sequence (`n_ctx_seq`).
    pub fn submit(&mut self, request: Request) -> Result<RequestId> {
        let tokens = self
            .context
            .prompt_tokens(request.prompt.clone(), &request.options)?;
        self.context
            .check_generation(&request.sampler, tokens.len())?;
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push_back((id, tokens, request));
        Ok(id)
    }

    /// Cancels a request: it ends at the next step with `StopReason::Cancelled`.
    pub fn cancel(&mut self, id: RequestId) {
        if let Some(slot) = self.slots.iter_mut().flatten().find(|s| s.id == id) {
            slot.cancelled = true;
        }
        if let Some(i) = self.queue.iter().position(|(q, _, _)| *q == id) {
            if let Some((_, tokens, _)) = self.queue.remove(i) {
                self.cancelled_queued.push((id, tokens.len()));
            }
        }
    }

    fn admit(&mut self) -> Result<()> {
        for seq in 0..self.slots.len() {
            if self.slots[seq].is_some() {
                continue;
            }
            let Some((id, tokens, mut request)) = self.queue.pop_front() else {
                break;
            };
            self.context.memory_seq_rm(Some(seq as i32), None, None)?;
            request.sampler.reset();
            self.slots[seq] = Some(Slot {
                id,
                seq: seq as i32,
                prompt_tokens: tokens.len(),
                prompt: tokens.into(),
                stop: StopMatcher::new(request.options.stop.clone()),
                sampler: request.sampler,
                options: request.options,
                position: 0,
                pending: None,
                row: None,
                generated: 0,
                utf8: Utf8Carry::default(),
                joined: Instant::now(),
                prompt_time: None,
                generation_started: None,
                cancelled: false,
            });
        }
        Ok(())
    }

    fn finish(&mut self, seq: usize, reason: StopReason, events: &mut Vec<Event>) {
        let Some(mut slot) = self.slots[seq].take() else {
            return;
        };
        // Free the sequence's cells now: sequences that share one buffer need the room.
        if let Err(e) = self.context.memory_seq_rm(Some(slot.seq), None, None) {
            log::warn!("freeing sequence {}: {e}", slot.seq);
        }
        let mut text = slot.utf8.finish();
        text = slot.stop.finish() + &text;
        if !text.is_empty() && !matches!(reason, StopReason::StopString(_)) {
            events.push(Event::Piece {
                request: slot.id,
                piece: Piece { token: None, text },
            });
        }
        let prompt_time = slot.prompt_time.unwrap_or_default();
        events.push(Event::Finished {
            request: slot.id,
            summary: Summary {
                prompt_tokens: slot.prompt_tokens,
                generated_tokens: slot.generated,
                prompt_time,
                generation_time: slot
                    .generation_started
                    .map_or(Duration::ZERO, |t| t.elapsed()),
                stop_reason: reason,
                invalid_utf8_bytes: 0,
                reused_tokens: 0,
            },
        });
    }

    /// One batch for every active request (see the module docs); returns what happened.
    ///
    /// A failed decode ends every request in the batch with a `Failed` event (their cache
    /// state is unknown); a single request's failure is its own `Failed` event.
    ///
    /// # Errors
    /// Only for a batch the engine cannot build or a sequence it cannot free (internal
    /// invariants; no request is lost without an event otherwise).
    pub fn step(&mut self) -> Result<Vec<Event>> {
        let mut events: Vec<Event> = self
            .cancelled_queued
            .drain(..)
            .map(|(request, prompt_tokens)| Event::Finished {
                request,
                summary: Summary {
                    prompt_tokens,
                    generated_tokens: 0,
                    prompt_time: Duration::ZERO,
                    generation_time: Duration::ZERO,
                    stop_reason: StopReason::Cancelled,
                    invalid_utf8_bytes: 0,
                    reused_tokens: 0,
                },
            })
            .collect();
        self.admit()?;
        let n_ctx_seq = self.context.n_ctx_seq() as i32;
        for seq in 0..self.slots.len() {
            if self.slots[seq].as_ref().is_some_and(|s| s.cancelled) {
                self.finish(seq, StopReason::Cancelled, &mut events);
            }
        }
        self.batch.clear();
        let capacity = self.batch.capacity();
        // With one KV buffer for all sequences (n_ctx_seq == n_ctx), the sequences share it:
        // what this batch adds must fit what the others hold.
        let shared = self.context.n_ctx_seq() == self.context.n_ctx() && self.slots.len() > 1;
        let mut budget = if shared {
            let used: usize = self
                .slots
                .iter()
                .flatten()
                .map(|s| s.position.max(0) as usize)
                .sum();
            (self.context.n_ctx() as usize).saturating_sub(used)
        } else {
            usize::MAX
        };
        // Generating requests first: one token each.
        for seq in 0..self.slots.len() {
            let full = match self.slots[seq].as_mut() {
                None => continue,
                Some(slot) => {
                    slot.row = None;
                    slot.pending.is_some() && (slot.position >= n_ctx_seq || budget == 0)
                }
            };
            if full {
                self.finish(seq, StopReason::ContextFull, &mut events);
                continue;
            }
            if let Some(slot) = self.slots[seq].as_mut() {
                if let Some(token) = slot.pending {
                    slot.row = Some(self.batch.len() as i32);
                    self.batch.add(token, slot.position, &[slot.seq], true)?;
                    budget = budget.saturating_sub(1);
                }
            }
        }
        // Then prompt chunks in the room that is left.
        for slot in self.slots.iter_mut().flatten() {
            let room = (capacity - self.batch.len()).min(budget);
            if slot.pending.is_some() || slot.prompt.is_empty() || room == 0 {
                continue;
            }
            let n = room.min(slot.prompt.len());
            budget -= n;
            for i in 0..n {
                let token = slot.prompt.pop_front().unwrap_or(Token(0));
                let last = i + 1 == n && slot.prompt.is_empty();
                if last {
                    slot.row = Some(self.batch.len() as i32);
                }
                self.batch
                    .add(token, slot.position + i as i32, &[slot.seq], last)?;
            }
        }
        if self.batch.is_empty() {
            return Ok(events);
        }
        if let Err(error) = self.context.decode(&mut self.batch) {
            // The KV state of every sequence in the batch is unknown now: end them all.
            let message = error.to_string();
            for seq in 0..self.slots.len() {
                if let Some(slot) = self.slots[seq].take() {
                    events.push(Event::Failed {
                        request: slot.id,
                        error: Error::Sampling {
                            reason: format!("the batch decode failed: {message}"),
                        },
                    });
                }
            }
            self.context.clear_memory();
            log::warn!("parallel batch decode failed: {error}");
            return Ok(events);
        }
        for seq in 0..self.slots.len() {
            self.sample_slot(seq, &mut events);
        }
        Ok(events)
    }

    fn sample_slot(&mut self, seq: usize, events: &mut Vec<Event>) {
        let n_ctx_seq = self.context.n_ctx_seq() as i32;
        let Some(slot) = self.slots[seq].as_mut() else {
            return;
        };
        // Positions advance for what this batch decoded.
        if slot.pending.take().is_some() {
            slot.position += 1;
        } else if slot.row.is_some() || !slot.prompt.is_empty() {
            slot.position = (slot.prompt_tokens - slot.prompt.len()) as i32;
        }
        let Some(row) = slot.row else { return };
        if slot.prompt_time.is_none() {
            slot.prompt_time = Some(slot.joined.elapsed());
            slot.generation_started = Some(Instant::now());
        }
        let model = self.context.model().clone();
        let token = match slot.sampler.sample(&mut self.context, row) {
            Ok(t) => t,
            Err(error) => {
                let id = slot.id;
                self.drop_slot(seq);
                events.push(Event::Failed { request: id, error });
                return;
            }
        };
        if model.is_end_of_generation(token) {
            self.finish(seq, StopReason::EndOfGeneration(token), events);
            return;
        }
        let Some(slot) = self.slots[seq].as_mut() else {
            return;
        };
        slot.generated += 1;
        let bytes = match model.token_to_bytes(token, slot.options.render_special) {
            Ok(b) => b,
            Err(error) => {
                let id = slot.id;
                self.drop_slot(seq);
                events.push(Event::Failed { request: id, error });
                return;
            }
        };
        let text = slot.utf8.push(&bytes);
        let (text, matched) = slot.stop.push(&text);
        events.push(Event::Piece {
            request: slot.id,
            piece: Piece {
                token: Some(token),
                text,
            },
        });
        if let Some(stop) = matched {
            self.finish(seq, StopReason::StopString(stop), events);
        } else if slot.generated >= slot.options.max_tokens {
            self.finish(seq, StopReason::MaxTokens, events);
        } else if slot.position >= n_ctx_seq {
            self.finish(seq, StopReason::ContextFull, events);
        } else {
            slot.pending = Some(token);
        }
    }

    /// Ends every running and queued request with a `Failed` event (after `step` itself
    /// failed: their state is unknown) and clears the context's memory.
    fn fail_all(&mut self, reason: &str) -> Vec<Event> {
        let failed = |request| Event::Failed {
            request,
            error: Error::Sampling {
                reason: format!("the parallel engine failed: {reason}"),
            },
        };
        let mut events: Vec<Event> = self
            .slots
            .iter_mut()
            .flatten()
            .map(|s| failed(s.id))
            .collect();
        self.slots.iter_mut().for_each(|slot| *slot = None);
        events.extend(self.queue.drain(..).map(|(id, _, _)| failed(id)));
        events.extend(self.cancelled_queued.drain(..).map(|(id, _)| failed(id)));
        self.context.clear_memory();
        events
    }

    fn drop_slot(&mut self, seq: usize) {
        if self.slots[seq].take().is_some() {
            let _ = self.context.memory_seq_rm(Some(seq as i32), None, None);
        }
    }

    /// Runs steps until every submitted request has ended; returns all events in order.
    ///
    /// # Errors
    /// As [`Self::step`].
    pub fn run_to_completion(&mut self) -> Result<Vec<Event>> {
        let mut all = Vec::new();
        while !self.is_idle() {
            all.extend(self.step()?);
        }
        Ok(all)
    }
}

enum Command {
    Submit(
        Box<Request>,
        mpsc::Sender<Event>,
        mpsc::Sender<Result<RequestId>>,
    ),
    Cancel(RequestId),
}

/// A [`ParallelEngine`] on its own thread: submit from any thread, stream each request's
/// events from its own receiver. Dropping the handle stops the thread after the running
/// requests end.
#[derive(Debug)]
pub struct EngineHandle {
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EngineHandle {
    /// Moves `engine` to a new thread.
    pub fn spawn(mut engine: ParallelEngine) -> Self {
        let (tx, rx) = mpsc::channel::<Command>();
        let thread = std::thread::spawn(move || {
            let mut streams: Vec<(RequestId, mpsc::Sender<Event>)> = Vec::new();
            let mut disconnected = false;
            loop {
                let mut commands = Vec::new();
                if engine.is_idle() {
                    // Nothing to run: wait for a command, or stop when every handle is gone.
                    match rx.recv() {
                        Ok(command) => commands.push(command),
                        Err(_) => break,
                    }
                }
                loop {
                    match rx.try_recv() {
                        Ok(command) => commands.push(command),
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => {
                            disconnected = true;
                            break;
                        }
                    }
                }
                for command in commands {
                    match command {
                        Command::Submit(request, events, reply) => {
                            let result = engine.submit(*request);
                            if let Ok(id) = result {
                                streams.push((id, events));
                            }
                            let _ = reply.send(result);
                        }
                        Command::Cancel(id) => engine.cancel(id),
                    }
                }
                if engine.is_idle() {
                    if disconnected {
                        break;
                    }
                    continue;
                }
                // A failed step ends every request with an event: no receiver waits forever.
                let events = engine.step().unwrap_or_else(|error| {
                    log::warn!("parallel engine step failed: {error}");
                    engine.fail_all(&error.to_string())
                });
                for event in events {
                    let (id, done) = match &event {
                        Event::Piece { request, .. } => (*request, false),
                        Event::Finished { request, .. } | Event::Failed { request, .. } => {
                            (*request, true)
                        }
                    };
                    if let Some(i) = streams.iter().position(|(r, _)| *r == id) {
                        let _ = streams[i].1.send(event);
                        if done {
                            streams.swap_remove(i);
                        }
                    }
                }
            }
        });
        EngineHandle {
            commands: Some(tx),
            thread: Some(thread),
        }
    }

    /// Submits `request`; its events arrive on the returned receiver, the last one being
    /// `Finished` or `Failed`.
    ///
    /// # Errors
    /// As [`ParallelEngine::submit`]; `NotSupported` when the engine thread has stopped.
    pub fn submit(&self, request: Request) -> Result<(RequestId, mpsc::Receiver<Event>)> {
        let stopped = || Error::NotSupported {
            operation: "submit",
            reason: "the engine thread has stopped".into(),
        };
        let (events_tx, events_rx) = mpsc::channel();
        let (reply_tx, reply_rx) = mpsc::channel();
        self.commands
            .as_ref()
            .ok_or_else(stopped)?
            .send(Command::Submit(Box::new(request), events_tx, reply_tx))
            .map_err(|_| stopped())?;
        let id = reply_rx.recv().map_err(|_| stopped())??;
        Ok((id, events_rx))
    }

    /// Cancels a request (it ends with `StopReason::Cancelled`).
    pub fn cancel(&self, id: RequestId) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(Command::Cancel(id));
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
