// SQLite read-only commands (issue 21 item 11): status, history, validate,
// verify and a copy's source never create a database, name a mistyped
// path, and read a read-only file in a read-only directory without
// ?mode=ro. Checks hold for root (who may write read-only files): the
// directory's listing (names, sizes, mtimes) must not change, and a
// read-only connection refuses writes whatever the file's permissions.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;

std::string Show(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "--- stderr:\n" + r.err;
}

std::string Listing(const std::string& dir) {
  std::vector<std::string> lines;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    struct stat st {};
    stat(e.path().c_str(), &st);
    lines.push_back(e.path().filename().string() + " " + std::to_string(st.st_size) + " " +
                    std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

class TrustSqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directory(dir_.File("data"));
    dir_.Write("migrations/0001_init.sql", "CREATE TABLE t (id integer PRIMARY KEY, v text);\n"
                                           "INSERT INTO t VALUES (1, 'a'), (2, 'b');\n");
  }
  void TearDown() override {
    chmod(dir_.File("data").c_str(), 0755);
    chmod(dir_.File("data/app.db").c_str(), 0644);
    chmod(dir_.File("data/plain.db").c_str(), 0644);
  }
  RunResult Ferry(const std::string& db, std::vector<std::string> args) {
    std::vector<std::string> all = {"--database", db, "--dir", "migrations"};
    all.insert(all.end(), args.begin(), args.end());
    return RunFerry(all, {}, dir_.path());
  }

  TempDir dir_;
};

TEST_F(TrustSqliteTest, MistypedPathIsAnErrorAndNoFileAppears) {
  const std::string typo = "sqlite:data/tyop.db";
  const std::string before = Listing(dir_.File("data"));
  for (const char* cmd : {"status", "history", "validate"}) {
    RunResult r = Ferry(typo, {cmd});
    EXPECT_EQ(r.exit_code, 7) << cmd << "\n" << Show(r);
    EXPECT_THAT(r.err, HasSubstr("tyop.db")) << Show(r);
    EXPECT_EQ(Listing(dir_.File("data")), before) << cmd << " created a file";
  }
  RunResult r = RunFerry({"verify", "--from", typo, "--to", "sqlite:data/other.db", "--table", "t"},
                         {}, dir_.path());
  EXPECT_EQ(r.exit_code, 7) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("tyop.db")) << Show(r);
  r = RunFerry({"copy", "--from", typo, "--to", "sqlite:data/other.db", "--table", "t",
                "--create-tables"},
               {}, dir_.path());
  EXPECT_EQ(r.exit_code, 7) << Show(r);
  EXPECT_THAT(r.err, HasSubstr("tyop.db")) << Show(r);
  EXPECT_EQ(Listing(dir_.File("data")), before);
}

TEST_F(TrustSqliteTest, ReadOnlyFileInReadOnlyDirectoryIsReadAndLeftAlone) {
  const std::string db = "sqlite:data/app.db";
  RunResult up = Ferry(db, {"up"});
  ASSERT_EQ(up.exit_code, 0) << Show(up);
  // A second file in rollback-journal mode: a read-write open by ferry
  // turns a file to WAL (rewriting its header), which root could do to a
  // read-only file; a read-only open must leave it byte for byte.
  {
    auto plain = OpenConnection("sqlite:" + dir_.File("data/plain.db"));
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    ASSERT_OK((*plain)->Exec("PRAGMA journal_mode = DELETE; CREATE TABLE t (id integer PRIMARY "
                             "KEY, v text); INSERT INTO t VALUES (1, 'a')")
                  .status());
  }
  ASSERT_EQ(chmod(dir_.File("data/plain.db").c_str(), 0444), 0);
  ASSERT_EQ(chmod(dir_.File("data/app.db").c_str(), 0444), 0);
  ASSERT_EQ(chmod(dir_.File("data").c_str(), 0555), 0);
  const std::string before = Listing(dir_.File("data"));
  for (const char* cmd : {"status", "history", "validate"}) {
    RunResult r = Ferry(db, {cmd});
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << Show(r);
    EXPECT_EQ(Listing(dir_.File("data")), before) << cmd << " changed the directory";
  }
  RunResult r = RunFerry({"verify", "--from", db, "--to", db, "--table", "t"}, {}, dir_.path());
  EXPECT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(Listing(dir_.File("data")), before) << "verify changed the directory";
  r = RunFerry({"copy", "--from", db, "--to", "sqlite:copy.db", "--table", "t", "--create-tables"},
               {}, dir_.path());
  EXPECT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_EQ(Listing(dir_.File("data")), before) << "copy changed its source's directory";
  const std::string plain = "sqlite:data/plain.db";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--database", plain, "--dir", "migrations", "status"},
        std::vector<std::string>{"verify", "--from", plain, "--to", plain, "--table", "t"},
        std::vector<std::string>{"copy", "--from", plain, "--to", "sqlite:copy2.db", "--table",
                                 "t", "--create-tables"}}) {
    r = RunFerry(args, {}, dir_.path());
    EXPECT_EQ(r.exit_code, 0) << args[0] << "\n" << Show(r);
    EXPECT_EQ(Listing(dir_.File("data")), before) << args[0] << " changed data/plain.db";
  }

  // The open flags: a read-only connection refuses to write, even as root.
  ConnectOptions ro;
  ro.read_only = true;
  auto c = OpenConnection(Url::Parse("sqlite:" + dir_.File("data/app.db")).value(), ro);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->Query("SELECT count(*) FROM t").value().Text(0, 0), "2");
  auto w = (*c)->Exec("CREATE TABLE z (a integer)");
  EXPECT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), HasSubstr("readonly"));
}

}  // namespace
}  // namespace ferry::testing
