//! Build script: records the target so the loader can name the right library files.
//! It compiles nothing: the crate needs no C toolchain, llama.cpp is loaded at run time.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    println!("cargo:rustc-env=GGUF_LOADER_TARGET_OS={os}");
    println!("cargo:rustc-env=GGUF_LOADER_TARGET_ARCH={arch}");
}
