#include "move/redis/redis_copy.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include "core/hash.h"
#include "core/url.h"
#include "move/redis/redis_checkpoint.h"
#include "move/redis/redis_copy_by_type.h"
#include "move/redis/redis_follow.h"
#include "move/redis/redis_pair.h"

namespace ferry::redis {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Counts shared by the workers, read by the progress loop.
struct Shared {
  std::atomic<int64_t> scanned{0}, copied{0}, skipped{0}, expired{0}, failed{0};
  std::atomic<int> nodes_done{0};
  std::atomic<size_t> next_node{0};
  std::mutex mu;
  Status first_error;              // a worker's fatal error
  std::vector<std::string> errors;  // per-key errors (first few)
  bool resumed = false;

  void AddKeyError(std::string e) {
    std::lock_guard lock(mu);
    if (errors.size() < 20) errors.push_back(std::move(e));
  }
  void Fail(Status s) {
    std::lock_guard lock(mu);
    if (first_error.ok()) first_error = std::move(s);
  }
  bool stopped() {
    std::lock_guard lock(mu);
    return !first_error.ok();
  }
};

// Paces pages to at most `per_sec` keys a second overall (per worker share).
class Pacer {
 public:
  explicit Pacer(double per_sec) : per_sec_(per_sec), start_(Clock::now()) {}
  void Took(int64_t keys) {
    if (per_sec_ <= 0) return;
    done_ += keys;
    auto due = start_ + std::chrono::duration<double>(static_cast<double>(done_) / per_sec_);
    std::this_thread::sleep_until(due);
  }

 private:
  double per_sec_;
  Clock::time_point start_;
  int64_t done_ = 0;
};

struct Worker {
  const RedisCopyOptions& options;
  const std::string& job;
  CheckpointStore& store;
  Shared& shared;
  MemoryGuard& guard;
  bool use_expiretime;  // the source has PEXPIRETIME (Redis 7)

  Status CopyNode(RedisClient& source, RedisClient& target, const ClusterNode& master);
  Status CopyPage(RedisNode& src, RedisClient& target, const std::vector<std::string>& keys,
                  NodeCheckpoint& cp);
};

Status Worker::CopyPage(RedisNode& src, RedisClient& target, const std::vector<std::string>& keys,
                        NodeCheckpoint& cp) {
  std::vector<Command> reads;
  reads.reserve(keys.size() * 2);
  for (const std::string& k : keys) {
    reads.push_back({"DUMP", k});
    reads.push_back({use_expiretime ? "PEXPIRETIME" : "PTTL", k});
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> got, src.Pipeline(reads));
  int64_t now = NowUnixMs();
  std::vector<Command> writes;
  std::vector<size_t> which;
  std::vector<std::pair<size_t, int64_t>> by_type;  // key index, absolute expiry
  int64_t expired = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    RedisReply& dump = got[2 * i];
    const RedisReply& ttl = got[2 * i + 1];
    if (dump.is_error()) return ReplyError(dump, "DUMP", src.address());
    if (dump.is_nil() || ttl.integer == -2) {  // deleted or expired since SCAN
      ++expired;
      continue;
    }
    int64_t abs_ms = 0;  // 0: no expiry
    if (ttl.integer >= 0) abs_ms = use_expiretime ? ttl.integer : now + ttl.integer;
    if (ttl.integer >= 0 && abs_ms <= now) {
      ++expired;
      continue;
    }
    if (static_cast<int64_t>(dump.str.size()) > options.big_key_bytes) {
      by_type.emplace_back(i, abs_ms);  // too big for one RESTORE
      continue;
    }
    Command restore{"RESTORE", keys[i], std::to_string(abs_ms), std::move(dump.str)};
    if (abs_ms != 0) restore.push_back("ABSTTL");
    if (!options.skip_existing) restore.push_back("REPLACE");
    writes.push_back(std::move(restore));
    which.push_back(i);
  }
  int64_t copied = 0, skipped = 0, failed = 0;
  if (!writes.empty() || !by_type.empty()) FERRY_RETURN_IF_ERROR(guard.BeforePage(target));
  if (!writes.empty()) {
    FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> done, target.Pipeline(writes));
    for (size_t j = 0; j < done.size(); ++j) {
      if (!done[j].is_error()) {
        ++copied;
      } else if (done[j].ErrorPrefix() == "BUSYKEY" && options.skip_existing) {
        ++skipped;
      } else if (done[j].str.find("DUMP payload version or checksum are wrong") !=
                 std::string::npos) {
        // The target's Redis cannot read this RDB version: copy by type.
        by_type.emplace_back(
            which[j], writes[j].size() > 4 && writes[j][4] == "ABSTTL" ? std::stoll(writes[j][2]) : 0);
      } else if (done[j].ErrorPrefix() == "NOAUTH" || done[j].ErrorPrefix() == "NOPERM" ||
                 done[j].ErrorPrefix() == "READONLY" || done[j].ErrorPrefix() == "OOM") {
        return ReplyError(done[j], "RESTORE", target.redacted_url());
      } else {
        ++failed;
        shared.AddKeyError(fmt::format("key #{} of a page from {}: {}", which[j], src.address(),
                                       done[j].str));
      }
    }
  }
  for (const auto& [i, abs_ms] : by_type) {
    ByTypeCopy c{src, target, abs_ms, options.skip_existing};
    auto wrote = CopyKeyByType(c, keys[i]);
    if (!wrote.ok()) {
      ++failed;
      shared.AddKeyError(fmt::format("key #{} of a page from {} (copied by type): {}", i,
                                     src.address(), wrote.status().message()));
    } else if (*wrote) {
      ++copied;
    } else {
      ++(options.skip_existing ? skipped : expired);
    }
  }
  cp.scanned += static_cast<int64_t>(keys.size());
  cp.copied += copied;
  cp.skipped += skipped;
  cp.expired += expired;
  cp.failed += failed;
  shared.scanned += static_cast<int64_t>(keys.size());
  shared.copied += copied;
  shared.skipped += skipped;
  shared.expired += expired;
  shared.failed += failed;
  return Status::Ok();
}

Status Worker::CopyNode(RedisClient& source, RedisClient& target, const ClusterNode& master) {
  FERRY_ASSIGN_OR_RETURN(NodeCheckpoint cp, store.Load(job, master.address()));
  if (cp.done) return Status::Ok();
  if (cp.found) {
    std::lock_guard lock(shared.mu);
    shared.resumed = true;
  }
  FERRY_ASSIGN_OR_RETURN(RedisNode * src, source.Node(master));
  double share = options.max_keys_per_sec > 0
                     ? static_cast<double>(options.max_keys_per_sec) /
                           std::max(1, std::min<int>(options.workers,
                                                     static_cast<int>(source.masters().size())))
                     : 0;
  Pacer pacer(share);
  do {
    if (shared.stopped()) return Status::Ok();
    Command scan{"SCAN", cp.cursor, "COUNT", std::to_string(options.scan_count)};
    if (!options.match.empty()) scan.insert(scan.end(), {"MATCH", options.match});
    if (!options.type.empty()) scan.insert(scan.end(), {"TYPE", options.type});
    FERRY_ASSIGN_OR_RETURN(RedisReply page, src->RunOk(scan));
    if (page.elements.size() != 2) {
      return Status(StatusCode::kInternal, "SCAN reply is not [cursor, keys]");
    }
    std::vector<std::string> keys;
    keys.reserve(page.elements[1].elements.size());
    for (RedisReply& k : page.elements[1].elements) keys.push_back(std::move(k.str));
    if (!keys.empty()) FERRY_RETURN_IF_ERROR(CopyPage(*src, target, keys, cp));
    cp.cursor = page.elements[0].str;
    cp.done = cp.cursor == "0";
    FERRY_RETURN_IF_ERROR(store.Save(job, master.address(), cp));
    pacer.Took(static_cast<int64_t>(keys.size()));
  } while (!cp.done);
  ++shared.nodes_done;
  return Status::Ok();
}

Status CheckTargetMemory(const RedisPair& pair, const RedisCopyOptions& options) {
  int64_t max = 0, used = 0;
  for (const NodeFacts& t : pair.target.masters) {
    if (t.maxmemory == 0) return Status::Ok();  // some master has no limit: cannot judge
    max += t.maxmemory;
    used += t.used_memory;
  }
  if (!options.match.empty() || !options.type.empty()) return Status::Ok();  // a subset
  int64_t need = pair.source.TotalDataset();
  if (used + need > max) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the target has too little memory: {} bytes used + about {} to "
                              "copy > maxmemory {}; nothing was written",
                              used, need, max))
        .With("hint", "raise maxmemory on the target, or copy a subset with --match/--type");
  }
  return Status::Ok();
}

void FillReport(const RedisPair& pair, RedisCopyReport& report) {
  report.source_cluster = pair.source.client->cluster();
  report.target_cluster = pair.target.client->cluster();
  report.source_masters = static_cast<int>(pair.source.masters.size());
  report.target_masters = static_cast<int>(pair.target.masters.size());
  report.source_dataset_bytes = pair.source.TotalDataset();
  report.counts.total = pair.source.TotalKeys();
  report.counts.nodes = report.source_masters;
  for (const NodeFacts& t : pair.target.masters) {
    report.target_used_bytes += t.used_memory;
    report.target_max_bytes += t.maxmemory;
  }
}

RedisCopyProgress Snapshot(Shared& shared, int64_t total, int nodes, Clock::time_point start) {
  RedisCopyProgress p;
  p.scanned = shared.scanned;
  p.copied = shared.copied;
  p.skipped = shared.skipped;
  p.expired = shared.expired;
  p.failed = shared.failed;
  p.total = total;
  p.nodes = nodes;
  p.nodes_done = shared.nodes_done;
  p.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return p;
}

}  // namespace

std::string RedisCopyJobName(const RedisCopyOptions& o) {
  auto redacted = [](const std::string& text) {
    auto url = Url::Parse(text);
    return url.ok() ? url->Redacted() : RedactSecrets(text);
  };
  std::string spec = redacted(o.from) + "\n" + redacted(o.to) + "\n" + o.match + "\n" + o.type;
  return "redis-copy-" + Sha256Hex(spec).substr(0, 16);
}

namespace {

// The copy itself: every source master's keys, by the workers, with
// progress on the bus; fills `report`.
Status CopyAll(const RedisCopyOptions& options, const RedisPair& pair, RedisCopyReport& report) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointStore> store,
                         CheckpointStore::Open(options.state_path));
  if (options.restart) FERRY_RETURN_IF_ERROR(store->Forget(report.job));

  Shared shared;
  MemoryGuard guard(options.memory);
  bool expiretime = true;
  for (const NodeFacts& f : pair.source.masters) expiretime = expiretime && f.version_major >= 7;
  Worker worker{options, report.job, *store, shared, guard, expiretime};
  std::vector<ClusterNode> masters = pair.source.client->masters();
  FERRY_ASSIGN_OR_RETURN(Url from, Url::Parse(options.from));
  FERRY_ASSIGN_OR_RETURN(Url to, Url::Parse(options.to));
  auto run = [&]() {
    auto source = RedisClient::Open(from);
    auto target = RedisClient::Open(to);
    if (!source.ok() || !target.ok()) {
      shared.Fail(source.ok() ? target.status() : source.status());
      return;
    }
    for (size_t i = shared.next_node++; i < masters.size(); i = shared.next_node++) {
      Status s = worker.CopyNode(**source, **target, masters[i]);
      if (!s.ok()) {
        shared.Fail(std::move(s).Prefix("copying from " + masters[i].address()));
        return;
      }
    }
  };
  auto start = Clock::now();
  std::vector<std::thread> threads;
  int n = std::min<int>(options.workers, static_cast<int>(masters.size()));
  for (int i = 0; i < n; ++i) threads.emplace_back(run);
  std::atomic<bool> finished{false};
  std::thread joiner([&] {
    for (auto& t : threads) t.join();
    finished = true;
  });
  const std::string label = DatabaseLabel(options.to);
  auto last = Clock::now();
  while (!finished) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (options.bus != nullptr && Clock::now() - last >= std::chrono::seconds(1)) {
      last = Clock::now();
      options.bus->Publish(RedisEventOf("redis_copy_progress", report.job, label,
                                        Snapshot(shared, report.counts.total,
                                                 report.counts.nodes, start)));
    }
  }
  joiner.join();
  report.counts = Snapshot(shared, report.counts.total, report.counts.nodes, start);
  report.memory_slowed_pages = guard.slowed_pages();
  Publish(options.bus, RedisEventOf("redis_copy_done", report.job, label, report.counts,
                                    !shared.first_error.ok() || report.counts.failed > 0));
  if (!shared.first_error.ok()) return shared.first_error;
  // Every master finished: the next run of the same command is a new copy.
  FERRY_RETURN_IF_ERROR(store->Forget(report.job));
  report.resumed = shared.resumed;
  report.errors = shared.errors;
  if (report.counts.scanned == 0 && !shared.resumed && (!options.match.empty() || !options.type.empty())) {
    return Status(StatusCode::kNotFound,
                  fmt::format("no source key matches{}{}; nothing was copied",
                              options.match.empty() ? "" : " --match '" + options.match + "'",
                              options.type.empty() ? "" : " --type " + options.type));
  }
  return Status::Ok();
}

// --follow: re-copies `keys` of one source master as they are now: written
// again, or deleted on the target when gone (or expired) at the source.
Status CopyChanged(RedisNode& src, RedisClient& target, const std::vector<std::string>& keys,
                   bool use_expiretime, const RedisCopyOptions& options,
                   RedisCopyReport& report) {
  std::vector<Command> reads;
  for (const std::string& k : keys) {
    reads.push_back({"DUMP", k});
    reads.push_back({use_expiretime ? "PEXPIRETIME" : "PTTL", k});
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> got, src.Pipeline(reads));
  const int64_t now = NowUnixMs();
  std::vector<Command> writes;
  std::vector<bool> is_delete;
  for (size_t i = 0; i < keys.size(); ++i) {
    RedisReply& dump = got[2 * i];
    const int64_t ttl = got[2 * i + 1].integer;
    if (dump.is_error()) return ReplyError(dump, "DUMP", src.address());
    const int64_t abs_ms = ttl >= 0 ? (use_expiretime ? ttl : now + ttl) : 0;
    if (dump.is_nil() || ttl == -2 || (ttl >= 0 && abs_ms <= now)) {
      writes.push_back({"DEL", keys[i]});
      is_delete.push_back(true);
      continue;
    }
    if (static_cast<int64_t>(dump.str.size()) > options.big_key_bytes) {
      ByTypeCopy c{src, target, abs_ms, false};
      auto wrote = CopyKeyByType(c, keys[i]);
      if (wrote.ok()) {
        ++report.counts.followed;
      } else {
        ++report.counts.failed;
        report.errors.push_back(fmt::format("--follow: {}", wrote.status().message()));
      }
      continue;
    }
    Command restore{"RESTORE", keys[i], std::to_string(abs_ms), std::move(dump.str)};
    if (abs_ms != 0) restore.push_back("ABSTTL");
    restore.push_back("REPLACE");
    writes.push_back(std::move(restore));
    is_delete.push_back(false);
  }
  if (writes.empty()) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> done, target.Pipeline(writes));
  for (size_t j = 0; j < done.size(); ++j) {
    if (done[j].is_error()) {
      ++report.counts.failed;
      if (report.errors.size() < 20) {
        report.errors.push_back(fmt::format("--follow {}: {}", writes[j][0], done[j].str));
      }
    } else {
      ++(is_delete[j] ? report.counts.deleted : report.counts.followed);
    }
  }
  return Status::Ok();
}

// After the scan: drains every feed until *options.stop, then once more.
Status FollowChanges(const RedisCopyOptions& options, const RedisPair& pair,
                     std::vector<std::unique_ptr<KeyspaceFeed>>& feeds, RedisCopyReport& report) {
  FERRY_ASSIGN_OR_RETURN(Url from, Url::Parse(options.from));
  FERRY_ASSIGN_OR_RETURN(Url to, Url::Parse(options.to));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> source, RedisClient::Open(from));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<RedisClient> target, RedisClient::Open(to));
  bool expiretime = true;
  for (const NodeFacts& f : pair.source.masters) expiretime = expiretime && f.version_major >= 7;
  const std::string label = DatabaseLabel(options.to);
  auto start = Clock::now();
  auto last = Clock::time_point{};
  while (true) {
    const bool stopping = options.stop == nullptr || options.stop->load();
    int64_t lag = 0;
    for (auto& feed : feeds) {
      FERRY_RETURN_IF_ERROR(feed->health());
      std::vector<std::string> keys = feed->Drain();
      FERRY_ASSIGN_OR_RETURN(RedisNode * src, source->Node(feed->master()));
      for (size_t i = 0; i < keys.size(); i += 500) {
        std::vector<std::string> page(keys.begin() + i,
                                      keys.begin() + std::min(keys.size(), i + 500));
        FERRY_RETURN_IF_ERROR(CopyChanged(*src, *target, page, expiretime, options, report));
      }
      lag += static_cast<int64_t>(feed->pending());
    }
    report.counts.lag = lag;
    if (options.bus != nullptr && (stopping || Clock::now() - last >= std::chrono::seconds(1))) {
      last = Clock::now();
      RedisProgress p = report.counts;
      p.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      options.bus->Publish(RedisEventOf("redis_follow_progress", report.job, label, p));
    }
    if (stopping) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Subscribes to every source master's keyspace notifications (--follow).
Result<std::vector<std::unique_ptr<KeyspaceFeed>>> StartFeeds(const RedisPair& pair,
                                                               const RedisCopyOptions& options,
                                                               RedisCopyReport& report) {
  FERRY_ASSIGN_OR_RETURN(Url from, Url::Parse(options.from));
  std::vector<std::unique_ptr<KeyspaceFeed>> feeds;
  for (const ClusterNode& m : pair.source.client->masters()) {
    auto feed = KeyspaceFeed::Start(m, CredentialsFromUrl(from));
    if (!feed.ok()) {
      for (auto& f : feeds) (void)f->Stop();
      return std::move(feed).TakeStatus().Prefix("--follow");
    }
    if ((*feed)->changed_setting()) report.notifications_enabled.push_back(m.address());
    feeds.push_back(std::move(*feed));
  }
  return feeds;
}

}  // namespace

Result<RedisCopyReport> RedisCopy(const RedisCopyOptions& options) {
  if (options.workers < 1 || options.scan_count < 1 || options.max_keys_per_sec < 0) {
    return Status(StatusCode::kInvalidArgument,
                  "--workers and the SCAN count must be at least 1, --max-keys-per-sec >= 0");
  }
  if (!(options.memory.slow_at > 0 && options.memory.slow_at <= options.memory.stop_at &&
        options.memory.stop_at <= 1)) {
    return Status(StatusCode::kInvalidArgument,
                  "memory limits: give 0 < --memory-slow-percent <= --memory-stop-percent <= 100");
  }
  FERRY_ASSIGN_OR_RETURN(RedisPair pair, OpenRedisPair(options.from, options.to));
  RedisCopyReport report;
  report.job = RedisCopyJobName(options);
  report.dry_run = options.dry_run;
  FillReport(pair, report);
  if (options.dry_run) return report;
  FERRY_RETURN_IF_ERROR(CheckTargetMemory(pair, options));
  std::optional<PreparedTarget> prepared;
  if (options.prepare_target) {
    FERRY_ASSIGN_OR_RETURN(PreparedTarget p, PreparedTarget::Apply(*pair.target.client));
    for (const auto& c : p.changes()) {
      report.prepared.push_back(fmt::format("{} {}={}", c.node, c.setting, c.previous));
    }
    prepared = std::move(p);
  }
  std::vector<std::unique_ptr<KeyspaceFeed>> feeds;
  Status copied;
  if (options.follow) {
    auto started = StartFeeds(pair, options, report);
    if (started.ok()) {
      feeds = std::move(*started);
    } else {
      copied = started.status();
    }
  }
  if (copied.ok()) copied = CopyAll(options, pair, report);
  if (copied.ok() && options.follow) {
    report.followed = true;
    copied = FollowChanges(options, pair, feeds, report);
  }
  for (auto& feed : feeds) {
    Status s = feed->Stop();  // notifications back as they were
    if (!s.ok() && copied.ok()) copied = std::move(s);
  }
  // The target's settings go back whatever happened to the copy.
  Status restored = prepared ? prepared->Restore() : Status::Ok();
  if (!copied.ok()) {
    if (!restored.ok()) copied = std::move(copied).With("restore", restored.message());
    return copied;
  }
  if (!restored.ok()) return restored;
  return report;
}

}  // namespace ferry::redis
