#include "core/config.h"
#include "core/toml_guard.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include "test_util.h"

namespace ferry {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
  }

  std::string WriteToml(const std::string& text) {
    std::string p = (dir_ / "ferry.toml").string();
    std::ofstream(p) << text;
    return p;
  }

  std::function<const char*(const char*)> Env() {
    return [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
  }

  ::ferry::testing::TempDir tmp_;
  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, DefaultsWhenNothingIsSet) {
  auto c = Config::Load(std::nullopt, false, Env(), {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->Get("database"), "sqlite:ferry.db");
  EXPECT_EQ(c->Get("dir"), "migrations");
  EXPECT_EQ(c->GetSetting("dir").source, ConfigSource::kDefault);
}

TEST_F(ConfigTest, FlagsBeatEnvironmentBeatFileBeatDefaults) {
  std::string path = WriteToml(
      "database = \"postgres://file/db\"\n"
      "dir = \"file_dir\"\n"
      "history_table = \"file_history\"\n"
      "[compat]\n"
      "min_version = \"1.0.0\"\n");
  env_["DATABASE_URL"] = "postgres://env/db";
  env_["FERRY_DIR"] = "env_dir";
  auto c = Config::Load(path, true, Env(), {{"database", "sqlite:flag.db"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->Get("database"), "sqlite:flag.db");
  EXPECT_EQ(c->GetSetting("database").source, ConfigSource::kFlag);
  EXPECT_EQ(c->Get("dir"), "env_dir");
  EXPECT_EQ(c->GetSetting("dir").origin, "FERRY_DIR");
  EXPECT_EQ(c->Get("history_table"), "file_history");
  EXPECT_EQ(c->GetSetting("history_table").origin, path + ":3");
  EXPECT_EQ(c->Get("compat.min_version"), "1.0.0");
  EXPECT_EQ(c->Get("log_level"), "warn");
}

TEST_F(ConfigTest, PartitionEntriesAreNotSettingsAndSingleBracketsAreNamed) {
  std::string path = WriteToml(
      "database = \"postgres://file/db\"\n"
      "[[partitions]]\n"
      "table = \"messages\"\n");
  auto c = Config::Load(path, true, Env(), {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->file_path(), path);

  path = WriteToml("[partitions]\ntable = \"messages\"\n");
  auto bad = Config::Load(path, true, Env(), {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(path + ":1: write each partitioned table as a "
                                        "[[partitions]] entry"),
            std::string::npos)
      << bad.status().message();
}

TEST_F(ConfigTest, FerryDatabaseUrlBeatsDatabaseUrl) {
  env_["DATABASE_URL"] = "postgres://generic/db";
  env_["FERRY_DATABASE_URL"] = "postgres://ferry/db";
  auto c = Config::Load(std::nullopt, false, Env(), {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->Get("database"), "postgres://ferry/db");
}

TEST_F(ConfigTest, UnknownKeyNamesFileAndLine) {
  std::string path = WriteToml("dir = \"m\"\ndatabse = \"x\"\n");
  auto c = Config::Load(path, true, Env(), {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(path + ":2: unknown setting 'databse'"), std::string::npos)
      << c.status().message();
}

TEST_F(ConfigTest, SyntaxErrorNamesLineAndColumn) {
  std::string path = WriteToml("dir = \"m\"\ndatabase = = 3\n");
  auto c = Config::Load(path, true, Env(), {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(path + ":2:"), std::string::npos) << c.status().message();
}

// toml++ 3.3 reaches __builtin_unreachable() on some non-ASCII characters
// outside strings (fuzz_config): they are refused first, naming the line.
TEST_F(ConfigTest, NonAsciiOutsideStringsIsRefusedWithItsLine) {
  std::string bad = WriteToml("dir = \"m\"\n# caf\xc3\xa9 is fine here\n\xef\xbb\xaf = 1\n");
  auto c = Config::Load(bad, true, Env(), {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(bad + ":3: a character outside ASCII"), std::string::npos)
      << c.status().message();
  std::string good =
      WriteToml("dir = \"caf\xc3\xa9\"  # \xc3\xa9\nhistory_table = '''\nx\xc3\xa9'''\n");
  auto ok = Config::Load(good, true, Env(), {});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->Get("dir"), "caf\xc3\xa9");
}

// The second spot fuzz_config found: a non-ASCII character after a backslash
// in a basic string, directly or after a line-ending backslash's line break.
TEST_F(ConfigTest, NonAsciiAfterABackslashIsRefusedWithItsLine) {
  for (std::string text : {std::string("dir = \"m\"\nhistory_table = \"\"\"\\\n  \xc3\xa9\"\"\"\n"),
                           std::string("dir = \"m\"\nhistory_table = \"\"\"\\ \xc2\xa1\"\"\"\n"),
                           std::string("dir = \"m\"\nhistory_table = \"\\\xc3\xa9\"\n")}) {
    std::string path = WriteToml(text);
    auto c = Config::Load(path, true, Env(), {});
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("after a backslash"), std::string::npos)
        << c.status().message();
    EXPECT_NE(c.status().message().find(path + ":"), std::string::npos) << c.status().message();
  }
  // A backslash escape followed by ASCII, then non-ASCII text, still reads.
  std::string good = WriteToml("history_table = \"\"\"\\\n  x\xc3\xa9\"\"\"\n");
  auto ok = Config::Load(good, true, Env(), {});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->Get("history_table"), "x\xc3\xa9");
}

// Found by fuzz_config: a quote after a bare value opens no string in
// toml++, so the character after it is outside quotes.
TEST_F(ConfigTest, NonAsciiAfterAQuoteThatOpensNoStringIsRefused) {
  std::string path = WriteToml("d=6\"\xca\xa4\n");
  auto c = Config::Load(path, true, Env(), {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("outside ASCII"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find(path + ":1"), std::string::npos) << c.status().message();
  // Strings where keys and values begin still take any UTF-8.
  const std::string good = "\"k\xc3\xa9y\" = 1\ndir = \"m\xc3\xa9\"\n"
                           "a = [\"x\",\n  'y\xc3\xa9', # note\n  \"z\xc3\xa9\"]\n"
                           "t = { u = \"v\xc3\xa9\" }\n[s.\"k\xc3\xa9\"]\nw = 'x'\n";
  EXPECT_EQ(TomlUnsafeSpot(good).line, 0);
  EXPECT_EQ(TomlUnsafeSpot("a = 1\nb = 2\"\xc3\xa9\"\n").line, 2);
  EXPECT_EQ(TomlUnsafeSpot("0=4=\"\xef\xb9\xbf").line, 1);
  EXPECT_EQ(TomlUnsafeSpot("a = 4[\"\xc3\xa9\"]").line, 1);
  EXPECT_EQ(TomlUnsafeSpot("[[x]]\nd = 1979-05-27T07:32:00Z\nf = [1.5, {g = 'h\xc3\xa9'}]\n").line, 0);
}

TEST_F(ConfigTest, MissingExplicitFileIsAnErrorImplicitIsNot) {
  std::string missing = (dir_ / "nope.toml").string();
  EXPECT_EQ(Config::Load(missing, true, Env(), {}).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Config::Load(missing, false, Env(), {}).ok());
}

TEST(DurationTest, HugeInfiniteAndNanAreRefused) {
  // A cast of these to int64 was undefined behaviour (fuzz_config).
  for (const char* text : {"6666666666666666666666666666666666666666666666666666666666666666666666666666h",
                           "inf", "nan", "1e300s", "367d", "9000h"}) {
    EXPECT_FALSE(ParseDurationMs(text).ok()) << text;
  }
  EXPECT_EQ(*ParseDurationMs("8760h"), 8760LL * 3600 * 1000);
}

TEST(DurationTest, Units) {
  EXPECT_EQ(*ParseDurationMs("250"), 250);
  EXPECT_EQ(*ParseDurationMs("250ms"), 250);
  EXPECT_EQ(*ParseDurationMs("5s"), 5000);
  EXPECT_EQ(*ParseDurationMs("1.5s"), 1500);
  EXPECT_EQ(*ParseDurationMs("2min"), 120000);
  EXPECT_EQ(*ParseDurationMs("1h"), 3600000);
  EXPECT_FALSE(ParseDurationMs("soon").ok());
  EXPECT_FALSE(ParseDurationMs("5 parsecs").ok());
}

}  // namespace
}  // namespace ferry
