//! Builds `wasm32-wasip2` plugin components from a build script.
//!
//! The host embeds its built-in plugins and the test crate uses hostile test plugins; both are
//! separate crates built for another target. A build script cannot depend on a crate built for
//! another target, so this runs a nested `cargo build` into `target/wasm` (its own lock and
//! cache) with the outer build's wrappers and flags removed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The wasm target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Builds `packages` (cargo package names) of the workspace at `workspace` in release mode and
/// returns the path of each `.wasm`, in order. Panics with advice on failure: it runs in a build
/// script, where a panic is how an error reaches the user.
pub fn build(workspace: &Path, packages: &[&str]) -> Vec<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = workspace.join("target").join("wasm");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // The outer build's wrappers (clippy-driver, sccache) and flags are for the host target.
    for var in [
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_LLVM_COV",
    ] {
        cmd.env_remove(var);
    }
    // Small components compile faster at load; keep function names for readable traps.
    cmd.env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build plugins: {e}"));
    if !status.success() {
        panic!(
            "building the wasm plugins {packages:?} failed (see above). If the error says the \
             `{TARGET}` target may not be installed, run: rustup target add {TARGET}"
        );
    }
    packages
        .iter()
        .map(|p| {
            let file = target_dir
                .join(TARGET)
                .join("release")
                .join(format!("{}.wasm", p.replace('-', "_")));
            assert!(
                file.is_file(),
                "cargo built {p} but {} is missing",
                file.display()
            );
            file
        })
        .collect()
}

/// Tells cargo to rebuild when anything a plugin is made of changes.
pub fn rerun_if_changed(workspace: &Path, dirs: &[&str]) {
    for d in dirs {
        println!("cargo:rerun-if-changed={}", workspace.join(d).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
}
