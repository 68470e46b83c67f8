#!/usr/bin/env bash
# Installs the Debian packages Lobby needs that this machine lacks.
#   scripts/install-deps.sh run    what `make run` needs (desktops)
#   scripts/install-deps.sh test   what `make test` needs (also PostgreSQL, websockify, chromium, HAProxy)
# As root it uses apt-get; otherwise it says what to install and fails.
set -euo pipefail
want=(tigervnc-standalone-server:Xvnc twm:twm xterm:xterm npm:npm)
if [ "${1:-run}" = test ]; then
  want+=(postgresql-15:/usr/lib/postgresql/15/bin/postgres websockify:websockify chromium:chromium haproxy:/usr/sbin/haproxy)
fi
missing=()
for pair in "${want[@]}"; do
  pkg=${pair%%:*} bin=${pair#*:}
  if [[ $bin == /* ]]; then [ -x "$bin" ] || missing+=("$pkg")
  else command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Lobby needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
