#!/usr/bin/env bash
# Resolves Apache Cassandra (org.apache.cassandra:cassandra-all) and its
# runtime dependencies from Maven Central with Maven into a cache folder, for
# the throw-away CQL test server that scripts/test-servers.sh starts. Nothing
# is downloaded by URL: only `mvn dependency:copy-dependencies` on a small
# generated pom. Idempotent: a complete cache is left alone.
#
#   scripts/install-cassandra.sh          resolve into the cache, print its lib dir
#
# Environment:
#   FERRY_CASSANDRA_VERSION  cassandra-all version (default below; 5.0.x runs on JDK 17)
#   FERRY_CACHE_DIR          cache root (default ~/.cache/ferry; /var/cache/ferry as
#                            root, because the server runs as the unprivileged
#                            user `ferrytest`, who cannot read /root)
# The result is $FERRY_CACHE_DIR/cassandra-$VERSION/lib/*.jar plus a file
# .complete written last, so an interrupted run is redone.
set -euo pipefail

VERSION="${FERRY_CASSANDRA_VERSION:-5.0.9}"
if [[ "$(id -u)" == 0 ]]; then
  CACHE_ROOT="${FERRY_CACHE_DIR:-/var/cache/ferry}"
else
  CACHE_ROOT="${FERRY_CACHE_DIR:-${HOME:?}/.cache/ferry}"
fi
DEST="$CACHE_ROOT/cassandra-$VERSION"

log() { printf 'install-cassandra: %s\n' "$*" >&2; }
die() { printf 'install-cassandra: ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -f "$DEST/.complete" ]]; then
  log "Cassandra $VERSION already in $DEST"
  printf '%s\n' "$DEST/lib"
  exit 0
fi

command -v mvn >/dev/null 2>&1 || die "mvn not found (Debian package maven); run scripts/install-deps.sh"
command -v java >/dev/null 2>&1 || die "java not found (Debian package openjdk-17-jre-headless)"

work="$(mktemp -d "${TMPDIR:-/tmp}/ferry-cassandra-pom.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT

cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.ferry.test</groupId>
  <artifactId>cassandra-test-server</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
POM

log "resolving org.apache.cassandra:cassandra-all:$VERSION and its runtime dependencies with Maven"
mkdir -p "$CACHE_ROOT"
rm -rf -- "$DEST.tmp"
if ! (cd "$work" && mvn -B -q dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$DEST.tmp/lib" >"$work/mvn.log" 2>&1); then
  tail -n 40 "$work/mvn.log" >&2 || true
  die "mvn dependency:copy-dependencies failed for cassandra-all:$VERSION (see the output above)"
fi
ls "$DEST.tmp/lib"/cassandra-all-*.jar >/dev/null 2>&1 || die "cassandra-all jar missing after Maven ran"
: >"$DEST.tmp/.complete"
rm -rf -- "$DEST"
mv -- "$DEST.tmp" "$DEST"
chmod -R a+rX "$DEST"
log "Cassandra $VERSION: $(ls "$DEST/lib" | wc -l) jars in $DEST/lib"
printf '%s\n' "$DEST/lib"
