#include "move/redis/redis_copy_by_type.h"

#include <fmt/format.h>

namespace ferry::redis {
namespace {

// Runs commands on the target, all routed by `key` (the temporary key).
Status Write(RedisClient& target, std::vector<Command> commands) {
  if (commands.empty()) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> replies, target.Pipeline(commands));
  for (size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].is_error()) return ReplyError(replies[i], commands[i][0], target.redacted_url());
  }
  return Status::Ok();
}

// Reads a *SCAN family (HSCAN, SSCAN, ZSCAN) page by page; `add` makes the
// target command of one page's elements.
Status CopyScanned(const ByTypeCopy& c, const std::string& key, const std::string& tmp,
                   const char* scan, const char* add, bool swap_pairs) {
  std::string cursor = "0";
  do {
    FERRY_ASSIGN_OR_RETURN(RedisReply page, c.source.RunOk({scan, key, cursor, "COUNT",
                                                            std::to_string(c.piece)}));
    if (page.elements.size() != 2) return Status(StatusCode::kInternal, "bad *SCAN reply");
    cursor = page.elements[0].str;
    auto& items = page.elements[1].elements;
    if (items.empty()) continue;
    Command cmd{add, tmp};
    if (swap_pairs) {  // ZSCAN gives member, score; ZADD wants score, member
      for (size_t i = 0; i + 1 < items.size(); i += 2) {
        cmd.push_back(std::move(items[i + 1].str));
        cmd.push_back(std::move(items[i].str));
      }
    } else {
      for (auto& e : items) cmd.push_back(std::move(e.str));
    }
    FERRY_RETURN_IF_ERROR(Write(c.target, {std::move(cmd)}));
  } while (cursor != "0");
  return Status::Ok();
}

Status CopyList(const ByTypeCopy& c, const std::string& key, const std::string& tmp) {
  for (int64_t start = 0;; start += c.piece) {
    FERRY_ASSIGN_OR_RETURN(RedisReply page, c.source.RunOk({"LRANGE", key, std::to_string(start),
                                                            std::to_string(start + c.piece - 1)}));
    if (page.elements.empty()) return Status::Ok();
    Command cmd{"RPUSH", tmp};
    for (auto& e : page.elements) cmd.push_back(std::move(e.str));
    FERRY_RETURN_IF_ERROR(Write(c.target, {std::move(cmd)}));
  }
}

Status CopyString(const ByTypeCopy& c, const std::string& key, const std::string& tmp) {
  int64_t chunk = static_cast<int64_t>(c.piece) * 1024;
  FERRY_RETURN_IF_ERROR(Write(c.target, {{"SET", tmp, ""}}));
  for (int64_t start = 0;; start += chunk) {
    FERRY_ASSIGN_OR_RETURN(RedisReply part, c.source.RunOk({"GETRANGE", key, std::to_string(start),
                                                            std::to_string(start + chunk - 1)}));
    if (part.str.empty()) return Status::Ok();
    FERRY_RETURN_IF_ERROR(Write(c.target, {{"APPEND", tmp, std::move(part.str)}}));
  }
}

Status CopyStream(const ByTypeCopy& c, const std::string& key, const std::string& tmp) {
  std::string from = "-";
  while (true) {
    FERRY_ASSIGN_OR_RETURN(RedisReply page, c.source.RunOk({"XRANGE", key, from, "+", "COUNT",
                                                            std::to_string(c.piece)}));
    if (page.elements.empty()) return Status::Ok();
    std::vector<Command> adds;
    for (auto& entry : page.elements) {
      if (entry.elements.size() < 2) return Status(StatusCode::kInternal, "bad XRANGE reply");
      Command add{"XADD", tmp, entry.elements[0].str};
      for (auto& fv : entry.elements[1].elements) add.push_back(std::move(fv.str));
      adds.push_back(std::move(add));
    }
    from = "(" + page.elements.back().elements[0].str;  // exclusive start
    FERRY_RETURN_IF_ERROR(Write(c.target, std::move(adds)));
  }
}

}  // namespace

std::string TemporaryKeyFor(const std::string& key) {
  std::string tmp = key + ":ferry-copy-tmp";
  if (KeySlot(tmp) == KeySlot(key)) return tmp;  // the key has a hash tag
  return "{" + key + "}:ferry-copy-tmp";
}

Result<bool> CopyKeyByType(const ByTypeCopy& c, const std::string& key) {
  std::string tmp = TemporaryKeyFor(key);
  if (c.target.cluster() && KeySlot(tmp) != KeySlot(key)) {
    return Status(StatusCode::kUnimplemented,
                  "no temporary key in the same slot for a key with an odd '{' '}' pattern");
  }
  FERRY_ASSIGN_OR_RETURN(RedisReply type, c.source.RunOk({"TYPE", key}));
  FERRY_RETURN_IF_ERROR(Write(c.target, {{"DEL", tmp}}));
  Status s;
  if (type.str == "none") return false;
  if (type.str == "string") {
    s = CopyString(c, key, tmp);
  } else if (type.str == "hash") {
    s = CopyScanned(c, key, tmp, "HSCAN", "HSET", false);
  } else if (type.str == "set") {
    s = CopyScanned(c, key, tmp, "SSCAN", "SADD", false);
  } else if (type.str == "zset") {
    s = CopyScanned(c, key, tmp, "ZSCAN", "ZADD", true);
  } else if (type.str == "list") {
    s = CopyList(c, key, tmp);
  } else if (type.str == "stream") {
    s = CopyStream(c, key, tmp);
  } else {
    return Status(StatusCode::kUnimplemented, "cannot copy Redis type " + type.str + " by type");
  }
  if (!s.ok()) {
    (void)Write(c.target, {{"DEL", tmp}});
    return s;
  }
  std::vector<Command> finish;
  if (c.abs_expiry_ms > 0) finish.push_back({"PEXPIREAT", tmp, std::to_string(c.abs_expiry_ms)});
  finish.push_back({c.skip_existing ? "RENAMENX" : "RENAME", tmp, key});
  FERRY_ASSIGN_OR_RETURN(std::vector<RedisReply> done, c.target.Pipeline(finish));
  for (const RedisReply& r : done) {
    if (r.is_error()) {
      (void)Write(c.target, {{"DEL", tmp}});
      return ReplyError(r, "RENAME", c.target.redacted_url());
    }
  }
  if (c.skip_existing && done.back().integer == 0) {
    FERRY_RETURN_IF_ERROR(Write(c.target, {{"DEL", tmp}}));
    return false;
  }
  return true;
}

}  // namespace ferry::redis
