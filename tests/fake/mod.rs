//! Fake llama.cpp builds compiled at test time, for fault injection: every symbol of the tables
//! is exported as a stub, and the few that the loader calls have real bodies whose behaviour the
//! test chooses (versions, missing symbols, devices).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gguf_loader::sys::upstream::{GgmlBaseFunctions, GgmlFunctions, LlamaFunctions};

/// How the fake build misbehaves.
#[derive(Debug, Clone)]
pub struct FakeBuild {
    /// What ggml_version() returns.
    pub ggml_version: String,
    /// What llama_version() returns.
    pub llama_version: String,
    /// Symbols left out of libllama.
    pub omit: Vec<String>,
    /// What ggml_backend_dev_count() returns.
    pub device_count: usize,
}

impl Default for FakeBuild {
    fn default() -> Self {
        Self {
            ggml_version: "0.26.0".into(),
            llama_version: "0.6.0-dev".into(),
            omit: Vec::new(),
            device_count: 0,
        }
    }
}

const SPECIAL: &[&str] = &[
    "ggml_version",
    "ggml_commit",
    "llama_version",
    "ggml_backend_dev_count",
    "ggml_backend_reg_count",
    "ggml_log_set",
    "llama_log_set",
    "llama_backend_init",
    "ggml_backend_load_all_from_path",
];

fn stubs(names: impl Iterator<Item = &'static str>, omit: &[String]) -> String {
    names
        .filter(|n| !SPECIAL.contains(n) && !omit.iter().any(|o| o == n))
        .map(|n| format!("void {n}(void) {{}}\n"))
        .collect()
}

impl FakeBuild {
    /// Writes libggml-base.so, libggml.so and libllama.so into `dir` (sonames made unique with
    /// `tag`, so fakes never collide with the real libraries or each other).
    pub fn build(&self, dir: &Path, tag: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let base = format!(
            "#include <stddef.h>\nconst char * ggml_version(void) {{ return \"{}\"; }}\n\
             const char * ggml_commit(void) {{ return \"fake\"; }}\n\
             void ggml_log_set(void * cb, void * ud) {{ (void)cb; (void)ud; }}\n{}",
            self.ggml_version,
            stubs(GgmlBaseFunctions::SIGNATURES.iter().map(|s| s.name), &[])
        );
        let ggml = format!(
            "#include <stddef.h>\nsize_t ggml_backend_dev_count(void) {{ return {}; }}\n\
             size_t ggml_backend_reg_count(void) {{ return 0; }}\n\
             void ggml_backend_load_all_from_path(const char * p) {{ (void)p; }}\n{}",
            self.device_count,
            stubs(GgmlFunctions::SIGNATURES.iter().map(|s| s.name), &[])
        );
        let mut llama = String::from("#include <stddef.h>\n");
        if !self.omit.iter().any(|o| o == "llama_version") {
            llama += &format!(
                "const char * llama_version(void) {{ return \"{}\"; }}\n",
                self.llama_version
            );
        }
        llama += "void llama_log_set(void * cb, void * ud) { (void)cb; (void)ud; }\nvoid llama_backend_init(void) {}\n";
        llama += &stubs(
            LlamaFunctions::SIGNATURES.iter().map(|s| s.name),
            &self.omit,
        );
        for (stem, source) in [("ggml-base", base), ("ggml", ggml), ("llama", llama)] {
            let out = dir.join(format!("lib{stem}.so"));
            let soname = format!("-Wl,-soname,libfake-{tag}-{stem}.so");
            crate::common::compile_c(&source, &out, &["-shared", "-fPIC", &soname]);
        }
        dir.to_path_buf()
    }
}
