//! Builds the built-in plugins for wasm32-wasip2 and embeds them (see `infra-wasm-build`).

use std::path::Path;

/// Built-in plugins: (cargo package, directory under plugins/).
const BUILTIN: &[(&str, &str)] = &[
    ("infra-plugin-http", "http"),
    ("infra-plugin-ssh", "ssh"),
    ("infra-plugin-psql", "psql"),
    ("infra-plugin-repo", "repo"),
    ("infra-plugin-local", "local"),
    ("infra-plugin-k8s", "k8s"),
    ("infra-plugin-gitops", "gitops"),
    ("infra-plugin-pipeline", "pipeline"),
];

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let workspace = Path::new(&manifest_dir)
        .parent()
        .expect("host/ lives in the workspace");
    infra_wasm_build::rerun_if_changed(workspace, &["wit", "sdk", "plugins"]);
    let packages: Vec<&str> = BUILTIN.iter().map(|(p, _)| *p).collect();
    let wasm = infra_wasm_build::build(workspace, &packages);
    let mut code = String::from(
        "/// Built-in plugins: (plugin.toml text, component bytes).\npub const BUILTIN: &[(&str, &[u8])] = &[\n",
    );
    for ((_, dir), file) in BUILTIN.iter().zip(wasm) {
        let toml = workspace.join("plugins").join(dir).join("plugin.toml");
        code.push_str(&format!(
            "    (include_str!({:?}), include_bytes!({:?})),\n",
            toml.display().to_string(),
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("builtin_plugins.rs");
    std::fs::write(out, code).expect("writing builtin_plugins.rs");
}
