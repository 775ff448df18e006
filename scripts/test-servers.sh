#!/usr/bin/env bash
# Throw-away PostgreSQL 15, Redis and Cassandra 5.0 servers for ferry's tests.
#
#   scripts/test-servers.sh start [DIR]      start both servers, data in DIR
#                                            (made with mktemp when omitted);
#                                            writes DIR/env and DIR/pids
#   scripts/test-servers.sh stop DIR         stop exactly those servers, remove DIR
#   scripts/test-servers.sh restart-pg DIR   restart DIR's PostgreSQL in place (same
#                                            port and data; tests of reconnection)
#   scripts/test-servers.sh start-cql-node2 DIR  a second Cassandra node on 127.0.0.2
#                                            joined to DIR's node (restarts it when
#                                            killed); kill-cql-node2 DIR SIGKILLs it;
#                                            remove-cql-node2 DIR decommissions it
#   scripts/test-servers.sh run -- CMD...    start, run CMD with DIR/env sourced and
#                                            FERRY_TEST_REQUIRE_SERVERS=1, always stop;
#                                            exits with CMD's exit code
#
# Each server listens on 127.0.0.1 only, on a free port picked at random (and
# re-picked when the bind fails), with its unix socket inside DIR, so
# concurrent runs on one machine do not collide. Debian's system PostgreSQL
# and Redis services are never touched.
#
# DIR/env exports:
#   FERRY_TEST_PG_URL     postgres://postgres@127.0.0.1:PORT/ferry_test  (trust)
#   FERRY_TEST_PG_PW_URL  postgres://ferry_pw:ferry_pw_secret@127.0.0.1:PORT/ferry_test
#                         (scram-sha-256; a wrong password is rejected)
#   FERRY_TEST_PG_MD5_URL postgres://ferry_md5:ferry_md5_secret@127.0.0.1:PORT/ferry_test
#                         (md5: the role's password is stored as an md5 hash)
#   FERRY_TEST_PG_CLEAR_URL postgres://ferry_clear:ferry_clear_secret@127.0.0.1:PORT/ferry_test
#                         (password: the server asks for the password in clear text)
#   FERRY_TEST_REDIS_URL  redis://127.0.0.1:RPORT/0
#   FERRY_TEST_REDIS2_URL, FERRY_TEST_REDIS_ACL_URL, FERRY_TEST_REDIS_CLUSTER_URL,
#   FERRY_TEST_REDIS_CLUSTER_NODES   a second Redis, an ACL user on it, and a
#                         3-master cluster (see "Redis extras" below)
#   FERRY_TEST_REDIS_TLS_URL, FERRY_TEST_REDIS_TLS_CA   a Redis on a TLS-only port
#                         with a password, its certificate signed by a throw-away
#                         CA in DIR/redistls (rediss://...?tls_ca=DIR/redistls/ca.crt)
#   FERRY_TEST_CQL_URL    cql://ferry_cql:ferry_cql_secret@127.0.0.1:CPORT/ferry_test
#                         (Apache Cassandra 5.0 single node, PasswordAuthenticator;
#                         a superuser role; keyspace ferry_test, SimpleStrategy RF 1;
#                         not started with FERRY_TEST_NO_CQL=1)
#   FERRY_TEST_CQL_RO_URL cql://ferry_cql_ro:ferry_cql_ro_secret@127.0.0.1:CPORT/ferry_test
#                         (may only SELECT in ferry_test)
#   FERRY_TEST_PG_BIN     the PostgreSQL 15 bin directory
#   FERRY_TEST_PG_PORT, FERRY_TEST_REDIS_PORT, FERRY_TEST_PG_SOCKET_DIR, FERRY_TEST_SERVERS_DIR
#
# As root, the servers run as the unprivileged system user `ferrytest`
# (created when missing), because PostgreSQL refuses to run as root.
set -euo pipefail

PROG="test-servers"
TEST_USER="ferrytest"
PG_PW_ROLE="ferry_pw"
PG_PW_SECRET="ferry_pw_secret"
PG_MD5_ROLE="ferry_md5"
PG_MD5_SECRET="ferry_md5_secret"
PG_CLEAR_ROLE="ferry_clear"
PG_CLEAR_SECRET="ferry_clear_secret"
PG_DB="ferry_test"
MARKER=".ferry-test-servers"
WAIT_SECONDS="${FERRY_TEST_SERVERS_TIMEOUT:-30}"
MAX_PORT_TRIES=10

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: scripts/test-servers.sh start [DIR]
       scripts/test-servers.sh stop DIR
       scripts/test-servers.sh restart-pg DIR
       scripts/test-servers.sh start-cql-node2 DIR | kill-cql-node2 DIR | remove-cql-node2 DIR
       scripts/test-servers.sh run -- CMD [ARGS...]
EOF
  exit 2
}

is_root() { [[ "$(id -u)" == 0 ]]; }

# Runs a server-side command as the unprivileged user (when root) from `/`,
# so the tools never trip over an unreadable current directory.
run_as() {
  if is_root; then
    (cd / && exec runuser -u "$TEST_USER" -- "$@")
  else
    (cd / && exec "$@")
  fi
}

# Client tools (psql, pg_isready, redis-cli) with no PG* settings leaking in.
clean_env() {
  env -u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE -u PGUSER -u PGPASSWORD \
    -u PGPASSFILE -u PGSERVICE -u PGSERVICEFILE -u PGOPTIONS -u PGSSLMODE \
    -u PGCONNECT_TIMEOUT -u PGTARGETSESSIONATTRS -u REDISCLI_AUTH "$@"
}

find_pg_bin() {
  local cand version
  local -a cands=()
  if [[ -n "${FERRY_PG_BIN:-}" ]]; then cands+=("$FERRY_PG_BIN"); fi
  if command -v pg_config >/dev/null 2>&1; then
    cands+=("$(pg_config --bindir 2>/dev/null || true)")
  fi
  cands+=(/usr/lib/postgresql/15/bin)
  for cand in "${cands[@]}"; do
    [[ -n "$cand" && -x "$cand/postgres" && -x "$cand/initdb" && -x "$cand/pg_ctl" ]] || continue
    version="$("$cand/postgres" --version 2>/dev/null || true)"
    if [[ "$version" =~ \(PostgreSQL\)\ 15(\.|$) ]]; then
      printf '%s\n' "$cand"
      return 0
    fi
  done
  die "PostgreSQL 15 server binaries not found (tried: ${cands[*]}); run scripts/install-deps.sh"
}

find_client() {  # NAME PG_BIN
  if [[ -x "$2/$1" ]]; then
    printf '%s\n' "$2/$1"
  elif command -v "$1" >/dev/null 2>&1; then
    command -v "$1"
  else
    die "$1 not found; run scripts/install-deps.sh"
  fi
}

ensure_test_user() {
  is_root || return 0
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    if id -u "$TEST_USER" >/dev/null 2>&1; then return 0; fi
    log "creating system user $TEST_USER"
    # A concurrent run may create it (or hold the passwd lock) at the same time.
    if useradd --system --no-create-home --shell /usr/sbin/nologin "$TEST_USER" 2>/dev/null; then
      return 0
    fi
    sleep "0.$i"
  done
  id -u "$TEST_USER" >/dev/null 2>&1 || die "could not create system user $TEST_USER (useradd failed)"
}

# Every ancestor of DIR must be traversable by the user the servers run as.
check_traversable() {
  local d="$1" who
  who="$(id -un)"
  if is_root; then who="$TEST_USER"; fi
  while [[ "$d" != "/" ]]; do
    d="$(dirname "$d")"
    if ! run_as test -x "$d"; then
      die "directory $d is not traversable by user $who; use a DIR under /tmp (e.g. mktemp -d)"
    fi
  done
}

port_range() {
  local lo=20000 hi=60000 eph_lo
  # Prefer ports below the kernel's ephemeral range, so outgoing connections
  # do not grab our port between the check and the bind.
  if [[ -n "${FERRY_TEST_PORT_RANGE:-}" ]]; then  # "LO-HI", mainly for testing this script
    [[ "$FERRY_TEST_PORT_RANGE" =~ ^([0-9]+)-([0-9]+)$ ]] || die "FERRY_TEST_PORT_RANGE must be LO-HI"
    printf '%s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    return 0
  fi
  if read -r eph_lo _ 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range; then
    if ((eph_lo - 1 >= lo + 5000)); then hi=$((eph_lo - 1)); fi
  fi
  printf '%s %s\n' "$lo" "$hi"
}

pick_port() {
  local lo hi port i
  read -r lo hi < <(port_range)
  for ((i = 0; i < 200; i++)); do
    port=$(((RANDOM * 32768 + RANDOM) % (hi - lo + 1) + lo))
    # RESERVED_PORTS: picked for a server that has not bound them yet (Cassandra).
    if [[ " ${RESERVED_PORTS:-} " == *" $port "* ]]; then continue; fi
    if [[ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  die "no free TCP port found in $lo-$hi"
}

show_log() {  # FILE
  if [[ -f "$1" ]]; then
    printf '%s: ---- last lines of %s ----\n' "$PROG" "$1" >&2
    tail -n 40 "$1" >&2 || true
    printf '%s: ---- end of %s ----\n' "$PROG" "$1" >&2
  else
    log "(no log file $1)"
  fi
}

# Alive and not a zombie (an exited server may wait a while to be reaped by
# PID 1, e.g. in containers).
pid_alive() {
  local stat
  [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 1
  stat="$(cat "/proc/$1/stat" 2>/dev/null || true)"
  stat="${stat##*) }"
  [[ -n "$stat" && "${stat:0:1}" != Z ]]
}

record_pid() {  # DIR NAME PID
  printf '%s %s\n' "$2" "$3" >>"$1/pids"
}

write_conf() {  # DIR
  local dir="$1" pgdata="$1/pg"
  cat >>"$pgdata/postgresql.conf" <<EOF

# ---- ferry throw-away test server (scripts/test-servers.sh) ----
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
full_page_writes = off
synchronous_commit = off
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
logging_collector = off
EOF
  # Order matters: the password role must match before the catch-all trust line.
  cat >"$pgdata/pg_hba.conf" <<EOF
# TYPE  DATABASE     USER         ADDRESS        METHOD
local   all          all                         trust
local   replication  all                         trust
host    all          $PG_PW_ROLE     127.0.0.1/32   scram-sha-256
host    replication  $PG_PW_ROLE     127.0.0.1/32   scram-sha-256
host    all          $PG_MD5_ROLE    127.0.0.1/32   md5
host    all          $PG_CLEAR_ROLE  127.0.0.1/32   password
host    all          all          127.0.0.1/32   trust
host    replication  all          127.0.0.1/32   trust
EOF
}

start_pg() {  # DIR PG_BIN -> sets PG_PORT
  local dir="$1" pg_bin="$2" port try pid
  local pgdata="$dir/pg" pglog="$dir/pg.log"
  log "initdb in $pgdata"
  if ! run_as "$pg_bin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C \
      --no-sync --no-instructions >"$dir/initdb.log" 2>&1; then
    show_log "$dir/initdb.log"
    die "initdb failed"
  fi
  write_conf "$dir"
  for try in $(seq 1 "$MAX_PORT_TRIES"); do
    port="$(pick_port)"
    log "starting PostgreSQL on 127.0.0.1:$port (try $try)"
    if run_as "$pg_bin/pg_ctl" -D "$pgdata" -l "$pglog" -o "-p $port" -w -t "$WAIT_SECONDS" start \
        >>"$dir/pg_ctl.log" 2>&1; then
      pid="$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null || true)"
      [[ "$pid" =~ ^[0-9]+$ ]] || { show_log "$pglog"; die "PostgreSQL started but $pgdata/postmaster.pid has no PID"; }
      record_pid "$dir" postgres "$pid"
      PG_PORT="$port"
      return 0
    fi
    # pg_ctl may have timed out with the server still coming up: record it so
    # cleanup can stop it.
    pid="$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && pid_alive "$pid"; then
      record_pid "$dir" postgres "$pid"
      show_log "$pglog"
      die "PostgreSQL did not become ready within ${WAIT_SECONDS}s"
    fi
    if grep -qE 'could not bind|Address already in use|could not create any TCP/IP sockets' "$pglog" 2>/dev/null; then
      log "port $port is taken, retrying with another port"
      mv -f "$pglog" "$pglog.port-$port" 2>/dev/null || true
      continue
    fi
    show_log "$dir/pg_ctl.log"
    show_log "$pglog"
    die "PostgreSQL failed to start"
  done
  show_log "$pglog"
  die "PostgreSQL: could not bind a free port after $MAX_PORT_TRIES tries"
}

# A server answering on our port is only ours if it is the one we started.
pg_check_ready() {  # DIR PG_BIN PORT
  local dir="$1" pg_bin="$2" port="$3" psql isready deadline datadir
  isready="$(find_client pg_isready "$pg_bin")"
  psql="$(find_client psql "$pg_bin")"
  deadline=$((SECONDS + WAIT_SECONDS))
  until clean_env "$isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
    if ((SECONDS >= deadline)); then
      show_log "$dir/pg.log"
      die "PostgreSQL on 127.0.0.1:$port not accepting connections after ${WAIT_SECONDS}s"
    fi
    sleep 0.2
  done
  datadir="$(clean_env "$psql" -X -qAt -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c 'SHOW data_directory' 2>/dev/null || true)"
  if [[ "$datadir" != "$dir/pg" ]]; then
    show_log "$dir/pg.log"
    die "the PostgreSQL on 127.0.0.1:$port is not ours (data_directory='$datadir', expected '$dir/pg')"
  fi
}

pg_setup() {  # DIR PG_BIN PORT
  local dir="$1" pg_bin="$2" port="$3" psql out
  psql="$(find_client psql "$pg_bin")"
  log "creating roles $PG_PW_ROLE, $PG_MD5_ROLE, $PG_CLEAR_ROLE and database $PG_DB"
  # md5 authentication needs the password stored as an md5 hash.
  if ! out="$(clean_env "$psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
      -c "CREATE ROLE $PG_PW_ROLE LOGIN PASSWORD '$PG_PW_SECRET'" \
      -c "SET password_encryption = 'md5'" \
      -c "CREATE ROLE $PG_MD5_ROLE LOGIN PASSWORD '$PG_MD5_SECRET'" \
      -c "RESET password_encryption" \
      -c "CREATE ROLE $PG_CLEAR_ROLE LOGIN PASSWORD '$PG_CLEAR_SECRET'" \
      -c "CREATE DATABASE $PG_DB OWNER postgres" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "could not create role/database"
  fi
  # Self-check of the authentication setup the tests rely on.
  if ! out="$(clean_env PGPASSWORD="$PG_PW_SECRET" "$psql" -X -qAt -h 127.0.0.1 -p "$port" \
      -U "$PG_PW_ROLE" -d "$PG_DB" -c 'SELECT 1' 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "login as $PG_PW_ROLE with its password failed"
  fi
  if clean_env PGPASSWORD=wrong-password "$psql" -X -qAt -w -h 127.0.0.1 -p "$port" \
      -U "$PG_PW_ROLE" -d "$PG_DB" -c 'SELECT 1' >/dev/null 2>&1; then
    die "login as $PG_PW_ROLE with a wrong password succeeded: pg_hba.conf is wrong"
  fi
}

start_redis() {  # DIR -> sets REDIS_PORT
  local dir="$1" port try pid deadline info cli server
  server="$(find_client redis-server /nonexistent)"
  cli="$(find_client redis-cli /nonexistent)"
  for try in $(seq 1 "$MAX_PORT_TRIES"); do
    port="$(pick_port)"
    log "starting Redis on 127.0.0.1:$port (try $try)"
    rm -f "$dir/redis.pid"
    if ! run_as "$server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log"; then
      show_log "$dir/redis.log"
      die "redis-server failed to start"
    fi
    deadline=$((SECONDS + WAIT_SECONDS))
    pid=""
    while :; do
      if [[ -z "$pid" ]]; then
        pid="$(cat "$dir/redis.pid" 2>/dev/null || true)"
        if [[ "$pid" =~ ^[0-9]+$ ]]; then record_pid "$dir" redis "$pid"; else pid=""; fi
      fi
      if [[ -n "$pid" ]]; then
        # Ready only when the server answering on the port is the one we started.
        info="$(clean_env "$cli" -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r' || true)"
        if grep -qx "process_id:$pid" <<<"$info"; then
          REDIS_PORT="$port"
          return 0
        fi
        if ! pid_alive "$pid"; then break; fi
      elif grep -q 'Address already in use' "$dir/redis.log" 2>/dev/null; then
        break
      fi
      if ((SECONDS >= deadline)); then
        show_log "$dir/redis.log"
        die "Redis on 127.0.0.1:$port not answering after ${WAIT_SECONDS}s"
      fi
      sleep 0.1
    done
    if grep -qE 'Address already in use|Could not create server TCP listening socket' "$dir/redis.log" 2>/dev/null; then
      log "port $port is taken, retrying with another port"
      mv -f "$dir/redis.log" "$dir/redis.log.port-$port" 2>/dev/null || true
      continue
    fi
    show_log "$dir/redis.log"
    die "Redis exited during startup"
  done
  show_log "$dir/redis.log"
  die "Redis: could not bind a free port after $MAX_PORT_TRIES tries"
}

# ---- CQL (Apache Cassandra) test server: begin ----
# A single Cassandra node (cassandra-all from Maven, resolved by
# scripts/install-cassandra.sh) from a generated cassandra.yaml on two free
# loopback ports, with PasswordAuthenticator + CassandraAuthorizer. Its JVM is
# launched first and set up last, so it starts while PostgreSQL and Redis do.
# FERRY_TEST_NO_CQL=1 skips it (tests that need it then fail loudly).
CQL_ROLE="ferry_cql"
CQL_SECRET="ferry_cql_secret"
CQL_RO_ROLE="ferry_cql_ro"
CQL_RO_SECRET="ferry_cql_ro_secret"
CQL_KEYSPACE="ferry_test"
CQL_WAIT_SECONDS="${FERRY_TEST_CQL_TIMEOUT:-240}"
CQL_HEAP="${FERRY_TEST_CQL_HEAP:-1g}"
SCRIPTS_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"

cql_wanted() { [[ "${FERRY_TEST_NO_CQL:-0}" != 1 ]]; }

# NAME, ADDRESS and TOKEN default to the first node's (cassandra, 127.0.0.1, 0);
# the seed is always the first node.
cql_write_conf() {  # DIR NATIVE_PORT STORAGE_PORT [NAME ADDRESS TOKEN]
  local c="$1/${4:-cassandra}" native="$2" storage="$3" address="${5:-127.0.0.1}" token="${6:-0}"
  mkdir -p "$c/data" "$c/commitlog" "$c/saved_caches" "$c/hints" "$c/cdc_raw" "$c/logs"
  cat >"$c/cassandra.yaml" <<EOF
# ferry throw-away test node (scripts/test-servers.sh)
cluster_name: ferry_test
num_tokens: 1
initial_token: $token
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
auto_bootstrap: false
data_file_directories:
  - $c/data
commitlog_directory: $c/commitlog
saved_caches_directory: $c/saved_caches
hints_directory: $c/hints
cdc_raw_directory: $c/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage"
listen_address: $address
rpc_address: $address
storage_port: $storage
native_transport_port: $native
start_native_transport: true
authenticator: PasswordAuthenticator
authorizer: CassandraAuthorizer
role_manager: CassandraRoleManager
auto_snapshot: false
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
materialized_views_enabled: true
EOF
  cat >"$c/logback.xml" <<EOF
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$c/logs/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
EOF
}

# The JVM options of Cassandra's own launcher for Java 17, with a small heap.
cql_jvm_opts() {  # CASSANDRA_DIR LIB -> one option per line
  local c="$1" lib="$2" jamm
  jamm="$(ls "$lib"/jamm-*.jar 2>/dev/null | head -n 1)"
  [[ -n "$jamm" ]] || die "jamm jar missing in $lib; rerun scripts/install-cassandra.sh"
  printf '%s\n' "-Xms512m" "-Xmx$CQL_HEAP" "-Xss512k" -XX:+UseG1GC -XX:+ParallelRefProcEnabled \
    -Djava.net.preferIPv4Stack=true -Djdk.attach.allowAttachSelf=true \
    -Dio.netty.tryReflectionSetAccessible=true
  cql_module_opts
  printf '%s\n' "-javaagent:$jamm" "-Dcassandra.config=file://$c/cassandra.yaml" \
    "-Dcassandra.storagedir=$c" "-Dcassandra.logdir=$c/logs" \
    "-Dlogback.configurationFile=file://$c/logback.xml" -Dcassandra-foreground=yes \
    -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.ring_delay_ms=1000 -cp "$lib/*" org.apache.cassandra.service.CassandraDaemon
}

# The --add-exports/--add-opens Cassandra's classes need on Java 17 (the
# server and nodetool).
cql_module_opts() {
  local m
  for m in java.base/jdk.internal.misc java.management.rmi/com.sun.jmx.remote.internal.rmi \
      java.rmi/sun.rmi.registry java.rmi/sun.rmi.server java.sql/java.sql java.base/java.lang.ref \
      jdk.unsupported/sun.misc jdk.compiler/com.sun.tools.javac.file jdk.attach/sun.tools.attach; do
    printf '%s\n' --add-exports "$m=ALL-UNNAMED"
  done
  for m in java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref \
      java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module \
      java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal \
      java.base/sun.nio.ch java.base/java.io java.base/java.lang.reflect java.base/java.lang \
      java.base/java.util; do
    printf '%s\n' --add-opens "$m=ALL-UNNAMED"
  done
}

# Launches the JVM (does not wait); sets CQL_PORT, CQL_PID.
cql_start() {  # DIR
  local dir="$1" c="$1/cassandra" lib i
  local -a opts=()
  command -v java >/dev/null 2>&1 || die "java not found (openjdk-17-jre-headless); run scripts/install-deps.sh"
  lib="$(bash "$SCRIPTS_DIR/install-cassandra.sh")" || die "could not obtain Cassandra (scripts/install-cassandra.sh failed)"
  run_as test -r "$lib" || die "$lib is not readable by the server user"
  printf '%s\n' "$lib" >"$dir/cassandra.lib"  # the second node uses the same jars
  CQL_PORT="$(pick_port)"
  CQL_STORAGE_PORT="$(pick_port)"
  while [[ "$CQL_STORAGE_PORT" == "$CQL_PORT" ]]; do CQL_STORAGE_PORT="$(pick_port)"; done
  RESERVED_PORTS="$CQL_PORT $CQL_STORAGE_PORT"
  cql_write_conf "$dir" "$CQL_PORT" "$CQL_STORAGE_PORT"
  if is_root; then chown -R "$TEST_USER:" "$c"; fi
  mapfile -t opts < <(cql_jvm_opts "$c" "$lib")
  log "starting Cassandra on 127.0.0.1:$CQL_PORT (storage port $CQL_STORAGE_PORT)"
  CQL_STARTED_AT=$SECONDS
  # `exec` keeps the PID the shell wrote, so the pid file names the JVM itself.
  run_as bash -c 'echo $$ >"$0/pid"; exec java "$@" </dev/null >>"$0/logs/stdout.log" 2>&1' \
    "$c" "${opts[@]}" </dev/null >/dev/null 2>&1 &
  for ((i = 0; i < 200; i++)); do
    [[ -s "$c/pid" ]] && break
    sleep 0.05
  done
  CQL_PID="$(cat "$c/pid" 2>/dev/null || true)"
  [[ "$CQL_PID" =~ ^[0-9]+$ ]] || die "Cassandra did not start (no pid file in $c)"
  record_pid "$dir" cassandra "$CQL_PID"
}

# Waits for a superuser login, then creates the test roles and keyspace.
cql_setup() {  # DIR
  local dir="$1" out setup="$SCRIPTS_DIR/cql-setup.py"
  if ! out="$(FERRY_CQL_SETUP_PW=cassandra python3 "$setup" --port "$CQL_PORT" \
      --user cassandra --password-env FERRY_CQL_SETUP_PW --wait "$CQL_WAIT_SECONDS" --pid "$CQL_PID" \
      "CREATE ROLE IF NOT EXISTS $CQL_ROLE WITH PASSWORD = '$CQL_SECRET' AND LOGIN = true AND SUPERUSER = true" \
      "CREATE ROLE IF NOT EXISTS $CQL_RO_ROLE WITH PASSWORD = '$CQL_RO_SECRET' AND LOGIN = true" \
      "CREATE KEYSPACE IF NOT EXISTS $CQL_KEYSPACE WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" \
      "GRANT SELECT ON KEYSPACE $CQL_KEYSPACE TO $CQL_RO_ROLE" 2>&1)"; then
    printf '%s\n' "$out" >&2
    show_log "$dir/cassandra/logs/stdout.log"
    show_log "$dir/cassandra/logs/system.log"
    die "Cassandra on 127.0.0.1:$CQL_PORT did not get ready"
  fi
  # Self-check: the test role logs in, a wrong password is refused.
  if ! out="$(FERRY_CQL_SETUP_PW="$CQL_SECRET" python3 "$setup" --port "$CQL_PORT" --user "$CQL_ROLE" \
      --password-env FERRY_CQL_SETUP_PW --wait 30 "SELECT release_version FROM system.local" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "login as $CQL_ROLE failed"
  fi
  if FERRY_CQL_SETUP_PW=wrong python3 "$setup" --port "$CQL_PORT" --user "$CQL_ROLE" \
      --password-env FERRY_CQL_SETUP_PW --wait 0 >/dev/null 2>&1; then
    die "login as $CQL_ROLE with a wrong password succeeded: authentication is off"
  fi
  log "Cassandra ready on 127.0.0.1:$CQL_PORT after $((SECONDS - CQL_STARTED_AT))s"
}

# ---- The second CQL node (schema-agreement drill) ----
# A second Cassandra node on 127.0.0.2 (loopback on Linux), same native and
# storage ports as the first node, seeded by it, data in DIR/cassandra2. Its
# token is 1 (the first node's is 0), so it owns a single token: the test
# keyspaces' data (RF 1) stays on the first node. JMX on a local port lets
# remove-cql-node2 decommission it, after which the first node is alone again.
CQL2_ADDRESS="127.0.0.2"

cql2_ports() {  # DIR -> sets CQL_PORT, CQL_STORAGE_PORT from the first node
  local dir="$1"
  CQL_PORT="$(sed -n 's/^native_transport_port: //p' "$dir/cassandra/cassandra.yaml" 2>/dev/null)"
  CQL_STORAGE_PORT="$(sed -n 's/^storage_port: //p' "$dir/cassandra/cassandra.yaml" 2>/dev/null)"
  [[ "$CQL_PORT" =~ ^[0-9]+$ && "$CQL_STORAGE_PORT" =~ ^[0-9]+$ ]] ||
    die "no Cassandra node in $dir (start the servers first)"
}

# The first node's jars (a test's own FERRY_CACHE_DIR must not matter).
cql2_lib() {  # DIR
  local lib
  lib="$(cat "$1/cassandra.lib" 2>/dev/null || true)"
  if [[ -z "$lib" || ! -d "$lib" ]]; then
    lib="$(env -u FERRY_CACHE_DIR bash "$SCRIPTS_DIR/install-cassandra.sh")" || die "could not obtain Cassandra"
  fi
  printf '%s\n' "$lib"
}

cql2_pid() {  # DIR -> the running second node's pid, or nothing
  local pid
  pid="$(cat "$1/cassandra2/pid" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && pid_alive "$pid" && pid_is "$pid" cassandra; then printf '%s\n' "$pid"; fi
}

cql2_dir() {  # DIR -> the canonical servers dir (refuses one we did not make)
  [[ -n "${1:-}" && -d "$1" ]] || usage
  local dir
  dir="$(cd -- "$1" && pwd -P)"
  [[ -f "$dir/$MARKER" ]] || die "$dir was not made by scripts/test-servers.sh start (no $MARKER); refusing to touch it"
  printf '%s\n' "$dir"
}

# Starts (or restarts, keeping its data) the second node and waits until it
# takes logins on 127.0.0.2. Already running: nothing to do.
cmd_start_cql_node2() {
  [[ $# -eq 1 ]] || usage
  local dir c lib pid jmx out started=$SECONDS i
  local -a opts=()
  dir="$(cql2_dir "$1")"
  c="$dir/cassandra2"
  cql2_ports "$dir"
  pid="$(cql2_pid "$dir")"
  if [[ -z "$pid" ]]; then
    lib="$(cql2_lib "$dir")"
    RESERVED_PORTS="$CQL_PORT $CQL_STORAGE_PORT"
    jmx="$(cat "$c/jmx_port" 2>/dev/null || pick_port)"
    cql_write_conf "$dir" "$CQL_PORT" "$CQL_STORAGE_PORT" cassandra2 "$CQL2_ADDRESS" 1
    printf '%s\n' "$jmx" >"$c/jmx_port"
    rm -f "$c/pid"
    if is_root; then chown -R "$TEST_USER:" "$c"; fi
    mapfile -t opts < <(cql_jvm_opts "$c" "$lib")
    opts=("-Dcassandra.jmx.local.port=$jmx" "${opts[@]}")
    log "starting the second Cassandra node on $CQL2_ADDRESS:$CQL_PORT (seed 127.0.0.1:$CQL_STORAGE_PORT)"
    run_as bash -c 'echo $$ >"$0/pid"; exec java "$@" </dev/null >>"$0/logs/stdout.log" 2>&1' \
      "$c" "${opts[@]}" </dev/null >/dev/null 2>&1 &
    for ((i = 0; i < 200; i++)); do
      [[ -s "$c/pid" ]] && break
      sleep 0.05
    done
    pid="$(cat "$c/pid" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || die "the second Cassandra node did not start (no pid file in $c)"
    record_pid "$dir" cassandra "$pid"
  fi
  if ! out="$(FERRY_CQL_SETUP_PW="$CQL_SECRET" python3 "$SCRIPTS_DIR/cql-setup.py" --host "$CQL2_ADDRESS" \
      --port "$CQL_PORT" --user "$CQL_ROLE" --password-env FERRY_CQL_SETUP_PW --wait "$CQL_WAIT_SECONDS" \
      --pid "$pid" "SELECT release_version FROM system.local" 2>&1)"; then
    printf '%s\n' "$out" >&2
    show_log "$c/logs/system.log"
    die "the second Cassandra node on $CQL2_ADDRESS:$CQL_PORT did not get ready"
  fi
  log "second Cassandra node ready on $CQL2_ADDRESS:$CQL_PORT after $((SECONDS - started))s"
}

# SIGKILL for the second node (a crash; its data stays for a restart).
cmd_kill_cql_node2() {
  [[ $# -eq 1 ]] || usage
  local dir pid i
  dir="$(cql2_dir "$1")"
  pid="$(cql2_pid "$dir")"
  [[ -n "$pid" ]] || { log "the second Cassandra node is not running"; return 0; }
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  log "second Cassandra node (pid $pid) killed"
}

# Takes the second node out of the cluster for good: starts it when down,
# decommissions it (nodetool over its local JMX port), stops it and removes
# its data. The first node then has no peers again.
cmd_remove_cql_node2() {
  [[ $# -eq 1 ]] || usage
  local dir c lib pid out
  dir="$(cql2_dir "$1")"
  c="$dir/cassandra2"
  [[ -d "$c" ]] || { log "no second Cassandra node in $dir"; return 0; }
  cmd_start_cql_node2 "$dir"
  lib="$(cql2_lib "$dir")"
  local -a mods=()
  mapfile -t mods < <(cql_module_opts)
  # user.home: nodetool keeps its history under ~/.cassandra.
  if ! out="$(run_as java -Xmx256m "${mods[@]}" -Duser.home="$c" -cp "$lib/*" \
      org.apache.cassandra.tools.NodeTool -h 127.0.0.1 \
      -p "$(cat "$c/jmx_port")" decommission --force 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "nodetool decommission of the second Cassandra node failed"
  fi
  pid="$(cql2_pid "$dir")"
  if [[ -n "$pid" ]]; then kill_pid "$pid" cassandra; fi
  rm -rf -- "$c"
  log "second Cassandra node decommissioned and removed"
}
# ---- end of the second CQL node ----

cql_env_lines() {
  printf 'export FERRY_TEST_CQL_URL=%q\n' "cql://$CQL_ROLE:$CQL_SECRET@127.0.0.1:$CQL_PORT/$CQL_KEYSPACE"
  printf 'export FERRY_TEST_CQL_RO_URL=%q\n' "cql://$CQL_RO_ROLE:$CQL_RO_SECRET@127.0.0.1:$CQL_PORT/$CQL_KEYSPACE"
  printf 'export FERRY_TEST_CQL_PORT=%q\n' "$CQL_PORT"
}
# ---- CQL (Apache Cassandra) test server: end ----

write_env() {  # DIR PG_BIN PG_PORT REDIS_PORT
  local dir="$1" pg_bin="$2" pg_port="$3" redis_port="$4"
  {
    printf '# Written by scripts/test-servers.sh; source this file.\n'
    printf 'export FERRY_TEST_PG_URL=%q\n' "postgres://postgres@127.0.0.1:$pg_port/$PG_DB"
    printf 'export FERRY_TEST_PG_PW_URL=%q\n' "postgres://$PG_PW_ROLE:$PG_PW_SECRET@127.0.0.1:$pg_port/$PG_DB"
    printf 'export FERRY_TEST_PG_MD5_URL=%q\n' "postgres://$PG_MD5_ROLE:$PG_MD5_SECRET@127.0.0.1:$pg_port/$PG_DB"
    printf 'export FERRY_TEST_PG_CLEAR_URL=%q\n' "postgres://$PG_CLEAR_ROLE:$PG_CLEAR_SECRET@127.0.0.1:$pg_port/$PG_DB"
    printf 'export FERRY_TEST_REDIS_URL=%q\n' "redis://127.0.0.1:$redis_port/0"
    printf 'export FERRY_TEST_PG_BIN=%q\n' "$pg_bin"
    printf 'export FERRY_TEST_PG_PORT=%q\n' "$pg_port"
    printf 'export FERRY_TEST_PG_SOCKET_DIR=%q\n' "$dir"
    printf 'export FERRY_TEST_REDIS_PORT=%q\n' "$redis_port"
    printf 'export FERRY_TEST_SERVERS_DIR=%q\n' "$dir"
    if [[ -n "${CQL_PORT:-}" ]]; then cql_env_lines; fi
  } >"$dir/env.tmp"
  chmod 644 "$dir/env.tmp"
  mv -f "$dir/env.tmp" "$dir/env"
}

cmd_start() {
  local dir="${1:-}" pg_bin
  [[ $# -le 1 ]] || usage
  command -v ss >/dev/null 2>&1 || die "ss not found (package iproute2); run scripts/install-deps.sh"
  if is_root; then
    command -v runuser >/dev/null 2>&1 || die "runuser not found (package util-linux)"
  fi
  pg_bin="$(find_pg_bin)"
  if [[ -z "$dir" ]]; then
    dir="$(mktemp -d "${TMPDIR:-/tmp}/ferry-test-servers.XXXXXX")"
  else
    mkdir -p -- "$dir"
  fi
  dir="$(cd -- "$dir" && pwd -P)"
  # The path goes into postgresql.conf and must fit a unix socket path.
  [[ "$dir" =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR '$dir' must contain only [A-Za-z0-9._/+-]"
  ((${#dir} <= 80)) || die "DIR '$dir' is too long for a unix socket path (max 80 characters)"
  if [[ -e "$dir/pg" || -e "$dir/pids" ]]; then
    die "$dir already holds test servers; stop them first (scripts/test-servers.sh stop $dir)"
  fi
  : >"$dir/$MARKER"
  : >"$dir/pids"
  chmod 755 "$dir"
  ensure_test_user
  if is_root; then chown -R "$TEST_USER:" "$dir"; fi
  check_traversable "$dir"
  run_as test -w "$dir" || die "$dir is not writable by the server user"

  # On failure, stop whatever this call started (the DIR stays for the logs).
  trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping what was started in $dir"; stop_processes "$dir" || true; fi' EXIT

  CQL_PORT=""
  if cql_wanted; then cql_start "$dir"; fi
  start_pg "$dir" "$pg_bin"
  pg_check_ready "$dir" "$pg_bin" "$PG_PORT"
  pg_setup "$dir" "$pg_bin" "$PG_PORT"
  start_redis "$dir"
  if redis_extras_wanted; then redis_extras_start "$dir"; redis_tls_start "$dir"; fi
  if cql_wanted; then cql_setup "$dir"; fi
  write_env "$dir" "$pg_bin" "$PG_PORT" "$REDIS_PORT"
  if redis_extras_wanted; then redis_extras_write_env "$dir"; fi
  trap - EXIT
  log "PostgreSQL 127.0.0.1:$PG_PORT and Redis 127.0.0.1:$REDIS_PORT ready; source $dir/env"
  printf '%s\n' "$dir"
}

# ---- Redis extras (issue 16): second server, ACL user, 3+3 cluster ----------
# redis_extras_start DIR starts, next to the first Redis:
#   a second standalone server (FERRY_TEST_REDIS2_URL) that also has the ACL
#   user $REDIS_ACL_USER with password $REDIS_ACL_SECRET
#   (FERRY_TEST_REDIS_ACL_URL; the default user stays passwordless), and
#   a cluster of three masters with one replica each, made with
#   `redis-cli --cluster create` (FERRY_TEST_REDIS_CLUSTER_URL,
#   redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3 naming the masters;
#   FERRY_TEST_REDIS_CLUSTER_NODES lists all six host:port).
# All processes are recorded in DIR/pids as "redis", so `stop` ends them.
REDIS_ACL_USER="ferry_acl"
REDIS_ACL_SECRET="ferry_acl_secret"

# A port whose cluster bus port (port + 10000) is free too.
redis_pick_cluster_port() {
  local port i
  for ((i = 0; i < 50; i++)); do
    port="$(pick_port)"
    if ((port + 10000 < 65536)) && [[ -z "$(ss -Hltn "sport = :$((port + 10000))" 2>/dev/null)" ]]; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  die "no free port pair (port, port+10000) found for a cluster node"
}

# Launches one daemonized redis-server in DIR/NAME on PORT (no wait).
redis_launch() {  # DIR NAME PORT [EXTRA ARGS...]
  local dir="$1" name="$2" port="$3" server
  shift 3
  server="$(find_client redis-server /nonexistent)"
  run_as mkdir -p "$dir/$name"
  rm -f "$dir/$name/redis.pid"
  run_as "$server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/$name/redis.pid" --dir "$dir/$name" \
    --logfile "$dir/$name/redis.log" "$@" || { show_log "$dir/$name/redis.log"; die "redis-server $name failed to start"; }
}

# Waits until the server in DIR/NAME answers on PORT as itself; returns 1
# when it exited (e.g. the port was taken).
redis_wait() {  # DIR NAME PORT [REDIS-CLI ARGS...]
  local dir="$1" name="$2" port="$3" cli pid="" deadline info
  shift 3
  cli="$(find_client redis-cli /nonexistent)"
  deadline=$((SECONDS + WAIT_SECONDS))
  while :; do
    if [[ -z "$pid" ]]; then
      pid="$(cat "$dir/$name/redis.pid" 2>/dev/null || true)"
      if [[ "$pid" =~ ^[0-9]+$ ]]; then record_pid "$dir" redis "$pid"; else pid=""; fi
    fi
    if [[ -n "$pid" ]]; then
      info="$(clean_env "$cli" -h 127.0.0.1 -p "$port" "$@" info server 2>/dev/null | tr -d '\r' || true)"
      if grep -qx "process_id:$pid" <<<"$info"; then return 0; fi
      pid_alive "$pid" || return 1
    elif grep -qE 'Address already in use|Could not create server TCP' "$dir/$name/redis.log" 2>/dev/null; then
      return 1
    fi
    if ((SECONDS >= deadline)); then
      show_log "$dir/$name/redis.log"
      die "Redis $name on 127.0.0.1:$port not answering after ${WAIT_SECONDS}s"
    fi
    sleep 0.05
  done
}

# FERRY_TEST_NO_REDIS_EXTRAS=1 skips them (a test's own PostgreSQL server).
redis_extras_wanted() { [[ "${FERRY_TEST_NO_REDIS_EXTRAS:-0}" != 1 ]]; }

redis_extras_start() {  # DIR -> sets REDIS2_PORT, REDIS_CLUSTER_PORTS
  local dir="$1" cli port i try ok out state name
  local -a ports=()
  cli="$(find_client redis-cli /nonexistent)"
  for try in $(seq 1 "$MAX_PORT_TRIES"); do
    ports=()
    port="$(pick_port)"
    redis_launch "$dir" redis2 "$port"
    for i in 1 2 3 4 5 6; do
      ports+=("$(redis_pick_cluster_port)")
      redis_launch "$dir" "cluster$i" "${ports[-1]}" --cluster-enabled yes \
        --cluster-config-file "$dir/cluster$i/nodes.conf" --cluster-node-timeout 15000
    done
    ok=1
    redis_wait "$dir" redis2 "$port" || ok=0
    for i in 1 2 3 4 5 6; do redis_wait "$dir" "cluster$i" "${ports[$((i - 1))]}" || ok=0; done
    if ((ok)); then break; fi
    log "a Redis port was taken; stopping the extra Redis servers and retrying (try $try)"
    for name in redis2 cluster1 cluster2 cluster3 cluster4 cluster5 cluster6; do
      kill_pid "$(cat "$dir/$name/redis.pid" 2>/dev/null || true)" redis
    done
    ((try < MAX_PORT_TRIES)) || die "Redis extras: could not bind free ports after $MAX_PORT_TRIES tries"
  done
  REDIS2_PORT="$port"
  REDIS_CLUSTER_PORTS="${ports[*]}"
  if ! out="$(clean_env "$cli" -h 127.0.0.1 -p "$port" ACL SETUSER "$REDIS_ACL_USER" on \
      ">$REDIS_ACL_SECRET" '~*' '&*' +@all 2>&1)" || [[ "$out" != OK ]]; then
    die "ACL SETUSER on the second Redis failed: $out"
  fi
  log "creating a Redis cluster of 3 masters + 3 replicas on ports ${ports[*]}"
  local -a nodes=()
  for port in "${ports[@]}"; do nodes+=("127.0.0.1:$port"); done
  if ! out="$(clean_env "$cli" --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "redis-cli --cluster create failed"
  fi
  local deadline=$((SECONDS + WAIT_SECONDS))
  for port in "${ports[@]}"; do
    while :; do
      state="$(clean_env "$cli" -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | tr -d '\r' | grep '^cluster_state:' || true)"
      [[ "$state" == "cluster_state:ok" ]] && break
      ((SECONDS < deadline)) || die "Redis cluster node $port: '$state' after ${WAIT_SECONDS}s"
      sleep 0.1
    done
  done
}

# A Redis on a TLS-only port (--port 0) with requirepass, its certificate
# (subjectAltName 127.0.0.1 and localhost) signed by a CA made here.
REDIS_TLS_SECRET="ferry_tls_secret"
redis_tls_start() {  # DIR -> sets REDIS_TLS_PORT
  local dir="$1" d="$1/redistls" try port out
  run_as mkdir -p "$d"
  if ! out="$(run_as sh -c 'cd "$1" &&
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ferry test CA" \
        -keyout ca.key -out ca.crt &&
      openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr &&
      printf "subjectAltName=IP:127.0.0.1,DNS:localhost\n" >server.ext &&
      openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
        -extfile server.ext -out server.crt' sh "$d" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "openssl could not make the TLS Redis certificates"
  fi
  for try in $(seq 1 "$MAX_PORT_TRIES"); do
    port="$(pick_port)"
    redis_launch "$dir" redistls 0 --tls-port "$port" --tls-cert-file "$d/server.crt" \
      --tls-key-file "$d/server.key" --tls-ca-cert-file "$d/ca.crt" --tls-auth-clients no \
      --requirepass "$REDIS_TLS_SECRET"
    if redis_wait "$dir" redistls "$port" --tls --cacert "$d/ca.crt" --no-auth-warning \
        -a "$REDIS_TLS_SECRET"; then
      REDIS_TLS_PORT="$port"
      return 0
    fi
    kill_pid "$(cat "$d/redis.pid" 2>/dev/null || true)" redis
  done
  die "TLS Redis: could not bind a free port after $MAX_PORT_TRIES tries"
}

redis_extras_write_env() {  # DIR
  local dir="$1" masters="" all="" port i=0
  for port in $REDIS_CLUSTER_PORTS; do
    all+="${all:+,}127.0.0.1:$port"
    # redis-cli --cluster create makes the first three nodes the masters.
    if ((i < 3)); then masters+="${masters:+,}127.0.0.1:$port"; fi
    i=$((i + 1))
  done
  {
    printf 'export FERRY_TEST_REDIS2_URL=%q\n' "redis://127.0.0.1:$REDIS2_PORT/0"
    printf 'export FERRY_TEST_REDIS_ACL_URL=%q\n' "redis://$REDIS_ACL_USER:$REDIS_ACL_SECRET@127.0.0.1:$REDIS2_PORT/0"
    printf 'export FERRY_TEST_REDIS_CLUSTER_URL=%q\n' "redis+cluster://$masters"
    printf 'export FERRY_TEST_REDIS_CLUSTER_NODES=%q\n' "$all"
    printf 'export FERRY_TEST_REDIS_TLS_URL=%q\n' \
      "rediss://:$REDIS_TLS_SECRET@127.0.0.1:$REDIS_TLS_PORT/0?tls_ca=$dir/redistls/ca.crt"
    printf 'export FERRY_TEST_REDIS_TLS_CA=%q\n' "$dir/redistls/ca.crt"
  } >>"$dir/env"
}
# ---- end of Redis extras ---------------------------------------------------

# Is PID still the kind of process we started (guards against PID reuse)?
pid_is() {  # PID NAME
  local comm
  comm="$(cat "/proc/$1/comm" 2>/dev/null || true)"
  case "$2" in
    postgres) [[ "$comm" == postgres* || "$comm" == postmaster* ]] ;;
    redis) [[ "$comm" == redis* ]] ;;
    cassandra) [[ "$comm" == java ]] ;;
    *) return 1 ;;
  esac
}

kill_pid() {  # PID NAME
  local pid="$1" name="$2" i kids
  if ! pid_alive "$pid" || ! pid_is "$pid" "$name"; then return 0; fi
  kids="$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -s ' \n' ' ' || true)"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid" && pid_is "$pid" "$name"; then
    log "$name (pid $pid) did not exit; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  local k
  for k in $kids; do
    if pid_alive "$k" && pid_is "$k" "$name"; then kill -KILL "$k" 2>/dev/null || true; fi
  done
}

stop_processes() {  # DIR
  local dir="$1" pg_bin name pid
  if [[ -f "$dir/pg/postmaster.pid" ]]; then
    pg_bin="$(find_pg_bin 2>/dev/null || true)"
    if [[ -n "$pg_bin" ]]; then
      run_as "$pg_bin/pg_ctl" -D "$dir/pg" -m immediate -w -t 15 stop >/dev/null 2>&1 || true
    fi
  fi
  if [[ -f "$dir/pids" ]]; then
    while read -r name pid; do
      [[ "$pid" =~ ^[0-9]+$ ]] || continue
      kill_pid "$pid" "$name"
    done <"$dir/pids"
  fi
}

# Restarts the PostgreSQL server of DIR in place (same port, same data):
# for tests of what a client does when its server goes away and comes back.
cmd_restart_pg() {
  [[ $# -eq 1 && -n "$1" ]] || usage
  local dir pg_bin
  dir="$(cd -- "$1" && pwd -P)"
  [[ -f "$dir/$MARKER" ]] || die "$dir was not made by scripts/test-servers.sh start (no $MARKER); refusing to touch it"
  pg_bin="$(find_pg_bin)"
  run_as "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -m fast -w -t "$WAIT_SECONDS" restart \
    >>"$dir/pg_ctl.log" 2>&1 || { show_log "$dir/pg_ctl.log"; die "pg_ctl restart failed"; }
  log "PostgreSQL in $dir restarted"
}

cmd_stop() {
  [[ $# -eq 1 && -n "$1" ]] || usage
  local dir="$1"
  if [[ ! -d "$dir" ]]; then
    log "$dir does not exist; nothing to stop"
    return 0
  fi
  dir="$(cd -- "$dir" && pwd -P)"
  [[ -f "$dir/$MARKER" ]] || die "$dir was not made by scripts/test-servers.sh start (no $MARKER); refusing to touch it"
  stop_processes "$dir"
  rm -rf -- "$dir"
  log "stopped and removed $dir"
}

cmd_run() {
  [[ "${1:-}" == "--" ]] && shift
  [[ $# -ge 1 ]] || usage
  local dir rc
  dir="$(mktemp -d "${TMPDIR:-/tmp}/ferry-test-servers.XXXXXX")"
  RUN_DIR="$dir"
  # Stop the servers however we leave: normal exit, failure, Ctrl-C, SIGTERM.
  trap 'rc=$?; trap "" INT TERM; (cmd_stop "$RUN_DIR") || true; exit "$rc"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # A failed start exits through the EXIT trap above.
  (cmd_start "$dir") >/dev/null
  # shellcheck source=/dev/null
  source "$dir/env"
  export FERRY_TEST_REQUIRE_SERVERS=1
  # CMD runs as a child we wait for, so a SIGTERM sent to this script alone
  # (e.g. by `timeout`) is passed on at once instead of after CMD ends. The
  # explicit `0<&0` keeps stdin, and env restores the default SIGINT/SIGQUIT
  # handling that bash takes away from background children.
  local -a reset_signals=()
  if env --default-signal=INT true 2>/dev/null; then reset_signals=("--default-signal=INT,QUIT"); fi
  env "${reset_signals[@]}" -- "$@" 0<&0 &
  CHILD_PID=$!
  trap 'forward_signal INT 130' INT
  trap 'forward_signal TERM 143' TERM
  rc=0
  wait "$CHILD_PID" || rc=$?
  exit "$rc"
}

# Passes SIG on to CMD, gives it 10 s to exit (then SIGKILL), and exits; the
# EXIT trap stops the servers.
forward_signal() {  # SIG EXIT_CODE
  local i
  trap '' INT TERM
  log "got SIG$1; passing it on to the command (pid $CHILD_PID)"
  kill -"$1" "$CHILD_PID" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    pid_alive "$CHILD_PID" || break
    sleep 0.1
  done
  if pid_alive "$CHILD_PID"; then
    log "command (pid $CHILD_PID) still running after 10 s; sending SIGKILL"
    kill -KILL "$CHILD_PID" 2>/dev/null || true
  fi
  wait "$CHILD_PID" 2>/dev/null || true
  exit "$2"
}

main() {
  local sub="${1:-}"
  [[ $# -ge 1 ]] && shift
  case "$sub" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart-pg) cmd_restart_pg "$@" ;;
    start-cql-node2) cmd_start_cql_node2 "$@" ;;
    kill-cql-node2) cmd_kill_cql_node2 "$@" ;;
    remove-cql-node2) cmd_remove_cql_node2 "$@" ;;
    run) cmd_run "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
