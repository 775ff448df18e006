#include "core/url.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(UrlTest, PostgresUri) {
  auto u = Url::Parse("postgresql://app:s3cret@db.example:6543/shop?sslmode=require");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->scheme(), "postgres");
  EXPECT_EQ(u->user(), "app");
  EXPECT_EQ(u->host(), "db.example");
  EXPECT_EQ(u->port(), 6543);
  EXPECT_EQ(u->database(), "shop");
  EXPECT_EQ(u->params().at("sslmode"), "require");
  EXPECT_TRUE(u->has_password());
  EXPECT_EQ(u->Redacted(), "postgresql://app:***@db.example:6543/shop?sslmode=require");
  EXPECT_EQ(u->Raw().find("s3cret") != std::string::npos, true);
}

TEST(UrlTest, PasswordInQueryIsRedacted) {
  auto u = Url::Parse("postgres://app@h/db?password=hunter2&sslmode=disable");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->Redacted(), "postgres://app@h/db?password=***&sslmode=disable");
}

TEST(UrlTest, PercentEncodedUserAndIpv6) {
  auto u = Url::Parse("postgres://my%40user:p%40ss@[::1]:5433/db");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->user(), "my@user");
  EXPECT_EQ(u->host(), "::1");
  EXPECT_EQ(u->port(), 5433);
  EXPECT_EQ(u->Redacted().find("p%40ss"), std::string::npos);
}

TEST(UrlTest, KeyValueString) {
  auto u = Url::Parse("host=localhost port=5432 dbname=app user=me password='it\\'s x' sslmode=disable");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->scheme(), "postgres");
  EXPECT_TRUE(u->key_value_form());
  EXPECT_EQ(u->host(), "localhost");
  EXPECT_EQ(u->port(), 5432);
  EXPECT_EQ(u->database(), "app");
  EXPECT_EQ(u->user(), "me");
  EXPECT_TRUE(u->has_password());
  std::string r = u->Redacted();
  EXPECT_EQ(r.find("it"), std::string::npos) << r;
  EXPECT_NE(r.find("password=***"), std::string::npos) << r;
  EXPECT_NE(r.find("sslmode=disable"), std::string::npos) << r;
}

TEST(UrlTest, KeyValueUnterminatedQuote) {
  auto u = Url::Parse("host=x password='abc");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(u.status().message().find("abc"), std::string::npos);
}

TEST(UrlTest, SqliteForms) {
  auto rel = Url::Parse("sqlite:data/app.db");
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->scheme(), "sqlite");
  EXPECT_EQ(rel->database(), "data/app.db");
  auto abs = Url::Parse("sqlite:///var/lib/app.db");
  ASSERT_TRUE(abs.ok());
  EXPECT_EQ(abs->database(), "/var/lib/app.db");
  auto rel2 = Url::Parse("sqlite://app.db?busy_timeout=100");
  ASSERT_TRUE(rel2.ok());
  EXPECT_EQ(rel2->database(), "app.db");
  EXPECT_EQ(rel2->params().at("busy_timeout"), "100");
  auto mem = Url::Parse("sqlite::memory:");
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(mem->database(), ":memory:");
  auto bare = Url::Parse("ferry.db");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->scheme(), "sqlite");
  EXPECT_FALSE(Url::Parse("sqlite:").ok());
}

TEST(UrlTest, RedisForms) {
  auto u = Url::Parse("redis://:pw@127.0.0.1:6390/2");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme(), "redis");
  EXPECT_EQ(u->port(), 6390);
  EXPECT_EQ(u->database(), "2");
  EXPECT_FALSE(u->tls());
  EXPECT_EQ(u->Redacted(), "redis://:***@127.0.0.1:6390/2");
  auto tls = Url::Parse("rediss://cache.example");
  ASSERT_TRUE(tls.ok());
  EXPECT_TRUE(tls->tls());
  EXPECT_EQ(tls->port(), 6379);
  EXPECT_EQ(tls->database(), "0");
  EXPECT_FALSE(Url::Parse("redis://h/abc").ok());
}

TEST(UrlTest, UnknownSchemeParsesForRegistryToReject) {
  auto u = Url::Parse("mysql://root:pw@h/db");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme(), "mysql");
  EXPECT_EQ(u->Redacted(), "mysql://root:***@h/db");
}

TEST(UrlTest, BadInputs) {
  EXPECT_EQ(Url::Parse("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Url::Parse("just words").status().code(), StatusCode::kInvalidArgument);
  auto port = Url::Parse("postgres://u:secret@h:99999/db");
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().message().find("secret"), std::string::npos);
}

TEST(RedactSecretsTest, FreeText) {
  EXPECT_EQ(RedactSecrets("could not connect to postgres://a:b@c/d: refused"),
            "could not connect to postgres://a:***@c/d: refused");
  EXPECT_EQ(RedactSecrets("host=h password=xyz user=u"), "host=h password=*** user=u");
  EXPECT_EQ(RedactSecrets("no secrets here"), "no secrets here");
  EXPECT_EQ(RedactSecrets("mypassword is not a key"), "mypassword is not a key");
}

}  // namespace
}  // namespace ferry
