// `ferry redis copy|verify` and `ferry redis cluster status|move-slots|
// add-node|rebalance`: flags and the runner (cli/redis_commands.cc and
// cli/redis_cluster_commands.cc hold the Run* functions).
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>

#include "cli/command_table.h"
#include "cli/context.h"
#include "cli/redis_command.h"

namespace ferry::cli {
namespace {

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
      "  ferry redis copy --from redis://old:6379/0 --to 'rediss://:$PW@new:6380/0?tls_ca=ca.crt'\n"
      "rediss:// is TLS (certificate verified; tls_ca=, tls_cert=/tls_key=, tls_insecure=1).\n"
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

}  // namespace

Runner AddRedisFamily(CLI::App& app, const Want& want) {
  if (!want("redis")) return nullptr;
  auto args = std::make_shared<RedisArgs>();
  auto apps = std::make_shared<RedisApps>();
  AddRedisCommands(app, *args, *apps);
  return [args, apps](const Context& ctx) -> std::optional<int> {
    if (apps->copy->parsed()) return RunRedisCopy(ctx, *args);
    if (apps->verify->parsed()) return RunRedisVerify(ctx, *args);
    if (apps->status->parsed()) return RunRedisClusterStatus(ctx, *args);
    if (apps->move_slots->parsed()) return RunRedisMoveSlots(ctx, *args);
    if (apps->add_node->parsed()) return RunRedisAddNode(ctx, *args);
    if (apps->rebalance->parsed()) return RunRedisRebalance(ctx, *args);
    return std::nullopt;
  };
}

}  // namespace ferry::cli
