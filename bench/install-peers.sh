#!/usr/bin/env bash
# Installs the peer tools bench/migrate-bench.sh compares ferry with.
# Idempotent: does nothing that is already done.
#
#   Debian packages: sql-migrate, hyperfine (apt-get update only when one is
#                    missing and apt has no candidate for it)
#   npm (pinned in bench/package.json, into bench/node_modules):
#                    dbmate (its binary comes in @dbmate/linux-x64),
#                    node-pg-migrate, pg
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
log() { printf 'install-peers: %s\n' "$*" >&2; }

sudo_cmd=()
if [[ "$(id -u)" != 0 ]]; then sudo_cmd=(sudo); fi

missing=()
command -v sql-migrate >/dev/null 2>&1 || missing+=(sql-migrate)
command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
if ((${#missing[@]})); then
  need_update=0
  for p in "${missing[@]}"; do
    cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [[ -z "$cand" || "$cand" == "(none)" ]]; then need_update=1; fi
  done
  if ((need_update)); then
    log "apt-get update"
    "${sudo_cmd[@]}" apt-get update -qq
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
else
  log "sql-migrate and hyperfine already installed"
fi

command -v npm >/dev/null 2>&1 || { log "npm not found: apt-get install -y nodejs npm"; exit 1; }
# Installed and matching the pinned versions?
npm_ok() {
  [[ -x "$here/node_modules/.bin/dbmate" && -x "$here/node_modules/.bin/node-pg-migrate" ]] || return 1
  (cd "$here" && npm ls --depth=0 >/dev/null 2>&1)
}
if npm_ok; then
  log "npm packages already installed in bench/node_modules"
else
  log "npm install (bench/package.json)"
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error)
fi

"$here/node_modules/.bin/dbmate" --version >&2
log "node-pg-migrate $(cd "$here" && node -p 'require("node-pg-migrate/package.json").version')"
log "sql-migrate $(dpkg-query -W -f='${Version}' sql-migrate), $(hyperfine --version)"
