#include "migrate/scan_cache.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "migrate/source.h"
#include "test_util.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

class ScanCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path();
    dir_ = root_ + "/m";
    cache_ = root_ + "/cache";
    fs::create_directories(dir_);
  }

  void Write(const std::string& name, const std::string& text) {
    fs::create_directories(fs::path(dir_ + "/" + name).parent_path());
    std::ofstream(dir_ + "/" + name, std::ios::binary) << text;
  }

  MigrationSet Scan(bool metadata_only) {
    ScanOptions o;
    o.metadata_only = metadata_only;
    o.cache_dir = cache_;
    auto r = ScanDirectory(dir_, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : MigrationSet();
  }

  ::ferry::testing::TempDir tmp_;
  std::string root_, dir_, cache_;
};

TEST_F(ScanCacheTest, CachedMetadataEqualsAFullScan) {
  Write("1_a.sql", "-- ferry:up\nCREATE TABLE a (id int);\n-- ferry:down\nDROP TABLE a;\n");
  Write("2_b.up.sql", "CREATE TABLE b (id int);\n");
  Write("2019-02-26-002946_c/up.sql", "CREATE TABLE c (id int);\n");
  Write("2019-02-26-002946_c/down.sql", "DROP TABLE c;\n");
  Write("R__views.sql", "CREATE VIEW v AS SELECT 1;\n");
  MigrationSet full = Scan(false);
  EXPECT_TRUE(!fs::exists(cache_) || fs::is_empty(cache_)) << "full scans do not write the cache";
  MigrationSet first = Scan(true);  // full scan, then saved
  auto sig = DirectorySignature(dir_);
  ASSERT_TRUE(sig.has_value());
  auto cached = LoadScanCache(cache_, dir_, *sig);
  ASSERT_TRUE(cached.has_value()) << "the second metadata scan is answered from the cache";
  ASSERT_EQ(cached->migrations.size(), full.migrations.size());
  for (size_t i = 0; i < full.migrations.size(); ++i) {
    const Migration& a = full.migrations[i];
    const Migration& b = cached->migrations[i];
    EXPECT_EQ(a.version.text(), b.version.text());
    EXPECT_EQ(a.description, b.description);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.layout, b.layout);
    EXPECT_EQ(a.script, b.script);
    EXPECT_EQ(a.up.path, b.up.path);
    EXPECT_EQ(a.up.first_line, b.up.first_line);
    EXPECT_EQ(a.down.has_value(), b.down.has_value());
    EXPECT_EQ(a.checksum, b.checksum);
    EXPECT_TRUE(b.up.sql.empty()) << "metadata only: no SQL";
  }
  EXPECT_EQ(Scan(true).migrations.size(), full.migrations.size());
}

TEST_F(ScanCacheTest, AnyChangeToAFileMissesTheCache) {
  Write("1_a.sql", "CREATE TABLE a (id int);\n");
  std::string before = Scan(true).migrations.at(0).checksum;
  auto old_sig = DirectorySignature(dir_);
  Write("1_a.sql", "CREATE TABLE a (id bigint);\n");  // same name, new content
  auto new_sig = DirectorySignature(dir_);
  ASSERT_TRUE(old_sig && new_sig);
  EXPECT_NE(*old_sig, *new_sig);
  EXPECT_FALSE(LoadScanCache(cache_, dir_, *new_sig).has_value());
  std::string after = Scan(true).migrations.at(0).checksum;
  EXPECT_NE(before, after);
  EXPECT_EQ(after, ChecksumV1("CREATE TABLE a (id bigint);\n"));

  Write("2_b.sql", "CREATE TABLE b (id int);\n");  // a new file
  EXPECT_EQ(Scan(true).migrations.size(), 2u);
  Write("2019-02-26-002946_c/up.sql", "CREATE TABLE c (id int);\n");
  EXPECT_EQ(Scan(true).migrations.size(), 3u);
  Write("2019-02-26-002946_c/up.sql", "CREATE TABLE c (id bigint);\n");  // inside a folder
  // Versions sort numerically: the diesel timestamp is the last migration.
  EXPECT_EQ(Scan(true).migrations.back().checksum, ChecksumV1("CREATE TABLE c (id bigint);\n"));
}

// Large directories are stat'ed by two threads, each taking half of the
// names: a change to any one file, whichever half it falls in, must change
// the signature, and an unchanged directory must keep it.
TEST_F(ScanCacheTest, LargeDirectorySignatureSeesEveryBatch) {
  constexpr int kFiles = 2600;  // above the two-thread threshold (2,048)
  for (int i = 0; i < kFiles; ++i) {
    Write(fmt::format("{:05d}_t.sql", i), fmt::format("CREATE TABLE t{:05d} (id int);\n", i));
  }
  auto sig = DirectorySignature(dir_);
  ASSERT_TRUE(sig.has_value());
  EXPECT_EQ(DirectorySignature(dir_), sig) << "nothing changed";
  for (int i : {0, 511, 512, 1300, 2047, 2048, 2599}) {
    const std::string path = fmt::format("{}/{:05d}_t.sql", dir_, i);
    // Same size, another byte, and a visibly different mtime.
    const auto mtime = fs::last_write_time(path);
    Write(fmt::format("{:05d}_t.sql", i), fmt::format("CREATE TABLE t{:05d} (id INT);\n", i));
    fs::last_write_time(path, mtime + std::chrono::seconds(1));
    auto changed = DirectorySignature(dir_);
    ASSERT_TRUE(changed.has_value());
    EXPECT_NE(*changed, *sig) << "file " << i << " was edited in place";
    sig = changed;
  }
  fs::remove(fmt::format("{}/{:05d}_t.sql", dir_, 1999));
  auto removed = DirectorySignature(dir_);
  ASSERT_TRUE(removed.has_value());
  EXPECT_NE(*removed, *sig) << "a file was removed";
  // And the metadata scan of a large directory equals a full one.
  MigrationSet full = Scan(false);
  EXPECT_EQ(full.migrations.size(), static_cast<size_t>(kFiles - 1));
  (void)Scan(true);
  MigrationSet cached = Scan(true);
  ASSERT_EQ(cached.migrations.size(), full.migrations.size());
  for (size_t i = 0; i < full.migrations.size(); ++i) {
    EXPECT_EQ(cached.migrations[i].checksum, full.migrations[i].checksum);
  }
}

TEST_F(ScanCacheTest, CorruptOrForeignCacheIsIgnored) {
  Write("1_a.sql", "CREATE TABLE a (id int);\n");
  Scan(true);
  for (const auto& f : fs::directory_iterator(cache_)) {
    std::ofstream(f.path(), std::ios::trunc) << "garbage\n";
  }
  MigrationSet again = Scan(true);
  ASSERT_EQ(again.migrations.size(), 1u);
  EXPECT_EQ(again.migrations[0].checksum, ChecksumV1("CREATE TABLE a (id int);\n"));
}

// ---- the listing memo -------------------------------------------------------------

std::vector<std::string> ListMemos(const std::string& cache) {
  std::vector<std::string> found;
  if (!fs::exists(cache)) return found;
  for (const auto& e : fs::directory_iterator(cache)) {
    if (e.path().filename().string().rfind("list-", 0) == 0) found.push_back(e.path().string());
  }
  return found;
}

// Enough for the directory's next timestamp to differ from the memoized one
// (the kernel stamps with a clock that ticks every few ms).
void NextTick() { std::this_thread::sleep_for(std::chrono::milliseconds(30)); }

TEST_F(ScanCacheTest, ListingMemoGivesTheSameSignatureAndSeesEveryChange) {
  Write("1_a.sql", "CREATE TABLE a (id int);\n");
  Write("2_b.sql", "CREATE TABLE b (id int);\n");
  Write("2019-02-26-002946_c/up.sql", "CREATE TABLE c (id int);\n");
  const SignatureOptions memo{cache_, std::chrono::nanoseconds(0)};
  NextTick();
  // Each check: the memo-backed signature equals a fresh listing's, and
  // differs from the previous one.
  std::optional<uint64_t> previous;
  auto check = [&](const std::string& what) {
    auto with_memo = DirectorySignature(dir_, memo);
    auto listed = DirectorySignature(dir_);
    ASSERT_TRUE(with_memo && listed) << what;
    EXPECT_EQ(*with_memo, *listed) << what;
    if (previous) {
      EXPECT_NE(*with_memo, *previous) << what;
    }
    EXPECT_EQ(DirectorySignature(dir_, memo), with_memo) << what << ", from the memo";
    previous = with_memo;
    NextTick();
  };
  check("first run");
  ASSERT_EQ(ListMemos(cache_).size(), 1u) << "a settled directory's names are memoized";
  Write("3_c.sql", "CREATE TABLE c2 (id int);\n");
  check("a file added");
  fs::rename(dir_ + "/3_c.sql", dir_ + "/3_d.sql");
  check("a file renamed");
  fs::remove(dir_ + "/2_b.sql");
  check("a file removed");
  Write("1_a.sql", "CREATE TABLE a (id bigint);\n");
  check("a file edited in place");
  Write("2019-02-26-002946_c/down.sql", "DROP TABLE c;\n");
  check("a file added in a diesel folder");
  fs::remove_all(dir_ + "/2019-02-26-002946_c");
  check("a diesel folder removed");
}

// The memo is what a run with a matching stamp goes by: names it leaves out
// are not looked at (so it must hold exactly what was listed).
TEST_F(ScanCacheTest, ListingMemoIsUsedWhileTheStampHolds) {
  Write("1_a.sql", "CREATE TABLE a (id int);\n");
  Write("2_b.sql", "CREATE TABLE b (id int);\n");
  const SignatureOptions memo{cache_, std::chrono::nanoseconds(0)};
  NextTick();
  auto full = DirectorySignature(dir_, memo);
  auto memos = ListMemos(cache_);
  ASSERT_EQ(memos.size(), 1u);
  std::string text = ReadCacheFile(memos[0]).value_or("");
  size_t at = text.find("2_b.sql\n");
  ASSERT_NE(at, std::string::npos) << text;
  text.erase(at, 8);
  std::ofstream(memos[0], std::ios::binary | std::ios::trunc) << text;
  EXPECT_NE(DirectorySignature(dir_, memo), full) << "the doctored memo was used";
  // A corrupt memo is ignored (and replaced).
  std::ofstream(memos[0], std::ios::binary | std::ios::trunc) << "ferry-list-memo v1\n\tx\n";
  EXPECT_EQ(DirectorySignature(dir_, memo), full);
  EXPECT_EQ(DirectorySignature(dir_, memo), full);
}

// A directory changed a moment ago could change again within the same
// timestamp tick unnoticed: its names are not memoized until it settles.
TEST_F(ScanCacheTest, RecentlyChangedDirectoryIsNotMemoized) {
  Write("1_a.sql", "CREATE TABLE a (id int);\n");
  auto sig = DirectorySignature(dir_, SignatureOptions{cache_});  // settle: 2 s
  ASSERT_TRUE(sig.has_value());
  EXPECT_TRUE(ListMemos(cache_).empty());
  EXPECT_EQ(DirectorySignature(dir_), sig);
}

}  // namespace
}  // namespace ferry
