#!/usr/bin/env bash
# Installs the front-end packages pinned in package-lock.json (npm ci) and
# copies the files the node serves into internal/web/static/npm, which
# the binary embeds. Third-party code is never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install it with: sudo apt-get install -y npm (make does this when run as root)" >&2
  exit 1
fi
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
dst=internal/web/static/npm
rm -rf "$dst/novnc" "$dst/htmx.min.js"
mkdir -p "$dst/novnc"
cp node_modules/htmx.org/dist/htmx.min.js "$dst/"
cp -r node_modules/@novnc/novnc/core node_modules/@novnc/novnc/vendor node_modules/@novnc/novnc/LICENSE.txt "$dst/novnc/"
