//! llama.cpp's built-in (non-Jinja) chat formats: `llama_chat_apply_template`.

use std::ffi::CString;

use super::{ChatMessage, TemplateErrorKind};
use crate::error::{Error, Result};
use crate::ffi::ChatMessageC as llama_chat_message;
use crate::ffi::{strings, Api};
use crate::loader::LlamaLibrary;

/// The names of llama.cpp's built-in chat templates (`chatml`, `llama3`, `gemma`, ...), sorted
/// as the library lists them.
///
/// # Errors
/// `Unsupported` with the BitNet fork, which cannot list them (its
/// [`apply_builtin`] still knows `chatml`, `llama2`, `llama3`, `gemma`, `phi3`, ...).
#[doc(alias = "llama_chat_builtin_templates")]
pub fn builtin_template_names(library: &LlamaLibrary) -> Result<Vec<String>> {
    let api = Api::of(library);
    // SAFETY: with `len` 0 the function writes nothing (it copies min(len, count) pointers)
    // and returns the count.
    let count = unsafe { api.chat_builtin_templates(std::ptr::null_mut(), 0) }?;
    let mut names = vec![std::ptr::null(); usize::try_from(count).unwrap_or(0)];
    // SAFETY: `names` has room for `names.len()` pointers, the most the function writes.
    let written = unsafe { api.chat_builtin_templates(names.as_mut_ptr(), names.len()) }?;
    let written = usize::try_from(written).unwrap_or(0).min(names.len());
    Ok(names[..written]
        .iter()
        // SAFETY: each pointer is NULL or a static, NUL-terminated string of the library.
        .filter_map(|&name| unsafe { strings::owned(name) })
        .collect())
}

/// Formats `messages` with llama.cpp's built-in template `name` (one of
/// [`builtin_template_names`]; llama.cpp also recognises a Jinja template text by its markers,
/// as it does for a model's own template). `add_generation_prompt` ends the prompt with the
/// opening of the assistant's turn.
///
/// These formats are fixed C++ code, not Jinja: use [`ChatTemplate`](super::ChatTemplate) to
/// render a model's own template exactly.
///
/// # Errors
/// [`Error::ChatTemplate`] with [`TemplateErrorKind::UnknownBuiltin`] when llama.cpp does not
/// know the template; [`Error::ChatMessages`] (naming the message) when a role or content
/// contains a NUL byte; `InvalidArgument` when `name` does; `InvalidUtf8` if the output is not
/// UTF-8.
#[doc(alias = "llama_chat_apply_template")]
pub fn apply_builtin(
    library: &LlamaLibrary,
    name: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
) -> Result<String> {
    let name_c = strings::text(name).map_err(|e| Error::InvalidArgument {
        parameter: "chat template name",
        reason: e.reason(),
    })?;
    let texts: Vec<(CString, CString)> = messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            let c = |what: &str, text: &str| {
                strings::text(text).map_err(|e| Error::ChatMessages {
                    index: Some(index),
                    reason: format!("the {what} {}", e.reason()),
                })
            };
            Ok((c("role", &message.role)?, c("content", &message.content)?))
        })
        .collect::<Result<_>>()?;
    let chat: Vec<llama_chat_message> = texts
        .iter()
        .map(|(role, content)| llama_chat_message {
            role: role.as_ptr(),
            content: content.as_ptr(),
        })
        .collect();
    let api = Api::of(library);
    let total: usize = messages
        .iter()
        .map(|m| m.role.len() + m.content.len())
        .sum();
    let mut buffer = vec![0u8; total.saturating_mul(2).saturating_add(256)];
    for _ in 0..3 {
        let length = i32::try_from(buffer.len()).unwrap_or(i32::MAX);
        // SAFETY: `name_c` is a C string; `chat` holds `chat.len()` messages whose pointers
        // borrow `texts`, alive until the end of the function; `buffer` has at least `length`
        // bytes, and the function writes at most `length` of them (strncpy).
        let res = unsafe {
            api.chat_apply_template(
                name_c.as_ptr(),
                chat.as_ptr(),
                chat.len(),
                add_generation_prompt,
                buffer.as_mut_ptr().cast(),
                length,
            )
        };
        let Ok(needed) = usize::try_from(res) else {
            return Err(Error::ChatTemplate {
                kind: TemplateErrorKind::UnknownBuiltin,
                message: format!("{name:?} (llama_chat_apply_template returned {res})"),
                line: None,
            });
        };
        if needed <= length as usize {
            // The full text fits (strncpy wrote it, NUL-terminated only when shorter).
            buffer.truncate(needed);
            return String::from_utf8(buffer).map_err(|e| Error::InvalidUtf8 {
                what: "formatted chat",
                valid_up_to: e.utf8_error().valid_up_to(),
            });
        }
        if needed > i32::MAX as usize {
            break;
        }
        buffer.resize(needed, 0);
    }
    Err(Error::InvalidArgument {
        parameter: "chat messages",
        reason: "the formatted conversation does not fit a C int32 length".into(),
    })
}
