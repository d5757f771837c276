//! Loading: the Rust pre-flight, parameter checks, then `llama_model_load_from_file`.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::RwLock;

use super::params::{GpuLayers, ModelParams, ProgressCallback};
use super::{has_output_head, is_causal, Model, ModelFacts, ModelInner};
use crate::error::{Error, Result};
use crate::ffi::params::{ModelLoadSettings, ModelParamsC};
use crate::ffi::{strings, Api, RawModel};
use crate::loader::LlamaLibrary;

struct ProgressState {
    callback: ProgressCallback,
    cancelled: bool,
    panicked: bool,
}

unsafe extern "C" fn progress_trampoline(progress: f32, user_data: *mut c_void) -> bool {
    // SAFETY: user_data is the `ProgressState` that `Model::load` keeps alive for the whole
    // llama_model_load_from_file call, and only this callback touches it meanwhile.
    let state = unsafe { &mut *(user_data as *mut ProgressState) };
    if state.panicked {
        return false;
    }
    match catch_unwind(AssertUnwindSafe(|| (state.callback)(progress))) {
        Ok(true) => true,
        Ok(false) => {
            state.cancelled = true;
            false
        }
        Err(_) => {
            state.panicked = true;
            false
        }
    }
}

/// Refuses a model the loaded generation cannot run: a BitNet-fork model (I2_S/TL tensors, or
/// a fork architecture) on upstream, or, on the fork, a tensor type the fork does not define
/// (or defines as something else: ids from 36 on mean I2_S, I8_S, TL1, TL2 there) or one this
/// build has no kernels for (TL1/TL2 need model-specific kernels, built only for ARM/x86 TL
/// builds of the fork).
fn check_generation(
    library: &LlamaLibrary,
    path: &Path,
    file: &crate::gguf::GgufFile,
) -> Result<()> {
    let refuse = |reason: String| Error::ModelLoad {
        path: path.into(),
        reason,
    };
    let fork = library.generation() == crate::loader::AbiGeneration::BitNet2024;
    if !fork {
        if file.family == crate::gguf::Family::BitNet {
            return Err(refuse(format!(
                "a BitNet-fork model (architecture {:?}{}) needs a BitNet variant (Model::load_best routes it there; or GGUF_BACKEND=bitnet-cpu)",
                file.architecture().unwrap_or("?"),
                file.tensors
                    .iter()
                    .find(|t| t.tensor_type.upstream().is_none())
                    .map(|t| format!(", tensor {} of type {}", t.name, t.tensor_type.name()))
                    .unwrap_or_default()
            )));
        }
        return Ok(());
    }
    for tensor in &file.tensors {
        let id = tensor.tensor_type.0;
        let runs = match id {
            // F32..BF16 as the fork's ggml.h numbers them (4 and 5 were removed before it),
            // TQ1_0 / TQ2_0 (34, 35) and I2_S (36).
            0..=3 | 6..=30 | 34..=36 => true,
            _ => false,
        };
        if !runs {
            let what = match id {
                38 | 39 => "a TL1/TL2 lookup-table type; this build of the fork has the I2_S kernels only",
                _ => "a type the BitNet fork's ggml does not define (ids from 36 on mean I2_S, I8_S, TL1 and TL2 there)",
            };
            return Err(refuse(format!(
                "tensor {} has type {} ({}): {what}",
                tensor.name,
                tensor.tensor_type.name(),
                id
            )));
        }
    }
    Ok(())
}

fn invalid(parameter: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        parameter,
        reason: reason.into(),
    }
}

/// Checks metadata overrides the way llama.cpp's fixed-size C struct needs them.
fn check_overrides(params: &ModelParams) -> Result<()> {
    for (key, value) in &params.metadata_overrides {
        if key.is_empty() || key.len() > 127 || key.contains('\0') {
            return Err(invalid(
                "metadata_overrides",
                format!("key {key:?} must be 1..=127 bytes without NUL"),
            ));
        }
        match value {
            super::MetadataValue::Str(s) if s.len() > 127 || s.contains('\0') => {
                return Err(invalid(
                    "metadata_overrides",
                    format!("value of {key:?} must be at most 127 bytes without NUL"),
                ));
            }
            super::MetadataValue::Float(f) if !f.is_finite() => {
                return Err(invalid(
                    "metadata_overrides",
                    format!("value of {key:?} is {f}, not a finite number"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn gpu_layers(
    library: &LlamaLibrary,
    file: &crate::gguf::GgufFile,
    path: &Path,
    layers: GpuLayers,
) -> Result<i32> {
    Ok(match layers {
        GpuLayers::None => 0,
        GpuLayers::Count(n) => i32::try_from(n)
            .map_err(|_| invalid("gpu_layers", format!("{n} is larger than i32::MAX")))?,
        GpuLayers::All => -1,
        GpuLayers::Auto { n_ctx } => {
            let free = library
                .devices()
                .iter()
                .find(|d| {
                    matches!(
                        d.device_type,
                        crate::loader::DeviceType::Gpu | crate::loader::DeviceType::IntegratedGpu
                    )
                })
                .map(|d| d.memory_free as u64);
            let layers = free.map_or(0, |free| {
                crate::gguf::auto_gpu_layers(file, free, u64::from(n_ctx))
            });
            log::debug!(
                "auto GPU layers for {}: {layers} (free device memory {free:?})",
                path.display()
            );
            i32::try_from(layers).unwrap_or(i32::MAX)
        }
    })
}

impl Model {
    /// Loads a GGUF model with `library`.
    ///
    /// The file is read and validated in Rust first ([`crate::gguf::inspect`] and the
    /// hyper-parameter checks, metadata overrides applied), so a corrupt file or one whose
    /// hyper-parameters would crash llama.cpp never reaches it.
    ///
    /// # Errors
    /// `Gguf` for a file that fails the pre-flight, `InvalidArgument` for bad parameters
    /// (checked before any C call), `ModelLoad` when the file is missing or llama.cpp refuses
    /// it, `ModelLoadCancelled` / `CallbackPanicked` from the progress callback.
    #[doc(alias = "llama_model_load_from_file")]
    pub fn load(
        library: &LlamaLibrary,
        path: impl AsRef<Path>,
        params: ModelParams,
    ) -> Result<Self> {
        let path = path.as_ref();
        let metadata = std::fs::metadata(path).map_err(|e| Error::ModelLoad {
            path: path.into(),
            reason: e.to_string(),
        })?;
        if !metadata.is_file() {
            return Err(Error::ModelLoad {
                path: path.into(),
                reason: "not a regular file".into(),
            });
        }
        check_overrides(&params)?;
        // Pre-flight: the file is read and validated in Rust before llama.cpp sees it.
        let file = crate::gguf::inspect(path)?;
        check_generation(library, path, &file)?;
        if params.vocab_only {
            // A repeated token aborts llama.cpp even when only the vocabulary is loaded.
            crate::gguf::check_vocabulary(&file)?;
        } else {
            crate::gguf::check_hyperparameters(&file, &params.metadata_overrides)?;
        }
        let architecture = file.architecture().unwrap_or_default().to_string();
        let has_classifier = file
            .tensors
            .iter()
            .any(|t| t.name == "cls.weight" || t.name == "cls.output.weight");
        let declared_causal = match file.get(&format!("{architecture}.attention.causal")) {
            Some(crate::gguf::GgufValue::Bool(b)) => Some(*b),
            _ => None,
        };
        let causal_attention = is_causal(&architecture, declared_causal);
        let kv_estimate = (
            crate::gguf::MemoryEstimate::new(&file, 1 << 10, 2).kv_bytes(),
            crate::gguf::MemoryEstimate::new(&file, 1 << 20, 2).kv_bytes(),
        );
        let scaling_key = format!("{architecture}.rope.scaling.type");
        let rope_yarn = match params
            .metadata_overrides
            .iter()
            .rev()
            .find(|(k, _)| *k == scaling_key)
        {
            Some((_, super::MetadataValue::Str(v))) => v == "yarn",
            Some(_) => false,
            None => {
                file.get(&scaling_key)
                    .and_then(crate::gguf::GgufValue::as_str)
                    == Some("yarn")
            }
        };
        let path_c = strings::path(path).map_err(|e| invalid("path", e.reason()))?;
        let api = Api::of(library);
        let n_gpu_layers = gpu_layers(library, &file, path, params.gpu_layers)?;
        if params.main_gpu < 0 {
            return Err(invalid(
                "main_gpu",
                format!("{} is negative", params.main_gpu),
            ));
        }
        // SAFETY: no arguments.
        let max_devices = unsafe { api.max_devices() };
        let mut tensor_split = params.tensor_split.clone();
        if !tensor_split.is_empty() {
            if tensor_split.len() > max_devices
                || tensor_split.iter().any(|v| !v.is_finite() || *v < 0.0)
            {
                return Err(invalid(
                    "tensor_split",
                    format!("at most {max_devices} non-negative finite proportions"),
                ));
            }
            tensor_split.resize(max_devices, 0.0);
        }
        let extra_safe = library.extra_buffer_types_are_safe();
        let extra_buffer_types = match params.extra_buffer_types {
            None => extra_safe,
            Some(true) if !extra_safe => {
                return Err(invalid(
                    "extra_buffer_types",
                    format!(
                        "this build's CPU backend offers {:?}, whose kernels crash in llama.cpp {}",
                        library.cpu_extra_buffer_types(),
                        library.llama_version()
                    ),
                ))
            }
            Some(v) => v,
        };
        if !extra_buffer_types && params.extra_buffer_types.is_none() {
            log::info!(
                "CPU extra buffer types off for {}: the loaded CPU backend offers a faulty one",
                path.display()
            );
        }
        // RPC servers: checked and probed in Rust, then added to ggml (see crate::rpc).
        let rpc_attached = if params.rpc_servers.is_empty() || params.vocab_only {
            Vec::new()
        } else {
            if !params.rpc_in_process {
                return Err(crate::rpc::in_process_refused(&params.rpc_servers));
            }
            crate::rpc::attach(
                library,
                &params.rpc_servers,
                &crate::rpc::ProbeOptions::default(),
            )?
        };
        let rpc_lease = (!rpc_attached.is_empty()).then(|| {
            crate::rpc::RpcLease::new(
                library,
                rpc_attached.iter().map(|(key, _)| key.clone()).collect(),
            )
        });
        // Loading walks ggml's device registry: no plugin or server may be registered
        // meanwhile.
        let registry = crate::loader::rpc::registry_read();
        // Once RPC servers are registered in the process, every model names its devices: its
        // own servers' devices first (as llama.cpp orders them), then the local GPUs, so that
        // one model's servers are never used by another.
        let devices = if rpc_attached.is_empty() && !library.rpc_any_registered() {
            None
        } else {
            let mut list: Vec<crate::ffi::RawDevice> = rpc_attached
                .iter()
                .flat_map(|(_, devices)| devices.iter().map(|d| d.device.0))
                .collect();
            list.extend(library.default_local_devices().into_iter().map(|d| d.0));
            Some(list)
        };
        if let Some(list) = &devices {
            if params.split_mode == super::SplitMode::None
                && !list.is_empty()
                && params.main_gpu as usize >= list.len()
            {
                return Err(invalid(
                    "main_gpu",
                    format!(
                        "{} is not an index of the model's {} devices",
                        params.main_gpu,
                        list.len()
                    ),
                ));
            }
            let count = params.tensor_split.iter().filter(|v| **v > 0.0).count();
            if count > 0 && params.tensor_split.len() > list.len() {
                log::warn!(
                    "tensor_split has {} entries for {} devices: the extra ones are ignored",
                    params.tensor_split.len(),
                    list.len()
                );
            }
        }
        let mut raw_params = ModelParamsC::new(
            api,
            ModelLoadSettings {
                n_gpu_layers,
                main_gpu: params.main_gpu,
                split_mode: params.split_mode,
                use_mmap: params.use_mmap,
                use_mlock: params.use_mlock,
                vocab_only: params.vocab_only,
                check_tensors: params.check_tensors,
                extra_buffer_types,
                tensor_split,
                overrides: &params.metadata_overrides,
                devices,
            },
        )?;
        let mut progress = params.progress.map(|callback| ProgressState {
            callback,
            cancelled: false,
            panicked: false,
        });
        if let Some(state) = progress.as_mut() {
            raw_params.set_progress(progress_trampoline, (state as *mut ProgressState).cast());
        }
        // SAFETY: the parameters are llama.cpp's defaults with validated fields; every pointer
        // in them (path, tensor_split, kv_overrides, progress state) lives until this returns.
        let model = unsafe { api.model_load_from_file(path_c.as_ptr(), &raw_params) };
        drop(raw_params);
        drop(registry);
        let model = NonNull::new(model);
        let free = |model: NonNull<RawModel>| {
            // SAFETY: a model returned by the load above, freed once.
            unsafe { api.model_free(model.as_ptr()) }
        };
        if let Some(state) = &progress {
            if state.panicked || state.cancelled {
                model.map(free);
                return Err(if state.panicked {
                    Error::CallbackPanicked {
                        callback: "progress",
                    }
                } else {
                    Error::ModelLoadCancelled { path: path.into() }
                });
            }
        }
        let raw_model = model.ok_or_else(|| Error::ModelLoad {
            path: path.into(),
            reason: "llama.cpp could not load it (see the log, target `llama.cpp`)".into(),
        })?;
        // SAFETY: a live model; the vocab lives as long as the model.
        let vocab = unsafe { api.model_get_vocab(raw_model.as_ptr()) };
        let Some(vocab) = NonNull::new(vocab.cast_mut()) else {
            free(raw_model);
            return Err(Error::Null {
                function: "llama_model_get_vocab",
                detail: String::new(),
            });
        };
        // SAFETY: live model and vocab; plain getters.
        let (n_vocab, has_encoder, has_decoder) = unsafe {
            (
                api.vocab_n_tokens(vocab.as_ptr()),
                api.model_has_encoder(raw_model.as_ptr()),
                api.model_has_decoder(raw_model.as_ptr()),
            )
        };
        let facts = ModelFacts {
            path: path.into(),
            has_output_head: !params.vocab_only && has_output_head(&architecture),
            has_classifier,
            causal_attention,
            rope_yarn,
            kv_estimate,
            n_gpu_layers,
            architecture,
            vocab_only: params.vocab_only,
            n_vocab: n_vocab.max(0),
            has_encoder,
            has_decoder,
            byte_fallback: super::byte_fallback::ByteFallbackGuard::from_file(&file)
                .map(std::sync::Arc::new),
        };
        Ok(Model::from_inner(ModelInner {
            library: library.clone(),
            raw: raw_model,
            vocab,
            facts,
            shared_state: RwLock::new(()),
            _rpc_lease: rpc_lease,
        }))
    }

    /// Selects a variant and loads the model on it, falling back to the next candidate when the
    /// model fails to load on a variant (e.g. out of GPU memory). `params` makes the parameters
    /// for each variant tried (GPU layers for GPU variants, say).
    ///
    /// The model file decides the code base: a BitNet-fork model (I2_S tensors) goes to a
    /// BitNet build (`bitnet-cpu-*`), any other to upstream's variants (`options.family` is set
    /// from the file). One build is loaded per process: for a second code base in the same
    /// program, use a [`crate::worker::WorkerModel`] (which the `generate` example does).
    ///
    /// # Errors
    /// The pre-flight's `Gguf` error for a bad file (it would fail on every variant);
    /// `Error::Load(LoadError::NoUsableVariant)` listing every candidate and why it was
    /// rejected.
    pub fn load_best(
        options: &crate::loader::SelectOptions,
        path: impl AsRef<Path>,
        mut params: impl FnMut(&dyn crate::loader::LibraryVariant) -> ModelParams,
    ) -> Result<(crate::loader::Selection, Model)> {
        let path = path.as_ref();
        let file = crate::gguf::inspect(path)?;
        // A BitNet-fork model goes to a BitNet build, any other to upstream.
        let mut options = options.clone();
        options.family = match file.family {
            crate::gguf::Family::BitNet => crate::loader::Family::BitNet,
            _ => crate::loader::Family::Upstream,
        };
        let (selection, model) = crate::loader::load_best_with(&options, |library, variant| {
            Model::load(library, path, params(variant))
                .map_err(|e| format!("model load failed: {e}"))
        })?;
        Ok((selection, model))
    }
}
