// `ferry redis copy` and `ferry redis verify`, run as the built binary
// against the real servers of scripts/test-servers.sh (two standalone
// servers, one with an ACL user, and a 3-master cluster).
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "drivers/redis/redis_client.h"
#include "integration/redis_test_env.h"
#include "test_util.h"

namespace ferry::redis {
namespace {

using ::ferry::testing::ReadFile;
using ::ferry::testing::Redis2Url;
using ::ferry::testing::RedisAclUrl;
using ::ferry::testing::RedisClusterUrl;
using ::ferry::testing::RedisUrl;
using ::ferry::testing::RunFerry;
using ::ferry::testing::RunResult;
using ::ferry::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kAclSecret = "ferry_acl_secret";

std::unique_ptr<RedisClient> Open(const std::string& text) {
  auto url = Url::Parse(text);
  if (!url.ok()) return nullptr;
  auto client = RedisClient::Open(*url);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(*client) : nullptr;
}

// Empties every master of a deployment.
void Flush(RedisClient& c) {
  for (const ClusterNode& m : c.masters()) {
    auto node = c.Node(m);
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    ASSERT_TRUE((*node)->RunOk({"FLUSHALL"}).ok());
  }
}

std::vector<RedisReply> Exec(RedisClient& c, const std::vector<Command>& commands) {
  auto r = c.Pipeline(commands);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {};
  for (const auto& reply : *r) EXPECT_FALSE(reply.is_error()) << reply.str;
  return std::move(*r);
}

// Every type, with and without TTL, binary keys and values.
void SeedAllTypes(RedisClient& c) {
  std::string bin_key("bin:\x00\xff\r\n{tag}", 13);
  std::string bin_value("\x00\x01\x02\xfe\xff value", 11);
  Exec(c, {{"SET", "str:plain", "hello"},
          {"SET", "str:ttl", "bye", "PX", "3600000"},
          {"SET", bin_key, bin_value},
          {"HSET", "hash:1", "f1", "v1", "f2", bin_value},
          {"HSET", "hash:ttl", "a", "1"},
          {"PEXPIRE", "hash:ttl", "7200000"},
          {"RPUSH", "list:1", "a", "b", "c", "a"},
          {"SADD", "set:1", "x", "y", "z"},
          {"ZADD", "zset:1", "1.5", "m1", "-2", "m2", "inf", "m3"},
          {"XADD", "stream:1", "1-1", "f", "v"},
          {"XADD", "stream:1", "2-1", "g", bin_value},
          {"EXPIRE", "stream:1", "100000"}});
  // A hash big enough to be a hashtable, not a listpack.
  Command big{"HSET", "hash:big"};
  for (int i = 0; i < 600; ++i) {
    big.push_back(fmt::format("field{}", i));
    big.push_back(std::string(100, static_cast<char>('a' + i % 26)));
  }
  Exec(c, {big});
}

// The last line of --json output (the "done" event).
nlohmann::json LastJson(const std::string& out) {
  std::string text = out;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return nlohmann::json::parse(text.substr(text.rfind('\n') + 1));
}

// Type, absolute expiry and contents (sorted where order is no part of the
// value: a DUMP of a hashtable is not byte-stable across RESTORE).
struct KeyDump {
  std::string type;
  std::vector<std::string> contents;
  int64_t expiretime = 0;
};
KeyDump Describe(RedisClient& c, const std::string& key) {
  auto r = Exec(c, {{"TYPE", key}, {"PEXPIRETIME", key}});
  if (r.size() != 2) return {};
  KeyDump d{r[0].str, {}, r[1].integer};
  Command read;
  if (d.type == "string") read = {"GET", key};
  if (d.type == "hash") read = {"HGETALL", key};
  if (d.type == "list") read = {"LRANGE", key, "0", "-1"};
  if (d.type == "set") read = {"SMEMBERS", key};
  if (d.type == "zset") read = {"ZRANGE", key, "0", "-1", "WITHSCORES"};
  if (d.type == "stream") read = {"XRANGE", key, "-", "+"};
  if (read.empty()) return d;
  auto v = Exec(c, {read});
  if (v.empty()) return d;
  if (v[0].type != RedisReply::Type::kArray) {
    d.contents.push_back(v[0].str);
  } else if (d.type == "hash") {
    for (size_t i = 0; i + 1 < v[0].elements.size(); i += 2) {
      d.contents.push_back(v[0].elements[i].str + "=" + v[0].elements[i + 1].str);
    }
  } else if (d.type == "stream") {
    for (const auto& e : v[0].elements) {
      std::string entry = e.elements[0].str;
      for (const auto& fv : e.elements[1].elements) entry += "|" + fv.str;
      d.contents.push_back(entry);
    }
  } else {
    for (const auto& e : v[0].elements) d.contents.push_back(e.str);
  }
  if (d.type == "hash" || d.type == "set") std::sort(d.contents.begin(), d.contents.end());
  return d;
}

TEST(RedisCopyTest, EveryTypeWithExactAbsoluteTtlsThenVerifyIdentical) {
  std::string from = RedisUrl(), to = Redis2Url();
  if (from.empty() || to.empty()) return;
  auto src = Open(from), dst = Open(to);
  ASSERT_TRUE(src && dst);
  Flush(*src);
  Flush(*dst);
  SeedAllTypes(*src);
  TempDir dir;
  RunResult r = RunFerry({"redis", "copy", "--from", from, "--to", to, "--state",
                          dir.File("state.db"), "--json", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto done = LastJson(r.out);
  EXPECT_EQ(done["counts"]["copied"], 10);
  for (const std::string& key : std::vector<std::string>{"str:plain", "str:ttl", "hash:1", "hash:ttl", "list:1", "set:1", "zset:1", "stream:1",
        "hash:big", std::string("bin:\x00\xff\r\n{tag}", 13)}) {
    KeyDump s = Describe(*src, key), t = Describe(*dst, key);
    EXPECT_EQ(s.type, t.type) << key;
    EXPECT_FALSE(s.contents.empty()) << key;
    EXPECT_TRUE(s.contents == t.contents) << key;
    EXPECT_EQ(s.expiretime, t.expiretime) << key;  // absolute, to the millisecond
  }
  EXPECT_EQ(Describe(*dst, "str:plain").expiretime, -1);

  RunResult v = RunFerry({"redis", "verify", "--from", from, "--to", to});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr("identical: 10 keys checked"));

  // A changed value, a changed TTL, a missing and an extra key.
  Exec(*dst, {{"HSET", "hash:1", "f1", "other"},
             {"PEXPIRE", "str:plain", "999999"},
             {"DEL", "list:1"},
             {"SET", "only:on:target", "x"}});
  v = RunFerry({"redis", "verify", "--from", from, "--to", to, "--json"});
  EXPECT_EQ(v.exit_code, 10) << v.out << v.err;
  auto j = nlohmann::json::parse(v.out);
  EXPECT_EQ(j["missing"], 1);
  EXPECT_EQ(j["extra"], 1);
  EXPECT_EQ(j["changed"], 2);
}

// Redis jobs publish on the run's event bus like every other job: the
// --metrics-file of a copy and of a verify holds their figures.
TEST(RedisCopyTest, CopyAndVerifyExportTheirMetrics) {
  std::string from = RedisUrl(), to = Redis2Url();
  if (from.empty() || to.empty()) return;
  auto src = Open(from), dst = Open(to);
  ASSERT_TRUE(src && dst);
  Flush(*src);
  Flush(*dst);
  std::vector<Command> keys;
  for (int i = 0; i < 1500; ++i) keys.push_back({"SET", fmt::format("m:{}", i), "v"});
  Exec(*src, keys);
  TempDir dir;
  const std::string prom = dir.File("copy.prom");
  RunResult r = RunFerry({"--metrics-file", prom, "redis", "copy", "--from", from, "--to", to,
                          "--state", dir.File("s.db"), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string copy = ReadFile(prom);
  EXPECT_THAT(copy, HasSubstr("state=\"copied\"} 1500")) << copy;
  EXPECT_THAT(copy, HasSubstr("state=\"failed\"} 0")) << copy;
  EXPECT_THAT(copy, HasSubstr("operation=\"redis_copy\",status=\"success\"} 1")) << copy;
  EXPECT_THAT(copy, Not(HasSubstr(kAclSecret)));

  Exec(*dst, {{"DEL", "m:7"}, {"SET", "m:8", "other"}});
  const std::string vprom = dir.File("verify.prom");
  RunResult v = RunFerry({"--metrics-file", vprom, "redis", "verify", "--from", from, "--to", to});
  EXPECT_EQ(v.exit_code, 10) << v.out << v.err;
  const std::string verify = ReadFile(vprom);
  EXPECT_THAT(verify, HasSubstr("ferry_verify_differences{")) << verify;
  EXPECT_THAT(verify, HasSubstr("kind=\"missing\",table=\"keys\"} 1")) << verify;
  EXPECT_THAT(verify, HasSubstr("kind=\"changed\",table=\"keys\"} 1")) << verify;
}

TEST(RedisCopyTest, BigKeysAreCopiedTypeByTypeWithTheirExpiry) {
  std::string from = RedisUrl(), to = RedisClusterUrl();
  if (from.empty() || to.empty()) return;
  auto src = Open(from), dst = Open(to);
  ASSERT_TRUE(src && dst);
  Flush(*src);
  Flush(*dst);
  SeedAllTypes(*src);
  Command list{"RPUSH", "big:list"};
  for (int i = 0; i < 5000; ++i) list.push_back(fmt::format("item-{}", i));
  std::vector<Command> more{list};
  for (int i = 1; i <= 2500; ++i) more.push_back({"XADD", "big:stream", fmt::format("{}-0", i), "n", std::to_string(i)});
  more.push_back({"PEXPIRE", "big:stream", "5000000"});
  // 100 MB, beyond the default --big-key-bytes (64 MiB).
  std::string huge(100 << 20, 'x');
  for (size_t i = 0; i < huge.size(); i += 4096) huge[i] = static_cast<char>('a' + (i / 4096) % 26);
  more.push_back({"SET", "big:100mb", huge, "PX", "7200000"});
  Exec(*src, more);
  huge.clear();
  TempDir dir;
  // Everything small goes by type too with --big-key-bytes 1000.
  RunResult r = RunFerry({"redis", "copy", "--from", from, "--to", to, "--state",
                          dir.File("s.db"), "--big-key-bytes", "1000", "--json", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(LastJson(r.out)["counts"]["copied"], 13);
  for (const std::string& key : std::vector<std::string>{"hash:big", "big:list", "big:stream",
                                                        "stream:1", "zset:1", "set:1", "hash:ttl"}) {
    KeyDump s = Describe(*src, key), t = Describe(*dst, key);
    EXPECT_EQ(s.type, t.type) << key;
    EXPECT_TRUE(s.contents == t.contents) << key;
    EXPECT_EQ(s.expiretime, t.expiretime) << key;
  }
  auto lens = Exec(*dst, {{"STRLEN", "big:100mb"}, {"PEXPIRETIME", "big:100mb"}});
  auto src_lens = Exec(*src, {{"STRLEN", "big:100mb"}, {"PEXPIRETIME", "big:100mb"}});
  ASSERT_EQ(lens.size(), 2u);
  EXPECT_EQ(lens[0].integer, 100 << 20);
  EXPECT_EQ(lens[1].integer, src_lens[1].integer);
  RunResult v = RunFerry({"redis", "verify", "--from", from, "--to", to});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr("identical: 13 keys checked"));
  // No temporary key is left behind.
  for (const ClusterNode& m : dst->masters()) {
    auto n = dst->Node(m);
    ASSERT_TRUE(n.ok());
    auto tmp = (*n)->RunOk({"KEYS", "*ferry-copy-tmp*"});
    ASSERT_TRUE(tmp.ok());
    EXPECT_TRUE(tmp->elements.empty()) << m.address();
  }
  Flush(*src);  // 100 MB: give the memory back
  Flush(*dst);
}

TEST(RedisCopyTest, KeysExpiringDuringTheCopyAreNotRestoredAndTtlsStayAbsolute) {
  std::string from = RedisUrl(), to = Redis2Url();
  if (from.empty() || to.empty()) return;
  auto src = Open(from), dst = Open(to);
  ASSERT_TRUE(src && dst);
  Flush(*src);
  Flush(*dst);
  // 3000 keys; a third expire within 1.5 s, while the copy is paced to ~3 s.
  std::vector<Command> seed;
  for (int i = 0; i < 3000; ++i) {
    std::string key = fmt::format("exp:{}", i);
    if (i % 3 == 0) {
      seed.push_back({"SET", key, "v", "PX", std::to_string(200 + (i % 1300))});
    } else {
      seed.push_back({"SET", key, "v", "PX", "600000"});
    }
  }
  Exec(*src, seed);
  TempDir dir;
  RunResult r = RunFerry({"redis", "copy", "--from", from, "--to", to, "--state",
                          dir.File("s.db"), "--max-keys-per-sec", "1000", "--scan-count", "100",
                          "--json", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto done = LastJson(r.out);
  // Short-TTL keys were gone before their page was read (or expired in flight).
  EXPECT_LT(done["counts"]["copied"].get<int64_t>(), 3000);
  // No key outlives its source expiry: every long-TTL key has the source's
  // exact expiry, and no short-TTL key is left on the target.
  std::vector<Command> reads;
  for (int i = 0; i < 3000; ++i) reads.push_back({"PEXPIRETIME", fmt::format("exp:{}", i)});
  auto s = Exec(*src, reads), t = Exec(*dst, reads);
  ASSERT_EQ(t.size(), 3000u);
  for (int i = 0; i < 3000; ++i) {
    if (i % 3 == 0) {
      EXPECT_EQ(t[i].integer, -2) << "short-TTL key exp:" << i << " is still on the target";
    } else {
      EXPECT_EQ(t[i].integer, s[i].integer) << "exp:" << i;
    }
  }
}

TEST(RedisCopyTest, StandaloneIntoClusterAndBackWithAclSourceNeverShowsThePassword) {
  std::string acl = RedisAclUrl(), cluster = RedisClusterUrl(), plain = RedisUrl();
  if (acl.empty() || cluster.empty() || plain.empty()) return;
  auto src = Open(acl), dst = Open(cluster), back = Open(plain);
  ASSERT_TRUE(src && dst && back);
  Flush(*src);
  Flush(*dst);
  Flush(*back);
  SeedAllTypes(*src);
  std::vector<Command> more;
  for (int i = 0; i < 5000; ++i) more.push_back({"SET", fmt::format("user:{}", i), "x", "EX", "3600"});
  Exec(*src, more);
  TempDir dir;
  std::string state = dir.File("state.db");
  RunResult r = RunFerry({"redis", "copy", "--from", acl, "--to", cluster, "--state", state,
                          "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  RunResult text = RunFerry({"redis", "copy", "--from", acl, "--to", cluster, "--state", state,
                             "--restart", "--skip-existing"});
  ASSERT_EQ(text.exit_code, 0) << text.out << text.err;
  EXPECT_THAT(text.out, HasSubstr("skipped (already on target) 5010"));
  RunResult v = RunFerry({"redis", "verify", "--from", acl, "--to", cluster});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  RunResult d = RunFerry({"doctor", acl});
  EXPECT_EQ(d.exit_code, 0) << d.err;
  // Cluster to standalone.
  RunResult b = RunFerry({"redis", "copy", "--from", cluster, "--to", plain, "--state", state});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  RunResult vb = RunFerry({"redis", "verify", "--from", acl, "--to", plain, "--sample", "30"});
  EXPECT_EQ(vb.exit_code, 0) << vb.out << vb.err;
  // A failing run with the password in the URL.
  RunResult bad = RunFerry({"redis", "copy", "--from", acl, "--to", acl, "--state", state});
  EXPECT_EQ(bad.exit_code, 8) << bad.out << bad.err;
  for (const RunResult* x : {&r, &text, &v, &d, &b, &vb, &bad}) {
    EXPECT_THAT(x->out + x->err, Not(HasSubstr(kAclSecret)));
  }
  EXPECT_THAT(ReadFile(state), Not(HasSubstr(kAclSecret)));
  EXPECT_THAT(d.out, HasSubstr("ferry_acl:***@"));
}

TEST(RedisCopyTest, KilledCopyResumesFromCheckpointedCursors) {
  std::string from = RedisClusterUrl(), to = Redis2Url();
  if (from.empty() || to.empty()) return;
  auto src = Open(from), dst = Open(to);
  ASSERT_TRUE(src && dst);
  Flush(*src);
  Flush(*dst);
  std::vector<Command> seed;
  for (int i = 0; i < 20000; ++i) seed.push_back({"SET", fmt::format("k:{}", i), std::to_string(i)});
  Exec(*src, seed);
  TempDir dir;
  std::string state = dir.File("state.db");
  int pid = ::ferry::testing::StartFerry({"redis", "copy", "--from", from, "--to", to, "--state",
                                          state, "--max-keys-per-sec", "4000", "--scan-count",
                                          "50", "--workers", "3"},
                                         dir.File("first.out"));
  // Kill -9 once some but not all keys are on the target.
  int64_t copied = 0;
  for (int i = 0; i < 200 && copied < 4000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    copied = Exec(*dst, {{"DBSIZE"}})[0].integer;
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(::ferry::testing::WaitFerry(pid), 128 + SIGKILL);
  int64_t before = Exec(*dst, {{"DBSIZE"}})[0].integer;
  ASSERT_GT(before, 0);
  ASSERT_LT(before, 20000);

  RunResult r = RunFerry({"redis", "copy", "--from", from, "--to", to, "--state", state,
                          "--json", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto done = LastJson(r.out);
  EXPECT_TRUE(done["resumed"].get<bool>());
  // The second run scanned only what the first had not acknowledged.
  EXPECT_LT(done["counts"]["scanned"].get<int64_t>(), 20000);
  EXPECT_EQ(Exec(*dst, {{"DBSIZE"}})[0].integer, 20000);
  RunResult v = RunFerry({"redis", "verify", "--from", from, "--to", to});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

std::string ConfigGet(RedisClient& c, const std::string& name) {
  auto r = Exec(c, {{"CONFIG", "GET", name}});
  return r.size() == 1 && r[0].elements.size() == 2 ? r[0].elements[1].str : "";
}

int64_t UsedMemory(RedisClient& c) {
  auto r = Exec(c, {{"INFO", "memory"}});
  if (r.empty()) return 0;
  size_t at = r[0].str.find("used_memory:");
  return at == std::string::npos ? 0 : std::stoll(r[0].str.substr(at + 12));
}

// Seed 002's memory guard: a target that fills up makes the copy slow down,
// then stop (resumable) before Redis would refuse writes; --prepare-target
// turns lazy freeing on for the copy and puts it back, also after the stop.
TEST(RedisCopyTest, MemoryGuardStopsBeforeTheTargetIsFullAndTheCopyResumes) {
  std::string from = RedisUrl(), to = Redis2Url();
  if (from.empty() || to.empty()) return;
  auto src = Open(from), dst = Open(to);
  ASSERT_TRUE(src && dst);
  Flush(*src);
  Flush(*dst);
  const std::string old_max = ConfigGet(*dst, "maxmemory");
  const std::string old_policy = ConfigGet(*dst, "maxmemory-policy");
  const std::string old_lazy = ConfigGet(*dst, "lazyfree-lazy-eviction");
  Exec(*dst, {{"CONFIG", "SET", "lazyfree-lazy-eviction", "no"},
             {"CONFIG", "SET", "maxmemory-policy", "noeviction"}});
  std::vector<Command> keys;
  const std::string value(2048, 'v');
  for (int i = 0; i < 8000; ++i) keys.push_back({"SET", fmt::format("mem:{}", i), value});
  Exec(*src, keys);
  const int64_t limit = UsedMemory(*dst) + (6 << 20);  // room for ~a third of the keys
  Exec(*dst, {{"CONFIG", "SET", "maxmemory", std::to_string(limit)}});

  TempDir dir;
  // --match: a subset, so the up-front estimate does not refuse it; the
  // guard is what stops it.
  std::vector<std::string> cmd = {"redis", "copy", "--from", from, "--to", to, "--state",
                                  dir.File("s.db"), "--match", "mem:*", "--scan-count", "50",
                                  "--max-keys-per-sec", "2000", "--prepare-target"};
  RunResult stopped = RunFerry(cmd);
  EXPECT_EQ(stopped.exit_code, 9) << stopped.out << stopped.err;
  EXPECT_THAT(stopped.err, HasSubstr("the copy stopped before the target would evict keys"));
  EXPECT_THAT(stopped.err, HasSubstr("resumes from its checkpoints"));
  EXPECT_THAT(stopped.err, Not(HasSubstr("OOM")));
  auto size = Exec(*dst, {{"DBSIZE"}});
  ASSERT_EQ(size.size(), 1u);
  EXPECT_GT(size[0].integer, 0);
  EXPECT_LT(size[0].integer, 8000);
  EXPECT_LE(UsedMemory(*dst), limit);
  EXPECT_EQ(ConfigGet(*dst, "lazyfree-lazy-eviction"), "no") << "put back after the stop";

  // Room again: the same command resumes and finishes.
  Exec(*dst, {{"CONFIG", "SET", "maxmemory", "0"}});
  cmd.push_back("--json");
  RunResult resumed = RunFerry(cmd);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  auto done = LastJson(resumed.out);
  EXPECT_EQ(done["resumed"], true) << resumed.out;
  EXPECT_EQ(done["prepared_target"].size(), 3u) << resumed.out;  // the three lazyfree settings
  size = Exec(*dst, {{"DBSIZE"}});
  ASSERT_EQ(size.size(), 1u);
  EXPECT_EQ(size[0].integer, 8000);
  EXPECT_EQ(ConfigGet(*dst, "lazyfree-lazy-eviction"), "no") << "put back after the copy";

  Exec(*dst, {{"CONFIG", "SET", "maxmemory", old_max},
             {"CONFIG", "SET", "maxmemory-policy", old_policy},
             {"CONFIG", "SET", "lazyfree-lazy-eviction", old_lazy}});
  Flush(*src);
  Flush(*dst);
}

// --follow: a writer changes, adds, expires and deletes keys while the copy
// scans and after; once the writer stops and the lag is 0, SIGTERM ends the
// copy with exit 0, verify finds the two identical, and the source's
// notify-keyspace-events is back as it was.
TEST(RedisCopyTest, FollowKeepsTheTargetInStepWithAWriterUntilStopped) {
  std::string from = RedisUrl(), to = RedisClusterUrl();
  if (from.empty() || to.empty()) return;
  auto src = Open(from), dst = Open(to);
  ASSERT_TRUE(src && dst);
  Flush(*src);
  Flush(*dst);
  Exec(*src, {{"CONFIG", "SET", "notify-keyspace-events", ""}});
  std::vector<Command> seed;
  for (int i = 0; i < 20000; ++i) seed.push_back({"SET", fmt::format("f:{}", i), "0"});
  Exec(*src, seed);
  TempDir dir;
  const std::string out = dir.File("follow.out");
  int pid = ::ferry::testing::StartFerry({"redis", "copy", "--from", from, "--to", to, "--state",
                                          dir.File("s.db"), "--follow", "--max-keys-per-sec",
                                          "8000", "--scan-count", "100"},
                                         out);
  // The writer: 3 s of changes, during the scan (2.5 s at 8000 keys/s) and after.
  auto writer_src = Open(from);
  ASSERT_TRUE(writer_src);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  int round = 0;
  while (std::chrono::steady_clock::now() < until) {
    ++round;
    const int k = (round * 7919) % 20000;
    Exec(*writer_src, {{"SET", fmt::format("f:{}", k), std::to_string(round)},
                       {"SET", fmt::format("new:{}", round), "x", "PX", "600000"},
                       {"DEL", fmt::format("f:{}", (k + 1) % 20000)},
                       {"HSET", "h:live", fmt::format("r{}", round), "1"},
                       {"SET", fmt::format("short:{}", round), "y", "PX", "50"}});
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Wait (bounded) until ferry reports that it has caught up after the writer.
  bool caught_up = false;
  for (int i = 0; i < 300 && !caught_up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::string err = ReadFile(out + ".err");
    const size_t last = err.rfind("following:");
    caught_up = last != std::string::npos && err.find("lag 0 keys", last) != std::string::npos &&
                i > 20;
  }
  EXPECT_TRUE(caught_up) << ReadFile(out + ".err");
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(::ferry::testing::WaitFerry(pid), 0) << ReadFile(out) << ReadFile(out + ".err");
  EXPECT_THAT(ReadFile(out), HasSubstr("followed the source until stopped"));
  EXPECT_GT(round, 50);
  // The short-lived keys may expire between the last copy and verify.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  RunResult v = RunFerry({"redis", "verify", "--from", from, "--to", to});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_THAT(v.out, HasSubstr("identical"));
  EXPECT_EQ(ConfigGet(*src, "notify-keyspace-events"), "");
  Flush(*src);
  Flush(*dst);
}

TEST(RedisCopyTest, BadInputIsRefusedBeforeAnyKeyIsWritten) {
  std::string from = RedisUrl(), to = Redis2Url(), acl = RedisAclUrl(), cluster = RedisClusterUrl();
  if (from.empty() || to.empty() || acl.empty() || cluster.empty()) return;
  auto src = Open(from), dst = Open(to), cl = Open(cluster);
  ASSERT_TRUE(src && dst && cl);
  Flush(*src);
  Flush(*dst);
  Flush(*cl);
  Exec(*src, {{"SET", "a", "1"}, {"SET", "b", "2"}});
  TempDir dir;
  auto copy = [&](const std::string& f, const std::string& t, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"redis", "copy", "--from", f, "--to", t, "--state", dir.File("s.db")};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunFerry(args);
  };
  RunResult unreachable = copy(from, "redis://127.0.0.1:1/0");
  EXPECT_EQ(unreachable.exit_code, 5) << unreachable.err;
  std::string wrong = acl.substr(0, acl.find(kAclSecret)) + "wrong-pw-77" + acl.substr(acl.find('@'));
  RunResult denied = copy(wrong, to);
  EXPECT_EQ(denied.exit_code, 6) << denied.err;
  EXPECT_THAT(denied.err, Not(HasSubstr("wrong-pw-77")));
  RunResult same = copy(from, from);
  EXPECT_EQ(same.exit_code, 8) << same.err;
  EXPECT_THAT(same.err, HasSubstr("same Redis server"));
  RunResult nothing = copy(from, to, {"--match", "nomatch:*"});
  EXPECT_EQ(nothing.exit_code, 7) << nothing.err;

  // A cluster with a slot no master serves.
  const SlotMap& map = cl->slot_map();
  ClusterNode owner = map.nodes()[map.Owner(0)];
  auto owner_node = cl->Node(owner);
  ASSERT_TRUE(owner_node.ok());
  ASSERT_TRUE((*owner_node)->RunOk({"CLUSTER", "DELSLOTS", "0"}).ok());
  RunResult failed_slots = copy(from, cluster);
  ASSERT_TRUE((*owner_node)->RunOk({"CLUSTER", "ADDSLOTS", "0"}).ok());
  EXPECT_EQ(failed_slots.exit_code, 9) << failed_slots.err;
  EXPECT_THAT(failed_slots.err, HasSubstr("cluster_state"));
  // Wait for the cluster to be whole again for the tests after this one.
  for (int i = 0; i < 100; ++i) {
    auto info = (*owner_node)->RunOk({"CLUSTER", "INFO"});
    if (info.ok() && info->str.find("cluster_state:ok") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Nothing reached the targets.
  EXPECT_EQ(Exec(*dst, {{"DBSIZE"}})[0].integer, 0);
  for (const ClusterNode& m : cl->masters()) {
    auto n = cl->Node(m);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ((*n)->RunOk({"DBSIZE"})->integer, 0) << m.address();
  }
  // The source was never changed.
  EXPECT_EQ(Exec(*src, {{"DBSIZE"}})[0].integer, 2);

  // A replica target: make the second server a replica for a moment.
  auto src_node = src->Node(src->masters().front());
  ASSERT_TRUE(src_node.ok());
  auto dst_node = dst->Node(dst->masters().front());
  ASSERT_TRUE(dst_node.ok());
  ASSERT_TRUE((*dst_node)->RunOk({"REPLICAOF", "127.0.0.1", std::to_string((*src_node)->port())}).ok());
  RunResult replica = copy(from, to);
  ASSERT_TRUE((*dst_node)->RunOk({"REPLICAOF", "NO", "ONE"}).ok());
  ASSERT_TRUE((*dst_node)->RunOk({"FLUSHALL"}).ok());  // what it copied as a replica
  EXPECT_EQ(replica.exit_code, 9) << replica.err;
  EXPECT_THAT(replica.err, HasSubstr("replica"));

}

}  // namespace
}  // namespace ferry::redis
