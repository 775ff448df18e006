// ferry redis copy / verify and the Redis part of doctor: flags in, one
// library call (move/redis), text or --json out.
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "cli/redis_command.h"
#include "core/url.h"
#include "move/redis/redis_cluster_ops.h"
#include "move/redis/redis_copy.h"
#include "move/redis/redis_pair.h"
#include "move/redis/redis_verify.h"

namespace ferry::cli {
namespace {

std::string Bytes(int64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  if (n < 1024 * 1024) return fmt::format("{:.1f} KB", static_cast<double>(n) / 1024);
  if (n < 1024LL * 1024 * 1024) return fmt::format("{:.1f} MB", static_cast<double>(n) / 1048576);
  return fmt::format("{:.2f} GB", static_cast<double>(n) / 1073741824);
}

std::string Redact(const std::string& url_text) {
  auto url = Url::Parse(url_text);
  return url.ok() ? url->Redacted() : RedactSecrets(url_text);
}

nlohmann::json ProgressJson(const redis::RedisCopyProgress& p) {
  return {{"scanned", p.scanned}, {"copied", p.copied},   {"skipped", p.skipped},
          {"expired", p.expired}, {"failed", p.failed},   {"total", p.total},
          {"nodes", p.nodes},     {"nodes_done", p.nodes_done}, {"seconds", p.seconds}};
}

// "12345 of ~100000 keys (12%), 45000 keys/s, ETA 2s" on stderr.
void PrintProgress(const redis::RedisCopyProgress& p) {
  double rate = p.seconds > 0 ? static_cast<double>(p.scanned) / p.seconds : 0;
  int64_t left = p.total > p.scanned ? p.total - p.scanned : 0;
  int pct = p.total > 0 ? static_cast<int>(std::min<int64_t>(100, 100 * p.scanned / p.total)) : 0;
  if (rate > 0 || left == 0) {
    std::fprintf(stderr, "redis copy: %lld of ~%lld keys (%d%%), %.0f keys/s, ETA %.0fs\n",
                 static_cast<long long>(p.scanned), static_cast<long long>(p.total), pct, rate,
                 rate > 0 ? static_cast<double>(left) / rate : 0.0);
  } else {
    std::fprintf(stderr, "redis copy: %lld of ~%lld keys (%d%%), ETA unknown\n",
                 static_cast<long long>(p.scanned), static_cast<long long>(p.total), pct);
  }
}

int RenderCopy(const Context& ctx, const RedisArgs& args, const redis::RedisCopyReport& r) {
  if (ctx.json) {
    nlohmann::json out = {{"ok", r.counts.failed == 0},
                          {"event", r.dry_run ? "plan" : "done"},
                          {"dry_run", r.dry_run},
                          {"from", Redact(args.from)},
                          {"to", Redact(args.to)},
                          {"job", r.job},
                          {"state", args.state},
                          {"resumed", r.resumed},
                          {"source_cluster", r.source_cluster},
                          {"target_cluster", r.target_cluster},
                          {"source_masters", r.source_masters},
                          {"target_masters", r.target_masters},
                          {"source_keys", r.counts.total},
                          {"source_dataset_bytes", r.source_dataset_bytes},
                          {"target_used_bytes", r.target_used_bytes},
                          {"target_max_bytes", r.target_max_bytes},
                          {"counts", ProgressJson(r.counts)},
                          {"memory_slowed_pages", r.memory_slowed_pages},
                          {"prepared_target", r.prepared},
                          {"followed", r.followed},
                          {"notifications_enabled", r.notifications_enabled},
                          {"errors", r.errors}};
    PrintJson(out);
  } else if (r.dry_run) {
    std::string headroom =
        r.target_max_bytes == 0
            ? "no maxmemory limit"
            : fmt::format("{} free of {}", Bytes(r.target_max_bytes - r.target_used_bytes),
                          Bytes(r.target_max_bytes));
    std::printf(
        "plan: copy from %s (%s, %d master%s) to %s (%s, %d master%s)\n"
        "  source keys      %lld (DBSIZE; --match/--type copy a subset)\n"
        "  memory estimate  %s (source used_memory_dataset)\n"
        "  target memory    %s used, %s\n"
        "nothing was written (dry run)\n",
        Redact(args.from).c_str(), r.source_cluster ? "cluster" : "standalone", r.source_masters,
        r.source_masters == 1 ? "" : "s", Redact(args.to).c_str(),
        r.target_cluster ? "cluster" : "standalone", r.target_masters,
        r.target_masters == 1 ? "" : "s", static_cast<long long>(r.counts.total),
        Bytes(r.source_dataset_bytes).c_str(), Bytes(r.target_used_bytes).c_str(),
        headroom.c_str());
  } else {
    const auto& c = r.counts;
    std::printf(
        "copied %lld keys from %s to %s in %.1fs%s\n"
        "  scanned %lld, skipped (already on target) %lld, expired or deleted in flight %lld, "
        "failed %lld\n"
        "  state %s (job %s)\n",
        static_cast<long long>(c.copied), Redact(args.from).c_str(), Redact(args.to).c_str(),
        c.seconds, r.resumed ? " (resumed)" : "", static_cast<long long>(c.scanned),
        static_cast<long long>(c.skipped), static_cast<long long>(c.expired),
        static_cast<long long>(c.failed), args.state.c_str(), r.job.c_str());
    if (r.memory_slowed_pages > 0) {
      std::printf("  slowed %lld pages: a target master was near its maxmemory\n",
                  static_cast<long long>(r.memory_slowed_pages));
    }
    if (r.followed) {
      std::printf("  followed the source until stopped: %lld keys copied again, %lld deleted%s\n",
                  static_cast<long long>(c.followed), static_cast<long long>(c.deleted),
                  r.notifications_enabled.empty()
                      ? ""
                      : "; keyspace notifications put back as they were");
    }
    for (const std::string& p : r.prepared) {
      std::printf("  --prepare-target: set and put back %s\n", p.c_str());
    }
    for (const std::string& e : r.errors) std::printf("  error: %s\n", RedactSecrets(e).c_str());
  }
  return r.counts.failed == 0 ? kExitOk : kExitFailure;
}

void PrintFollow(const Context& ctx, const RedisProgress& p) {
  if (ctx.json) {
    PrintJson({{"event", "follow"}, {"followed", p.followed}, {"deleted", p.deleted},
               {"lag", p.lag}, {"failed", p.failed}, {"seconds", p.seconds}});
  } else {
    std::fprintf(stderr,
                 "following: %lld keys copied again, %lld deleted, lag %lld keys "
                 "(Ctrl-C or SIGTERM stops)\n",
                 static_cast<long long>(p.followed), static_cast<long long>(p.deleted),
                 static_cast<long long>(p.lag));
  }
}

std::atomic<bool> g_follow_stop{false};
void OnFollowSignal(int) { g_follow_stop = true; }

}  // namespace

int RunRedisCopy(const Context& ctx, const RedisArgs& args) {
  redis::RedisCopyOptions o;
  o.from = args.from;
  o.to = args.to;
  o.match = args.match;
  o.type = args.type;
  o.skip_existing = args.skip_existing;
  o.workers = args.workers;
  o.max_keys_per_sec = args.max_keys_per_sec;
  o.scan_count = args.scan_count;
  o.big_key_bytes = args.big_key_bytes;
  o.dry_run = args.dry_run;
  o.restart = args.restart;
  o.state_path = args.state;
  o.memory.slow_at = args.memory_slow_percent / 100;
  o.memory.stop_at = args.memory_stop_percent / 100;
  o.prepare_target = args.prepare_target;
  o.follow = args.follow;
  if (args.follow) {
    o.stop = &g_follow_stop;
    std::signal(SIGINT, OnFollowSignal);
    std::signal(SIGTERM, OnFollowSignal);
  }
  o.bus = ctx.bus;
  std::optional<ScopedSubscription> printer;
  if (!ctx.quiet && ctx.bus != nullptr) {
    printer.emplace(*ctx.bus, [&ctx](const Event& e) {
      if (e.type == "redis_follow_progress" && e.redis) {
        PrintFollow(ctx, *e.redis);
        return;
      }
      if (e.type != "redis_copy_progress" || !e.redis) return;
      if (ctx.json) {
        nlohmann::json j = ProgressJson(*e.redis);
        j["event"] = "progress";
        PrintJson(j);
      } else {
        PrintProgress(*e.redis);
      }
    });
  }
  auto report = redis::RedisCopy(o);
  if (!report.ok()) return ReportError(report.status(), ctx.json);
  return RenderCopy(ctx, args, *report);
}

int RunRedisVerify(const Context& ctx, const RedisArgs& args) {
  redis::RedisVerifyOptions o;
  o.from = args.from;
  o.to = args.to;
  o.match = args.match;
  o.type = args.type;
  o.sample_percent = args.sample;
  o.ttl_tolerance_ms = args.ttl_tolerance_ms;
  o.max_report = args.max_report;
  o.scan_count = args.scan_count;
  o.bus = ctx.bus;
  auto r = redis::RedisVerify(o);
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  if (ctx.json) {
    nlohmann::json diffs = nlohmann::json::array();
    for (const auto& d : r->differences) {
      diffs.push_back({{"kind", std::string(redis::RedisDifferenceKindName(d.kind))},
                       {"key", d.key},
                       {"detail", d.detail}});
    }
    PrintJson({{"ok", true},
               {"identical", r->identical()},
               {"from", Redact(args.from)},
               {"to", Redact(args.to)},
               {"checked", r->checked},
               {"missing", r->missing},
               {"extra", r->extra},
               {"changed", r->changed},
               {"sampled", r->sampled},
               {"same_version", r->same_version},
               {"compared_by_dump", r->compared_by_dump},
               {"compared_by_digest", r->compared_by_digest},
               {"seconds", r->seconds},
               {"differences", diffs}});
  } else {
    std::string out = fmt::format(
        "{}: {} keys checked{} in {:.1f}s: {} missing, {} extra, {} changed\n",
        r->identical() ? "identical" : "DIFFERENT", r->checked,
        r->sampled ? fmt::format(" ({}% sample; extra keys not looked for)", args.sample) : "",
        r->seconds, r->missing, r->extra, r->changed);
    for (const auto& d : r->differences) {
      out += fmt::format("  {:<8} {:?}  {}\n", redis::RedisDifferenceKindName(d.kind), d.key,
                         d.detail);
    }
    int64_t total = r->missing + r->extra + r->changed;
    if (total > static_cast<int64_t>(r->differences.size())) {
      out += fmt::format("  ... {} more (--max-report)\n",
                         total - static_cast<int64_t>(r->differences.size()));
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return r->identical() ? kExitOk : kExitDifferences;
}

int RunRedisClusterStatus(const Context& ctx, const RedisArgs& args) {
  auto r = redis::ClusterStatus(args.cluster_url);
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  if (ctx.json) {
    nlohmann::json masters = nlohmann::json::array();
    for (const auto& m : r->masters) {
      nlohmann::json ranges = nlohmann::json::array();
      for (auto [a, b] : m.ranges) ranges.push_back({a, b});
      masters.push_back({{"id", m.id}, {"address", m.address}, {"flags", m.flags},
                         {"slots", m.slots}, {"ranges", ranges}, {"keys", m.keys},
                         {"replicas", m.replicas}, {"migrating", m.migrating},
                         {"importing", m.importing}});
    }
    PrintJson({{"ok", true}, {"state", r->state}, {"slots_assigned", r->slots_assigned},
               {"migrating_slots", r->migrating_slots}, {"masters", masters}});
    return kExitOk;
  }
  std::string out = fmt::format("cluster {}: state {}, {}/{} slots assigned, {} slot{} migrating\n",
                                Redact(args.cluster_url), r->state, r->slots_assigned,
                                redis::kSlotCount, r->migrating_slots,
                                r->migrating_slots == 1 ? "" : "s");
  for (const auto& m : r->masters) {
    std::string ranges;
    for (auto [a, b] : m.ranges) {
      ranges += (ranges.empty() ? "" : ",") + (a == b ? std::to_string(a) : fmt::format("{}-{}", a, b));
    }
    out += fmt::format("  {} {:<21} slots {:>5} ({:>5.1f}%)  keys {:<9} replicas {}  {}\n",
                       m.id.substr(0, 8), m.address, m.slots, 100.0 * m.slots / redis::kSlotCount,
                       m.keys, m.replicas, ranges);
    for (const auto& s : m.migrating) out += fmt::format("      migrating {}\n", s);
    for (const auto& s : m.importing) out += fmt::format("      importing {}\n", s);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

int RunRedisMoveSlots(const Context& ctx, const RedisArgs& args) {
  redis::MoveSlotsOptions o;
  o.url = args.cluster_url;
  o.from = args.node_from;
  o.to = args.node_to;
  o.slots = args.slots;
  o.slots_per_round = args.slots_per_round;
  o.keys_per_migrate = args.keys_per_migrate;
  o.state_path = args.state;
  o.bus = ctx.bus;
  std::optional<ScopedSubscription> printer;
  if (!ctx.quiet && ctx.bus != nullptr) {
    printer.emplace(*ctx.bus, [&ctx](const Event& e) {
      if (e.type != "redis_move_progress" || !e.redis) return;
      const RedisProgress& p = *e.redis;
      if (ctx.json) {
        PrintJson({{"event", "progress"}, {"slots_done", p.slots_done}, {"slots", p.slots},
                   {"keys", p.copied}});
      } else {
        std::fprintf(stderr, "move-slots: %d of %d slots, %lld keys\n", p.slots_done, p.slots,
                     static_cast<long long>(p.copied));
      }
    });
  }
  auto r = redis::MoveSlots(o);
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true}, {"event", "done"}, {"from", r->from_address}, {"to", r->to_address},
               {"slots_moved", r->slots_moved},
               {"slots_finished_from_before", r->slots_finished_from_before},
               {"keys_moved", r->keys_moved}, {"seconds", r->seconds}});
  } else {
    std::printf("moved %d slots (%lld keys) from %s to %s in %.1fs%s\n", r->slots_moved,
                static_cast<long long>(r->keys_moved), r->from_address.c_str(),
                r->to_address.c_str(), r->seconds,
                r->slots_finished_from_before > 0
                    ? fmt::format("; finished {} slots a killed run left half moved",
                                  r->slots_finished_from_before).c_str()
                    : "");
  }
  return kExitOk;
}

int RunRedisDoctor(const Context& ctx, const std::string& url_text) {
  auto side = redis::OpenRedisSide(url_text, "database");
  if (!side.ok()) return ReportError(side.status(), ctx.json);
  const redis::RedisClient& c = *side->client;
  std::string version = side->masters.empty() ? "" : side->masters.front().version;
  std::string role = side->masters.empty() ? "" : side->masters.front().role;
  std::string mode = c.cluster() ? fmt::format("cluster ({} masters, {} nodes)", c.masters().size(),
                                               c.slot_map().nodes().size())
                                 : fmt::format("standalone ({})", role == "slave" ? "replica" : role);
  int assigned = redis::kSlotCount - (c.cluster() ? c.slot_map().UnassignedSlots() : redis::kSlotCount);
  std::string transport = "plain";
  if (!c.masters().empty()) {
    auto node = side->client->Node(c.masters().front());
    if (node.ok()) transport = (*node)->transport();
  }
  if (ctx.json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& f : side->masters) {
      nodes.push_back({{"address", f.address}, {"role", f.role}, {"version", f.version},
                       {"keys", f.keys}, {"used_memory", f.used_memory},
                       {"maxmemory", f.maxmemory}});
    }
    nlohmann::json out = {{"ok", true},          {"database", Redact(url_text)},
                          {"engine", "redis"},   {"version", version},
                          {"mode", c.cluster() ? "cluster" : "standalone"},
                          {"role", role},        {"keys", side->TotalKeys()},
                          {"transport", transport}, {"masters", nodes}};
    if (c.cluster()) out["cluster"] = {{"state", "ok"}, {"slots_assigned", assigned}};
    PrintJson(out);
    return kExitOk;
  }
  std::string out = fmt::format(
      "database  {}\nengine    redis {}\nmode      {}\ntransport {}\nkeys      {}\n",
      Redact(url_text), version, mode, transport, side->TotalKeys());
  if (c.cluster()) out += fmt::format("cluster   state ok, {}/{} slots assigned\n", assigned, redis::kSlotCount);
  for (const auto& f : side->masters) {
    out += fmt::format("  {:<22} {:<7} keys {:<10} memory {} of {}\n", f.address, f.role, f.keys,
                       Bytes(f.used_memory),
                       f.maxmemory == 0 ? std::string("no limit") : Bytes(f.maxmemory));
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

}  // namespace ferry::cli
