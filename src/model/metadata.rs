//! Model metadata: description, key/value metadata, chat template, sampling defaults.

use super::Model;
use crate::error::{Error, Result};
use crate::ffi::{buffers, strings};

impl Model {
    /// A one-line description (`llama 135M Q4_1`).
    #[doc(alias = "llama_model_desc")]
    pub fn description(&self) -> String {
        buffers::snprintf_string(|buf, len| {
            // SAFETY: a live model; `buf` has `len` bytes.
            unsafe { self.api().model_desc(self.raw(), buf, len) }
        })
        .unwrap_or_default()
    }

    /// The built-in chat template (`name` = None for the default one); `None` when the model
    /// has none.
    ///
    /// # Errors
    /// `InvalidArgument` when `name` contains a NUL byte.
    #[doc(alias = "llama_model_chat_template")]
    pub fn chat_template(&self, name: Option<&str>) -> Result<Option<String>> {
        let name_c = name
            .map(|n| strings::text(n).map_err(|e| invalid("template name", e.reason())))
            .transpose()?;
        // SAFETY: a live model; name is NULL or a valid C string; the result is owned by the
        // model and copied before this returns.
        Ok(unsafe {
            self.api().model_chat_template(
                self.raw(),
                name_c.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
            )
        })
    }

    /// One metadata value as a string (`None` when the key is absent).
    ///
    /// # Errors
    /// `InvalidArgument` when `key` contains a NUL byte.
    #[doc(alias = "llama_model_meta_val_str")]
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        let key_c = strings::text(key).map_err(|e| invalid("metadata key", e.reason()))?;
        Ok(buffers::snprintf_string(|buf, len| {
            // SAFETY: a live model; key is a valid C string; `buf` has `len` bytes.
            unsafe {
                self.api()
                    .model_meta_val_str(self.raw(), key_c.as_ptr(), buf, len)
            }
        }))
    }

    /// Every metadata key/value (arrays are summarised by llama.cpp).
    #[doc(alias = "llama_model_meta_count")]
    #[doc(alias = "llama_model_meta_key_by_index")]
    #[doc(alias = "llama_model_meta_val_str_by_index")]
    pub fn metadata(&self) -> Vec<(String, String)> {
        let api = self.api();
        // SAFETY: a live model.
        let count = unsafe { api.model_meta_count(self.raw()) };
        (0..count.max(0))
            .filter_map(|i| {
                let key = buffers::snprintf_string(|buf, len| {
                    // SAFETY: 0 <= i < count; `buf` has `len` bytes.
                    unsafe { api.model_meta_key_by_index(self.raw(), i, buf, len) }
                })?;
                let value = buffers::snprintf_string(|buf, len| {
                    // SAFETY: as above.
                    unsafe { api.model_meta_val_str_by_index(self.raw(), i, buf, len) }
                })?;
                Some((key, value))
            })
            .collect()
    }

    /// The model's recommended sampling settings from its metadata (`general.sampling.*`).
    pub fn sampling_defaults(&self) -> SamplingDefaults {
        let get = |key: &str| self.meta(key).ok().flatten();
        let float = |key| get(key).and_then(|v| v.parse::<f32>().ok());
        SamplingDefaults {
            top_k: get("general.sampling.top_k").and_then(|v| v.parse().ok()),
            top_p: float("general.sampling.top_p"),
            min_p: float("general.sampling.min_p"),
            temperature: float("general.sampling.temp"),
            repeat_penalty: float("general.sampling.penalty_repeat"),
            penalty_last_n: get("general.sampling.penalty_last_n").and_then(|v| v.parse().ok()),
        }
    }
}

fn invalid(parameter: &'static str, reason: String) -> Error {
    Error::InvalidArgument { parameter, reason }
}

/// Sampling settings a model recommends in its metadata (absent keys are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingDefaults {
    /// `general.sampling.top_k`
    pub top_k: Option<i32>,
    /// `general.sampling.top_p`
    pub top_p: Option<f32>,
    /// `general.sampling.min_p`
    pub min_p: Option<f32>,
    /// `general.sampling.temp`
    pub temperature: Option<f32>,
    /// `general.sampling.penalty_repeat`
    pub repeat_penalty: Option<f32>,
    /// `general.sampling.penalty_last_n`
    pub penalty_last_n: Option<i32>,
}
