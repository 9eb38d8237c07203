//! The integration tests: one binary, one module per area, so the link of wasmtime, russh,
//! reqwest and tokio-postgres happens once (as wasmtime and ripgrep lay theirs out). Every test
//! drives the real `infra` binary (`cargo build -p infra` first); support code is in `tests/src`.

mod compat;
mod compat_replay;
mod demo;
mod docs;
mod exec_cap;
mod forge_standin;
mod fs_cap;
mod gitops_plugin;
mod gitops_propose;
mod gitops_release;
mod gitops_repo;
mod gitops_terraform;
mod guard;
mod http_plugin;
mod k8s_plugin;
mod kube_profile;
mod kube_standin;
mod local_plugin;
mod mcp_rust_client;
mod pipeline_plugin;
mod policy_audit_cache;
mod psql_plugin;
mod repo_plugin;
mod runbooks;
mod sandbox;
mod secret_canaries;
mod ssh_monitoring;
mod ssh_plugin;
mod workspace;
