//! Without the `download` feature the crate depends on no HTTP, TLS or async stack (it opens no
//! socket); with it, reqwest is there.

use std::process::Command;

/// The crate names of `cargo tree -e normal --prefix none [extra]` in the repository root.
fn normal_dependencies(extra: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "-e", "normal", "--prefix", "none"])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    assert!(
        output.status.success(),
        "cargo tree {extra:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn is_network_stack(name: &str) -> bool {
    name == "reqwest"
        || name == "h2"
        || name.starts_with("hyper")
        || name.starts_with("rustls")
        || name.starts_with("tokio")
}

#[test]
fn default_features_have_no_network_stack() {
    let names = normal_dependencies(&[]);
    assert!(
        names.iter().any(|name| name == "gguf-loader"),
        "unexpected cargo tree output: {names:?}"
    );
    let network: Vec<&String> = names.iter().filter(|name| is_network_stack(name)).collect();
    assert!(
        network.is_empty(),
        "the default build depends on {network:?}"
    );
}

#[test]
fn the_download_feature_brings_reqwest() {
    let names = normal_dependencies(&["--features", "download"]);
    assert!(
        names.iter().any(|name| name == "reqwest"),
        "reqwest is missing from the download build: {names:?}"
    );
}
