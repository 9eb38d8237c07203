//! Checks plugin.toml against world.wit and writes the capability bindings `plugin!` includes.

fn main() {
    infra_wasm_build::plugin_world();
}
