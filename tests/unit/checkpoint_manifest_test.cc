// The checkpoint manifest (ops/checkpoint/checkpoint.h): written text parses
// back to the same manifest; wrong fields are named; names are folder-safe.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ops/checkpoint/checkpoint.h"
#include "ops/checkpoint/checkpoint_internal.h"
#include "test_util.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;

CheckpointManifest Sample() {
  CheckpointManifest m;
  m.name = "pre-up-20260101_1-20261206T021603Z";
  m.engine = "postgres";
  m.database = "postgres://app:***@db/app";
  m.created_at = "2026-12-06T02:16:03.123Z";
  m.size_bytes = 12345;
  m.duration_ms = 67;
  m.scope = CheckpointScope::kTables;
  m.tables = {"public.orders", "billing.\"odd\""};
  m.migration_version = "20260101";
  m.dump_file = "dump.pgdump";
  m.tool = "pg_dump (PostgreSQL) 15.18";
  m.server_version = "15.18";
  m.note = "ferry up --checkpoint";
  return m;
}

TEST(CheckpointManifestTest, RoundTripKeepsEveryField) {
  const CheckpointManifest m = Sample();
  Result<CheckpointManifest> back = ParseManifest(ManifestToJson(m));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->name, m.name);
  EXPECT_EQ(back->engine, m.engine);
  EXPECT_EQ(back->database, m.database);
  EXPECT_EQ(back->created_at, m.created_at);
  EXPECT_EQ(back->size_bytes, m.size_bytes);
  EXPECT_EQ(back->duration_ms, m.duration_ms);
  EXPECT_EQ(back->scope, CheckpointScope::kTables);
  EXPECT_EQ(back->tables, m.tables);
  EXPECT_TRUE(back->schemas.empty());
  EXPECT_EQ(back->migration_version, m.migration_version);
  EXPECT_EQ(back->dump_file, m.dump_file);
  EXPECT_EQ(back->tool, m.tool);
  EXPECT_EQ(back->server_version, m.server_version);
  EXPECT_EQ(back->note, m.note);
}

TEST(CheckpointManifestTest, RefusesWhatItCannotTrust) {
  EXPECT_THAT(ParseManifest("not json").status().message(), HasSubstr("not a JSON object"));
  std::string text = ManifestToJson(Sample());
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return ParseManifest(t).status();
  };
  Status newer = with("\"format_version\": 1", "\"format_version\": 2");
  EXPECT_EQ(newer.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(newer.message(), HasSubstr("newer ferry"));
  EXPECT_THAT(with("\"scope\": \"tables\"", "\"scope\": \"cluster\"").message(),
              HasSubstr("unknown checkpoint scope 'cluster'"));
  EXPECT_THAT(with("\"size_bytes\": 12345", "\"size_bytes\": \"big\"").message(),
              HasSubstr("'size_bytes'"));
  EXPECT_THAT(with("\"dump_file\": \"dump.pgdump\"", "\"dump_file\": \"../../etc/x\"").message(),
              HasSubstr("'dump_file'"));
  EXPECT_THAT(with("\"name\": \"pre-up", "\"name\": \"/pre-up").message(),
              HasSubstr("is not usable"));
}

TEST(CheckpointManifestTest, NamesAreFolderSafe) {
  EXPECT_TRUE(CheckCheckpointName("before-orders.v2_x").ok());
  for (const char* bad : {"", ".hidden", "-flag", "a/b", "..", "a b", "ü"}) {
    EXPECT_EQ(CheckCheckpointName(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(CheckCheckpointName(std::string(101, 'a')).ok());
}

TEST(CheckpointManifestTest, WrittenAtomicallyAndListedOldestFirst) {
  ::ferry::testing::TempDir tmp;
  const std::filesystem::path dir = tmp.path();
  for (const char* name : {"b-newer", "a-older"}) {
    CheckpointManifest m = Sample();
    m.name = name;
    m.created_at = std::string(name) == "a-older" ? "2026-01-01T00:00:00.000Z"
                                                   : "2026-02-01T00:00:00.000Z";
    std::filesystem::create_directories(dir / name);
    ASSERT_TRUE(checkpoint::WriteManifest((dir / name).string(), m).ok());
    EXPECT_FALSE(std::filesystem::exists(dir / name / "manifest.json.tmp"));
  }
  std::filesystem::create_directories(dir / "unfinished");  // no manifest yet: not listed
  Result<std::vector<CheckpointManifest>> all = ListCheckpoints(dir.string());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "a-older");
  Result<std::vector<std::string>> pruned = PruneCheckpoints(dir.string(), 1);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, std::vector<std::string>{"a-older"});
  EXPECT_EQ(PruneCheckpoints(dir.string(), 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadCheckpoint(dir.string(), "a-older").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace ferry
