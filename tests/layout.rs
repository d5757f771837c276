//! Checks every `repr(C)` mirror of each ABI generation against its llama.h:
//! `src/sys/upstream/types.rs` against the pinned upstream source, `src/sys/bitnet/types.rs`
//! against the BitNet fork's (`3rdparty/llama.cpp` of the patched bitnet.cpp tree; the
//! `bitnet_*` tests).
//!
//! A C probe that includes `llama.h` is generated from the declarative lists below, compiled with
//! the system C compiler and run. It prints `sizeof`, `_Alignof` and `offsetof` of every struct and
//! field (plus each field's own size and alignment); the test compares them with Rust's
//! `size_of`, `align_of` and `offset_of!`. It also checks:
//!
//! - that every field of every mirrored struct is listed: on the Rust side at compile time (each
//!   list is also matched as an exhaustive struct pattern) and on the C side by reading the struct
//!   bodies in the headers;
//! - that every `repr(C)` type of types.rs is covered here and every struct with a body in llama.h
//!   is mirrored;
//! - the size, alignment and signedness of the C enums and scalar typedefs, the size of the
//!   pointer and callback typedefs, and the value of every enum constant and `#define` mirrored.
//!
//! For the fork, every enumerator of every enum in its llama.h (and of the ggml enums mirrored)
//! must also be among the values checked.
//!
//! The pinned sources are required: the tests fail (never skip) when they are missing.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::ffi::c_int;
use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use gguf_loader::sys::upstream::*;

/// One ABI generation: where its headers are and which types.rs mirrors them.
struct Generation {
    /// For messages.
    name: &'static str,
    /// The llama.cpp tree: `include/llama.h` and `ggml/include/`.
    root: PathBuf,
    /// The headers (relative to `root`) that define the mirrored structs, llama.h first.
    headers: &'static [&'static str],
    /// The mirrors, relative to the repository root.
    types_rs: &'static str,
}

/// The pinned upstream source and `src/sys/upstream`.
fn upstream_generation() -> Generation {
    Generation {
        name: "upstream",
        root: common::source_dir(),
        headers: &[
            "include/llama.h",
            "ggml/include/ggml-backend.h",
            "ggml/include/ggml-opt.h",
        ],
        types_rs: "src/sys/upstream/types.rs",
    }
}

/// The BitNet fork's vendored llama.cpp and `src/sys/bitnet`.
fn bitnet_generation() -> Generation {
    Generation {
        name: "bitnet",
        root: common::bitnet_source_dir().join("3rdparty/llama.cpp"),
        headers: &["include/llama.h", "ggml/include/ggml-backend.h"],
        types_rs: "src/sys/bitnet/types.rs",
    }
}

/// One value computed by both sides: a C expression printed by the probe, and Rust's value.
struct Check {
    label: String,
    c_expr: String,
    rust: i128,
}

/// Where a mirrored type's fields are declared in the C headers.
enum CLocation {
    /// `struct NAME { ... }`: its members, anonymous unions flattened.
    Struct(&'static str),
    /// The members of the named nested aggregate `member` of `struct parent`.
    Nested(&'static str, &'static str),
    /// The members of the anonymous union inside `struct parent`.
    Anonymous(&'static str),
}

/// The C field names a Rust type's list stands for, in declaration order.
struct Listed {
    rust: &'static str,
    location: CLocation,
    c_fields: Vec<String>,
}

#[derive(Default)]
struct Probe {
    checks: Vec<Check>,
    listed: Vec<Listed>,
    /// Fields (and union members) checked.
    fields: usize,
}

impl Probe {
    fn check(&mut self, label: String, c_expr: String, rust: impl TryInto<i128>) {
        let rust = rust
            .try_into()
            .unwrap_or_else(|_| panic!("{label}: the Rust value does not fit in i128"));
        self.checks.push(Check {
            label,
            c_expr,
            rust,
        });
    }

    /// `sizeof` and `_Alignof` of a C type against a Rust type's.
    fn type_layout(&mut self, rust: &str, c_type: &str, size: usize, align: usize) {
        self.check(format!("{rust} size"), format!("sizeof({c_type})"), size);
        self.check(
            format!("{rust} align"),
            format!("_Alignof({c_type})"),
            align,
        );
    }

    /// Offset, size and alignment of one field of a C aggregate type.
    fn field(
        &mut self,
        rust: &str,
        c_type: &str,
        field: &str,
        offset: usize,
        layout: (usize, usize),
    ) {
        self.fields += 1;
        let member = format!("((({c_type} *)0)->{field})");
        self.check(
            format!("{rust}.{field} offset"),
            format!("offsetof({c_type}, {field})"),
            offset,
        );
        self.check(
            format!("{rust}.{field} size"),
            format!("sizeof{member}"),
            layout.0,
        );
        self.check(
            format!("{rust}.{field} align"),
            format!("_Alignof(__typeof__{member})"),
            layout.1,
        );
    }

    fn listed(&mut self, rust: &'static str, location: CLocation, c_fields: &[&str]) {
        let c_fields = c_fields.iter().map(|f| f.to_string()).collect();
        self.listed.push(Listed {
            rust,
            location,
            c_fields,
        });
    }
}

/// Size and alignment of the field type a (never called) accessor returns.
fn field_layout<T, F>(_accessor: fn(&T) -> &F) -> (usize, usize) {
    (size_of::<F>(), align_of::<F>())
}

/// The C name of a Rust field (`r#type` is C's `type`).
fn c_name(rust_field: &'static str) -> &'static str {
    rust_field.strip_prefix("r#").unwrap_or(rust_field)
}

/// `layout!(probe, RustType = "C type" in location { field, ... })`: checks the type's size and
/// alignment and every listed field's offset, size and alignment; the list must name every Rust
/// field (it is matched as an exhaustive pattern) and, in the header, every C field.
macro_rules! layout {
    ($probe:ident, $t:ident = $c:expr, in $loc:expr, { $($f:ident),* $(,)? }) => {{
        let c_type: &str = $c;
        $probe.type_layout(stringify!($t), c_type, size_of::<$t>(), align_of::<$t>());
        $(
            $probe.field(
                stringify!($t),
                c_type,
                c_name(stringify!($f)),
                offset_of!($t, $f),
                field_layout::<$t, _>(|s| &s.$f),
            );
        )*
        // Compile-time completeness: this pattern has no `..`, so a Rust field missing from the
        // list is an error.
        let _complete = |s: &$t| {
            let $t { $($f: _),* } = s;
        };
        $probe.listed(stringify!($t), $loc, &[$(c_name(stringify!($f))),*]);
    }};
    ($probe:ident, $t:ident { $($f:ident),* $(,)? }) => {
        layout!($probe, $t = concat!("struct ", stringify!($t)), in CLocation::Struct(stringify!($t)), { $($f),* })
    };
}

/// Every mirrored struct and union, each field written once.
fn struct_probe() -> Probe {
    let mut p = Probe::default();
    layout!(p, llama_token_data { id, logit, p });
    layout!(
        p,
        llama_token_data_array {
            data,
            size,
            selected,
            sorted
        }
    );
    layout!(
        p,
        llama_batch {
            n_tokens,
            token,
            embd,
            pos,
            n_seq_id,
            seq_id,
            logits
        }
    );
    kv_override(&mut p);
    layout!(p, llama_model_tensor_buft_override { pattern, buft });
    layout!(
        p,
        llama_model_params {
            devices,
            tensor_buft_overrides,
            n_gpu_layers,
            split_mode,
            load_mode,
            lazy_mode,
            main_gpu,
            tensor_split,
            progress_callback,
            progress_callback_user_data,
            kv_overrides,
            vocab_only,
            check_tensors,
            use_extra_bufts,
            no_host,
            no_alloc,
            load_mtp,
        }
    );
    layout!(p, llama_sampler_seq_config { seq_id, sampler });
    layout!(
        p,
        llama_context_params {
            n_ctx,
            n_batch,
            n_ubatch,
            n_seq_max,
            n_rs_seq,
            n_outputs_max,
            n_outputs_max_per_seq,
            n_threads,
            n_threads_batch,
            ctx_type,
            rope_scaling_type,
            pooling_type,
            attention_type,
            flash_attn_type,
            rope_freq_base,
            rope_freq_scale,
            yarn_ext_factor,
            yarn_attn_factor,
            yarn_beta_fast,
            yarn_beta_slow,
            yarn_orig_ctx,
            defrag_thold,
            cb_eval,
            cb_eval_user_data,
            type_k,
            type_v,
            abort_callback,
            abort_callback_data,
            embeddings,
            offload_kqv,
            no_perf,
            op_offload,
            swa_full,
            kv_unified,
            samplers,
            n_samplers,
            ctx_other,
        }
    );
    layout!(p, llama_model_tensor_override { pattern, r#type });
    layout!(p, llama_model_imatrix_data { name, data, size });
    layout!(
        p,
        llama_model_quantize_params {
            nthread,
            ftype,
            output_tensor_type,
            token_embedding_type,
            allow_requantize,
            quantize_output_tensor,
            only_copy,
            pure,
            keep_split,
            dry_run,
            imatrix,
            kv_overrides,
            tt_overrides,
            prune_layers,
            max_buf_size,
        }
    );
    layout!(p, llama_logit_bias { token, bias });
    layout!(p, llama_sampler_chain_params { no_perf });
    layout!(p, llama_chat_message { role, content });
    layout!(
        p,
        llama_embd {
            data,
            n_rows,
            n_embd
        }
    );
    layout!(
        p,
        llama_sampler_data {
            logits,
            probs,
            sampled,
            candidates
        }
    );
    layout!(
        p,
        llama_sampler_i {
            name,
            accept,
            apply,
            reset,
            clone,
            free,
            backend_init,
            backend_accept,
            backend_apply,
            backend_set_input,
            backend_reset,
            copy_state,
        }
    );
    layout!(p, llama_sampler { iface, ctx });
    layout!(
        p,
        llama_perf_context_data {
            t_start_ms,
            t_load_ms,
            t_p_eval_ms,
            t_eval_ms,
            n_p_eval,
            n_eval,
            n_reused,
        }
    );
    layout!(
        p,
        llama_perf_sampler_data {
            t_sample_ms,
            n_sample
        }
    );
    layout!(
        p,
        llama_opt_params {
            n_ctx_train,
            param_filter,
            param_filter_ud,
            get_opt_pars,
            get_opt_pars_ud,
            optimizer_type,
        }
    );
    layout!(p, ggml_opt_optimizer_params { adamw, sgd });
    layout!(
        p,
        ggml_opt_optimizer_params_adamw = "__typeof__(((struct ggml_opt_optimizer_params *)0)->adamw)",
        in CLocation::Nested("ggml_opt_optimizer_params", "adamw"),
        { alpha, beta1, beta2, eps, wd }
    );
    layout!(
        p,
        ggml_opt_optimizer_params_sgd = "__typeof__(((struct ggml_opt_optimizer_params *)0)->sgd)",
        in CLocation::Nested("ggml_opt_optimizer_params", "sgd"),
        { alpha, wd }
    );
    layout!(
        p,
        ggml_backend_dev_caps {
            r#async,
            host_buffer,
            buffer_from_host_ptr,
            events,
            mmap_support
        }
    );
    layout!(
        p,
        ggml_backend_dev_props {
            name,
            description,
            memory_free,
            memory_total,
            r#type,
            device_id,
            caps,
        }
    );
    p
}

/// Defines `fn kv_override(p: &mut Probe)` for the `llama_model_kv_override` and
/// `llama_model_kv_override_value` in scope (both generations have the same C struct).
macro_rules! define_kv_override {
    () => {
        /// `struct llama_model_kv_override` and its anonymous union, which Rust names: the field
        /// `value` of type `llama_model_kv_override_value`. C cannot name the union, so its
        /// offset is that of its first member, its size is measured up to the end of the struct
        /// (it is the last member and the struct has the union's alignment, as the header body
        /// and the struct alignment checks confirm) and its alignment is the largest of its
        /// members'.
        fn kv_override(p: &mut Probe) {
            const C: &str = "struct llama_model_kv_override";
            p.type_layout(
                "llama_model_kv_override",
                C,
                size_of::<llama_model_kv_override>(),
                align_of::<llama_model_kv_override>(),
            );
            for (field, offset, layout) in [
                (
                    "tag",
                    offset_of!(llama_model_kv_override, tag),
                    field_layout::<llama_model_kv_override, _>(|s| &s.tag),
                ),
                (
                    "key",
                    offset_of!(llama_model_kv_override, key),
                    field_layout::<llama_model_kv_override, _>(|s| &s.key),
                ),
            ] {
                p.field("llama_model_kv_override", C, field, offset, layout);
            }
            let _complete = |s: &llama_model_kv_override| {
                let llama_model_kv_override {
                    tag: _,
                    key: _,
                    value: _,
                } = s;
            };
            p.fields += 1;
            p.check(
                "llama_model_kv_override.value offset (= val_i64's)".into(),
                format!("offsetof({C}, val_i64)"),
                offset_of!(llama_model_kv_override, value),
            );

            type U = llama_model_kv_override_value;
            p.check(
                "llama_model_kv_override_value size (to the end of the struct)".into(),
                format!("sizeof({C}) - offsetof({C}, val_i64)"),
                size_of::<U>(),
            );
            // The accessors below are never called: they only name each member's type.
            // SAFETY: never called.
            let val_i64 = field_layout::<U, _>(|u| unsafe { &u.val_i64 });
            // SAFETY: never called.
            let val_f64 = field_layout::<U, _>(|u| unsafe { &u.val_f64 });
            // SAFETY: never called.
            let val_bool = field_layout::<U, _>(|u| unsafe { &u.val_bool });
            // SAFETY: never called.
            let val_str = field_layout::<U, _>(|u| unsafe { &u.val_str });
            let members = [
                ("val_i64", offset_of!(U, val_i64), val_i64),
                ("val_f64", offset_of!(U, val_f64), val_f64),
                ("val_bool", offset_of!(U, val_bool), val_bool),
                ("val_str", offset_of!(U, val_str), val_str),
            ];
            let mut c_align = String::from("0");
            for (field, offset, (size, align)) in members {
                p.fields += 1;
                let member = format!("((({C} *)0)->{field})");
                p.check(
                    format!("llama_model_kv_override_value.{field} offset"),
                    format!("offsetof({C}, {field}) - offsetof({C}, val_i64)"),
                    offset,
                );
                p.check(
                    format!("llama_model_kv_override_value.{field} size"),
                    format!("sizeof{member}"),
                    size,
                );
                p.check(
                    format!("llama_model_kv_override_value.{field} align"),
                    format!("_Alignof(__typeof__{member})"),
                    align,
                );
                c_align = format!(
                    "(_Alignof(__typeof__{member}) > {c_align} ? _Alignof(__typeof__{member}) : {c_align})"
                );
            }
            p.check(
                "llama_model_kv_override_value align (largest member's)".into(),
                c_align,
                align_of::<U>(),
            );

            let union_fields = members.map(|m| m.0);
            let mut all = vec!["tag", "key"];
            all.extend(union_fields);
            p.listed(
                "llama_model_kv_override",
                CLocation::Struct("llama_model_kv_override"),
                &all,
            );
            p.listed(
                "llama_model_kv_override_value",
                CLocation::Anonymous("llama_model_kv_override"),
                &union_fields,
            );
        }
    };
}

define_kv_override!();

/// `enum_layout!(probe, name, ...)`: `sizeof`/`_Alignof(enum name)` against the Rust alias
/// (`c_int`). Signedness is not compared: GCC gives enums without negative values an unsigned
/// underlying type, which passes and returns like `int` for every enumerator value.
macro_rules! enum_layout {
    ($probe:ident, $($e:ident),* $(,)?) => {$(
        $probe.type_layout(stringify!($e), concat!("enum ", stringify!($e)), size_of::<$e>(), align_of::<$e>());
    )*};
}

/// `typedef_layout!(probe, name, ...)`: `sizeof`/`_Alignof(name)` against the Rust alias.
macro_rules! typedef_layout {
    ($probe:ident, $($t:ident),* $(,)?) => {$(
        $probe.type_layout(stringify!($t), stringify!($t), size_of::<$t>(), align_of::<$t>());
    )*};
}

/// `int_typedef!(probe, name, ...)`: a scalar typedef's size, alignment and signedness.
macro_rules! int_typedef {
    ($probe:ident, $($t:ident),* $(,)?) => {$(
        typedef_layout!($probe, $t);
        $probe.check(
            concat!(stringify!($t), " signed").into(),
            concat!("((", stringify!($t), ")-1 < 0)").into(),
            (<$t>::MIN != 0) as i32,
        );
    )*};
}

/// `values!(probe, NAME, ...)`: the value of each enum constant or `#define`.
macro_rules! values {
    ($probe:ident, $($v:ident),* $(,)?) => {$(
        $probe.check(stringify!($v).into(), concat!("(long long)(", stringify!($v), ")").into(), $v);
    )*};
}

/// Enums, typedefs and constants.
fn scalar_probe() -> Probe {
    let mut p = Probe::default();
    enum_layout!(
        p,
        llama_vocab_type,
        llama_rope_type,
        llama_token_type,
        llama_token_attr,
        llama_ftype,
        llama_rope_scaling_type,
        llama_pooling_type,
        llama_attention_type,
        llama_flash_attn_type,
        llama_split_mode,
        llama_load_mode,
        llama_lazy_mode,
        llama_context_type,
        llama_model_kv_override_type,
        llama_model_meta_key,
        llama_process_type,
        ggml_type,
        ggml_numa_strategy,
        ggml_log_level,
        ggml_backend_dev_type,
        ggml_opt_optimizer_type,
    );
    // Every enum is the Rust `c_int`.
    p.check(
        "c_int size".into(),
        "sizeof(int)".into(),
        size_of::<c_int>(),
    );
    int_typedef!(
        p,
        llama_pos,
        llama_token,
        llama_seq_id,
        llama_state_seq_flags
    );
    typedef_layout!(
        p,
        llama_memory_t,
        llama_sampler_context_t,
        ggml_threadpool_t,
        ggml_backend_buffer_type_t,
        ggml_backend_dev_t,
        ggml_backend_reg_t,
        ggml_backend_t,
        ggml_opt_dataset_t,
        ggml_opt_result_t,
        ggml_opt_context_t,
        // Callbacks: `Option<unsafe extern "C" fn>` is pointer-sized.
        llama_progress_callback,
        ggml_log_callback,
        ggml_abort_callback,
        ggml_backend_sched_eval_callback,
        llama_model_set_tensor_data_t,
        llama_opt_param_filter,
        ggml_opt_get_optimizer_params,
        ggml_opt_epoch_callback,
    );
    p.check(
        "void * size".into(),
        "sizeof(void *)".into(),
        size_of::<*mut std::ffi::c_void>(),
    );

    values!(
        p,
        LLAMA_DEFAULT_SEED,
        LLAMA_TOKEN_NULL,
        LLAMA_SESSION_VERSION,
        LLAMA_STATE_SEQ_VERSION
    );
    values!(
        p,
        LLAMA_VOCAB_TYPE_NONE,
        LLAMA_VOCAB_TYPE_SPM,
        LLAMA_VOCAB_TYPE_BPE,
        LLAMA_VOCAB_TYPE_WPM,
        LLAMA_VOCAB_TYPE_UGM,
        LLAMA_VOCAB_TYPE_RWKV,
        LLAMA_VOCAB_TYPE_PLAMO2,
        LLAMA_VOCAB_TYPE_TEST,
        LLAMA_ROPE_TYPE_NONE,
        LLAMA_ROPE_TYPE_NORM,
        LLAMA_ROPE_TYPE_NEOX,
        LLAMA_ROPE_TYPE_MROPE,
        LLAMA_ROPE_TYPE_IMROPE,
        LLAMA_ROPE_TYPE_VISION,
        LLAMA_TOKEN_TYPE_UNDEFINED,
        LLAMA_TOKEN_TYPE_NORMAL,
        LLAMA_TOKEN_TYPE_UNKNOWN,
        LLAMA_TOKEN_TYPE_CONTROL,
        LLAMA_TOKEN_TYPE_USER_DEFINED,
        LLAMA_TOKEN_TYPE_UNUSED,
        LLAMA_TOKEN_TYPE_BYTE,
        LLAMA_TOKEN_ATTR_UNDEFINED,
        LLAMA_TOKEN_ATTR_UNKNOWN,
        LLAMA_TOKEN_ATTR_UNUSED,
        LLAMA_TOKEN_ATTR_NORMAL,
        LLAMA_TOKEN_ATTR_CONTROL,
        LLAMA_TOKEN_ATTR_USER_DEFINED,
        LLAMA_TOKEN_ATTR_BYTE,
        LLAMA_TOKEN_ATTR_NORMALIZED,
        LLAMA_TOKEN_ATTR_LSTRIP,
        LLAMA_TOKEN_ATTR_RSTRIP,
        LLAMA_TOKEN_ATTR_SINGLE_WORD,
        LLAMA_FTYPE_ALL_F32,
        LLAMA_FTYPE_MOSTLY_F16,
        LLAMA_FTYPE_MOSTLY_Q4_0,
        LLAMA_FTYPE_MOSTLY_Q4_1,
        LLAMA_FTYPE_MOSTLY_Q8_0,
        LLAMA_FTYPE_MOSTLY_Q5_0,
        LLAMA_FTYPE_MOSTLY_Q5_1,
        LLAMA_FTYPE_MOSTLY_Q2_K,
        LLAMA_FTYPE_MOSTLY_Q3_K_S,
        LLAMA_FTYPE_MOSTLY_Q3_K_M,
        LLAMA_FTYPE_MOSTLY_Q3_K_L,
        LLAMA_FTYPE_MOSTLY_Q4_K_S,
        LLAMA_FTYPE_MOSTLY_Q4_K_M,
        LLAMA_FTYPE_MOSTLY_Q5_K_S,
        LLAMA_FTYPE_MOSTLY_Q5_K_M,
        LLAMA_FTYPE_MOSTLY_Q6_K,
        LLAMA_FTYPE_MOSTLY_IQ2_XXS,
        LLAMA_FTYPE_MOSTLY_IQ2_XS,
        LLAMA_FTYPE_MOSTLY_Q2_K_S,
        LLAMA_FTYPE_MOSTLY_IQ3_XS,
        LLAMA_FTYPE_MOSTLY_IQ3_XXS,
        LLAMA_FTYPE_MOSTLY_IQ1_S,
        LLAMA_FTYPE_MOSTLY_IQ4_NL,
        LLAMA_FTYPE_MOSTLY_IQ3_S,
        LLAMA_FTYPE_MOSTLY_IQ3_M,
        LLAMA_FTYPE_MOSTLY_IQ2_S,
        LLAMA_FTYPE_MOSTLY_IQ2_M,
        LLAMA_FTYPE_MOSTLY_IQ4_XS,
        LLAMA_FTYPE_MOSTLY_IQ1_M,
        LLAMA_FTYPE_MOSTLY_BF16,
        LLAMA_FTYPE_MOSTLY_TQ1_0,
        LLAMA_FTYPE_MOSTLY_TQ2_0,
        LLAMA_FTYPE_MOSTLY_MXFP4_MOE,
        LLAMA_FTYPE_MOSTLY_NVFP4,
        LLAMA_FTYPE_MOSTLY_Q1_0,
        LLAMA_FTYPE_MOSTLY_Q2_0,
        LLAMA_FTYPE_GUESSED,
        LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED,
        LLAMA_ROPE_SCALING_TYPE_NONE,
        LLAMA_ROPE_SCALING_TYPE_LINEAR,
        LLAMA_ROPE_SCALING_TYPE_YARN,
        LLAMA_ROPE_SCALING_TYPE_LONGROPE,
        LLAMA_ROPE_SCALING_TYPE_MAX_VALUE,
        LLAMA_POOLING_TYPE_UNSPECIFIED,
        LLAMA_POOLING_TYPE_NONE,
        LLAMA_POOLING_TYPE_MEAN,
        LLAMA_POOLING_TYPE_CLS,
        LLAMA_POOLING_TYPE_LAST,
        LLAMA_POOLING_TYPE_RANK,
        LLAMA_ATTENTION_TYPE_UNSPECIFIED,
        LLAMA_ATTENTION_TYPE_CAUSAL,
        LLAMA_ATTENTION_TYPE_NON_CAUSAL,
        LLAMA_FLASH_ATTN_TYPE_AUTO,
        LLAMA_FLASH_ATTN_TYPE_DISABLED,
        LLAMA_FLASH_ATTN_TYPE_ENABLED,
        LLAMA_SPLIT_MODE_NONE,
        LLAMA_SPLIT_MODE_LAYER,
        LLAMA_SPLIT_MODE_ROW,
        LLAMA_SPLIT_MODE_TENSOR,
        LLAMA_LOAD_MODE_AUTO,
        LLAMA_LOAD_MODE_NONE,
        LLAMA_LOAD_MODE_MMAP,
        LLAMA_LOAD_MODE_MLOCK,
        LLAMA_LOAD_MODE_MMAP_MLOCK,
        LLAMA_LOAD_MODE_DIRECT_IO,
        LLAMA_LAZY_MODE_OFF,
        LLAMA_LAZY_MODE_AUTO,
        LLAMA_LAZY_MODE_ON,
        LLAMA_CONTEXT_TYPE_DEFAULT,
        LLAMA_CONTEXT_TYPE_MTP,
        LLAMA_KV_OVERRIDE_TYPE_INT,
        LLAMA_KV_OVERRIDE_TYPE_FLOAT,
        LLAMA_KV_OVERRIDE_TYPE_BOOL,
        LLAMA_KV_OVERRIDE_TYPE_STR,
        LLAMA_MODEL_META_KEY_SAMPLING_SEQUENCE,
        LLAMA_MODEL_META_KEY_SAMPLING_TOP_K,
        LLAMA_MODEL_META_KEY_SAMPLING_TOP_P,
        LLAMA_MODEL_META_KEY_SAMPLING_MIN_P,
        LLAMA_MODEL_META_KEY_SAMPLING_XTC_PROBABILITY,
        LLAMA_MODEL_META_KEY_SAMPLING_XTC_THRESHOLD,
        LLAMA_MODEL_META_KEY_SAMPLING_TEMP,
        LLAMA_MODEL_META_KEY_SAMPLING_PENALTY_LAST_N,
        LLAMA_MODEL_META_KEY_SAMPLING_PENALTY_REPEAT,
        LLAMA_MODEL_META_KEY_SAMPLING_MIROSTAT,
        LLAMA_MODEL_META_KEY_SAMPLING_MIROSTAT_TAU,
        LLAMA_MODEL_META_KEY_SAMPLING_MIROSTAT_ETA,
        LLAMA_PROCESS_TYPE_ENCODE,
        LLAMA_PROCESS_TYPE_DECODE,
        GGML_TYPE_F32,
        GGML_TYPE_F16,
        GGML_TYPE_Q4_0,
        GGML_TYPE_Q4_1,
        GGML_TYPE_Q5_0,
        GGML_TYPE_Q5_1,
        GGML_TYPE_Q8_0,
        GGML_TYPE_BF16,
        GGML_NUMA_STRATEGY_DISABLED,
        GGML_NUMA_STRATEGY_DISTRIBUTE,
        GGML_NUMA_STRATEGY_ISOLATE,
        GGML_NUMA_STRATEGY_NUMACTL,
        GGML_NUMA_STRATEGY_MIRROR,
        GGML_LOG_LEVEL_NONE,
        GGML_LOG_LEVEL_DEBUG,
        GGML_LOG_LEVEL_INFO,
        GGML_LOG_LEVEL_WARN,
        GGML_LOG_LEVEL_ERROR,
        GGML_LOG_LEVEL_CONT,
        GGML_BACKEND_DEVICE_TYPE_CPU,
        GGML_BACKEND_DEVICE_TYPE_GPU,
        GGML_BACKEND_DEVICE_TYPE_IGPU,
        GGML_BACKEND_DEVICE_TYPE_ACCEL,
        GGML_BACKEND_DEVICE_TYPE_META,
        GGML_OPT_OPTIMIZER_TYPE_ADAMW,
        GGML_OPT_OPTIMIZER_TYPE_SGD,
        GGML_OPT_OPTIMIZER_TYPE_COUNT,
    );
    p
}

// ---------------------------------------------------------------------------------------------
// The C probe.

/// Compiles and runs a probe against `generation`'s headers printing every check's C value;
/// returns them by label.
fn run_probe(generation: &Generation, checks: &[Check]) -> HashMap<String, i128> {
    let source = &generation.root;
    let mut c = String::from(
        "#include \"llama.h\"\n#include <stddef.h>\n#include <stdio.h>\n\nint main(void) {\n",
    );
    for (i, check) in checks.iter().enumerate() {
        writeln!(
            c,
            "    printf(\"{i} %lld\\n\", (long long)({}));",
            check.c_expr
        )
        .unwrap();
    }
    c.push_str("    return 0;\n}\n");

    let dir = tempfile::tempdir().expect("temporary directory");
    let exe = dir.path().join("layout_probe");
    let include = |sub: &str| format!("-I{}", source.join(sub).display());
    common::compile_c(&c, &exe, &[&include("include"), &include("ggml/include")]);
    let output = Command::new(&exe)
        .output()
        .expect("running the layout probe");
    assert!(
        output.status.success(),
        "the layout probe failed: {:?}",
        output.status
    );

    let stdout = String::from_utf8(output.stdout).expect("probe output is UTF-8");
    let mut values = HashMap::new();
    for line in stdout.lines() {
        let (index, value) = line.split_once(' ').expect("probe line: index value");
        let check = &checks[index.parse::<usize>().expect("probe index")];
        values.insert(
            check.label.clone(),
            value.parse::<i128>().expect("probe value"),
        );
    }
    assert_eq!(
        values.len(),
        checks.len(),
        "the probe printed every check once"
    );
    values
}

/// Runs the probe and fails with every mismatch (label, C value, Rust value).
fn compare(generation: &Generation, name: &str, probe: &Probe) {
    let c_values = run_probe(generation, &probe.checks);
    let mut mismatches = Vec::new();
    for check in &probe.checks {
        let c = c_values[&check.label];
        if c != check.rust {
            mismatches.push(format!(
                "  {:<70} C = {c:<6} Rust = {}",
                check.label, check.rust
            ));
        }
    }
    println!("{name}: {} checks", probe.checks.len());
    assert!(
        mismatches.is_empty(),
        "{} {name}: {} mismatches with the pinned header:\n{}",
        generation.name,
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Compares the struct probe of one generation.
fn check_struct_layouts(generation: &Generation, probe: &Probe) {
    let types: BTreeSet<_> = probe.listed.iter().map(|l| l.rust).collect();
    println!(
        "{}: {} structs and unions, {} fields",
        generation.name,
        types.len(),
        probe.fields
    );
    compare(generation, "struct layouts", probe);
}

#[test]
fn struct_layouts_match_the_header() {
    check_struct_layouts(&upstream_generation(), &struct_probe());
}

#[test]
fn enum_typedef_and_constant_values_match_the_header() {
    compare(
        &upstream_generation(),
        "enums, typedefs and constants",
        &scalar_probe(),
    );
}

// ---------------------------------------------------------------------------------------------
// Completeness against the header bodies and types.rs.

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The text between the `{` at `open` and its matching `}`.
fn braced(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces after offset {open}")
}

/// The body of `struct NAME { ... }` in `text`, if it is defined there.
fn struct_body<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("struct {name}");
    let mut from = 0;
    while let Some(found) = text[from..].find(&needle) {
        let at = from + found;
        let after = at + needle.len();
        from = after;
        let before_ok = !text[..at].chars().next_back().is_some_and(is_ident);
        let rest = &text[after..];
        let after_ok = rest.chars().next().is_some_and(|c| !is_ident(c));
        if before_ok && after_ok && rest.trim_start().starts_with('{') {
            let open = after + (rest.len() - rest.trim_start().len());
            return Some(braced(text, open));
        }
    }
    None
}

/// One member of a C aggregate: its name (none for an anonymous union/struct) and, for nested
/// aggregates, their members.
struct Member {
    name: Option<String>,
    children: Vec<Member>,
}

/// Splits a body at the `;` that are outside braces and parentheses.
fn top_level_statements(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            ';' if depth == 0 => {
                out.push(body[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    assert!(
        body[start..].trim().is_empty(),
        "unterminated member declaration: {:?}",
        &body[start..]
    );
    out
}

/// The last identifier of `decl` (array suffixes removed).
fn last_ident(decl: &str) -> String {
    let decl = decl.split('[').next().unwrap_or(decl).trim_end();
    let start = decl.rfind(|c: char| !is_ident(c)).map_or(0, |i| i + 1);
    let name = &decl[start..];
    assert!(!name.is_empty(), "no member name in {decl:?}");
    name.to_string()
}

/// The members of an aggregate body, in declaration order.
fn members(body: &str) -> Vec<Member> {
    let mut out = Vec::new();
    for decl in top_level_statements(body) {
        if let Some(open) = decl.find('{') {
            let inner = braced(decl, open);
            let tail = decl[open + inner.len() + 2..].trim();
            let name = (!tail.is_empty()).then(|| last_ident(tail));
            out.push(Member {
                name,
                children: members(inner),
            });
        } else if let Some(star) = decl.find("(*") {
            // A function pointer: `ret (*name)(params)`.
            let rest = &decl[star + 2..];
            let name = rest[..rest.find(')').expect("function pointer member")].trim();
            out.push(Member {
                name: Some(name.to_string()),
                children: Vec::new(),
            });
        } else {
            for declarator in decl.split(',') {
                out.push(Member {
                    name: Some(last_ident(declarator)),
                    children: Vec::new(),
                });
            }
        }
    }
    out
}

/// Member names with anonymous aggregates flattened into their parent.
fn flattened(members: &[Member]) -> Vec<String> {
    let mut out = Vec::new();
    for member in members {
        match &member.name {
            Some(name) => out.push(name.clone()),
            None => out.extend(flattened(&member.children)),
        }
    }
    out
}

/// The headers that define the mirrored structs, comments removed.
fn header_texts(generation: &Generation) -> Vec<(String, String)> {
    let source = &generation.root;
    generation
        .headers
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(source.join(path))
                .unwrap_or_else(|e| panic!("reading {path}: {e}"));
            (path.to_string(), common::strip_comments(&text))
        })
        .collect()
}

fn find_body<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find_map(|(_, text)| struct_body(text, name))
        .unwrap_or_else(|| panic!("struct {name} has no body in the pinned headers"))
}

/// Every C field of every mirrored struct is in the test's lists, in declaration order.
#[test]
fn field_lists_are_complete() {
    check_field_lists(&upstream_generation(), &struct_probe());
}

/// Every C field of every struct in `probe` is listed, in declaration order.
fn check_field_lists(generation: &Generation, probe: &Probe) {
    let headers = header_texts(generation);
    let mut problems = Vec::new();
    for listed in &probe.listed {
        let c_fields = match listed.location {
            CLocation::Struct(name) => flattened(&members(find_body(&headers, name))),
            CLocation::Nested(parent, member) => {
                let all = members(find_body(&headers, parent));
                let nested = all.iter().find(|m| m.name.as_deref() == Some(member));
                flattened(
                    &nested
                        .unwrap_or_else(|| panic!("{parent} has no member {member}"))
                        .children,
                )
            }
            CLocation::Anonymous(parent) => {
                let all = members(find_body(&headers, parent));
                let anonymous = all.iter().find(|m| m.name.is_none());
                flattened(
                    &anonymous
                        .unwrap_or_else(|| panic!("{parent} has no anonymous member"))
                        .children,
                )
            }
        };
        if c_fields != listed.c_fields {
            problems.push(format!(
                "  {}:\n    header: {}\n    listed: {}",
                listed.rust,
                c_fields.join(", "),
                listed.c_fields.join(", ")
            ));
        }
    }
    // The anonymous union is the last member of llama_model_kv_override (its size is measured
    // from its offset to the end of the struct).
    let kv = members(find_body(&headers, "llama_model_kv_override"));
    assert!(
        kv.last().is_some_and(|m| m.name.is_none()),
        "the anonymous union is no longer the last member of llama_model_kv_override"
    );
    assert!(
        problems.is_empty(),
        "{}: field lists differ from the pinned headers:\n{}",
        generation.name,
        problems.join("\n")
    );
}

/// Every `repr(C)` struct/union of types.rs is checked here, and every struct llama.h defines is
/// mirrored.
#[test]
fn every_struct_is_covered() {
    check_coverage(&upstream_generation(), &struct_probe());
}

/// Every `repr(C)` struct/union of the generation's types.rs is in `probe`, and every struct its
/// llama.h defines is mirrored.
fn check_coverage(generation: &Generation, probe: &Probe) {
    let covered: BTreeSet<&str> = probe.listed.iter().map(|l| l.rust).collect();

    let types_rs = common::repo_root().join(generation.types_rs);
    let text = std::fs::read_to_string(&types_rs)
        .unwrap_or_else(|e| panic!("reading {}: {e}", generation.types_rs));
    let mut repr_c = BTreeSet::new();
    let mut pending = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("#[repr(C)]") {
            pending = true;
        } else if pending && (line.starts_with("pub struct ") || line.starts_with("pub union ")) {
            let name = line.split_whitespace().nth(2).unwrap_or_default();
            let name: String = name
                .chars()
                .take_while(|&c| is_ident(c) || c == '$')
                .collect();
            // `$name` is the opaque-handle macro's template, not a mirrored struct.
            if !name.starts_with('$') {
                repr_c.insert(name);
            }
            pending = false;
        } else if pending && !line.starts_with("#[") && !line.starts_with("///") {
            pending = false;
        }
    }
    let repr_c: BTreeSet<&str> = repr_c.iter().map(String::as_str).collect();
    let unchecked: Vec<_> = repr_c.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&repr_c).collect();
    assert!(
        unchecked.is_empty(),
        "repr(C) types in {} without a layout check: {unchecked:?}",
        generation.types_rs
    );
    assert!(
        stale.is_empty(),
        "layout checks for types {} does not define: {stale:?}",
        generation.types_rs
    );

    let llama_h =
        std::fs::read_to_string(generation.root.join("include/llama.h")).expect("reading llama.h");
    let llama_h = common::strip_comments(&llama_h);
    let mut defined = BTreeSet::new();
    let mut from = 0;
    while let Some(found) = llama_h[from..].find("struct ") {
        let at = from + found + "struct ".len();
        from = at;
        let name: String = llama_h[at..].chars().take_while(|&c| is_ident(c)).collect();
        if !name.is_empty() && llama_h[at + name.len()..].trim_start().starts_with('{') {
            defined.insert(name);
        }
    }
    let missing: Vec<_> = defined
        .iter()
        .filter(|name| !covered.contains(name.as_str()))
        .collect();
    println!(
        "{}: llama.h defines {} structs; {} repr(C) types in types.rs are checked",
        generation.name,
        defined.len(),
        repr_c.len()
    );
    assert!(
        missing.is_empty(),
        "structs defined in the {} llama.h without a mirror: {missing:?}",
        generation.name
    );
}

// ---------------------------------------------------------------------------------------------
// The BitNet fork (`src/sys/bitnet`).

/// The enumerators of every `enum NAME { ... }` defined in `text` (comments removed), by enum.
fn enum_bodies(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("enum ") {
        let at = from + found;
        from = at + "enum ".len();
        if text[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = &text[from..];
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|&c| is_ident(c))
            .collect();
        let after_name = rest.trim_start()[name.len()..].trim_start();
        if name.is_empty() || !after_name.starts_with('{') {
            continue;
        }
        let open = text.len() - after_name.len();
        let enumerators = braced(text, open)
            .split(',')
            .map(|item| item.trim().chars().take_while(|&c| is_ident(c)).collect())
            .filter(|item: &String| !item.is_empty())
            .collect();
        out.push((name, enumerators));
    }
    out
}

/// The probes of `gguf_loader::sys::bitnet` (the same checks as upstream's, for the fork's types).
mod fork {
    use std::ffi::c_int;
    use std::mem::{align_of, offset_of, size_of};

    use gguf_loader::sys::bitnet::*;

    use super::{c_name, field_layout, CLocation, Probe};

    define_kv_override!();

    /// Every mirrored struct and union of the fork, each field written once.
    pub(super) fn struct_probe() -> Probe {
        let mut p = Probe::default();
        layout!(p, llama_token_data { id, logit, p });
        layout!(
            p,
            llama_token_data_array {
                data,
                size,
                selected,
                sorted
            }
        );
        layout!(
            p,
            llama_batch {
                n_tokens,
                token,
                embd,
                pos,
                n_seq_id,
                seq_id,
                logits,
                all_pos_0,
                all_pos_1,
                all_seq_id,
            }
        );
        kv_override(&mut p);
        layout!(
            p,
            llama_model_params {
                n_gpu_layers,
                split_mode,
                main_gpu,
                tensor_split,
                rpc_servers,
                progress_callback,
                progress_callback_user_data,
                kv_overrides,
                vocab_only,
                use_mmap,
                use_mlock,
                check_tensors,
            }
        );
        layout!(
            p,
            llama_context_params {
                n_ctx,
                n_batch,
                n_ubatch,
                n_seq_max,
                n_threads,
                n_threads_batch,
                rope_scaling_type,
                pooling_type,
                attention_type,
                rope_freq_base,
                rope_freq_scale,
                yarn_ext_factor,
                yarn_attn_factor,
                yarn_beta_fast,
                yarn_beta_slow,
                yarn_orig_ctx,
                defrag_thold,
                cb_eval,
                cb_eval_user_data,
                type_k,
                type_v,
                logits_all,
                embeddings,
                offload_kqv,
                flash_attn,
                no_perf,
                abort_callback,
                abort_callback_data,
            }
        );
        layout!(
            p,
            llama_model_quantize_params {
                nthread,
                ftype,
                output_tensor_type,
                token_embedding_type,
                allow_requantize,
                quantize_output_tensor,
                only_copy,
                pure,
                keep_split,
                imatrix,
                kv_overrides,
            }
        );
        layout!(p, llama_logit_bias { token, bias });
        layout!(p, llama_sampler_chain_params { no_perf });
        layout!(p, llama_chat_message { role, content });
        layout!(p, llama_kv_cache_view_cell { pos });
        layout!(
            p,
            llama_kv_cache_view {
                n_cells,
                n_seq_max,
                token_count,
                used_cells,
                max_contiguous,
                max_contiguous_idx,
                cells,
                cells_sequences,
            }
        );
        layout!(
            p,
            llama_sampler_i {
                name,
                accept,
                apply,
                reset,
                clone,
                free
            }
        );
        layout!(p, llama_sampler { iface, ctx });
        layout!(
            p,
            llama_perf_context_data {
                t_start_ms,
                t_load_ms,
                t_p_eval_ms,
                t_eval_ms,
                n_p_eval,
                n_eval,
            }
        );
        layout!(
            p,
            llama_perf_sampler_data {
                t_sample_ms,
                n_sample
            }
        );
        layout!(
            p,
            ggml_backend_dev_caps {
                r#async,
                host_buffer,
                buffer_from_host_ptr,
                events
            }
        );
        layout!(
            p,
            ggml_backend_dev_props {
                name,
                description,
                memory_free,
                memory_total,
                r#type,
                caps,
            }
        );
        p
    }

    /// The fork's enums, typedefs and constants.
    pub(super) fn scalar_probe() -> Probe {
        let mut p = Probe::default();
        enum_layout!(
            p,
            llama_vocab_type,
            llama_vocab_pre_type,
            llama_rope_type,
            llama_token_type,
            llama_token_attr,
            llama_ftype,
            llama_rope_scaling_type,
            llama_pooling_type,
            llama_attention_type,
            llama_split_mode,
            llama_model_kv_override_type,
            ggml_type,
            ggml_numa_strategy,
            ggml_log_level,
            ggml_backend_dev_type,
        );
        p.check(
            "c_int size".into(),
            "sizeof(int)".into(),
            size_of::<c_int>(),
        );
        int_typedef!(p, llama_pos, llama_token, llama_seq_id);
        typedef_layout!(
            p,
            llama_sampler_context_t,
            ggml_threadpool_t,
            ggml_backend_buffer_type_t,
            ggml_backend_dev_t,
            ggml_backend_reg_t,
            ggml_backend_t,
            // Callbacks: `Option<unsafe extern "C" fn>` is pointer-sized.
            llama_progress_callback,
            ggml_log_callback,
            ggml_abort_callback,
            ggml_backend_sched_eval_callback,
        );
        p.check(
            "void * size".into(),
            "sizeof(void *)".into(),
            size_of::<*mut std::ffi::c_void>(),
        );

        values!(
            p,
            LLAMA_DEFAULT_SEED,
            LLAMA_TOKEN_NULL,
            LLAMA_FILE_MAGIC_GGLA,
            LLAMA_FILE_MAGIC_GGSN,
            LLAMA_FILE_MAGIC_GGSQ,
            LLAMA_SESSION_MAGIC,
            LLAMA_SESSION_VERSION,
            LLAMA_STATE_SEQ_MAGIC,
            LLAMA_STATE_SEQ_VERSION,
            GGML_ROPE_TYPE_NEOX,
        );
        values!(
            p,
            LLAMA_VOCAB_TYPE_NONE,
            LLAMA_VOCAB_TYPE_SPM,
            LLAMA_VOCAB_TYPE_BPE,
            LLAMA_VOCAB_TYPE_WPM,
            LLAMA_VOCAB_TYPE_UGM,
            LLAMA_VOCAB_TYPE_RWKV,
            LLAMA_VOCAB_PRE_TYPE_DEFAULT,
            LLAMA_VOCAB_PRE_TYPE_LLAMA3,
            LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM,
            LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_CODER,
            LLAMA_VOCAB_PRE_TYPE_FALCON,
            LLAMA_VOCAB_PRE_TYPE_MPT,
            LLAMA_VOCAB_PRE_TYPE_STARCODER,
            LLAMA_VOCAB_PRE_TYPE_GPT2,
            LLAMA_VOCAB_PRE_TYPE_REFACT,
            LLAMA_VOCAB_PRE_TYPE_COMMAND_R,
            LLAMA_VOCAB_PRE_TYPE_STABLELM2,
            LLAMA_VOCAB_PRE_TYPE_QWEN2,
            LLAMA_VOCAB_PRE_TYPE_OLMO,
            LLAMA_VOCAB_PRE_TYPE_DBRX,
            LLAMA_VOCAB_PRE_TYPE_SMAUG,
            LLAMA_VOCAB_PRE_TYPE_PORO,
            LLAMA_VOCAB_PRE_TYPE_CHATGLM3,
            LLAMA_VOCAB_PRE_TYPE_CHATGLM4,
            LLAMA_VOCAB_PRE_TYPE_VIKING,
            LLAMA_VOCAB_PRE_TYPE_JAIS,
            LLAMA_VOCAB_PRE_TYPE_TEKKEN,
            LLAMA_VOCAB_PRE_TYPE_SMOLLM,
            LLAMA_VOCAB_PRE_TYPE_CODESHELL,
            LLAMA_VOCAB_PRE_TYPE_BLOOM,
            LLAMA_VOCAB_PRE_TYPE_GPT3_FINNISH,
            LLAMA_VOCAB_PRE_TYPE_EXAONE,
            LLAMA_VOCAB_PRE_TYPE_CHAMELEON,
            LLAMA_VOCAB_PRE_TYPE_FALCON_3,
            LLAMA_ROPE_TYPE_NONE,
            LLAMA_ROPE_TYPE_NORM,
            LLAMA_ROPE_TYPE_NEOX,
            LLAMA_TOKEN_TYPE_UNDEFINED,
            LLAMA_TOKEN_TYPE_NORMAL,
            LLAMA_TOKEN_TYPE_UNKNOWN,
            LLAMA_TOKEN_TYPE_CONTROL,
            LLAMA_TOKEN_TYPE_USER_DEFINED,
            LLAMA_TOKEN_TYPE_UNUSED,
            LLAMA_TOKEN_TYPE_BYTE,
            LLAMA_TOKEN_ATTR_UNDEFINED,
            LLAMA_TOKEN_ATTR_UNKNOWN,
            LLAMA_TOKEN_ATTR_UNUSED,
            LLAMA_TOKEN_ATTR_NORMAL,
            LLAMA_TOKEN_ATTR_CONTROL,
            LLAMA_TOKEN_ATTR_USER_DEFINED,
            LLAMA_TOKEN_ATTR_BYTE,
            LLAMA_TOKEN_ATTR_NORMALIZED,
            LLAMA_TOKEN_ATTR_LSTRIP,
            LLAMA_TOKEN_ATTR_RSTRIP,
            LLAMA_TOKEN_ATTR_SINGLE_WORD,
            LLAMA_FTYPE_ALL_F32,
            LLAMA_FTYPE_MOSTLY_F16,
            LLAMA_FTYPE_MOSTLY_Q4_0,
            LLAMA_FTYPE_MOSTLY_Q4_1,
            LLAMA_FTYPE_MOSTLY_Q8_0,
            LLAMA_FTYPE_MOSTLY_Q5_0,
            LLAMA_FTYPE_MOSTLY_Q5_1,
            LLAMA_FTYPE_MOSTLY_Q2_K,
            LLAMA_FTYPE_MOSTLY_Q3_K_S,
            LLAMA_FTYPE_MOSTLY_Q3_K_M,
            LLAMA_FTYPE_MOSTLY_Q3_K_L,
            LLAMA_FTYPE_MOSTLY_Q4_K_S,
            LLAMA_FTYPE_MOSTLY_Q4_K_M,
            LLAMA_FTYPE_MOSTLY_Q5_K_S,
            LLAMA_FTYPE_MOSTLY_Q5_K_M,
            LLAMA_FTYPE_MOSTLY_Q6_K,
            LLAMA_FTYPE_MOSTLY_IQ2_XXS,
            LLAMA_FTYPE_MOSTLY_IQ2_XS,
            LLAMA_FTYPE_MOSTLY_Q2_K_S,
            LLAMA_FTYPE_MOSTLY_IQ3_XS,
            LLAMA_FTYPE_MOSTLY_IQ3_XXS,
            LLAMA_FTYPE_MOSTLY_IQ1_S,
            LLAMA_FTYPE_MOSTLY_IQ4_NL,
            LLAMA_FTYPE_MOSTLY_IQ3_S,
            LLAMA_FTYPE_MOSTLY_IQ3_M,
            LLAMA_FTYPE_MOSTLY_IQ2_S,
            LLAMA_FTYPE_MOSTLY_IQ2_M,
            LLAMA_FTYPE_MOSTLY_IQ4_XS,
            LLAMA_FTYPE_MOSTLY_IQ1_M,
            LLAMA_FTYPE_MOSTLY_BF16,
            LLAMA_FTYPE_MOSTLY_Q4_0_4_4,
            LLAMA_FTYPE_MOSTLY_Q4_0_4_8,
            LLAMA_FTYPE_MOSTLY_Q4_0_8_8,
            LLAMA_FTYPE_MOSTLY_TQ1_0,
            LLAMA_FTYPE_MOSTLY_TQ2_0,
            LLAMA_FTYPE_MOSTLY_TL1,
            LLAMA_FTYPE_MOSTLY_TL2,
            LLAMA_FTYPE_MOSTLY_I2_S,
            LLAMA_FTYPE_GUESSED,
            LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED,
            LLAMA_ROPE_SCALING_TYPE_NONE,
            LLAMA_ROPE_SCALING_TYPE_LINEAR,
            LLAMA_ROPE_SCALING_TYPE_YARN,
            LLAMA_ROPE_SCALING_TYPE_MAX_VALUE,
            LLAMA_POOLING_TYPE_UNSPECIFIED,
            LLAMA_POOLING_TYPE_NONE,
            LLAMA_POOLING_TYPE_MEAN,
            LLAMA_POOLING_TYPE_CLS,
            LLAMA_POOLING_TYPE_LAST,
            LLAMA_POOLING_TYPE_RANK,
            LLAMA_ATTENTION_TYPE_UNSPECIFIED,
            LLAMA_ATTENTION_TYPE_CAUSAL,
            LLAMA_ATTENTION_TYPE_NON_CAUSAL,
            LLAMA_SPLIT_MODE_NONE,
            LLAMA_SPLIT_MODE_LAYER,
            LLAMA_SPLIT_MODE_ROW,
            LLAMA_KV_OVERRIDE_TYPE_INT,
            LLAMA_KV_OVERRIDE_TYPE_FLOAT,
            LLAMA_KV_OVERRIDE_TYPE_BOOL,
            LLAMA_KV_OVERRIDE_TYPE_STR,
            GGML_TYPE_F32,
            GGML_TYPE_F16,
            GGML_TYPE_Q4_0,
            GGML_TYPE_Q4_1,
            GGML_TYPE_Q5_0,
            GGML_TYPE_Q5_1,
            GGML_TYPE_Q8_0,
            GGML_TYPE_Q8_1,
            GGML_TYPE_Q2_K,
            GGML_TYPE_Q3_K,
            GGML_TYPE_Q4_K,
            GGML_TYPE_Q5_K,
            GGML_TYPE_Q6_K,
            GGML_TYPE_Q8_K,
            GGML_TYPE_IQ2_XXS,
            GGML_TYPE_IQ2_XS,
            GGML_TYPE_IQ3_XXS,
            GGML_TYPE_IQ1_S,
            GGML_TYPE_IQ4_NL,
            GGML_TYPE_IQ3_S,
            GGML_TYPE_IQ2_S,
            GGML_TYPE_IQ4_XS,
            GGML_TYPE_I8,
            GGML_TYPE_I16,
            GGML_TYPE_I32,
            GGML_TYPE_I64,
            GGML_TYPE_F64,
            GGML_TYPE_IQ1_M,
            GGML_TYPE_BF16,
            GGML_TYPE_Q4_0_4_4,
            GGML_TYPE_Q4_0_4_8,
            GGML_TYPE_Q4_0_8_8,
            GGML_TYPE_TQ1_0,
            GGML_TYPE_TQ2_0,
            GGML_TYPE_I2_S,
            GGML_TYPE_I8_S,
            GGML_TYPE_TL1,
            GGML_TYPE_TL2,
            GGML_TYPE_COUNT,
            GGML_NUMA_STRATEGY_DISABLED,
            GGML_NUMA_STRATEGY_DISTRIBUTE,
            GGML_NUMA_STRATEGY_ISOLATE,
            GGML_NUMA_STRATEGY_NUMACTL,
            GGML_NUMA_STRATEGY_MIRROR,
            GGML_NUMA_STRATEGY_COUNT,
            GGML_LOG_LEVEL_NONE,
            GGML_LOG_LEVEL_INFO,
            GGML_LOG_LEVEL_WARN,
            GGML_LOG_LEVEL_ERROR,
            GGML_LOG_LEVEL_DEBUG,
            GGML_LOG_LEVEL_CONT,
            GGML_BACKEND_DEVICE_TYPE_CPU,
            GGML_BACKEND_DEVICE_TYPE_GPU,
            GGML_BACKEND_DEVICE_TYPE_CPU_FULL,
            GGML_BACKEND_DEVICE_TYPE_GPU_FULL,
        );
        p
    }
}

#[test]
fn bitnet_struct_layouts_match_the_header() {
    check_struct_layouts(&bitnet_generation(), &fork::struct_probe());
}

#[test]
fn bitnet_enum_typedef_and_constant_values_match_the_header() {
    compare(
        &bitnet_generation(),
        "enums, typedefs and constants",
        &fork::scalar_probe(),
    );
}

#[test]
fn bitnet_field_lists_are_complete() {
    check_field_lists(&bitnet_generation(), &fork::struct_probe());
}

#[test]
fn bitnet_every_struct_is_covered() {
    check_coverage(&bitnet_generation(), &fork::struct_probe());
}

/// Every enum the fork's llama.h defines, and every enumerator of it, is checked (with the ggml
/// enums the mirrors use); so is every enumerator of the ggml enums that are mirrored.
#[test]
fn bitnet_every_enum_constant_is_checked() {
    let generation = bitnet_generation();
    let probe = fork::scalar_probe();
    let labels: BTreeSet<&str> = probe.checks.iter().map(|c| c.label.as_str()).collect();
    let read = |path: &str| {
        let text = std::fs::read_to_string(generation.root.join(path))
            .unwrap_or_else(|e| panic!("reading {path}: {e}"));
        common::strip_comments(&text)
    };
    let mut enums = enum_bodies(&read("include/llama.h"));
    let mirrored_ggml = [
        ("ggml/include/ggml.h", "ggml_type"),
        ("ggml/include/ggml.h", "ggml_numa_strategy"),
        ("ggml/include/ggml.h", "ggml_log_level"),
        ("ggml/include/ggml-backend.h", "ggml_backend_dev_type"),
    ];
    for (path, name) in mirrored_ggml {
        let found = enum_bodies(&read(path))
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("enum {name} is not defined in {path}"));
        enums.push(found);
    }
    let mut missing = Vec::new();
    let mut count = 0;
    for (name, enumerators) in &enums {
        if !labels.contains(format!("{name} size").as_str()) {
            missing.push(format!("enum {name} (its size)"));
        }
        for enumerator in enumerators {
            count += 1;
            if !labels.contains(enumerator.as_str()) {
                missing.push(enumerator.clone());
            }
        }
    }
    println!("{} enums, {count} enumerators", enums.len());
    assert!(
        count > 150,
        "only {count} enumerators found: is the parser broken?"
    );
    assert!(
        missing.is_empty(),
        "enum constants of the fork's headers that src/sys/bitnet does not mirror: {missing:?}"
    );
}
