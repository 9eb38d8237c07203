//! `infra plugins inspect FILE.wasm`: proves what a binary can reach, from the binary itself.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::router::Router;
use crate::runtime::{Manifest, imports};

/// Reads a component's real imports, compares them with the manifest beside it (`X.toml` for
/// `X.wasm`, or `plugin.toml` in the same directory) and shows what the policy grants its name.
pub async fn inspect_file(router: &Router, file: &Path) -> anyhow::Result<Value> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let sha256 = hex::encode(Sha256::digest(&wasm));
    let all = imports::component_imports(&wasm)
        .with_context(|| format!("{} is not a wasm component", file.display()))?;
    let host: Vec<String> = all
        .iter()
        .filter_map(|i| imports::host_interface(i))
        .map(String::from)
        .collect();
    let beside = [
        file.with_extension("toml"),
        file.with_file_name("plugin.toml"),
    ];
    let manifest_path = beside.iter().find(|p| p.is_file());
    let manifest = match manifest_path {
        Some(p) => Some(Manifest::parse(
            &std::fs::read_to_string(p)?,
            &p.display().to_string(),
        )?),
        None => None,
    };
    let (verdict, problem) = match &manifest {
        None => (
            Value::Null,
            Some("no manifest beside the file: infra would refuse to load it".to_string()),
        ),
        Some(m) => match imports::check(m, &all) {
            Ok(()) => (json!(true), None),
            Err(e) => (json!(false), Some(format!("{e:#}"))),
        },
    };
    let name = manifest.as_ref().map_or_else(
        || {
            file.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        },
        |m| m.name.clone(),
    );
    let tools = match (&manifest, &problem) {
        (Some(m), None) => {
            let ctx = router.call_ctx(
                &name,
                "describe",
                "inspect".into(),
                Duration::from_secs(10),
                None,
            );
            match router.runtime().load(&wasm, m.clone(), file.display().to_string(), ctx).await {
                Ok(p) => json!(p.tools.iter().map(|t| json!({"name": t.name, "description": t.description, "annotations": t.annotations})).collect::<Vec<_>>()),
                Err(e) => json!(format!("could not describe: {e:#}")),
            }
        }
        _ => Value::Null,
    };
    Ok(json!({
        "file": file.display().to_string(),
        "sha256": sha256,
        "manifest": manifest_path.map(|p| p.display().to_string()),
        "declared_imports": manifest.as_ref().map(|m| m.imports.clone()),
        "actual_imports": host,
        "wasi_imports": all.iter().filter(|i| i.starts_with("wasi:")).collect::<Vec<_>>(),
        "matches_manifest": verdict,
        "problem": problem,
        "tools": tools,
        "policy": router.shared().policy.origin(),
        "grants": router.shared().policy.grants_summary(&name),
    }))
}
