// The ferry program: parses the command line, loads configuration, calls the
// library and renders text or --json. The only file that includes CLI11.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/argv_secrets.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "cli/partition_command.h"
#include "cli/checkpoint_command.h"
#include "cli/copy_command.h"
#include "cli/redis_command.h"
#include "cli/run_metrics.h"
#include "cli/recommend_command.h"
#include "cli/serve_command.h"
#include "cli/verify_command.h"
#include "core/config.h"
#include "core/log.h"
#include "drivers/registry.h"
#include "observe/event.h"

namespace ferry::cli {
namespace {

constexpr const char* kOverview = R"(ferry changes production databases safely: versioned schema migrations
with history, checksums, locks and rollback, and a linter for changes that
lock or rewrite tables. PostgreSQL first, SQLite embedded (the default:
./ferry.db).

Commands, each with an example:
  init       ferry init                      create ./migrations, ferry.toml, history table
  new        ferry new add_users_email       create the next migration file
  up         ferry up --to 20260101120000    apply pending migrations (alias: migrate)
  down       ferry down --steps 1            roll back the newest migration (alias: rollback)
  redo       ferry redo                      roll back the newest, then apply it again
  goto       ferry goto 1.1.0                move up or down to exactly this version
  complete   ferry complete                  finish expand changes: drop old columns, rename
  abort      ferry abort                     undo an open expand change (no write is lost)
  status     ferry status --exit-code        applied, pending, changed, missing, lock holder
  history    ferry history --limit 20        every apply, failure and rollback with who and when
  validate   ferry validate                  files parse, checksums match, order, compatibility
  plan       ferry plan                      the exact SQL 'up' would run (--down for 'down')
  lint       ferry lint --format sarif       lock, rewrite and breakage risks in migrations
  backfill   ferry backfill --table users --set "b = a" --where "b IS NULL"
             update rows in small resumable primary-key batches
  copy       ferry copy --from postgres://db1/app --to postgres://db2/app --table users
             copy tables in resumable chunks (PostgreSQL, SQLite), with progress
  verify     ferry verify --from postgres://db1/app --to sqlite:copy.db --table users
             compare two tables row by row (hashes in each database, then bisection)
  baseline   ferry baseline 1.0.0            mark an existing database as being at a version
  repair     ferry repair --reason "..."     accept changed checksums, clear failed attempts
  report     ferry report --format json      status, history and health in one document
  health     ferry health                    connection, lock, failures, compatibility
  doctor     ferry doctor postgres://app@db.internal/app
             connect and list the capabilities ferry relies on
  redis      ferry redis copy --from redis://old:6379 --to redis+cluster://n1:7000,n2:7000
             copy or verify Redis keys (standalone or cluster) with exact TTLs, resumable
  recommend  ferry recommend --json          ranked advice with SQL: keys, indexes, bloat, history
  partition  ferry partition maintain --dry-run
             keep the RANGE partitions declared in ferry.toml: premake, attach, prune
  checkpoint ferry checkpoint create before-x   restorable point (pg_dump / SQLite backup)
  serve      ferry serve --database postgres://app@db/app
             dashboard, /metrics, /healthz, /readyz and /api/* on 127.0.0.1:9187
  version    ferry version

Typical session:
  ferry init && ferry new create_users && $EDITOR migrations/*create_users.sql
  ferry plan && ferry up && ferry status

Global flags go before or after the command. Settings come from flags, then
the environment (DATABASE_URL, FERRY_*), then ./ferry.toml, then defaults.
Run 'ferry COMMAND --help' for a command's flags. Exit codes: docs/exit-codes.md.
)";

struct GlobalFlags {
  std::string database;
  std::string dir;
  std::string config_path;
  std::string log_level;
  bool json = false;
  bool quiet = false;
  int verbose = 0;
  std::string metrics_file;
  std::string pushgateway;
};

// The flags `copy` and `verify` share: two databases, and which rows of
// which tables. The help of --from, --to and --where says what each command
// does with them.
struct TableSelection {
  std::string* from;
  std::string* to;
  std::vector<std::string>* tables;
  bool* all;
  std::string* where;
};
void AddTableSelection(CLI::App* cmd, const TableSelection& s, const std::string& from_help,
                       const std::string& to_help, const std::string& where_help) {
  cmd->add_option("--from", *s.from, from_help)->option_text("URL");
  cmd->add_option("--to", *s.to, to_help)->option_text("URL");
  cmd->add_option("--table", *s.tables, "table to " + cmd->get_name() +
                                           " (repeatable; schema.table)")
      ->option_text("T");
  cmd->add_flag("--all", *s.all, "every user table of the source");
  cmd->add_option("--where", *s.where, where_help)->option_text("SQL");
}

void AddGlobalFlags(CLI::App& app, GlobalFlags& g) {
  app.add_option("-d,--database", g.database,
                 "database URL: postgres://user@host/db, sqlite:file.db (default sqlite:ferry.db)")
      ->envname("")
      ->option_text("URL");
  app.add_option("--dir", g.dir, "migrations directory (default ./migrations)")
      ->option_text("PATH");
  app.add_option("--config", g.config_path, "settings file (default ./ferry.toml if present)")
      ->option_text("FILE");
  app.add_option("--log-level", g.log_level, "debug, info, warn (default), error, off")
      ->option_text("LEVEL");
  app.add_flag("--json", g.json, "machine-readable JSON on stdout");
  app.add_flag("-q,--quiet", g.quiet, "results only, no progress");
  app.add_flag("-v,--verbose", g.verbose, "more logging (-v info, -vv debug)");
  app.add_option("--metrics-file", g.metrics_file,
                 "write Prometheus metrics of this run here at the end (node_exporter textfile)")
      ->option_text("PATH");
  app.add_option("--pushgateway", g.pushgateway,
                 "push Prometheus metrics of this run to this Pushgateway (http://host:9091)")
      ->option_text("URL");
}

// `ferry redis copy` and `ferry redis verify` (cli/redis_commands.cc).
struct RedisApps {
  CLI::App* copy = nullptr;
  CLI::App* verify = nullptr;
  CLI::App* status = nullptr;
  CLI::App* move_slots = nullptr;
  CLI::App* add_node = nullptr;
  CLI::App* rebalance = nullptr;
};

void AddRedisScaling(CLI::App* cluster, RedisArgs& a, RedisApps& apps) {
  apps.add_node = cluster->add_subcommand(
      "add-node", "join an empty cluster-mode server to the cluster (as a master or a replica)");
  apps.add_node->add_option("url", a.cluster_url, "redis+cluster://h1:p1,h2:p2")->required();
  apps.add_node->add_option("node", a.new_node, "HOST:PORT of the server to add")->required();
  apps.add_node->add_option("--replica-of", a.replica_of,
                            "make it a replica of this master (node id prefix or host:port)")
      ->option_text("NODE");
  apps.add_node->footer(
      "Examples:\n"
      "  ferry redis cluster add-node redis+cluster://n1:7000 10.0.0.7:7000\n"
      "  ferry redis cluster add-node redis+cluster://n1:7000 10.0.0.8:7000 --replica-of 10.0.0.7:7000\n"
      "The server must run with cluster-enabled yes, know no other node and hold no keys.\n"
      "A new master has no slots: run 'ferry redis cluster rebalance URL --use-empty-masters'.");
  apps.rebalance = cluster->add_subcommand(
      "rebalance", "move slots so every master holds its fair share (resumable)");
  apps.rebalance->add_option("url", a.cluster_url, "redis+cluster://h1:p1,h2:p2")->required();
  apps.rebalance->add_flag("--use-empty-masters", a.use_empty_masters,
                           "give masters without slots (just added) their share too");
  apps.rebalance->add_option("--threshold", a.threshold,
                             "do nothing while every master is within this % of its share "
                             "(default 2)")
      ->option_text("PERCENT");
  apps.rebalance->add_flag("--dry-run", a.dry_run, "print the moves; move nothing");
  apps.rebalance->add_option("--state", a.state,
                             "SQLite file with the plan and each move's progress "
                             "(default ./ferry-redis-state.db)")
      ->option_text("FILE");
  apps.rebalance->footer(
      "Example:\n"
      "  ferry redis cluster rebalance redis+cluster://n1:7000 --use-empty-masters --dry-run\n"
      "Each move is a move-slots job (MIGRATE ... KEYS, SETSLOT in the documented order); the\n"
      "plan is kept in --state, so after kill -9 the same command finishes it.");
}

// ferry checkpoint create|list|restore|delete|prune (checkpoint_command.h).
CLI::App* AddCheckpointCommand(CLI::App& app, CheckpointArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "checkpoint", "restorable points of a database: pg_dump -Fc or SQLite backup (docs/checkpoints.md)");
  cmd->require_subcommand(1);
  cmd->footer("Examples:\n"
              "  ferry checkpoint create before-split && ferry checkpoint list\n"
              "  ferry checkpoint restore before-split --dry-run\n"
              "  ferry checkpoint prune --keep 5\n"
              "  ferry up --checkpoint --auto-rollback\n"
              "PostgreSQL (pg_dump -Fc, restored in one psql transaction) and SQLite (online\n"
              "backup). Guide: docs/checkpoints.md.");
  auto sub = [&](const char* name, const char* help, const char* examples) {
    CLI::App* c = cmd->add_subcommand(name, help);
    c->footer(std::string("Examples:\n") + examples);
    c->add_option("--dir-checkpoints", a.dir, "checkpoint folder (default [checkpoint] dir, "
                  ".ferry/checkpoints)")->option_text("DIR");
    c->parse_complete_callback([&a, name] { a.action = name; });
    return c;
  };
  CLI::App* create = sub("create", "take a checkpoint: the whole database, or some schemas or tables",
                         "  ferry checkpoint create before-orders-split\n"
                         "  ferry checkpoint create nightly --schema billing --json\n"
                         "  ferry checkpoint create t1 --table public.orders --pg-bin /usr/lib/postgresql/16/bin\n"
                         "Size and time are printed. PostgreSQL: pg_dump -Fc (as new as the server);\n"
                         "SQLite: the online backup API. The password reaches pg_dump in its environment.");
  create->add_option("name", a.name, "checkpoint name (letters, digits, . _ -)")->required();
  create->add_option("--schema", a.schemas, "only this schema (repeat for more)")->option_text("S");
  create->add_option("--table", a.tables, "only this table, schema.table (repeat)")->option_text("T");
  CLI::App* restore = sub("restore", "restore a checkpoint in one transaction (nothing changes on failure)",
                          "  ferry checkpoint restore before-orders-split --dry-run\n"
                          "  ferry checkpoint restore before-orders-split\n"
                          "Objects in the checkpoint's scope made since are dropped first; --dry-run lists\n"
                          "what would be dropped and restored and changes nothing.");
  restore->add_option("name", a.name, "checkpoint name")->required();
  restore->add_flag("--dry-run", a.dry_run, "list what would be dropped and restored; change nothing");
  for (CLI::App* c : {create, restore}) {
    c->add_option("--pg-bin", a.pg_bin, "folder of pg_dump, pg_restore and psql (default "
                  "[checkpoint] pg_bin, then PATH)")->option_text("DIR");
  }
  sub("list", "list checkpoints: name, engine, created, size, time, version, scope",
      "  ferry checkpoint list\n  ferry checkpoint list --json");
  sub("delete", "delete one checkpoint", "  ferry checkpoint delete before-orders-split")
      ->add_option("name", a.name, "checkpoint name")->required();
  sub("prune", "keep the newest N checkpoints, delete the rest",
      "  ferry checkpoint prune --keep 5\n  ferry checkpoint prune   # [checkpoint] keep from ferry.toml")
      ->add_option("--keep", a.keep, "how many to keep (default [checkpoint] keep)")->option_text("N");
  return cmd;
}

void AddRedisCommands(CLI::App& app, RedisArgs& a, RedisApps& apps) {
  CLI::App* redis = app.add_subcommand(
      "redis", "copy and verify Redis keys between servers and clusters (docs/redis.md)");
  redis->require_subcommand(1);
  auto common = [&a](CLI::App* c, const char* from_help, const char* to_help) {
    c->add_option("--from", a.from, from_help)->option_text("URL")->required();
    c->add_option("--to", a.to, to_help)->option_text("URL")->required();
    c->add_option("--match", a.match, "only keys matching this SCAN pattern, e.g. 'user:*'")
        ->option_text("PATTERN");
    c->add_option("--type", a.type, "only keys of this type: string, hash, list, set, zset, stream")
        ->option_text("TYPE");
    c->add_option("--scan-count", a.scan_count, "SCAN COUNT per page (default 1000)")
        ->option_text("N");
  };
  apps.copy = redis->add_subcommand(
      "copy", "copy keys with DUMP/RESTORE, absolute TTLs, resumable (standalone or cluster)");
  common(apps.copy, "source: redis://[user:pass@]host:port/db or redis+cluster://h1:p1,h2:p2",
         "target: the same forms; a cluster target gets one pipeline per master");
  apps.copy->add_flag("--skip-existing", a.skip_existing,
                    "keep keys already on the target (default: replace them)");
  apps.copy->add_option("--workers", a.workers, "source masters copied at once (default 4)")
      ->option_text("N");
  apps.copy->add_option("--max-keys-per-sec", a.max_keys_per_sec, "rate limit (default: none)")
      ->option_text("N");
  apps.copy->add_flag("--dry-run", a.dry_run,
                    "print key counts, memory estimate and target headroom; write nothing");
  apps.copy->add_option("--state", a.state,
                      "SQLite file holding the SCAN checkpoints (default ./ferry-redis-state.db)")
      ->option_text("FILE");
  apps.copy->add_flag("--restart", a.restart, "forget this job's checkpoints and start over");
  apps.copy->add_option("--big-key-bytes", a.big_key_bytes,
                      "copy keys whose DUMP is larger type by type, then RENAME (default 64 MiB)")
      ->option_text("N");
  apps.copy->add_option("--memory-slow-percent", a.memory_slow_percent,
                      "slow down while a target master is at this % of maxmemory (default 85)")
      ->option_text("P");
  apps.copy->add_option("--memory-stop-percent", a.memory_stop_percent,
                      "stop (resumable) before a target master passes this % of maxmemory "
                      "(default 95)")
      ->option_text("P");
  apps.copy->add_flag("--follow", a.follow,
                      "after the scan keep copying keys that change at the source (keyspace "
                      "notifications) until Ctrl-C/SIGTERM");
  apps.copy->add_flag("--prepare-target", a.prepare_target,
                    "turn on lazy freeing on the target for the copy; put it back at the end");
  apps.copy->footer(
      "Examples:\n"
      "  ferry redis copy --from redis://old:6379/0 --to redis://new:6379/0\n"
      "  ferry redis copy --from redis://:$PW@old:6379 --to redis+cluster://n1:7000,n2:7000,n3:7000 \\\n"
      "      --match 'session:*' --workers 3 --max-keys-per-sec 50000 --json\n"
      "  ferry redis copy --from $SRC --to $DST --dry-run\n"
      "Per source master: SCAN, then DUMP + PEXPIRETIME pipelined, then RESTORE ... ABSTTL\n"
      "REPLACE pipelined per target master; keys that expire in flight are not restored.\n"
      "Progress (ETA from DBSIZE) goes to stderr. The SCAN cursor of every source master is\n"
      "checkpointed in --state (./ferry-redis-state.db unless given) after each page, so after\n"
      "a crash or kill -9 the same command resumes. Source keys are never changed.\n"
      "The target's memory is watched on masters with a maxmemory: the copy slows down, then\n"
      "stops before the target would evict keys or refuse writes (rerun to resume).\n"
      "Exit 0 copied, 1 some keys failed, 5 unreachable, 6 wrong password, 7 nothing matched,\n"
      "8 bad URL or same server as source, 9 target is a replica, too small, or cluster not ok.");
  apps.verify = redis->add_subcommand(
      "verify", "compare keys of two Redis servers or clusters: missing, extra, changed");
  common(apps.verify, "source (reference) URL", "target URL, checked against the source");
  apps.verify->add_option("--sample", a.sample,
                        "check only this percentage of the keys (default 100; no extra-key scan)")
      ->option_text("PERCENT");
  apps.verify->add_option("--ttl-tolerance-ms", a.ttl_tolerance_ms,
                        "expiry difference still equal (default 2000)")
      ->option_text("MS");
  apps.verify->add_option("--max-report", a.max_report, "list at most N differing keys (default 100)")
      ->option_text("N");
  apps.verify->footer(
      "Examples:\n"
      "  ferry redis verify --from redis://old:6379/0 --to redis+cluster://n1:7000,n2:7000\n"
      "  ferry redis verify --from $SRC --to $DST --sample 5 --json\n"
      "Each key: exists, same type, expiry within tolerance, same value (DUMP payload when both\n"
      "run the same version, else a per-type digest). Exit 0 identical, 10 differences.");
  CLI::App* cluster = redis->add_subcommand(
      "cluster", "Redis Cluster: status, move slots, add a node, rebalance");
  cluster->require_subcommand(1);
  apps.status = cluster->add_subcommand(
      "status", "slot distribution, keys and migrating slots of every master");
  apps.status->add_option("url", a.cluster_url, "redis+cluster://h1:p1,h2:p2")->required();
  apps.status->footer("Example:\n  ferry redis cluster status redis+cluster://n1:7000,n2:7000 --json");
  apps.move_slots = cluster->add_subcommand(
      "move-slots", "move N slots and their keys from one master to another (resumable)");
  apps.move_slots->add_option("url", a.cluster_url, "redis+cluster://h1:p1,h2:p2")->required();
  apps.move_slots->add_option("--from", a.node_from, "source master: node id (prefix) or host:port")
      ->option_text("NODE")->required();
  apps.move_slots->add_option("--to", a.node_to, "target master: node id (prefix) or host:port")
      ->option_text("NODE")->required();
  apps.move_slots->add_option("--slots", a.slots, "how many slots to move")->option_text("N")->required();
  apps.move_slots->add_option("--slots-per-round", a.slots_per_round,
                            "slots moved together, pipelined (default 16)")
      ->option_text("N");
  apps.move_slots->add_option("--keys-per-migrate", a.keys_per_migrate,
                            "keys per MIGRATE ... KEYS (default 1000)")
      ->option_text("N");
  apps.move_slots->add_option("--state", a.state,
                            "SQLite file with the job's progress (default ./ferry-redis-state.db)")
      ->option_text("FILE");
  apps.move_slots->footer(
      "Example:\n"
      "  ferry redis cluster move-slots redis+cluster://n1:7000 --from 127.0.0.1:7000 \\\n"
      "      --to 127.0.0.1:7003 --slots 1000\n"
      "Per group of slots: SETSLOT IMPORTING on the target, MIGRATING on the source, MIGRATE\n"
      "... KEYS batches until empty, then SETSLOT NODE on the target, source and others.\n"
      "After kill -9 run the same command: half-moved slots are finished first and only the\n"
      "slots still missing are moved. Exit 0 moved, 7 unknown node, 8 bad input.");
  AddRedisScaling(cluster, a, apps);
}

// The command named on the command line when it can be told without parsing:
// the first word that is neither an option nor a global option's value.
// Registering only that command spares a short run (`ferry status`) building
// every command's options; "" registers all (no command, help, unknown words).
std::string CommandNamed(int argc, char** argv) {
  static constexpr std::string_view kValueFlags[] = {
      "-d", "--database", "--dir", "--config", "--log-level", "--history-table", "--lock-wait",
      "--schema-agreement-timeout",
      "--metrics-file", "--pushgateway"};
  static constexpr std::string_view kCommands[] = {
      "version", "doctor", "lint", "backfill", "verify", "copy", "serve", "recommend", "partition", "checkpoint", "init", "new", "up", "down",
      "redo", "goto", "status", "history", "validate", "plan", "baseline", "repair", "report",
      "complete", "abort", "health", "redis"};
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") return "";
    if (arg.size() > 1 && arg[0] == '-') {
      if (std::find(std::begin(kValueFlags), std::end(kValueFlags), arg) != std::end(kValueFlags)) {
        ++i;  // its value
      }
      continue;
    }
    if (arg == "migrate") return "up";
    if (arg == "rollback") return "down";
    if (arg == "recommendations") return "recommend";
    if (std::find(std::begin(kCommands), std::end(kCommands), arg) != std::end(kCommands)) {
      return std::string(arg);
    }
    return "";
  }
  return "";
}

// `only`: register just this command (CommandNamed); a usage error then sets
// *retry, and Main parses again with every command, so that errors, help and
// any command line the scan above misreads behave exactly as without it.
int Run(int argc, char** argv, const std::string& only, bool* retry) {
  auto want = [&only](std::string_view name) { return only.empty() || only == name; };
  CLI::App app{"ferry: change production databases safely", "ferry"};
  app.footer(kOverview);
  app.set_help_all_flag("--help-all", "help for every command");
  app.require_subcommand(0, 1);
  app.fallthrough();  // global flags also after the command
  GlobalFlags g;
  AddGlobalFlags(app, g);
  std::string history_table;
  std::string lock_wait;
  std::string schema_agreement_timeout;
  bool show_version = false;
  app.add_flag("-V,--version", show_version, "print the version and exit");

  CLI::App* version_cmd = app.add_subcommand("version", "print the version");
  version_cmd->footer("Example:\n  ferry version --json");

  std::string doctor_url;
  CLI::App* doctor = nullptr;
  if (want("doctor")) {
    doctor = app.add_subcommand(
        "doctor", "connect, print engine and version, and check the capabilities ferry relies on");
    doctor->add_option("url", doctor_url, "database URL (default: --database or DATABASE_URL)");
    doctor->footer(
        "Examples:\n"
        "  ferry doctor                                  # the configured database (./ferry.db)\n"
        "  ferry doctor postgres://app@127.0.0.1:5432/app\n"
        "  ferry doctor sqlite:data/app.db --json\n"
        "Exit 0 when connected (missing capabilities are listed with hints);\n"
        "5 unreachable, 6 authentication, 7 missing database, 8 bad URL.");
  }

  std::vector<std::string> lint_paths;
  std::string lint_format;
  CLI::App* lint = nullptr;
  if (want("lint")) {
    lint = app.add_subcommand(
        "lint", "check migrations for locks, rewrites, data loss and application breakage");
    lint->add_option("paths", lint_paths, "migration directories or files (default: --dir)");
    lint->add_option("--format", lint_format, "text (default), json or sarif");
    lint->footer(
        "Examples:\n"
        "  ferry lint                                   # the migrations directory\n"
        "  ferry lint migrations/20260101_add_index.sql --format json\n"
        "  ferry lint --format sarif > ferry-lint.sarif  # for code scanning\n"
        "  ferry lint --database postgres://app@db/app  # live table sizes; pending files only\n"
        "Ignore a finding with '-- ferry:lint-ignore RULE reason' above the statement, or\n"
        "'-- ferry:lint-ignore-file RULE reason'; turn rules off with [lint] disable in\n"
        "ferry.toml. Rules: docs/lint.md.\n"
        "Exit 0 when no error-level finding remains, 11 otherwise, 8 for unreadable files.");
  }

  BackfillArgs bargs;
  CLI::App* backfill = nullptr;
  if (want("backfill")) {
    backfill = app.add_subcommand(
        "backfill", "update a table's rows in small primary-key batches (resumable, online)");
    backfill->add_option("--table", bargs.table, "table to update (schema.table)")->required();
    backfill->add_option("--set", bargs.set, "assignments: \"b = a * 2, c = lower(d)\"")->required();
    backfill->add_option("--where", bargs.where,
                         "rows still to do, e.g. \"b IS NULL\"; after the run none may match");
    backfill->add_option("--done-check", bargs.done_check,
                         "integrity condition for 'not done' rows (default: --where)");
    backfill->add_option("--check", bargs.check, "SELECT that must return no rows at the end");
    backfill->add_option("--batch-rows", bargs.batch_rows, "rows per batch at the start (default 10000)");
    backfill->add_option("--max-batch-ms", bargs.max_batch,
                         "ceiling per batch; batches adapt to about half of it (default 200ms)");
    backfill->add_flag("--fixed-batch", bargs.fixed_batch, "keep --batch-rows, do not adapt");
    backfill->add_option("--sleep", bargs.sleep, "pause after each batch (default 0)");
    backfill->add_option("--workers", bargs.workers, "parallel workers on disjoint key ranges (default 1)");
    backfill->add_option("--by", bargs.by,
                         "walk the table by key ranges or heap page ranges: auto|key|ctid (default "
                         "auto: ctid for one worker on PostgreSQL 14+ with --where)")
        ->check(CLI::IsMember({"auto", "key", "ctid"}));
    backfill->add_option("--lock-timeout", bargs.lock_timeout, "per batch (default 2s)");
    backfill->add_option("--statement-timeout", bargs.statement_timeout, "per batch (default 30s)");
    backfill->add_option("--max-lag", bargs.max_lag,
                         "pause while a replica's replay lag exceeds this (default 10s; 0 = off)");
    backfill->add_option("--job-id", bargs.job_id, "job name in ferry_jobs (default: from table/set/where)");
    backfill->add_flag("--resume", bargs.resume, "require an unfinished job to resume");
    backfill->add_flag("--restart", bargs.restart, "discard an unfinished job's checkpoint");
    backfill->add_flag("--dry-run", bargs.dry_run, "validate and print the batch statement; change nothing");
    backfill->footer(
        "Examples:\n"
        "  ferry backfill --table users --set \"email_verified_v2 = email_verified\" \\\n"
        "      --where \"email_verified_v2 IS NULL\"\n"
        "  ferry backfill --table orders --set \"total_cents = round(total * 100)\" \\\n"
        "      --where \"total_cents IS NULL\" --workers 2 --max-batch-ms 100 --json\n"
        "  ferry backfill ... --check \"SELECT id FROM users WHERE email_verified IS DISTINCT FROM email_verified_v2\"\n"
        "Each batch is one short transaction over the next primary-key window; the last key\n"
        "is checkpointed in ferry_jobs, so after a crash or Ctrl-C the same command resumes.\n"
        "Exit 0 done and checked, 10 integrity check failed, 8 bad expression, 7 missing\n"
        "table or column, 9 no primary key or job conflict. Guide: docs/backfill.md.");
  }

  VerifyArgs vargs;
  CLI::App* verify = nullptr;
  if (want("verify")) {
    verify = app.add_subcommand(
        "verify", "compare tables in two databases by primary key: missing, extra, changed rows");
    AddTableSelection(verify, {&vargs.from, &vargs.to, &vargs.tables, &vargs.all, &vargs.where},
                      "source (reference) database URL (default: --database)",
                      "target database URL, checked against the source",
                      "SQL condition limiting the rows on both sides");
    verify->add_option("--job", vargs.job, "verify a copy job: start from its chunk ranges")
        ->option_text("JOB");
    verify->add_option("--max-report", vargs.max_report,
                       "list at most N differing rows (default 100; counts stay complete)")
        ->option_text("N");
    verify->add_option("--workers", vargs.workers, "connections per database (default 2)")
        ->option_text("N");
    verify->add_flag("--hash-in-db,!--no-hash-in-db", vargs.hash_in_db,
                     "hash rows inside the databases (default); --no-hash-in-db reads every row");
    verify->add_option("--leaf-rows", vargs.leaf_rows,
                       "ranges of at most N rows are compared row by row (default 256)")
        ->option_text("N");
    verify->add_option("--sample", vargs.sample_percent,
                       "with a CQL side: check PERCENT of the rows, each looked up by key")
        ->option_text("PERCENT");
    verify->footer(
        "Examples:\n"
        "  ferry verify --from postgres://app@db1/app --to postgres://app@db2/app --table users\n"
        "  ferry verify --from postgres://app@db1/app --to sqlite:export.db --all --json\n"
        "  ferry verify --from $SRC --to $DST --table orders --where \"created_at >= '2026-01-01'\"\n"
        "  ferry verify --from $SRC --to $DST --job copy-20260101   # ranges of a finished copy\n"
        "  ferry verify --from postgres://app@db1/chat --to cql://u:p@scylla1/chat --table messages\n"
        "  ferry verify --from $PG --to $CQL --table messages --sample 1   # during dual writes\n"
        "Each database computes a count and a hash per primary-key range; only ranges that\n"
        "differ are cut smaller, and only the last small ranges' rows travel. PostgreSQL and\n"
        "SQLite values compare by canonical text (docs/verify.md). With a CQL side (cql://)\n"
        "both tables are streamed (CQL by token ranges) and compared by key through bucket\n"
        "files, memory bounded; values compare under the CQL column's type.\n"
        "Exit 0 identical, 10 differences found, 7 missing table, 8 columns or keys differ,\n"
        "9 no primary key.");
  }

  CopyArgs cargs;
  CLI::App* copy = nullptr;
  if (want("copy")) {
    copy = app.add_subcommand(
        "copy", "copy tables between databases in resumable chunks (PostgreSQL, SQLite, to CQL)");
    AddTableSelection(copy, {&cargs.from, &cargs.to, &cargs.tables, &cargs.all, &cargs.where},
                      "source database URL (default: --database)",
                      "target database URL (holds the job's progress)",
                      "SQL condition on the source rows, e.g. a date range");
    copy->add_option("--workers", cargs.workers, "parallel chunk workers (default 2)")
        ->option_text("N");
    copy->add_option("--batch-rows", cargs.batch_rows, "rows per chunk (default 250000)")
        ->option_text("N");
    copy->add_option("--split", cargs.split,
                     "how tables are cut into chunks: auto (default: primary-key ranges, exact on "
                     "resume), key, or pages (PostgreSQL source: ctid page ranges, sequential "
                     "reads; see docs/copy.md)")
        ->option_text("auto|key|pages");
    copy->add_flag("--dry-run", cargs.dry_run,
                   "print the plan (tables, row estimates, chunks, DDL); change nothing");
    copy->add_flag("--create-tables", cargs.create_tables,
                   "create missing target tables from the source's columns (docs/copy.md)");
    copy->add_flag("--truncate", cargs.truncate, "empty non-empty target tables first");
    copy->add_flag("--append", cargs.append, "add to non-empty target tables");
    copy->add_flag("--restart", cargs.restart,
                   "start the job over: empty the tables it copied and forget its progress");
    copy->add_option("--job", cargs.job, "job name in ferry_jobs (default: from the tables)")
        ->option_text("NAME");
    copy->add_option("--lock-timeout", cargs.lock_timeout,
                     "longest wait for a target table's lock before TRUNCATE/CREATE (default 10s)")
        ->option_text("DURATION");
    copy->add_option("--status", cargs.status, "print a job's progress from --to's control tables")
        ->option_text("JOB");
    copy->add_option("--map", cargs.map,
                     "CQL target: [[copy.map]] entries (keyspace.table, partition key, clustering, "
                     "renamed/derived columns, ttl, write_timestamp; default: ferry.toml's)")
        ->option_text("FILE");
    copy->add_option("--control", cargs.control,
                     "CQL target: database holding the job's chunks and leases (PostgreSQL or "
                     "SQLite; default sqlite:.ferry/copy-control.db)")
        ->option_text("URL");
    copy->add_option("--max-rate", cargs.max_rate, "CQL target: at most this many rows per second")
        ->option_text("ROWS");
    copy->add_option("--in-flight", cargs.in_flight,
                     "CQL target: writes in flight per worker (default 128)")
        ->option_text("N");
    copy->add_flag("--allow-lossy", cargs.allow_lossy,
                   "CQL target: cut what CQL cannot hold (microseconds, netmasks, time zones "
                   "of time) instead of refusing the row");
    copy->footer(
        "Examples:\n"
        "  ferry copy --from postgres://app@db1/app --to postgres://app@db2/app --table messages\n"
        "  ferry copy --from $SRC --to $DST --all --create-tables --workers 4 --dry-run\n"
        "  ferry copy --from $SRC --to sqlite:archive.db --table messages --create-tables \\\n"
        "      --where \"created_at >= '2026-01-01' AND created_at < '2026-02-01'\" --json\n"
        "  ferry copy --to $DST --status copy:messages   # from any machine\n"
        "  ferry copy --from $SRC --to cql://cass:9042/chat --table messages --map chat.toml \\\n"
        "      --create-tables --workers 4 --max-rate 50000   # to Cassandra/ScyllaDB\n"
        "Each table is cut into primary-key ranges (ctid page ranges without a key); workers\n"
        "lease chunks from ferry_jobs/ferry_chunks on the target and commit each chunk's rows\n"
        "with its 'done' mark, so after kill -9 the same command resumes without duplicates.\n"
        "Exit 0 copied, 9 chunks failed or target not empty, 7 missing table, 8 bad input\n"
        "(columns, types, --where). To a CQL target rows are upserted with prepared INSERTs\n"
        "(many in flight, token-aware), the job lives on --control, and a mapping declares\n"
        "keys, derived columns (bucket = \"day(created_at)\"), TTL and USING TIMESTAMP.\n"
        "Guide, mapping format and type mapping: docs/copy.md.");
  }

  RedisArgs rargs;
  RedisApps redis_apps;
  if (want("redis")) {
    AddRedisCommands(app, rargs, redis_apps);
  }

  ServeArgs sargs;
  CLI::App* serve = nullptr;
  if (want("serve")) {
    serve = app.add_subcommand(
        "serve", "read-only HTTP service: dashboard, /metrics, /healthz, /readyz, /api/*");
    serve->add_option("--listen", sargs.listen, "address to listen on (default 127.0.0.1:9187)")
        ->option_text("HOST:PORT");
    serve->add_option("-d,--database", sargs.databases,
                      "database to watch (repeatable; default: DATABASE_URL)")
        ->option_text("URL");
    serve->add_option("--token", sargs.token,
                      "bearer token every path but /healthz requires (needed beyond loopback)")
        ->envname("FERRY_SERVE_TOKEN")
        ->option_text("TOKEN");
    serve->add_option("--ready-timeout", sargs.connect_bound,
                      "/readyz: a database must answer within this (default 2s)")
        ->option_text("DURATION");
    serve->footer(
        "Examples:\n"
        "  ferry serve --database postgres://app@db/app          # http://127.0.0.1:9187/\n"
        "  ferry serve --listen 0.0.0.0:9187 --token $TOKEN -d $DB1 -d sqlite:app.db\n"
        "Endpoints: / (dashboard), /healthz, /readyz, /metrics, /api/status, /api/history,\n"
        "/api/jobs, /api/lint (docs/openapi.yaml). Nothing is written to any database.\n"
        "Guide: docs/observability.md.");
  }

  RecommendArgs recargs;
  CLI::App* recommend = nullptr;
  if (want("recommend")) {
    recommend = app.add_subcommand(
        "recommend", "analyse a PostgreSQL database: ranked recommendations with the SQL to act");
    recommend->alias("recommendations");
    recommend->add_option("--int4-warn", recargs.int4_warn_ratio,
                          "flag int4 keys past this share of 2^31 (default 0.5)")
        ->option_text("RATIO");
    recommend->add_option("--matrix-size-gib", recargs.matrix_database_gib,
                          "decision matrix: database size threshold (default 500 GiB)")
        ->option_text("GIB");
    recommend->add_option("--matrix-commits", recargs.matrix_commits_per_second,
                          "decision matrix: commits per second threshold (default 10000)")
        ->option_text("N");
    recommend->add_option("--matrix-latency-ms", recargs.matrix_mean_statement_ms,
                          "decision matrix: mean statement time threshold (default 100 ms)")
        ->option_text("MS");
    recommend->footer(
        "Examples:\n"
        "  ferry recommend --database postgres://app@db/app\n"
        "  ferry recommendations --json | jq '.recommendations[] | select(.priority == \"critical\")'\n"
        "Checks int4 keys near exhaustion, tables without a primary key, unused and duplicate\n"
        "indexes, bloat, long transactions, partition candidates, failed or slow migrations,\n"
        "slow statements (pg_stat_statements) and seed 000's decision matrix. Read-only.");
  }

  PartitionArgs pargs;
  CLI::App* partition_status = nullptr;
  CLI::App* partition_maintain = nullptr;
  if (want("partition")) {
    CLI::App* part = app.add_subcommand(
        "partition", "keep the RANGE partitions declared in ferry.toml (docs/partitions.md)");
    part->require_subcommand(1);
    partition_status = part->add_subcommand(
        "status", "partitions with bounds, rows and size; gaps, default rows, missing, expired");
    partition_status->add_option("table", pargs.table, "only this declared table (schema.table)");
    partition_status->add_option("--now", pargs.now, "judge as if it were this date (UTC)")
        ->option_text("DATE");
    partition_status->footer(
        "Examples:\n"
        "  ferry partition status\n"
        "  ferry partition status public.messages --json\n"
        "Read-only. Tables and rules come from [[partitions]] in ferry.toml.");
    partition_maintain = part->add_subcommand(
        "maintain", "premake and attach future partitions, prune those past retention");
    partition_maintain->add_option("table", pargs.table, "only this declared table (schema.table)");
    partition_maintain->add_flag("--dry-run", pargs.dry_run, "print the exact SQL; change nothing");
    partition_maintain->add_flag("--force", pargs.force,
                                 "allow a retention that detaches every partition");
    partition_maintain->add_option("--now", pargs.now, "plan as if it were this date (UTC)")
        ->option_text("DATE");
    partition_maintain->footer(
        "Examples:\n"
        "  ferry partition maintain --dry-run\n"
        "  ferry partition maintain public.messages\n"
        "Idempotent; runs under ferry's migration lock (others wait), every DDL under\n"
        "lock_timeout with lock_retries; each action is recorded in 'ferry history'.\n"
        "Exit 0 done, 4 lock not obtained, 8 bad declaration, 9 retention refused or\n"
        "archive schema missing. Guide: docs/partitions.md.");
  }

  CheckpointArgs ckargs;
  CLI::App* checkpoint = want("checkpoint") ? AddCheckpointCommand(app, ckargs) : nullptr;

  MigrateArgs margs;
  std::vector<CLI::App*> migrate_cmds;
  auto command = [&](const char* name, const char* help, const char* examples) -> CLI::App* {
    if (!want(name)) return nullptr;
    CLI::App* c = app.add_subcommand(name, help);
    c->footer(std::string("Examples:\n") + examples);
    migrate_cmds.push_back(c);
    return c;
  };
  command("init", "create the migrations directory, ferry.toml and the history table",
          "  ferry init\n  ferry init --database postgres://app@127.0.0.1/app --dir db/migrations");
  if (CLI::App* new_cmd = command("new", "create the next migration file(s)",
                                  "  ferry new create_users\n  ferry new add_index --layout golang\n"
                                  "  ferry new backfill --style integer")) {
    new_cmd->add_option("name", margs.name, "what the migration does (letters, digits, _)")->required();
    new_cmd->add_option("--layout", margs.layout, "ferry (default), golang, diesel or flyway");
    new_cmd->add_option("--style", margs.style, "timestamp (default) or integer versions");
  }
  if (CLI::App* up = command("up", "apply pending migrations, each in its own transaction",
                             "  ferry up\n  ferry up --to 20260101120000 --dry-run\n"
                             "  DATABASE_URL=postgres://app@db/app ferry up --json\n"
                             "  ferry up --checkpoint --auto-rollback   # restore it if one fails")) {
    up->alias("migrate");
    up->add_option("--to", margs.target, "stop after this version");
    up->add_flag("--dry-run", margs.dry_run, "list what would run; change nothing");
    up->add_flag("--single-transaction", margs.single_transaction,
                 "all pending migrations in one transaction (all or nothing)");
    up->add_flag("--allow-future", margs.allow_future,
                 "run even if the database has versions newer than any file");
    up->add_flag("--out-of-order", margs.out_of_order,
                 "apply pending versions older than the newest applied one");
    up->add_option("--backup", margs.backup,
                   "first write the schema as CQL to this file (or a new file in this "
                   "directory); cql:// only");
    up->add_flag("--allow-unsafe", margs.allow_unsafe,
                 "apply despite error-level lint findings (recorded in the history note)");
    up->add_flag("--checkpoint", margs.checkpoint,
                 "first take a checkpoint of the database (docs/checkpoints.md)");
    up->add_flag("--auto-rollback", margs.auto_rollback,
                 "on failure restore that checkpoint, or without one run the downs of this run");
    up->add_option("--dir-checkpoints", margs.checkpoint_dir, "checkpoint folder")->option_text("DIR");
    up->add_option("--pg-bin", margs.pg_bin, "folder of pg_dump, pg_restore, psql")->option_text("DIR");
  }
  if (CLI::App* down = command("down", "roll back applied migrations with their down sections",
                               "  ferry down             # the newest one\n  ferry down --steps 3\n"
                               "  ferry down --to 1.0.0  # everything newer than 1.0.0")) {
    down->alias("rollback");
    down->add_option("--steps", margs.steps, "how many to roll back (default 1)")
        ->each([&](const std::string&) { margs.steps_given = true; });
    down->add_option("--to", margs.target, "roll back everything newer than this version");
    down->add_flag("--dry-run", margs.dry_run, "list what would be rolled back; change nothing");
  }
  if (CLI::App* redo = command("redo", "roll back the newest migrations, then apply them again",
                               "  ferry redo\n  ferry redo --steps 2")) {
    redo->add_option("--steps", margs.steps, "how many (default 1)");
  }
  if (CLI::App* goto_cmd = command("goto", "apply or roll back until this is the newest version",
                                   "  ferry goto 1.1.0")) {
    goto_cmd->add_option("version", margs.target, "target version")->required();
    goto_cmd->add_flag("--dry-run", margs.dry_run, "say what it would apply or roll back");
  }
  if (CLI::App* status = command("status", "show applied, pending, changed and missing migrations",
                                 "  ferry status\n  ferry status --exit-code   # 3 when pending or drift\n"
                                 "  ferry status --json")) {
    status->add_flag("--all", margs.all, "list every applied migration (default: the newest 10)");
    status->add_flag("--exit-code", margs.exit_code,
                     "exit 3 when migrations are pending, changed, missing or failed");
  }
  if (CLI::App* history = command("history", "list every apply, failure and rollback",
                                  "  ferry history\n  ferry history --limit 10 --json")) {
    history->add_option("--limit", margs.limit, "only the newest N rows");
  }
  if (CLI::App* validate = command(
          "validate", "check that files parse, applied checksums match and the schema is whole",
          "  ferry validate   # exit 3 when problems are found\n"
          "  ferry validate --engine postgres   # no database: the files by PostgreSQL's rules")) {
    validate->add_option("--engine", margs.engine,
                         "without a database: judge the files as postgres or sqlite (default: "
                         "engine in ferry.toml, else sqlite)")
        ->check(CLI::IsMember({"postgres", "sqlite"}));
    validate->add_flag("--exit-code", margs.exit_code,
                       "exit 3 on any problem, schema drift included (always on for validate)");
  }
  if (CLI::App* plan = command("plan", "print the exact SQL that up (or down) would run",
                               "  ferry plan\n  ferry plan --to 1.1.0\n  ferry plan --down --steps 2")) {
    plan->add_flag("--down", margs.down, "plan a rollback instead");
    plan->add_option("--steps", margs.steps, "with --down: how many (default 1)")
        ->each([&](const std::string&) { margs.steps_given = true; });
    plan->add_option("--to", margs.target, "up to (or down to) this version");
  }
  if (CLI::App* baseline = command("baseline", "mark an existing database as being at a version",
                                   "  ferry baseline 1.0.0 --description \"schema before ferry\"")) {
    baseline->add_option("version", margs.target, "the version the database is at")->required();
    baseline->add_option("--description", margs.description, "recorded in history");
  }
  if (CLI::App* repair = command("repair", "accept changed checksums and clear failed attempts",
                                 "  ferry repair --reason \"whitespace-only edit in 3_users.sql\"")) {
    repair->add_option("--reason", margs.reason, "why (recorded with your name)")->required();
  }
  if (CLI::App* report = command("report", "status, history and health in one document",
                                 "  ferry report --format json > migration-report.json\n"
                                 "  ferry report summary   # the same as --format summary")) {
    report->add_option("format", margs.format_word, "json or summary (the same as --format)");
    report->add_option("--format", margs.format, "json or summary (default)");
  }
  if (CLI::App* complete = command(
          "complete", "contract phase of expand changes: drop old columns and triggers, rename, NOT NULL",
          "  ferry status                 # lists changes 'expanded, awaiting complete'\n"
          "  ferry complete               # every change awaiting complete\n"
          "  ferry complete 20260101120000 --dry-run   # print the statements only\n"
          "Run it once no old application version is left. NOT NULL is added as CHECK ... NOT VALID,\n"
          "VALIDATE (writers continue), then SET NOT NULL; the rest is one short transaction\n"
          "under lock_timeout with retries. Guide: docs/online-changes.md.")) {
    complete->add_option("version", margs.target, "only this migration's change");
    complete->add_flag("--dry-run", margs.dry_run, "print the statements; change nothing");
  }
  if (CLI::App* abort_cmd = command(
          "abort", "undo the expand phase of the newest migration (drop triggers and new columns)",
          "  ferry abort                  # the newest migration, when its change is still open\n"
          "  ferry abort 20260101120000\n"
          "Writes made through the new columns during the window are already in the old ones\n"
          "(the trigger's down expressions); the migration is rolled back like 'ferry down'.\n"
          "Refused, before anything changes, when a replaced column has no down expression.")) {
    abort_cmd->add_option("version", margs.target, "the migration (default: the newest applied)");
    abort_cmd->add_flag("--discard-new-writes", margs.discard_new_writes,
                        "drop new columns even without a down expression (their writes are lost)");
  }
  if (CLI::App* health = command(
          "health", "check connection, lock, failed or dead migrations, compatibility, schema",
          "  ferry health   # exit 0 healthy, 9 unhealthy (schema drift included)")) {
    health->add_flag("--exit-code", margs.exit_code,
                     "exit 9 when unhealthy, schema drift included (always on for health)");
  }
  app.add_option("--history-table", history_table, "history table name (default ferry_schema_history)")
      ->option_text("NAME");
  app.add_option("--lock-wait", lock_wait, "how long to wait for the migration lock (default 60s)")
      ->option_text("DURATION");
  app.add_option("--schema-agreement-timeout", schema_agreement_timeout,
                 "CQL: how long to wait after each schema change until every node agrees "
                 "(default 60s)")
      ->option_text("DURATION");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (!only.empty()) {
      *retry = true;
      return kExitUsage;
    }
    std::fprintf(stderr, "ferry: usage error: %s\nRun 'ferry --help' for the commands.\n",
                 e.what());
    return kExitUsage;
  }

  if (show_version || version_cmd->parsed()) {
    if (g.json) {
      std::printf("{\"version\":\"%s\"}\n", FERRY_VERSION);
    } else {
      std::printf("ferry %s\n", FERRY_VERSION);
    }
    return kExitOk;
  }
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stdout);
    return kExitUsage;
  }

  std::map<std::string, std::string> flags;
  if (!g.database.empty()) flags["database"] = g.database;
  if (!g.dir.empty()) flags["dir"] = g.dir;
  if (!g.log_level.empty()) flags["log_level"] = g.log_level;
  if (!history_table.empty()) flags["history_table"] = history_table;
  if (!lock_wait.empty()) flags["lock_wait"] = lock_wait;
  if (!schema_agreement_timeout.empty()) {
    flags["schema_agreement_timeout"] = schema_agreement_timeout;
  }
  std::optional<std::string> config_path;
  bool explicit_config = !g.config_path.empty();
  if (explicit_config) {
    config_path = g.config_path;
  } else if (const char* env = std::getenv("FERRY_CONFIG"); env != nullptr && *env != '\0') {
    config_path = env;
    explicit_config = true;
  } else {
    config_path = "ferry.toml";
  }
  auto config = Config::Load(config_path, explicit_config, &std::getenv, flags);
  if (!config.ok()) return ReportError(config.status(), g.json);

  LogLevel level = LogLevel::kWarn;
  if (!ParseLogLevel(config->Get("log_level"), &level)) {
    return ReportError(Status(StatusCode::kInvalidArgument,
                              "log level '" + config->Get("log_level") +
                                  "' is unknown: use debug, info, warn, error or off"),
                       g.json);
  }
  if (g.verbose == 1) level = LogLevel::kInfo;
  if (g.verbose >= 2) level = LogLevel::kDebug;
  SetLogLevel(level);

  EventBus bus;
  RunMetrics metrics;
  if (Status s = metrics.Start(g.metrics_file, g.pushgateway, bus); !s.ok()) {
    return ReportError(s, g.json);
  }
  Context ctx{std::move(*config), g.json, g.quiet, &bus};
  auto dispatch = [&]() -> int {
    if (lint != nullptr && lint->parsed()) return RunLint(ctx, lint_paths, lint_format);
    if (backfill != nullptr && backfill->parsed()) return RunBackfillCommand(ctx, bargs);
    if (verify != nullptr && verify->parsed()) return RunVerify(ctx, vargs);
    if (copy != nullptr && copy->parsed()) return RunCopyCommand(ctx, cargs);
    if (serve != nullptr && serve->parsed()) return RunServeCommand(ctx, sargs);
    if (recommend != nullptr && recommend->parsed()) return RunRecommendCommand(ctx, recargs);
    if (checkpoint != nullptr && checkpoint->parsed()) return RunCheckpointCommand(ctx, ckargs);
    if (partition_status != nullptr && partition_status->parsed()) {
      return RunPartitionStatus(ctx, pargs);
    }
    if (partition_maintain != nullptr && partition_maintain->parsed()) {
      return RunPartitionMaintain(ctx, pargs);
    }
    auto parsed = [](const CLI::App* c) { return c != nullptr && c->parsed(); };
    if (parsed(redis_apps.copy)) return RunRedisCopy(ctx, rargs);
    if (parsed(redis_apps.verify)) return RunRedisVerify(ctx, rargs);
    if (parsed(redis_apps.status)) return RunRedisClusterStatus(ctx, rargs);
    if (parsed(redis_apps.move_slots)) return RunRedisMoveSlots(ctx, rargs);
    if (parsed(redis_apps.add_node)) return RunRedisAddNode(ctx, rargs);
    if (parsed(redis_apps.rebalance)) return RunRedisRebalance(ctx, rargs);
    if (doctor != nullptr && doctor->parsed()) {
      return RunDoctor(ctx, doctor_url.empty() ? ctx.config.Get("database") : doctor_url);
    }
    for (CLI::App* c : migrate_cmds) {
      if (c->parsed()) return RunMigrateCommand(ctx, c->get_name(), margs);
    }
    return ReportError(Status(StatusCode::kInternal, "command parsed but not dispatched"), g.json);
  };
  return metrics.Finish(app.get_subcommands()[0]->get_name(), dispatch());
}

}  // namespace

int Main(int argc, char** argv) {
  OutputBatcher batch_output;
  bool retry = false;
  int code = Run(argc, argv, CommandNamed(argc, argv), &retry);
  if (retry) code = Run(argc, argv, "", &retry);
  return code;
}

}  // namespace ferry::cli

int main(int argc, char** argv) {
  try {
    // First of all: no password stays visible to `ps` (cli/argv_secrets.h).
    std::vector<std::string> args = ferry::cli::TakeArgsHidingSecrets(argc, argv);
    std::vector<char*> copies;
    for (std::string& a : args) copies.push_back(a.data());
    copies.push_back(nullptr);
    return ferry::cli::Main(argc, copies.data());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ferry: internal error: %s (please report this)\n", e.what());
    return ferry::cli::kExitInternal;
  }
}
