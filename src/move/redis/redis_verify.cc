#include "move/redis/redis_verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "core/hash.h"
#include "move/redis/redis_pair.h"

namespace ferry::redis {
namespace {

// TYPE, expiry and DUMP of one key on one side.
struct KeyState {
  std::string type;     // "none" when absent
  int64_t expiry = -1;  // PEXPIRETIME (absolute ms) or PTTL; -1 none
  std::string dump;
};

bool InSample(std::string_view key, double percent) {
  if (percent >= 100) return true;
  return static_cast<double>(Xxh3(key) % 1000000) < percent * 10000;
}

class Verifier {
 public:
  Verifier(const RedisVerifyOptions& options, RedisPair& pair, bool expiretime)
      : options_(options), pair_(pair), expiretime_(expiretime) {}

  Status SourceNode(const ClusterNode& master);
  Status ExtraOnTarget(const ClusterNode& master);
  RedisVerifyReport& report() { return report_; }

 private:
  Result<std::vector<KeyState>> States(RedisClient& side, const std::vector<std::string>& keys);
  Result<std::string> Digest(RedisClient& side, const std::string& key, const std::string& type);
  Status ComparePage(const std::vector<std::string>& keys);
  void Add(RedisKeyDifference::Kind kind, const std::string& key, std::string detail);
  Result<std::vector<std::string>> ScanPage(RedisNode& node, std::string* cursor);

  const RedisVerifyOptions& options_;
  RedisPair& pair_;
  bool expiretime_;
  RedisVerifyReport report_;
};

void Verifier::Add(RedisKeyDifference::Kind kind, const std::string& key, std::string detail) {
  switch (kind) {
    case RedisKeyDifference::Kind::kMissing: ++report_.missing; break;
    case RedisKeyDifference::Kind::kExtra: ++report_.extra; break;
    case RedisKeyDifference::Kind::kChanged: ++report_.changed; break;
  }
  if (static_cast<int>(report_.differences.size()) < options_.max_report) {
    report_.differences.push_back({kind, key, std::move(detail)});
  }
}

Result<std::vector<KeyState>> Verifier::States(RedisClient& side,
                                               const std::vector<std::string>& keys) {
  std::vector<Command> reads;
  reads.reserve(keys.size() * 3);
  for (const std::string& k : keys) {
    reads.push_back({"TYPE", k});
    reads.push_back({expiretime_ ? "PEXPIRETIME" : "PTTL", k});
    reads.push_back({"DUMP", k});
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> got, side.Pipeline(reads));
  std::vector<KeyState> out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    for (int j = 0; j < 3; ++j) {
      if (got[3 * i + j].is_error()) return ReplyError(got[3 * i + j], reads[3 * i + j][0], side.redacted_url());
    }
    out[i].type = got[3 * i].str;
    out[i].expiry = got[3 * i + 1].integer;
    out[i].dump = std::move(got[3 * i + 2].str);
  }
  return out;
}

Result<std::string> Verifier::Digest(RedisClient& side, const std::string& key,
                                     const std::string& type) {
  Command read;
  bool sort = false;
  if (type == "string") {
    read = {"GET", key};
  } else if (type == "hash") {
    read = {"HGETALL", key};
    sort = true;  // pairs, sorted below
  } else if (type == "list") {
    read = {"LRANGE", key, "0", "-1"};
  } else if (type == "set") {
    read = {"SMEMBERS", key};
    sort = true;
  } else if (type == "zset") {
    read = {"ZRANGE", key, "0", "-1", "WITHSCORES"};
  } else if (type == "stream") {
    read = {"XRANGE", key, "-", "+"};
  } else {
    return Status(StatusCode::kUnimplemented, "no digest for Redis type " + type);
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> got, side.Pipeline({read}));
  RedisReply& r = got.front();
  if (r.is_error()) return ReplyError(r, read[0], side.redacted_url());
  std::vector<std::string> parts;
  if (r.type != RedisReply::Type::kArray) {
    parts.push_back(r.str);
  } else if (type == "hash") {
    for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
      std::string f = r.elements[i].str;
      parts.push_back(fmt::format("{}:{}{}", f.size(), f, r.elements[i + 1].str));
    }
  } else if (type == "stream") {
    for (const RedisReply& entry : r.elements) {  // [id, [field, value, ...]]
      std::string e = entry.elements.empty() ? "" : entry.elements[0].str;
      if (entry.elements.size() > 1) {
        for (const RedisReply& fv : entry.elements[1].elements) {
          e += fmt::format("|{}:{}", fv.str.size(), fv.str);
        }
      }
      parts.push_back(std::move(e));
    }
  } else {
    for (RedisReply& e : r.elements) parts.push_back(std::move(e.str));
  }
  if (sort) std::sort(parts.begin(), parts.end());
  std::string canonical = type;
  for (const std::string& p : parts) canonical += fmt::format("\n{}:{}", p.size(), p);
  return Sha256Hex(canonical);
}

Status Verifier::ComparePage(const std::vector<std::string>& keys) {
  FERRY_ASSIGN_OR_RETURN(std::vector<KeyState> src, States(*pair_.source.client, keys));
  FERRY_ASSIGN_OR_RETURN(std::vector<KeyState> dst, States(*pair_.target.client, keys));
  for (size_t i = 0; i < keys.size(); ++i) {
    const KeyState& s = src[i];
    const KeyState& t = dst[i];
    if (s.type == "none") continue;  // deleted or expired on the source since SCAN
    ++report_.checked;
    if (t.type == "none") {
      Add(RedisKeyDifference::Kind::kMissing, keys[i], "not on the target");
      continue;
    }
    if (s.type != t.type) {
      Add(RedisKeyDifference::Kind::kChanged, keys[i], fmt::format("type {} vs {}", s.type, t.type));
      continue;
    }
    if ((s.expiry < 0) != (t.expiry < 0) ||
        std::llabs(s.expiry - t.expiry) > options_.ttl_tolerance_ms) {
      auto show = [](int64_t e) { return e < 0 ? std::string("none") : std::to_string(e); };
      Add(RedisKeyDifference::Kind::kChanged, keys[i],
          fmt::format("expiry {} vs {} ({})", show(s.expiry), show(t.expiry),
                      expiretime_ ? "unix ms" : "ms left"));
      continue;
    }
    if (pair_.same_version && s.dump == t.dump) {
      ++report_.compared_by_dump;
      continue;
    }
    ++report_.compared_by_digest;
    FERRY_ASSIGN_OR_RETURN(std::string ds, Digest(*pair_.source.client, keys[i], s.type));
    FERRY_ASSIGN_OR_RETURN(std::string dt, Digest(*pair_.target.client, keys[i], t.type));
    if (ds != dt) Add(RedisKeyDifference::Kind::kChanged, keys[i], "value differs");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> Verifier::ScanPage(RedisNode& node, std::string* cursor) {
  Command scan{"SCAN", *cursor, "COUNT", std::to_string(options_.scan_count)};
  if (!options_.match.empty()) scan.insert(scan.end(), {"MATCH", options_.match});
  if (!options_.type.empty()) scan.insert(scan.end(), {"TYPE", options_.type});
  FERRY_ASSIGN_OR_RETURN(RedisReply page, node.RunOk(scan));
  if (page.elements.size() != 2) return Status(StatusCode::kInternal, "SCAN reply is not [cursor, keys]");
  *cursor = page.elements[0].str;
  std::vector<std::string> keys;
  for (RedisReply& k : page.elements[1].elements) keys.push_back(std::move(k.str));
  return keys;
}

Status Verifier::SourceNode(const ClusterNode& master) {
  FERRY_ASSIGN_OR_RETURN(RedisNode * node, pair_.source.client->Node(master));
  std::string cursor = "0";
  do {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> keys, ScanPage(*node, &cursor));
    std::erase_if(keys, [&](const std::string& k) { return !InSample(k, options_.sample_percent); });
    if (!keys.empty()) FERRY_RETURN_IF_ERROR(ComparePage(keys));
  } while (cursor != "0");
  return Status::Ok();
}

Status Verifier::ExtraOnTarget(const ClusterNode& master) {
  FERRY_ASSIGN_OR_RETURN(RedisNode * node, pair_.target.client->Node(master));
  std::string cursor = "0";
  do {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> keys, ScanPage(*node, &cursor));
    std::vector<Command> exists;
    for (const std::string& k : keys) exists.push_back({"EXISTS", k});
    if (exists.empty()) continue;
    FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> got, pair_.source.client->Pipeline(exists));
    for (size_t i = 0; i < keys.size(); ++i) {
      if (got[i].is_error()) return ReplyError(got[i], "EXISTS", pair_.source.client->redacted_url());
      if (got[i].integer == 0) Add(RedisKeyDifference::Kind::kExtra, keys[i], "not on the source");
    }
  } while (cursor != "0");
  return Status::Ok();
}

}  // namespace

std::string_view RedisDifferenceKindName(RedisKeyDifference::Kind kind) {
  switch (kind) {
    case RedisKeyDifference::Kind::kMissing: return "missing";
    case RedisKeyDifference::Kind::kExtra: return "extra";
    case RedisKeyDifference::Kind::kChanged: return "changed";
  }
  return "changed";
}

Result<RedisVerifyReport> RedisVerify(const RedisVerifyOptions& options) {
  if (!(options.sample_percent > 0 && options.sample_percent <= 100)) {
    return Status(StatusCode::kInvalidArgument, "--sample must be a percentage in (0, 100]");
  }
  auto start = std::chrono::steady_clock::now();
  FERRY_ASSIGN_OR_RETURN(RedisPair pair, OpenRedisPair(options.from, options.to));
  bool expiretime = true;
  for (const RedisSide* side : {&pair.source, &pair.target}) {
    for (const NodeFacts& f : side->masters) expiretime = expiretime && f.version_major >= 7;
  }
  Verifier v(options, pair, expiretime);
  for (const ClusterNode& m : pair.source.client->masters()) {
    FERRY_RETURN_IF_ERROR(v.SourceNode(m));
  }
  if (options.sample_percent >= 100) {
    for (const ClusterNode& m : pair.target.client->masters()) {
      FERRY_RETURN_IF_ERROR(v.ExtraOnTarget(m));
    }
  }
  RedisVerifyReport report = std::move(v.report());
  report.sampled = options.sample_percent < 100;
  report.same_version = pair.same_version;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.bus != nullptr) {
    VerifyTableProgress keys;
    keys.table = options.match.empty() ? "keys" : "keys matching " + options.match;
    keys.source_rows = report.checked;
    keys.missing = report.missing;
    keys.extra = report.extra;
    keys.changed = report.changed;
    Event e = VerifyTableEventOf(std::move(keys));
    e.database = DatabaseLabel(options.to);
    e.duration_ms = static_cast<int64_t>(report.seconds * 1000);
    options.bus->Publish(e);
  }
  return report;
}

}  // namespace ferry::redis
