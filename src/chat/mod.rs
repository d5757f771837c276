//! Chat prompts: a model's own chat template (`tokenizer.chat_template`, Jinja), rendered the
//! way Hugging Face transformers' `apply_chat_template` renders it, and llama.cpp's built-in
//! templates (`llama_chat_apply_template`).
//!
//! - [`ChatTemplate`]: a sandboxed Jinja environment (no file system, no imports of other
//!   templates) configured as transformers configures jinja2: `trim_blocks`, `lstrip_blocks`,
//!   loop controls, `raise_exception(msg)`, `strftime_now(fmt)`, a `tojson` filter with Python's
//!   `json.dumps` format, Python's string / dict methods (`.strip()`, `.split()`, `.items()`,
//!   ...), `namespace`, `selectattr`, slicing. Variables: `messages`, `tools`, `documents`,
//!   `add_generation_prompt`, `bos_token`, `eos_token` (and any [`ChatRequest::with_variable`]).
//! - [`apply_builtin`] / [`builtin_template_names`]: llama.cpp's fixed, non-Jinja formats
//!   (`chatml`, `llama3`, `gemma`, ...).
//! - [`parse_messages_json`]: message files (`[{"role": ..., "content": ...}]` or
//!   `{"messages": [...], "tools": [...]}`), validated.
//!
//! ```no_run
//! use gguf_loader::chat::{ChatMessage, ChatRequest, ChatTemplate};
//! # fn demo(model: &gguf_loader::Model) -> gguf_loader::Result<()> {
//! let template = ChatTemplate::from_model(model)?;
//! let messages = [
//!     ChatMessage::new("system", "You are terse."),
//!     ChatMessage::new("user", "Hi!"),
//! ];
//! let prompt = template.render(&ChatRequest::new(&messages).with_generation_prompt(true))?;
//! # let _ = prompt; Ok(()) }
//! ```

mod builtin;
mod json;
mod messages;
mod template;

pub use builtin::{apply_builtin, builtin_template_names};
pub use messages::{parse_messages_json, ChatMessage, ROLES};
pub use template::{ChatRequest, ChatTemplate};

/// What went wrong with a chat template (the `kind` of [`Error::ChatTemplate`]).
///
/// [`Error::ChatTemplate`]: crate::Error::ChatTemplate
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TemplateErrorKind {
    /// The model has no chat template (`tokenizer.chat_template` is absent).
    Missing,
    /// The template is not valid Jinja.
    Syntax,
    /// Rendering failed (an undefined attribute, a type error, an unknown method, ...).
    Render,
    /// The template called `raise_exception(message)`; the error's message is the template's.
    Raised,
    /// `llama_chat_apply_template` does not know the template name.
    UnknownBuiltin,
}
