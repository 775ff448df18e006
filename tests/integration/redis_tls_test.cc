// Redis over TLS (rediss://): ferry's own TLS transport over OpenSSL (Debian's
// hiredis 0.14 has none), against the TLS-only Redis of
// scripts/test-servers.sh (FERRY_TEST_REDIS_TLS_URL: a password, a
// certificate signed by a throw-away CA given with ?tls_ca=).
//
// Every test FAILS when FERRY_TEST_REDIS_TLS_URL or FERRY_TEST_REDIS_URL is
// missing: a TLS feature that is never exercised must not pass quietly.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "drivers/redis/redis_client.h"
#include "test_util.h"

namespace ferry::redis {
namespace {

using ::ferry::testing::RunBinary;
using ::ferry::testing::RunFerry;
using ::ferry::testing::RunResult;
using ::ferry::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kTlsSecret = "ferry_tls_secret";  // scripts/test-servers.sh

std::string RequiredEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    ADD_FAILURE() << name << " is not set: start the servers with scripts/test-servers.sh "
                  << "(it starts a TLS Redis) and source DIR/env";
    return "";
  }
  return v;
}

// The TLS URL without its query ("rediss://:pw@127.0.0.1:P/0").
std::string WithoutQuery(const std::string& url) { return url.substr(0, url.find('?')); }

// A unique key prefix for this process and test.
std::string Prefix(const char* test) { return fmt::format("ferry-tls:{}:{}:", getpid(), test); }

std::unique_ptr<RedisClient> Open(const std::string& text) {
  auto url = Url::Parse(text);
  EXPECT_TRUE(url.ok()) << url.status().ToString();
  if (!url.ok()) return nullptr;
  auto client = RedisClient::Open(*url);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(*client) : nullptr;
}

void DeletePrefix(RedisClient& c, const std::string& prefix) {
  auto node = c.Node(c.masters().front());
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  auto keys = (*node)->RunOk({"KEYS", prefix + "*"});
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  for (const RedisReply& k : keys->elements) ASSERT_TRUE((*node)->RunOk({"DEL", k.str}).ok());
}

void ExpectNoSecret(const RunResult& r) {
  EXPECT_THAT(r.out, Not(HasSubstr(kTlsSecret)));
  EXPECT_THAT(r.err, Not(HasSubstr(kTlsSecret)));
}

TEST(RedisTlsTest, DoctorReportsTheServerOverVerifiedTls) {
  const std::string url = RequiredEnv("FERRY_TEST_REDIS_TLS_URL");
  ASSERT_FALSE(url.empty());
  RunResult r = RunFerry({"doctor", url});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("engine    redis 7"));
  EXPECT_THAT(r.out, HasSubstr("transport TLSv1."));
  EXPECT_THAT(r.out, HasSubstr("(certificate verified)"));
  ExpectNoSecret(r);
  r = RunFerry({"doctor", url, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_THAT(j["transport"].get<std::string>(), HasSubstr("certificate verified"));
  ExpectNoSecret(r);
}

// Many commands sent before any reply is read, and replies larger than one
// TLS record: the pipeline works as over a plain connection.
TEST(RedisTlsTest, PipelinesOverTls) {
  const std::string url = RequiredEnv("FERRY_TEST_REDIS_TLS_URL");
  ASSERT_FALSE(url.empty());
  auto c = Open(url);
  ASSERT_NE(c, nullptr);
  const std::string prefix = Prefix("pipeline");
  const std::string big(1 << 20, 'x');
  std::vector<Command> sets;
  std::vector<Command> gets;
  for (int i = 0; i < 500; ++i) {
    sets.push_back({"SET", prefix + std::to_string(i), i == 7 ? big : std::to_string(i)});
    gets.push_back({"GET", prefix + std::to_string(i)});
  }
  auto set = c->Pipeline(sets);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  auto got = c->Pipeline(gets);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 500u);
  EXPECT_EQ((*got)[7].str, big);
  EXPECT_EQ((*got)[499].str, "499");
  DeletePrefix(*c, prefix);
}

TEST(RedisTlsTest, CopiesFromPlainToTlsWithTtlsAndVerifies) {
  const std::string tls = RequiredEnv("FERRY_TEST_REDIS_TLS_URL");
  const std::string plain = RequiredEnv("FERRY_TEST_REDIS_URL");
  ASSERT_FALSE(tls.empty() || plain.empty());
  auto src = Open(plain);
  auto dst = Open(tls);
  ASSERT_TRUE(src != nullptr && dst != nullptr);
  const std::string prefix = Prefix("copy");
  auto seeded = src->Pipeline({{"SET", prefix + "a", "1"},
                               {"SET", prefix + "ttl", "2", "PX", "3600000"},
                               {"HSET", prefix + "h", "f", "v"},
                               {"RPUSH", prefix + "l", "x", "y"},
                               {"PEXPIRE", prefix + "l", "7200000"}});
  ASSERT_TRUE(seeded.ok()) << seeded.status().ToString();
  TempDir dir;
  RunResult r = RunFerry({"redis", "copy", "--from", plain, "--to", tls, "--match", prefix + "*",
                          "--state", dir.File("state.db")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  ExpectNoSecret(r);
  auto ttl = dst->Pipeline({{"PTTL", prefix + "ttl"}, {"PTTL", prefix + "l"},
                            {"PTTL", prefix + "a"}, {"HGET", prefix + "h", "f"}});
  ASSERT_TRUE(ttl.ok()) << ttl.status().ToString();
  EXPECT_GT((*ttl)[0].integer, 3000000);
  EXPECT_GT((*ttl)[1].integer, 7000000);
  EXPECT_EQ((*ttl)[2].integer, -1);
  EXPECT_EQ((*ttl)[3].str, "v");
  r = RunFerry({"redis", "verify", "--from", plain, "--to", tls, "--match", prefix + "*"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("identical: 4 keys checked"));
  ExpectNoSecret(r);
  DeletePrefix(*src, prefix);
  DeletePrefix(*dst, prefix);
}

// A certificate signed by another CA is refused, and the message says how
// to fix it; tls_insecure=1 connects anyway, with a warning.
TEST(RedisTlsTest, WrongCaIsRefusedWithTheFixAndInsecureConnects) {
  const std::string url = RequiredEnv("FERRY_TEST_REDIS_TLS_URL");
  ASSERT_FALSE(url.empty());
  TempDir dir;
  RunResult ca = RunBinary("/usr/bin/openssl", {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                                       "1", "-subj", "/CN=not the test CA", "-keyout",
                                       dir.File("other.key"), "-out", dir.File("other.crt")});
  ASSERT_EQ(ca.exit_code, 0) << ca.err;
  RunResult r = RunFerry({"doctor", WithoutQuery(url) + "?tls_ca=" + dir.File("other.crt")});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.err, HasSubstr("not trusted for host '127.0.0.1'"));
  EXPECT_THAT(r.err, HasSubstr("tls_ca=PATH"));
  EXPECT_THAT(r.err, HasSubstr("tls_insecure=1"));
  ExpectNoSecret(r);

  // No tls_ca: the system trust store does not know the throw-away CA.
  r = RunFerry({"doctor", WithoutQuery(url)});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.err, HasSubstr("not trusted"));
  ExpectNoSecret(r);

  r = RunFerry({"doctor", WithoutQuery(url) + "?tls_insecure=1"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("NOT verified"));
  EXPECT_THAT(r.err, HasSubstr("warning"));
  EXPECT_THAT(r.err, HasSubstr("verification is off"));
  ExpectNoSecret(r);
  r = RunFerry({"doctor", WithoutQuery(url) + "?insecure=true"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// rediss:// to a plain port and redis:// to the TLS port each say what is wrong.
TEST(RedisTlsTest, WrongSchemeForThePortIsExplained) {
  const std::string tls = RequiredEnv("FERRY_TEST_REDIS_TLS_URL");
  const std::string plain_port = RequiredEnv("FERRY_TEST_REDIS_PORT");
  ASSERT_FALSE(tls.empty() || plain_port.empty());
  auto parsed = Url::Parse(tls);
  ASSERT_TRUE(parsed.ok());
  RunResult r = RunFerry(
      {"doctor", fmt::format("rediss://:{}@127.0.0.1:{}/0?tls_insecure=1", kTlsSecret, plain_port)});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.err, HasSubstr("did not answer TLS"));
  EXPECT_THAT(r.err, HasSubstr("redis://"));
  ExpectNoSecret(r);

  r = RunFerry({"doctor", fmt::format("redis://:{}@127.0.0.1:{}/0", kTlsSecret, parsed->port())});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.err, HasSubstr("TLS port"));
  EXPECT_THAT(r.err, HasSubstr("rediss://"));
  ExpectNoSecret(r);

  // A TLS option on a plain URL is a mistake, not something to ignore.
  r = RunFerry({"doctor", fmt::format("redis://127.0.0.1:{}/0?tls_ca=/x.crt", plain_port)});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.err, HasSubstr("rediss://"));
}

}  // namespace
}  // namespace ferry::redis
