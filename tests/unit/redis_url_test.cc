// redis:// and redis+cluster:// URLs as the Redis driver reads them
// (src/drivers/redis/redis_node.h): hosts, ACL user, password, database.
#include <gtest/gtest.h>

#include "core/url.h"
#include "drivers/redis/redis_node.h"

namespace ferry::redis {
namespace {

TEST(RedisUrlTest, ClusterUrlKeepsEverySeedAndHidesThePassword) {
  auto url = Url::Parse("redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001,node3");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->scheme(), "redis");
  EXPECT_TRUE(url->redis_cluster());
  EXPECT_FALSE(url->tls());
  EXPECT_EQ(url->Redacted().find("s%40cret"), std::string::npos);
  auto hosts = HostsFromUrl(*url);
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  ASSERT_EQ(hosts->size(), 3u);
  EXPECT_EQ((*hosts)[0], std::make_pair(std::string("10.0.0.1"), 7000));
  EXPECT_EQ((*hosts)[1], std::make_pair(std::string("10.0.0.2"), 7001));
  EXPECT_EQ((*hosts)[2], std::make_pair(std::string("node3"), 6379));
  Credentials c = CredentialsFromUrl(*url);
  EXPECT_EQ(c.user, "app");
  EXPECT_EQ(c.password, "s@cret");
  EXPECT_EQ(c.database, 0);
}

// A cluster URL with a single seed keeps its port (it was read as 6379).
TEST(RedisUrlTest, ClusterUrlWithOneSeedKeepsItsPort) {
  auto url = Url::Parse("redis+cluster://127.0.0.1:31001");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto hosts = HostsFromUrl(*url);
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  ASSERT_EQ(hosts->size(), 1u);
  EXPECT_EQ((*hosts)[0], std::make_pair(std::string("127.0.0.1"), 31001));
}

TEST(RedisUrlTest, StandaloneUserPasswordAndDatabase) {
  auto url = Url::Parse("redis://:only-pass@127.0.0.1:6380/4");
  ASSERT_TRUE(url.ok());
  EXPECT_FALSE(url->redis_cluster());
  Credentials c = CredentialsFromUrl(*url);
  EXPECT_EQ(c.user, "");
  EXPECT_EQ(c.password, "only-pass");
  EXPECT_EQ(c.database, 4);
  auto hosts = HostsFromUrl(*url);
  ASSERT_TRUE(hosts.ok());
  EXPECT_EQ((*hosts)[0], std::make_pair(std::string("127.0.0.1"), 6380));
  auto tls = Url::Parse("rediss+cluster://h:1");
  ASSERT_TRUE(tls.ok());
  EXPECT_TRUE(tls->tls());
  EXPECT_TRUE(tls->redis_cluster());
}

TEST(RedisUrlTest, BadSeedPortIsInvalidArgument) {
  auto url = Url::Parse("redis+cluster://h1:7000,h2:notaport");
  ASSERT_TRUE(url.ok());
  auto hosts = HostsFromUrl(*url);
  ASSERT_FALSE(hosts.ok());
  EXPECT_EQ(hosts.status().code(), StatusCode::kInvalidArgument);
}

// rediss:// TLS options (drivers/redis/redis_tls.h) and their aliases.
TEST(RedisUrlTest, TlsOptionsAreReadFromTheQuery) {
  auto url = Url::Parse("rediss://:pw@h:6380/0?tls_ca=/ca.pem&tls_cert=/c.pem&tls_key=/k.pem");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  auto o = TlsOptionsFromUrl(*url);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->ca_file, "/ca.pem");
  EXPECT_EQ(o->cert_file, "/c.pem");
  EXPECT_EQ(o->key_file, "/k.pem");
  EXPECT_FALSE(o->insecure);
  Credentials c = CredentialsFromUrl(*url);
  EXPECT_TRUE(c.tls);
  EXPECT_EQ(c.tls_options.ca_file, "/ca.pem");

  url = Url::Parse("rediss+cluster://h1:7000,h2:7000?cacert=/a.pem&insecure=true");
  ASSERT_TRUE(url.ok());
  o = TlsOptionsFromUrl(*url);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->ca_file, "/a.pem");
  EXPECT_TRUE(o->insecure);
}

TEST(RedisUrlTest, BadTlsOptionsAreInvalidArgument) {
  for (const char* text : {"rediss://h?tls_insecure=maybe", "rediss://h?tls_cert=/c.pem",
                           "rediss://h?tls_key=/k.pem", "redis://h?tls_ca=/ca.pem",
                           "redis+cluster://h1:1,h2:2?tls_insecure=1"}) {
    auto url = Url::Parse(text);
    ASSERT_TRUE(url.ok()) << text;
    auto o = TlsOptionsFromUrl(*url);
    ASSERT_FALSE(o.ok()) << text;
    EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument) << text;
  }
  auto plain = Url::Parse("redis://h:6379/0");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(TlsOptionsFromUrl(*plain).ok());
}

}  // namespace
}  // namespace ferry::redis
