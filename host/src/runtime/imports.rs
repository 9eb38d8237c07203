//! Reads what a component really imports, from the binary, and judges it against its manifest.

use anyhow::Context;
use wasmparser::{Parser, Payload};

use super::manifest::Manifest;
use crate::cap::Cap;

/// WASI interfaces a plugin may import. They carry no authority: the host links them with no
/// environment, arguments, preopened directories or network, so they give clocks, random and
/// captured stdout/stderr only. (`wasi:http` is deliberately absent.)
const WASI_ALLOWED: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:io/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// The top-level import names of a component, e.g. `infra:host/http@0.1.0`.
pub fn component_imports(wasm: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.context("not a valid wasm component")? {
            Payload::Version { encoding, .. }
                if depth == 0 && encoding != wasmparser::Encoding::Component =>
            {
                anyhow::bail!(
                    "this is a core wasm module, not a component; build the plugin for wasm32-wasip2"
                );
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    names.push(import.context("bad import section")?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// The short `infra:host` interface name of an import (`http` for `infra:host/http@0.1.0`).
pub fn host_interface(import: &str) -> Option<&str> {
    let rest = import.strip_prefix("infra:host/")?;
    Some(rest.split('@').next().unwrap_or(rest))
}

/// Refuses a component whose imports exceed its manifest or what the host provides.
pub fn check(manifest: &Manifest, imports: &[String]) -> anyhow::Result<()> {
    for import in imports {
        if let Some(iface) = host_interface(import) {
            if !manifest.imports.iter().any(|m| m == iface) {
                anyhow::bail!(
                    "plugin '{}' imports {import}, which its plugin.toml does not declare; \
                     the binary does not match its manifest — add \"{iface}\" to imports only if the plugin should have it",
                    manifest.name
                );
            }
            if !Cap::provides(iface) {
                anyhow::bail!(
                    "plugin '{}' imports {import}, whose host side this infra does not provide yet; \
                     it cannot be loaded until a release implements '{iface}'",
                    manifest.name
                );
            }
        } else if !WASI_ALLOWED.iter().any(|w| import.starts_with(w)) {
            anyhow::bail!(
                "plugin '{}' imports {import}, which infra does not provide; plugins reach the outside only through infra:host interfaces",
                manifest.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(imports: &[&str]) -> Manifest {
        Manifest {
            name: "p".into(),
            version: "0".into(),
            description: String::new(),
            imports: imports.iter().map(|s| s.to_string()).collect(),
            needs_unsafe_flag: false,
        }
    }

    fn imports(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn declared_and_implemented_imports_pass() {
        let m = manifest(&["types", "http", "log"]);
        check(
            &m,
            &imports(&[
                "infra:host/types@0.1.0",
                "infra:host/http@0.1.0",
                "wasi:cli/stdout@0.2.6",
            ]),
        )
        .unwrap();
        // Declaring more than the binary uses is fine: the binary is what is enforced.
        check(
            &manifest(&["types", "http", "log", "secrets"]),
            &imports(&["infra:host/http@0.1.0"]),
        )
        .unwrap();
    }

    #[test]
    fn an_undeclared_import_is_refused_naming_it() {
        let err = check(&manifest(&["types"]), &imports(&["infra:host/http@0.1.0"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("infra:host/http@0.1.0") && err.contains("does not declare"),
            "{err}"
        );
    }

    #[test]
    fn an_interface_outside_the_contract_is_refused_at_load() {
        // Every capability of the list has its host side; an interface outside it has none.
        let iface = "nosuch";
        let err = check(
            &manifest(&[iface]),
            &imports(&[&format!("infra:host/{iface}@0.1.0")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("host side") && err.contains(iface), "{err}");
    }

    #[test]
    fn foreign_interfaces_are_refused() {
        for name in ["wasi:http/outgoing-handler@0.2.6", "evil:net/raw@1.0.0"] {
            let err = check(&manifest(&[]), &imports(&[name]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(name) && err.contains("does not provide"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_core_module_is_not_a_component() {
        let core = b"\0asm\x01\0\0\0";
        let err = component_imports(core).unwrap_err().to_string();
        assert!(err.contains("wasm32-wasip2"), "{err}");
    }
}
