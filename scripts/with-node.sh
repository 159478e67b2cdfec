#!/usr/bin/env bash
# Runs a command with the Node codeyard uses (the machine's if >= 24, else the
# pinned one from the toolchain cache) first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${CODEYARD_TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/codeyard}
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 24 ]; then
  version=$(node -p "require('./src/toolchain/versions.json').node")
  if [ ! -x "$cache/node-v$version/bin/node" ]; then
    echo "codeyard: Node $version is not provisioned yet; run \`npm run setup\` first" >&2
    exit 1
  fi
  export PATH="$cache/node-v$version/bin:$PATH"
fi
export PATH="$PWD/node_modules/.bin:$PATH"
exec "$@"
