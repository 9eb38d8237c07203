//! Builds the test plugins (tests/plugins/*) for wasm32-wasip2.

use std::path::Path;

/// Test plugin packages, each under tests/plugins/<name>.
const PLUGINS: &[&str] = &[
    "hostile",
    "undeclared",
    "noop",
    "fsprobe",
    "execprobe",
    "guardprobe",
];

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let workspace = Path::new(&manifest_dir)
        .parent()
        .expect("tests/ lives in the workspace");
    infra_wasm_build::rerun_if_changed(workspace, &["wit", "sdk", "tests/plugins"]);
    let packages: Vec<String> = PLUGINS
        .iter()
        .map(|p| format!("infra-test-plugin-{p}"))
        .collect();
    let refs: Vec<&str> = packages.iter().map(String::as_str).collect();
    let files = infra_wasm_build::build(workspace, &refs);
    let entries: Vec<String> = PLUGINS
        .iter()
        .zip(files)
        .map(|(n, f)| format!("({n:?}, {:?})", f.display().to_string()))
        .collect();
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("test_plugins.rs");
    std::fs::write(out, format!("[{}]", entries.join(", "))).expect("write test_plugins.rs");
}
