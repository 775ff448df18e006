#include "migrate/scan_cache.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "migrate/source.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

class ScanCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ferry-scan-cache-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/m";
    cache_ = root_ + "/cache";
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(root_); }

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

// Large directories are listed and stat'ed by two threads in batches: a
// change to any one file, whichever batch it falls in, must change the
// signature, and an unchanged directory must keep it.
TEST_F(ScanCacheTest, LargeDirectorySignatureSeesEveryBatch) {
  constexpr int kFiles = 2600;  // several batches of 512 and a short last one
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

}  // namespace
}  // namespace ferry
