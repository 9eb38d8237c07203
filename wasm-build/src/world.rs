//! A plugin's own `world.wit` as the source of its capability bindings, checked against its
//! `plugin.toml`.
//!
//! `infra_sdk::plugin!` includes the file [`plugin_world`] writes: a `wit_bindgen::generate!`
//! of the plugin's world, so the plugin can call exactly the host interfaces its world imports
//! and a call to any other one does not compile. The host still checks the built component at
//! load; this moves the same mistake from load time to build time.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use wit_parser::{Resolve, WorldItem, WorldKey};

/// The package every host capability interface belongs to.
const HOST_PACKAGE: &str = "infra:host";
/// The interface of shared records; the SDK binds it once so its error and artifact types are
/// the ones the plugin's capabilities return.
const TYPES: &str = "infra:host/types@0.1.0";
/// The rustc environment variable that tells `infra_sdk::plugin!` where the bindings file is.
const BINDINGS_ENV: &str = "INFRA_PLUGIN_BINDINGS";

/// Run from a plugin's `build.rs`: checks that `plugin.toml`'s `imports` and `world.wit`'s world
/// (both beside the plugin's Cargo.toml) name the same host interfaces, then writes the bindings
/// `infra_sdk::plugin!` includes. Panics with the difference and advice otherwise: it runs in a
/// build script, where a panic is how an error reaches the user.
pub fn plugin_world() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let (manifest, world) = (dir.join("plugin.toml"), dir.join("world.wit"));
    for f in [&manifest, &world] {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let wit = sdk_wit();
    println!("cargo:rerun-if-changed={}", wit.display());
    let plugin = match resolve_world(&wit, &world) {
        Ok(p) => p,
        Err(e) => panic!(
            "{}: {e:#}\nA plugin's world.wit is one WIT package with one world that imports \
             infra:host interfaces (from {}) and exports infra:plugin/tool@0.1.0; see \
             sdk/README.md and sdk/template/world.wit.",
            world.display(),
            wit.display()
        ),
    };
    let declared = manifest_imports(&manifest).unwrap_or_else(|e| panic!("{e}"));
    if let Some(diff) = difference(&declared, &plugin.imports) {
        panic!(
            "{} and {} disagree on the host interfaces the plugin imports:\n{diff}\nMake \
             plugin.toml's `imports` list exactly the infra:host interfaces the world `{}` \
             imports (a world importing an interface that `use`s `types` imports `types` too); \
             see sdk/README.md, \"The world and the manifest\".",
            manifest.display(),
            world.display(),
            plugin.id
        );
    }
    let file = out.join("infra_plugin_bindings.rs");
    std::fs::write(&file, bindings(&wit, &world, &plugin))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    println!("cargo:rustc-env={BINDINGS_ENV}={}", file.display());
}

/// The WIT of the host interfaces and the tool export, shipped beside this crate and the SDK.
fn sdk_wit() -> PathBuf {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("wit");
    wit.canonicalize().unwrap_or(wit)
}

/// A plugin's world, resolved against the SDK's WIT.
struct PluginWorld {
    /// Its full id, e.g. `infra-plugins:http/http@0.1.0`.
    id: String,
    /// The bare names of the infra:host interfaces it imports, directly or through `use`.
    imports: BTreeSet<String>,
}

fn resolve_world(wit: &Path, world_file: &Path) -> anyhow::Result<PluginWorld> {
    let mut resolve = Resolve::default();
    resolve.push_dir(wit.join("host"))?;
    resolve.push_dir(wit.join("plugin"))?;
    let pkg = resolve.push_file(world_file)?;
    let world = resolve.select_world(&[pkg], None)?;
    let mut imports = BTreeSet::new();
    for (key, item) in &resolve.worlds[world].imports {
        let name = resolve.name_world_key(key);
        let host = match (key, item) {
            (WorldKey::Interface(_), WorldItem::Interface { .. }) => name
                .strip_prefix(HOST_PACKAGE)
                .and_then(|rest| rest.strip_prefix('/'))
                .map(|rest| rest.split('@').next().unwrap_or(rest).to_string()),
            _ => None,
        };
        match host {
            Some(h) => imports.insert(h),
            None => anyhow::bail!(
                "the world imports `{name}`, which is not an {HOST_PACKAGE} interface"
            ),
        };
    }
    Ok(PluginWorld {
        id: resolve.id_of_name(pkg, &resolve.worlds[world].name),
        imports,
    })
}

/// `imports` of plugin.toml.
fn manifest_imports(manifest: &Path) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read_to_string(manifest).map_err(|e| {
        format!(
            "cannot read {}: {e}; a plugin needs its manifest beside Cargo.toml (see sdk/README.md)",
            manifest.display()
        )
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", manifest.display()))?;
    let list = match table.get("imports") {
        Some(toml::Value::Array(list)) => list,
        _ => {
            return Err(format!(
                "{} has no `imports` list; add one naming the infra:host interfaces the plugin \
                 imports, e.g. imports = [\"types\", \"http\"]",
                manifest.display()
            ));
        }
    };
    list.iter()
        .map(|v| {
            v.as_str().map(str::to_string).ok_or_else(|| {
                format!(
                    "{}: `imports` holds {v}, not an interface name",
                    manifest.display()
                )
            })
        })
        .collect()
}

/// What is in one list and not the other, as lines for the error; `None` when they agree.
fn difference(declared: &BTreeSet<String>, world: &BTreeSet<String>) -> Option<String> {
    let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
        a.difference(b).cloned().collect::<Vec<_>>().join(", ")
    };
    let (in_world, in_manifest) = (only(world, declared), only(declared, world));
    let mut lines = String::new();
    if !in_world.is_empty() {
        let _ = writeln!(lines, "  only in world.wit: {in_world}");
    }
    if !in_manifest.is_empty() {
        let _ = writeln!(lines, "  only in plugin.toml: {in_manifest}");
    }
    (!lines.is_empty()).then(|| lines.trim_end().to_string())
}

/// The Rust file `infra_sdk::plugin!` includes: the world's bindings, with the shared records
/// taken from the SDK, and `caps`, one module per imported capability.
fn bindings(wit: &Path, world_file: &Path, plugin: &PluginWorld) -> String {
    let paths = [
        wit.join("host"),
        wit.join("plugin"),
        world_file.to_path_buf(),
    ]
    .map(|p| format!("{:?}", p.display().to_string()))
    .join(", ");
    // `with` must name only interfaces the world has, so `types` is mapped only when imported.
    let with = if plugin.imports.contains("types") {
        format!("with: {{ {TYPES:?}: ::infra_sdk::caps::types }},")
    } else {
        String::new()
    };
    let caps: Vec<String> = plugin
        .imports
        .iter()
        .filter(|i| *i != "types")
        .map(|i| {
            format!(
                "    pub use super::__infra_world::infra::host::{};\n",
                i.replace('-', "_")
            )
        })
        .collect();
    format!(
        "// Generated by infra_wasm_build::plugin_world() from {world}.\n\
         #[allow(missing_docs, dead_code, unused, clippy::all)]\n\
         mod __infra_world {{\n\
         ::infra_sdk::__wit_bindgen::generate!({{\n\
             path: [{paths}],\n\
             world: {id:?},\n\
             runtime_path: \"::infra_sdk::__wit_bindgen::rt\",\n\
             {with}\n\
             generate_all,\n\
         }});\n\
         }}\n\
         /// The host capabilities this plugin's world.wit imports; the policy gates each call.\n\
         pub mod caps {{\n\
             pub use ::infra_sdk::caps::types;\n\
         {caps}\
         }}\n",
        world = world_file.display(),
        id = plugin.id,
        caps = caps.concat(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn difference_names_each_side() {
        assert_eq!(
            difference(&set(&["types", "http"]), &set(&["http", "types"])),
            None
        );
        assert_eq!(
            difference(&set(&["types", "secrets"]), &set(&["types", "http", "log"])).as_deref(),
            Some("  only in world.wit: http, log\n  only in plugin.toml: secrets")
        );
    }

    #[test]
    fn template_world_resolves_with_its_imports() {
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/template/world.wit");
        let world = resolve_world(&sdk_wit(), &template).unwrap();
        assert_eq!(
            world.id,
            "infra-plugins:plugin-template/plugin-template@0.1.0"
        );
        assert_eq!(world.imports, set(&["types", "http"]));
    }
}
