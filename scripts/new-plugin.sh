#!/usr/bin/env bash
# scripts/new-plugin.sh NAME [DIR] — starts a new infra plugin: a standalone crate made from
# sdk/template/, in DIR (default ./NAME), outside this workspace. It depends on this checkout's
# sdk/ by absolute path and pins the same toolchain. Then see sdk/README.md, or the steps it prints.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
    echo "usage: scripts/new-plugin.sh NAME [DIR]" >&2
    echo "  NAME  the plugin's name, its tool's name and its policy section: lower-case letters and" >&2
    echo "        digits in words joined by - or _, each word starting with a letter (e.g. inventory, acme_status)" >&2
    echo "  DIR   where to create the crate (default: ./NAME); must not exist or be empty" >&2
    exit 2
}

(($# >= 1 && $# <= 2)) || usage
NAME=$1
DIR=${2:-./$NAME}
[[ "$NAME" =~ ^[a-z][a-z0-9]*([-_][a-z][a-z0-9]*)*$ ]] || {
    echo "new-plugin: '$NAME' is not a usable name" >&2
    usage
}
if [[ -e "$DIR" && -n "$(ls -A "$DIR" 2>/dev/null)" ]]; then
    echo "new-plugin: $DIR exists and is not empty; pick another DIR" >&2
    exit 1
fi

KEBAB=${NAME//_/-}       # WIT names are kebab-case
WASM_FILE=${NAME//-/_}.wasm # cargo names the library after the crate, with - as _

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
cp -R "$ROOT/sdk/template/." "$DIR/"
# The toolchain the SDK is built and tested with, with the wasm32-wasip2 target.
cp "$ROOT/rust-toolchain.toml" "$DIR/"

for f in Cargo.toml plugin.toml world.wit policy-grant.toml src/lib.rs; do
    sed -i -e "s/plugin_template/$NAME/g" -e "s/plugin-template/$KEBAB/g" "$DIR/$f"
done
# The SDK and its build-script helper of this checkout, by absolute path.
sed -i -e "s|^infra-sdk = { path = \"..\" }|infra-sdk = { path = \"$ROOT/sdk\" }|" \
    -e "s|^infra-wasm-build = { path = \"../wasm-build\" }|infra-wasm-build = { path = \"$ROOT/wasm-build\" }|" \
    "$DIR/Cargo.toml"
for dep in sdk wasm-build; do
    grep -q "path = \"$ROOT/$dep\"" "$DIR/Cargo.toml" || {
        echo "new-plugin: could not point $DIR/Cargo.toml at $ROOT/$dep" >&2
        exit 1
    }
done

cat <<EOF
Created $DIR: a plugin crate with one tool, '$NAME' (src/lib.rs), its manifest (plugin.toml),
its world (world.wit) and the policy section that grants it (policy-grant.toml).

Next (sdk/README.md explains each step; ./infra is $ROOT/target/debug/infra, built by
'cargo build -p infra' in $ROOT):

  cd $DIR
  cargo build --release --target wasm32-wasip2
  export INFRA_HOME=\$(mktemp -d)        # a scratch state directory for the walk-through
  mkdir -p "\$INFRA_HOME/plugins"
  cp target/wasm32-wasip2/release/$WASM_FILE "\$INFRA_HOME/plugins/$NAME.wasm"
  cp plugin.toml "\$INFRA_HOME/plugins/$NAME.toml"
  $ROOT/target/debug/infra plugins inspect "\$INFRA_HOME/plugins/$NAME.wasm"
  [ -f "\$INFRA_HOME/policy.toml" ] || cp $ROOT/policies/default.toml "\$INFRA_HOME/policy.toml"
  cat policy-grant.toml >> "\$INFRA_HOME/policy.toml"
  $ROOT/target/debug/infra call $NAME '{"url": "http://127.0.0.1:8765/"}'
EOF
