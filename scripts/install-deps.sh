#!/usr/bin/env bash
# Installs the Debian packages ferry needs to build and test. Idempotent and
# fast when everything is present: only when a package is missing does it run
# `apt-get update` (once) and `apt-get install`.
#
# Note: installing postgresql-15 / redis-server may start Debian's system
# services. ferry's tests never use them; scripts/test-servers.sh starts its
# own throw-away servers on free loopback ports.
#
# Last, scripts/install-cassandra.sh resolves Apache Cassandra (the CQL test
# server) from Maven Central into a cache folder (skip: FERRY_TEST_NO_CQL=1).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libpq-dev libsqlite3-dev sqlite3 libpg-query-dev libcli11-dev libfmt-dev
  nlohmann-json3-dev libtomlplusplus-dev libxxhash-dev nettle-dev
  libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev libssl-dev openssl
  postgresql-15 postgresql-client-15 redis-server
  procps iproute2 util-linux python3
  liblz4-dev openjdk-17-jre-headless maven
  prometheus-cpp-dev libcpp-httplib-dev libyaml-cpp-dev chromium prometheus
  clang libclang-rt-14-dev
)

log() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: ERROR: %s\n' "$*" >&2; exit 1; }

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script supports Debian/Ubuntu only"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script supports Debian/Ubuntu only"

# One dpkg-query call for all packages; unknown packages go to stderr only.
declare -A installed=()
while IFS=' ' read -r name status; do
  if [[ "$status" == "install ok installed" ]]; then
    installed["$name"]=1
  fi
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)

missing=()
for p in "${PACKAGES[@]}"; do
  [[ -n "${installed[$p]:-}" ]] || missing+=("$p")
done

install_cassandra() {
  [[ "${FERRY_TEST_NO_CQL:-0}" == 1 ]] && return 0
  bash "$(dirname -- "${BASH_SOURCE[0]}")/install-cassandra.sh" >/dev/null ||
    die "resolving Cassandra with Maven failed (see the output above)"
}

if ((${#missing[@]} == 0)); then
  log "all ${#PACKAGES[@]} packages already installed"
  install_cassandra
  exit 0
fi
log "missing ${#missing[@]} package(s): ${missing[*]}"

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "not root and sudo is not available: install as root: apt-get install ${missing[*]}"
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)

log "running apt-get update"
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" update -q; then
  die "apt-get update failed (see the output above)"
fi

log "running apt-get install ${missing[*]}"
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y -q \
    --no-install-recommends "${missing[@]}"; then
  die "apt-get install failed for: ${missing[*]} (see the output above)"
fi

# Verify: a package apt skipped or failed to configure is still an error.
still=()
for p in "${missing[@]}"; do
  s="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
  [[ "$s" == "install ok installed" ]] || still+=("$p")
done
((${#still[@]} == 0)) || die "still not installed after apt-get: ${still[*]}"
log "installed ${#missing[@]} package(s)"
install_cassandra
