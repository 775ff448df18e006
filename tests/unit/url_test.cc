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
  EXPECT_EQ(u->password().Reveal(), "s3cret");
  EXPECT_EQ(u->ConnectionText(), "postgresql://app@db.example:6543/shop?sslmode=require");
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

// A password that holds '#', '/', '?' and spaces, in every form a URL can
// carry it: the driver gets it whole; no text the Url keeps holds any of it.
constexpr const char* kOddSecret = "pa#ss/wo?rd x";

void ExpectSeparated(const std::string& text, const std::string& secret) {
  SCOPED_TRACE(text);
  auto u = Url::Parse(text);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_TRUE(u->has_password());
  EXPECT_EQ(u->password().Reveal(), secret);
  for (const std::string& shown : {u->Redacted(), u->ConnectionText()}) {
    EXPECT_EQ(shown.find("pa#ss"), std::string::npos) << shown;
    EXPECT_EQ(shown.find("wo?rd"), std::string::npos) << shown;
    EXPECT_EQ(shown.find("pa%23ss"), std::string::npos) << shown;
  }
  for (const auto& [k, v] : u->params()) {
    EXPECT_NE(k, "password");
    EXPECT_EQ(v.find("pa#ss"), std::string::npos) << k;
  }
  EXPECT_EQ(u->host(), "h");
  EXPECT_EQ(u->database(), "db");
}

TEST(UrlSecretTest, EveryFormKeepsThePasswordApart) {
  ExpectSeparated("postgres://u:pa%23ss%2Fwo%3Frd%20x@h:5432/db?sslmode=disable", kOddSecret);
  ExpectSeparated("postgres://u:pa#ss%2Fwo?rd%20x@h:5432/db?sslmode=disable", kOddSecret);
  ExpectSeparated("postgres://u@h/db?password=pa%23ss%2Fwo%3Frd%20x&sslmode=disable", kOddSecret);
  ExpectSeparated("postgres://u@h/db?sslmode=disable&password=pa%23ss%2Fwo%3Frd%20x", kOddSecret);
  ExpectSeparated("host=h dbname=db user=u password='pa#ss/wo?rd x' sslmode=disable", kOddSecret);
  ExpectSeparated("host=h dbname=db user=u password=pa#ss/wo?rd\\ x sslmode=disable", kOddSecret);
  ExpectSeparated("password = 'pa#ss/wo?rd x' host=h dbname=db", kOddSecret);
}

TEST(UrlSecretTest, ConnectionTextCutsTheSecretOut) {
  auto kv = Url::Parse("host=h user=u password=my\\ escaped\\ secret dbname=db");
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  EXPECT_EQ(kv->password().Reveal(), "my escaped secret");
  EXPECT_EQ(kv->Redacted(), "host=h user=u password=*** dbname=db");
  EXPECT_EQ(kv->ConnectionText(), "host=h user=u dbname=db");
  auto query = Url::Parse("postgres://u@h/db?password=x&sslmode=disable");
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query->ConnectionText(), "postgres://u@h/db?sslmode=disable");
  auto last = Url::Parse("postgres://u@h/db?sslmode=disable&password=x");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->ConnectionText(), "postgres://u@h/db?sslmode=disable");
  EXPECT_EQ(last->Redacted(), "postgres://u@h/db?sslmode=disable&password=***");
  auto redis = Url::Parse("redis://:pw@127.0.0.1:6390/2");
  ASSERT_TRUE(redis.ok());
  EXPECT_EQ(redis->password().Reveal(), "pw");
  EXPECT_EQ(redis->ConnectionText(), "redis://@127.0.0.1:6390/2");
}

TEST(UrlSecretTest, SslPasswordIsASecretToo) {
  auto kv = Url::Parse("host=h dbname=db sslkey=k.pem sslpassword='key pass' user=u");
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  EXPECT_FALSE(kv->has_password());
  EXPECT_EQ(kv->ssl_password().Reveal(), "key pass");
  EXPECT_EQ(kv->params().count("sslpassword"), 0u);
  EXPECT_EQ(kv->Redacted(), "host=h dbname=db sslkey=k.pem sslpassword=*** user=u");
  EXPECT_EQ(kv->ConnectionText(), "host=h dbname=db sslkey=k.pem user=u");
  auto uri = Url::Parse("postgres://u@h/db?sslpassword=key%20pass");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->ssl_password().Reveal(), "key pass");
  EXPECT_EQ(uri->Redacted(), "postgres://u@h/db?sslpassword=***");
}

TEST(UrlSecretTest, ParseErrorsNeverEchoTheText) {
  // A raw '/' cannot be told from the path: the parse fails, quoting nothing.
  for (const char* text : {"postgres://u:pa/sXw@h/db", "postgres://u:12/sXw@h/db",
                           "postgres://u:pa/sX?w@h/db", "postgres://u:12/sX?w@h/db",
                           "postgres://u:s3cr3t@h:99999/db", "postgres://u:s3cr3t@[::1/db",
                           "redis://:s3cr3t@h/abc",
                           "host=h password=my s3cr3t", "host=h password='s3cr3t",
                           "s3cr3t and more words"}) {
    SCOPED_TRACE(text);
    auto u = Url::Parse(text);
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
    for (const char* part : {"pa/sX", "sXw", "s3cr3t", "12/"}) {
      EXPECT_EQ(u.status().ToString().find(part), std::string::npos) << u.status().ToString();
    }
  }
  auto slash = Url::Parse("postgres://u:pa/sXw@h/db");
  EXPECT_NE(slash.status().message().find("%2F"), std::string::npos) << slash.status().message();
}

TEST(RedactSecretsTest, EscapedSpacesSslPasswordAndRawCharacters) {
  EXPECT_EQ(RedactSecrets("host=h password=my\\ escaped\\ secret user=u"),
            "host=h password=*** user=u");
  EXPECT_EQ(RedactSecrets("host=h sslpassword=abc user=u"), "host=h sslpassword=*** user=u");
  EXPECT_EQ(RedactSecrets("postgres://u:pa#ss?wd@h/db failed"), "postgres://u:***@h/db failed");
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
