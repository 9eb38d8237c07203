#!/usr/bin/env bash
# scripts/demo.sh — builds infra and runs `infra demo`: sandboxed HTTP calls against a loopback
# server it starts itself, a host-injected credential the plugin never sees, calls denied by the
# embedded default policy, a `repo` snapshot of a git repository it makes and runs in, the
# `local` tool refused without INFRA_UNSAFE_LOCAL=1, read-only cluster look-ups through the `k8s`
# tool against the test harness's stand-in Kubernetes API (a loopback HTTPS server, not a real
# cluster), and the audit chain verified. Needs no external service (git, when installed, for the
# repo step).
#
# When OpenSSH's sshd and PostgreSQL are installed (scripts/test.sh installs them), the demo grows:
# the test harness starts throw-away servers on loopback and the demo also shows the ssh tool
# (a command, parsed metrics, a timeout kill, a background job) and the psql tool.
#
# Installs what the build needs when it is missing: the toolchain pinned by rust-toolchain.toml
# with the wasm32-wasip2 target (host/build.rs builds the plugins for it) and a C linker.
# The first build compiles wasmtime and takes several minutes; later runs start at once.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if ! command -v rustup >/dev/null && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v rustup >/dev/null || { echo "demo: rustup is not installed: see https://rustup.rs" >&2; exit 1; }

echo "== toolchain (rust-toolchain.toml) and the wasm32-wasip2 target"
if ! rustup toolchain install; then
    # rustup before 1.28 needs the channel spelled out.
    rustup toolchain install "$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)" \
        --profile minimal --component rustfmt,clippy --target wasm32-wasip2
fi
rustup target add wasm32-wasip2

# rustc links through cc, which needs the C library's startup files.
if ! printf 'int main(void){return 0;}' | cc -x c - -o /dev/null >/dev/null 2>&1; then
    echo "== a C linker (gcc, libc6-dev) for rustc, from apt"
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends gcc libc6-dev
fi

export INFRA_LOG=${INFRA_LOG:-warn}
# The demo's servers: the stand-in Kubernetes API (always), and the harness's real sshd and
# PostgreSQL when they are installed (tests/examples/demo_servers.rs decides).
echo "== cargo build: infra and the demo's servers"
cargo build -p infra
cargo build -p infra-tests --example demo_servers
exec target/debug/examples/demo_servers
