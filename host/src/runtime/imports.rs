//! Reads what a component really imports, from the binary, and judges it against its manifest.

use anyhow::Context;
use wasmparser::{Parser, Payload};

use super::manifest::Manifest;

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
            if !crate::caps::IMPLEMENTED.contains(&iface) {
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
