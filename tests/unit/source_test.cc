#include "migrate/source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/hash.h"
#include "test_util.h"

namespace ferry {

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs `scan` in a child process without root's power to read everything
// (as "nobody" when the test runs as root) and returns its status as
// "CODE|message". Permission checks are thus tested under CI's root too.
std::string ScanAsUnprivileged(const std::string& dir) {
  auto describe = [&dir]() {
    Result<MigrationSet> r = ScanDirectory(dir);
    return std::string(StatusCodeName(r.status().code())) + "|" + r.status().message();
  };
  if (geteuid() != 0) return describe();
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    std::string out = describe();
    ssize_t written = write(fds[1], out.data(), out.size());
    _exit(written == static_cast<ssize_t>(out.size()) ? 0 : 4);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "child failed";
  return out;
}

class SourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
  }
  void TearDown() override {
    std::error_code ec;
    // A test may take permissions away; give them back so TempDir can remove it.
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  void Write(const std::string& name, const std::string& content) const {
    fs::path p = Path(name);
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }

  MigrationSet ScanOk() const {
    Result<MigrationSet> r = ScanDirectory(dir_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : MigrationSet();
  }

  // The scan's error message (the scan must fail with kInvalidArgument).
  std::string ScanError() const {
    Result<MigrationSet> r = ScanDirectory(dir_);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return "";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    return r.status().message();
  }

  ::ferry::testing::TempDir tmp_;
  std::string dir_;
};

std::vector<std::string> Versions(const MigrationSet& set) {
  std::vector<std::string> out;
  for (const Migration& m : set.migrations) out.push_back(m.version.text());
  return out;
}

// ---- layouts -----------------------------------------------------------------

TEST_F(SourceTest, FerrySingleFileWithSections) {
  Write("0001_create_users.sql",
        "-- ferry:up\n"
        "CREATE TABLE users (id int);\n"
        "\n"
        "-- ferry:down\n"
        "DROP TABLE users;\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 1u);
  const Migration& m = set.migrations[0];
  EXPECT_EQ(set.dir, dir_);
  EXPECT_EQ(m.version.text(), "0001");
  EXPECT_EQ(m.description, "create users");
  EXPECT_EQ(m.kind, MigrationKind::kVersioned);
  EXPECT_EQ(m.layout, SourceLayout::kSingleFile);
  EXPECT_EQ(m.script, "0001_create_users.sql");
  EXPECT_EQ(m.up.path, Path("0001_create_users.sql"));
  EXPECT_EQ(m.up.sql, "CREATE TABLE users (id int);");
  EXPECT_EQ(m.up.first_line, 2);
  ASSERT_TRUE(m.down.has_value());
  EXPECT_EQ(m.down->path, Path("0001_create_users.sql"));
  EXPECT_EQ(m.down->sql, "DROP TABLE users;");
  EXPECT_EQ(m.down->first_line, 5);
  EXPECT_EQ(m.up.directives, Directives());
  EXPECT_EQ(m.checksum, "sha256v1:" + Sha256Hex("CREATE TABLE users (id int);"));
}

// CQL scripts: every layout takes .cql for .sql; semantic versions order
// by their numbers (1.2.0 before 1.10.0).
TEST_F(SourceTest, CqlFilesInEveryLayoutOrderBySemanticVersion) {
  Write("1.10.0_sections.cql",
        "-- ferry:up\nCREATE TABLE a (id int PRIMARY KEY);\n-- ferry:down\nDROP TABLE a;\n");
  Write("V1.2.0__flyway.cql", "CREATE TABLE b (id int PRIMARY KEY);\n");
  Write("U1.2.0__flyway.cql", "DROP TABLE b;\n");
  Write("1.0.0_pair.up.cql", "CREATE TABLE c (id int PRIMARY KEY);\n");
  Write("1.0.0_pair.down.cql", "DROP TABLE c;\n");
  Write("2.0.0_folder/up.cql", "CREATE TABLE d (id int PRIMARY KEY);\n");
  Write("2.0.0_folder/down.cql", "DROP TABLE d;\n");
  Write("README.md", "not a migration");
  MigrationSet set = ScanOk();
  EXPECT_EQ(Versions(set), (std::vector<std::string>{"1.0.0", "1.2.0", "1.10.0", "2.0.0"}));
  ASSERT_EQ(set.migrations.size(), 4u);
  for (const Migration& m : set.migrations) EXPECT_TRUE(m.down.has_value()) << m.script;
  EXPECT_EQ(set.migrations[2].up.sql, "CREATE TABLE a (id int PRIMARY KEY);");
  EXPECT_EQ(set.migrations[2].down->sql, "DROP TABLE a;");
  EXPECT_EQ(set.migrations[3].script, "2.0.0_folder/up.cql");
  EXPECT_EQ(set.migrations[3].down->path, Path("2.0.0_folder/down.cql"));
}

TEST_F(SourceTest, DbmateMarkersAndTransactionOption) {
  Write("20151129054053_test_migration.sql",
        "-- migrate:up transaction:false\n"
        "CREATE INDEX CONCURRENTLY i ON t (a);\n"
        "-- migrate:down\n"
        "DROP INDEX i;\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 1u);
  const Migration& m = set.migrations[0];
  EXPECT_EQ(m.version.text(), "20151129054053");
  EXPECT_EQ(m.description, "test migration");
  EXPECT_TRUE(m.up.directives.no_transaction);
  ASSERT_TRUE(m.down.has_value());
  EXPECT_FALSE(m.down->directives.no_transaction);
  EXPECT_EQ(m.up.first_line, 2);
  EXPECT_EQ(m.down->first_line, 4);
}

TEST_F(SourceTest, MarkerOptionsAllowCaseAndTrailingComment) {
  Write("1_x.sql",
        "-- migrate:up transaction:FALSE -- CREATE INDEX CONCURRENTLY needs this\n"
        "CREATE INDEX CONCURRENTLY i ON t (a);\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 1u);
  EXPECT_TRUE(set.migrations[0].up.directives.no_transaction);
}

TEST_F(SourceTest, BrokenUpIsNotAlsoReportedAsMissing) {
  Write("1_a.up.sql", "SELECT '\xff';\n");
  Write("1_a.down.sql", "SELECT 1;\n");
  Write("V2__b.sql", "\xfe");
  Write("U2__b.sql", "SELECT 1;\n");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1_a.up.sql") + ": is not valid UTF-8"));
  EXPECT_THAT(e, HasSubstr(Path("V2__b.sql") + ": is not valid UTF-8"));
  EXPECT_THAT(e, Not(HasSubstr("without")));
}

TEST_F(SourceTest, PlainFileIsForwardOnly) {
  Write("3_add_index.sql", "CREATE INDEX i ON t (a);\n");
  Write("4.sql", "SELECT 1;\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 2u);
  EXPECT_EQ(set.migrations[0].layout, SourceLayout::kSingleFile);
  EXPECT_EQ(set.migrations[0].up.sql, "CREATE INDEX i ON t (a);");
  EXPECT_EQ(set.migrations[0].up.first_line, 1);
  EXPECT_FALSE(set.migrations[0].down.has_value());
  EXPECT_EQ(set.migrations[1].description, "");
}

TEST_F(SourceTest, GolangMigratePairs) {
  Write("1_init.up.sql", "CREATE TABLE a (id int);\n");
  Write("1_init.down.sql", "DROP TABLE a;\n");
  Write("2_more.up.sql", "CREATE TABLE b (id int);\n");  // no down: forward-only
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 2u);
  const Migration& m = set.migrations[0];
  EXPECT_EQ(m.layout, SourceLayout::kUpDownFiles);
  EXPECT_EQ(m.script, "1_init.up.sql");
  EXPECT_EQ(m.up.path, Path("1_init.up.sql"));
  ASSERT_TRUE(m.down.has_value());
  EXPECT_EQ(m.down->path, Path("1_init.down.sql"));
  EXPECT_EQ(m.down->sql, "DROP TABLE a;");
  EXPECT_EQ(m.down->first_line, 1);
  EXPECT_FALSE(set.migrations[1].down.has_value());
}

TEST_F(SourceTest, EmptyGolangDownFileMeansNoDown) {
  Write("1_init.up.sql", "CREATE TABLE a (id int);\n");
  Write("1_init.down.sql", "\n-- nothing to undo\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 1u);
  EXPECT_FALSE(set.migrations[0].down.has_value());
}

TEST_F(SourceTest, DieselFolders) {
  Write("2019-02-26-002946_create_users/up.sql", "CREATE TABLE users (id int);\n");
  Write("2019-02-26-002946_create_users/down.sql", "DROP TABLE users;\n");
  Write("2026-04-22-005541-0000_add_index/up.sql", "CREATE INDEX CONCURRENTLY i ON users (id);\n");
  Write("2026-04-22-005541-0000_add_index/metadata.toml", "# diesel\nrun_in_transaction = false\n");
  Write("00000000000000_diesel_initial_setup/up.sql", "SELECT 1;\n");
  Write("00000000000000_diesel_initial_setup/down.sql", "SELECT 2;\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 3u);
  EXPECT_EQ(Versions(set), (std::vector<std::string>{"00000000000000", "2019-02-26-002946",
                                                     "2026-04-22-005541-0000"}));
  const Migration& users = set.migrations[1];
  EXPECT_EQ(users.layout, SourceLayout::kDieselFolder);
  EXPECT_EQ(users.description, "create users");
  EXPECT_EQ(users.script, "2019-02-26-002946_create_users/up.sql");
  EXPECT_EQ(users.up.path, Path("2019-02-26-002946_create_users/up.sql"));
  ASSERT_TRUE(users.down.has_value());
  EXPECT_EQ(users.down->path, Path("2019-02-26-002946_create_users/down.sql"));
  EXPECT_FALSE(users.up.directives.no_transaction);
  EXPECT_TRUE(set.migrations[2].up.directives.no_transaction);
  EXPECT_FALSE(set.migrations[2].down.has_value());
}

TEST_F(SourceTest, FlywayVersionedUndoAndRepeatable) {
  Write("V1__init.sql", "CREATE TABLE a (id int);\n");
  Write("V1.1__add_b.sql", "CREATE TABLE b (id int);\n");
  Write("U1.1__add_b.sql", "DROP TABLE b;\n");
  Write("V1_2__add_c.sql", "CREATE TABLE c (id int);\n");
  Write("R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;\n");
  Write("R__a_functions.sql",
        "CREATE OR REPLACE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql;\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 5u);
  EXPECT_EQ(Versions(set), (std::vector<std::string>{"1", "1.1", "1_2", "", ""}));
  EXPECT_EQ(set.migrations[0].layout, SourceLayout::kFlyway);
  EXPECT_FALSE(set.migrations[0].down.has_value());
  ASSERT_TRUE(set.migrations[1].down.has_value());
  EXPECT_EQ(set.migrations[1].down->path, Path("U1.1__add_b.sql"));
  EXPECT_EQ(set.migrations[1].description, "add b");
  const Migration& r1 = set.migrations[3];
  const Migration& r2 = set.migrations[4];
  EXPECT_EQ(r1.kind, MigrationKind::kRepeatable);
  EXPECT_TRUE(r1.version.empty());
  EXPECT_EQ(r1.description, "a functions");  // ordered by description
  EXPECT_EQ(r2.description, "views");
  EXPECT_EQ(r2.script, "R__views.sql");
  EXPECT_FALSE(r2.checksum.empty());
}

TEST_F(SourceTest, MixedLayoutsInOneDirectorySortByVersion) {
  Write("R__views.sql", "CREATE VIEW v AS SELECT 1;\n");
  Write("10_ten.sql", "-- ferry:up\nSELECT 10;\n");
  Write("2_two.up.sql", "SELECT 2;\n");
  Write("2_two.down.sql", "SELECT -2;\n");
  Write("V1.5__one_and_a_half.sql", "SELECT 1.5;\n");
  Write("3_three/up.sql", "SELECT 3;\n");
  Write("1_one.sql", "SELECT 1;\n");
  Write("1.10_later.sql", "SELECT 1.10;\n");
  Write("README.md", "not a migration\n");
  Write(".hidden.sql", "junk");
  Write("notes.txt", "junk");
  Write("seeds/data.csv", "a,b\n");  // folder without up.sql / down.sql: ignored
  MigrationSet set = ScanOk();
  EXPECT_EQ(Versions(set), (std::vector<std::string>{"1", "1.5", "1.10", "2", "3", "10", ""}));
  EXPECT_EQ(set.migrations[1].layout, SourceLayout::kFlyway);
  EXPECT_EQ(set.migrations[3].layout, SourceLayout::kUpDownFiles);
  EXPECT_EQ(set.migrations[4].layout, SourceLayout::kDieselFolder);
  EXPECT_EQ(set.migrations[5].layout, SourceLayout::kSingleFile);
  EXPECT_EQ(set.migrations[6].kind, MigrationKind::kRepeatable);
  ASSERT_NE(set.Find(Version::Parse("2.0").value()), nullptr);
  EXPECT_EQ(set.Find(Version::Parse("2.0").value())->description, "two");
  EXPECT_EQ(set.Find(Version::Parse("4").value()), nullptr);
  ASSERT_NE(set.Latest(), nullptr);
  EXPECT_EQ(set.Latest()->text(), "10");
}

TEST_F(SourceTest, EmptyDirectoryIsAnEmptySet) {
  MigrationSet set = ScanOk();
  EXPECT_TRUE(set.migrations.empty());
  EXPECT_EQ(set.Latest(), nullptr);
}

// ---- directives --------------------------------------------------------------

TEST_F(SourceTest, DirectivesOnMarkerAndSectionTop) {
  Write("1_x.sql",
        "-- ferry:up lock_timeout:5s\n"
        "-- ferry:statement_timeout 1min\n"
        "-- a plain comment\n"
        "-- ferry:no-transaction\n"
        "CREATE INDEX CONCURRENTLY i ON t (a);\n"
        "-- ferry:down statement_timeout=30s\n"
        "-- ferry:lock_timeout '100ms'\n"
        "DROP INDEX CONCURRENTLY i;\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 1u);
  const Migration& m = set.migrations[0];
  EXPECT_TRUE(m.up.directives.no_transaction);
  EXPECT_EQ(m.up.directives.lock_timeout, "5s");
  EXPECT_EQ(m.up.directives.statement_timeout, "1min");
  ASSERT_TRUE(m.down.has_value());
  EXPECT_FALSE(m.down->directives.no_transaction);
  EXPECT_EQ(m.down->directives.lock_timeout, "100ms");
  EXPECT_EQ(m.down->directives.statement_timeout, "30s");
}

TEST_F(SourceTest, HeaderDirectivesApplyToBothSections) {
  Write("1_x.sql",
        "-- Adds an index without blocking writes.\n"
        "-- ferry:no_transaction\n"
        "\n"
        "-- ferry:up\n"
        "CREATE INDEX CONCURRENTLY i ON t (a);\n"
        "-- ferry:down transaction:true\n"
        "DROP INDEX i;\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 1u);
  EXPECT_TRUE(set.migrations[0].up.directives.no_transaction);
  EXPECT_FALSE(set.migrations[0].down->directives.no_transaction);
}

TEST_F(SourceTest, DirectivesAtTopOfWholeFiles) {
  Write("1_x.up.sql", "-- ferry:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n");
  Write("V2__y.sql", "-- ferry:lock_timeout 2s\nALTER TABLE t ADD c int;\n");
  Write("3_z.sql", "-- ferry:statement_timeout 10min\nUPDATE t SET c = 1;\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 3u);
  EXPECT_TRUE(set.migrations[0].up.directives.no_transaction);
  EXPECT_EQ(set.migrations[1].up.directives.lock_timeout, "2s");
  EXPECT_EQ(set.migrations[2].up.directives.statement_timeout, "10min");
}

TEST_F(SourceTest, ProseAfterPrefixIsAPlainComment) {
  Write("1_x.sql", "-- ferry: this migration is about users\nSELECT 1;\n");
  EXPECT_EQ(ScanOk().migrations.size(), 1u);
}

TEST_F(SourceTest, UnknownDirectiveIsAnError) {
  Write("1_x.sql", "-- ferry:up\n-- ferry:no-transactoin\nSELECT 1;\n");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1_x.sql") + ":2: unknown directive 'ferry:no-transactoin'"));
  EXPECT_THAT(e, HasSubstr("known directives are"));
}

TEST_F(SourceTest, UnknownMarkerOptionIsAnError) {
  Write("1_x.sql", "-- migrate:up transactions:false\nSELECT 1;\n");
  EXPECT_THAT(ScanError(), HasSubstr(Path("1_x.sql") + ":1: unknown directive 'transactions'"));
}

TEST_F(SourceTest, BadDirectiveValuesAreErrors) {
  Write("1_a.sql", "-- ferry:lock_timeout five seconds\nSELECT 1;\n");
  Write("2_b.sql", "-- ferry:statement_timeout\nSELECT 1;\n");
  Write("3_c.sql", "-- ferry:up transaction:maybe\nSELECT 1;\n");
  Write("4_d.sql", "-- ferry:no-transaction please\nSELECT 1;\n");
  Write("5_e.sql", "-- ferry:lock_timeout 5 s\nSELECT 1;\n");  // fine: PostgreSQL allows it
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1_a.sql") + ":1: directive 'ferry:lock_timeout' needs a "
                                             "PostgreSQL duration"));
  EXPECT_THAT(e, HasSubstr(Path("2_b.sql") + ":1: directive 'ferry:statement_timeout' needs"));
  EXPECT_THAT(e, HasSubstr(Path("3_c.sql") + ":1: directive 'transaction' takes true or false"));
  EXPECT_THAT(e,
              HasSubstr(Path("4_d.sql") + ":1: directive 'ferry:no-transaction' takes no value"));
  EXPECT_THAT(e, Not(HasSubstr("5_e.sql")));
  EXPECT_THAT(e, HasSubstr("4 problems in migrations directory"));
}

TEST_F(SourceTest, DirectiveBelowSqlIsAnError) {
  Write("1_x.sql", "-- ferry:up\nSELECT 1;\n-- ferry:no-transaction\nSELECT 2;\n");
  EXPECT_THAT(ScanError(), HasSubstr(Path("1_x.sql") + ":3: directive 'ferry:no-transaction' must "
                                                       "be at the top of its section"));
}

// ---- errors ------------------------------------------------------------------

TEST_F(SourceTest, MissingDirectoryIsNotFound) {
  Result<MigrationSet> r = ScanDirectory(dir_ + "/nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("run 'ferry init' or pass --dir"));
  EXPECT_THAT(r.status().message(), HasSubstr(dir_ + "/nope"));
}

TEST_F(SourceTest, FileInsteadOfDirectory) {
  Write("file", "x");
  Result<MigrationSet> r = ScanDirectory(Path("file"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("is not a directory"));
}

TEST_F(SourceTest, UnreadableDirectory) {
  Write("sub/1_x.sql", "SELECT 1;");
  fs::permissions(dir_, fs::perms::all);  // the parent stays traversable
  fs::permissions(Path("sub"), fs::perms::all, fs::perm_options::remove);
  std::string r = ScanAsUnprivileged(Path("sub"));
  fs::permissions(Path("sub"), fs::perms::owner_all, fs::perm_options::add);
  EXPECT_THAT(r, HasSubstr("PERMISSION_DENIED|"));
  EXPECT_THAT(r, HasSubstr(Path("sub")));
}

TEST_F(SourceTest, UnreadableFile) {
  Write("1_x.sql", "SELECT 1;");
  fs::permissions(dir_, fs::perms::all);
  fs::permissions(Path("1_x.sql"), fs::perms::all, fs::perm_options::remove);
  std::string r = ScanAsUnprivileged(dir_);
  EXPECT_THAT(r, HasSubstr("INVALID_ARGUMENT|"));
  EXPECT_THAT(r, HasSubstr(Path("1_x.sql") + ": cannot read: Permission denied"));
}

TEST_F(SourceTest, BrokenSymlinkAndSpecialFiles) {
  fs::create_symlink(Path("missing.sql"), Path("1_x.sql"));
  ASSERT_EQ(mkfifo(Path("2_y.sql").c_str(), 0600), 0);
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1_x.sql") + ": cannot read: No such file or directory"));
  EXPECT_THAT(e, HasSubstr(Path("2_y.sql") + ": is not a regular file"));
}

TEST_F(SourceTest, DuplicateVersionsNameBothFiles) {
  Write("1_a.sql", "SELECT 1;\n");
  Write("1.0_b.up.sql", "SELECT 1;\n");
  Write("V0001__c.sql", "SELECT 1;\n");
  Write("2_x.sql", "SELECT 2;\n");
  Write("2_x/up.sql", "SELECT 2;\n");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr("duplicate version"));
  EXPECT_THAT(e, HasSubstr(Path("1.0_b.up.sql")));
  EXPECT_THAT(e, HasSubstr(Path("1_a.sql")));
  EXPECT_THAT(e, HasSubstr(Path("V0001__c.sql")));
  EXPECT_THAT(e, HasSubstr(Path("2_x.sql")));
  EXPECT_THAT(e, HasSubstr(Path("2_x/up.sql")));
  EXPECT_THAT(e, HasSubstr("give each migration its own version"));
  EXPECT_THAT(e, HasSubstr("2 problems"));
}

TEST_F(SourceTest, DuplicateRepeatables) {
  Write("R__my_views.sql", "SELECT 1;\n");
  Write("R__my views.sql", "SELECT 1;\n");
  EXPECT_THAT(ScanError(), HasSubstr("duplicate repeatable migration 'my views'"));
}

TEST_F(SourceTest, UnparseableNames) {
  Write("1a_foo.sql", "SELECT 1;\n");
  Write("1..2_bar.up.sql", "SELECT 1;\n");
  Write("Vx__baz.sql", "SELECT 1;\n");
  Write("R1__qux.sql", "SELECT 1;\n");
  Write("2019-13_oops/up.sql", "SELECT 1;\n");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1a_foo.sql") + ": cannot parse the file name: invalid version "
                                                "'1a'"));
  EXPECT_THAT(e, HasSubstr(Path("1..2_bar.up.sql") + ": cannot parse the file name"));
  EXPECT_THAT(e, HasSubstr(Path("Vx__baz.sql") + ": cannot parse the Flyway file name"));
  EXPECT_THAT(e, HasSubstr(Path("R1__qux.sql") + ": repeatable migrations are named R__name.sql"));
  EXPECT_THAT(e, HasSubstr(Path("2019-13_oops") + "/: cannot parse the folder name"));
}

TEST_F(SourceTest, FilesFittingNoLayout) {
  Write("notes.sql", "SELECT 1;\n");
  Write("foo.sql", "SELECT 1;\n");
  Write("README.md", "# ignored\n");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("notes.sql") + ": fits no migration layout"));
  EXPECT_THAT(e, HasSubstr(Path("foo.sql") + ": fits no migration layout"));
  EXPECT_THAT(e, HasSubstr("VERSION_name.sql"));
  EXPECT_THAT(e, Not(HasSubstr("README")));
  // One problem per line after the heading.
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 2);
}

TEST_F(SourceTest, DownWithoutUp) {
  Write("1_a.down.sql", "DROP TABLE a;\n");
  Write("U2__b.sql", "DROP TABLE b;\n");
  Write("3_c/down.sql", "DROP TABLE c;\n");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1_a.down.sql") + ": down script without an up script"));
  EXPECT_THAT(e, HasSubstr(Path("U2__b.sql") + ": Flyway undo script without V2__"));
  EXPECT_THAT(e, HasSubstr(Path("3_c/down.sql") + ": down.sql without up.sql"));
}

TEST_F(SourceTest, DownOfAnotherLayoutOrName) {
  Write("1_a.sql", "SELECT 1;\n");
  Write("1_a.down.sql", "SELECT 2;\n");
  Write("2_b.up.sql", "SELECT 1;\n");
  Write("2_c.down.sql", "SELECT 2;\n");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1_a.down.sql") +
                           ": down script for version 1, whose up "
                           "script " +
                           Path("1_a.sql") + " is not a .up.sql file"));
  EXPECT_THAT(
      e, HasSubstr(Path("2_c.down.sql") + ": does not match its up script " + Path("2_b.up.sql")));
}

TEST_F(SourceTest, EmptyUpScripts) {
  Write("1_a.sql", "");
  Write("2_b.sql", "-- ferry:up\n\n-- ferry:down\nDROP TABLE b;\n");
  Write("3_c.up.sql", "  \n\n");
  Write("V4__d.sql", "-- only a comment\n");
  Write("5_e/up.sql", "");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1_a.sql") + ": is empty: write the SQL or delete the file"));
  EXPECT_THAT(e, HasSubstr(Path("2_b.sql") + ":1: the up section is empty: write the SQL or "
                                             "delete the file"));
  EXPECT_THAT(e, HasSubstr(Path("3_c.up.sql") + ": is empty"));
  EXPECT_THAT(e, HasSubstr(Path("V4__d.sql") + ": is empty"));
  EXPECT_THAT(e, HasSubstr(Path("5_e/up.sql") + ": is empty"));
  EXPECT_THAT(e, HasSubstr("5 problems"));
}

TEST_F(SourceTest, EmptyDownSectionMeansNoDown) {
  Write("1_a.sql", "-- ferry:up\nSELECT 1;\n-- ferry:down\n\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 1u);
  EXPECT_FALSE(set.migrations[0].down.has_value());
}

TEST_F(SourceTest, NonUtf8ContentNamesTheOffset) {
  Write("1_a.sql", "SELECT 'caf\xe9';\n");  // Latin-1 e-acute
  Write("2_b.sql", std::string("SELECT 1;\0", 10));
  Write("3_c.sql", "SELECT '\xed\xa0\x80';\n");  // UTF-16 surrogate
  Write("4_d.sql", "SELECT 'ok: \xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x9a\xa2';\n");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1_a.sql") + ": is not valid UTF-8 (byte offset 11): save it "
                                             "as UTF-8"));
  EXPECT_THAT(e, HasSubstr(Path("2_b.sql") + ": contains a NUL byte (byte offset 9)"));
  EXPECT_THAT(e, HasSubstr(Path("3_c.sql") + ": is not valid UTF-8 (byte offset 8)"));
  EXPECT_THAT(e, Not(HasSubstr("4_d.sql")));
}

TEST_F(SourceTest, DownBeforeUp) {
  Write("1_a.sql", "-- ferry:down\nDROP TABLE a;\n-- ferry:up\nCREATE TABLE a ();\n");
  Write("2_b.sql", "SELECT 1;\n-- migrate:down\nSELECT 2;\n");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1_a.sql") + ":1: '-- ferry:down' comes before '-- ferry:up' "
                                             "(line 3): put the up section first"));
  EXPECT_THAT(e, HasSubstr(Path("2_b.sql") + ":2: '-- migrate:down' without a '-- ferry:up' "
                                             "marker"));
}

TEST_F(SourceTest, RepeatedMarkersAndSqlAboveUp) {
  Write("1_a.sql", "-- ferry:up\nSELECT 1;\n-- ferry:up\nSELECT 2;\n");
  Write("2_b.sql", "SELECT 0;\n-- ferry:up\nSELECT 1;\n");
  std::string e = ScanError();
  EXPECT_THAT(e, HasSubstr(Path("1_a.sql") + ":3: second '-- ferry:up' marker (the first is on "
                                             "line 1)"));
  EXPECT_THAT(e, HasSubstr(Path("2_b.sql") + ":1: SQL above '-- ferry:up' never runs"));
}

TEST_F(SourceTest, MarkersOutsideSingleFilesAreErrors) {
  Write("1_a.up.sql", "-- ferry:up\nSELECT 1;\n");
  EXPECT_THAT(ScanError(), HasSubstr(Path("1_a.up.sql") + ":1: section marker '-- ferry:up' "
                                                          "belongs only in single-file"));
}

TEST_F(SourceTest, AllProblemsAreReportedTogether) {
  Write("notes.sql", "x");
  Write("1_a.sql", "");
  Write("2_b.down.sql", "SELECT 1;");
  Write("3_c.sql", "-- ferry:bogus\nSELECT 1;");
  Write("4_d.sql", "SELECT 1;");  // fine
  Result<MigrationSet> r = ScanDirectory(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().Get("problems"), "4");
  EXPECT_EQ(r.status().Get("dir"), dir_);
  const std::string& e = r.status().message();
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 4) << e;
  EXPECT_THAT(e, HasSubstr("4 problems in migrations directory '" + dir_ + "':\n"));
}

// ---- checksums ---------------------------------------------------------------

TEST_F(SourceTest, ChecksumIgnoresBomLineEndsAndTrailingWhitespace) {
  Write("1_lf.sql", "-- ferry:up\nCREATE TABLE a (\n  id int\n);\n-- ferry:down\nDROP TABLE a;\n");
  Write("2_crlf.sql",
        "\xEF\xBB\xBF-- ferry:up\r\nCREATE TABLE a (\r\n  id int\r\n);\r\n\r\n  \r\n"
        "-- ferry:down\r\nDROP TABLE a;\r\n");
  Write("3_cr.sql", "-- ferry:up\rCREATE TABLE a (\r  id int\r);   \t\n\n");
  Write("4_plain.up.sql",
        "\xEF\xBB\xBF"
        "CREATE TABLE a (\n  id int\n);");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 4u);
  const std::string expected = "sha256v1:" + Sha256Hex("CREATE TABLE a (\n  id int\n);");
  for (const Migration& m : set.migrations) EXPECT_EQ(m.checksum, expected) << m.script;
  EXPECT_EQ(set.migrations[1].up.sql, "CREATE TABLE a (\n  id int\n);");
  EXPECT_EQ(set.migrations[1].down->first_line, 8);
}

TEST_F(SourceTest, ChecksumFollowsUpSectionOnly) {
  Write("1_a.sql", "-- ferry:up\nCREATE TABLE a ();\n-- ferry:down\nDROP TABLE a;\n");
  std::string base = ScanOk().migrations[0].checksum;
  Write("1_a.sql", "-- ferry:up\nCREATE TABLE a ();\n-- ferry:down\nDROP TABLE a CASCADE;\n");
  EXPECT_EQ(ScanOk().migrations[0].checksum, base);
  Write("1_a.sql", "-- ferry:up\nCREATE TABLE a ();\n");
  EXPECT_EQ(ScanOk().migrations[0].checksum, base);
  Write("1_a.sql", "-- ferry:up\nCREATE TABLE a (id int);\n-- ferry:down\nDROP TABLE a;\n");
  EXPECT_NE(ScanOk().migrations[0].checksum, base);
  Write("1_a.sql", "-- ferry:up\nCREATE TABLE  a ();\n-- ferry:down\nDROP TABLE a;\n");
  EXPECT_NE(ScanOk().migrations[0].checksum, base);
}

TEST(SourceChecksumTest, CanonicalFormAndPrefix) {
  EXPECT_EQ(CanonicalScriptText("\xEF\xBB\xBFSELECT 1;\r\nSELECT 2;\rSELECT 3;  \n\t\n"),
            "SELECT 1;\nSELECT 2;\nSELECT 3;");
  EXPECT_EQ(CanonicalScriptText(CanonicalScriptText("a\r\n b \r\n")), "a\n b");
  EXPECT_EQ(ChecksumV1("SELECT 1;\r\n"), "sha256v1:" + Sha256Hex("SELECT 1;"));
  EXPECT_EQ(ChecksumV1("SELECT 1;\r\n").substr(0, kChecksumPrefix.size()), kChecksumPrefix);
  EXPECT_EQ(ChecksumV1("SELECT 1;").size(), kChecksumPrefix.size() + 64);
}

// ---- ferry new ---------------------------------------------------------------

std::chrono::system_clock::time_point At(int64_t unix_seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds));
}

constexpr int64_t k2025_12_31_12_00_00 = 1767182400;

TEST_F(SourceTest, NextVersionTimestampPerLayout) {
  MigrationSet empty;
  auto single =
      NextVersionName(empty, "Add users", VersionStyle::kTimestamp, At(k2025_12_31_12_00_00));
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  EXPECT_EQ(single->version, "20251231120000");
  ASSERT_EQ(single->files.size(), 1u);
  EXPECT_EQ(single->files[0].path, "20251231120000_Add_users.sql");
  EXPECT_EQ(single->files[0].contents, "-- ferry:up\n\n-- ferry:down\n");

  auto pair = NextVersionName(empty, "add-users", VersionStyle::kTimestamp,
                              At(k2025_12_31_12_00_00), SourceLayout::kUpDownFiles);
  ASSERT_TRUE(pair.ok());
  ASSERT_EQ(pair->files.size(), 2u);
  EXPECT_EQ(pair->files[0].path, "20251231120000_add_users.up.sql");
  EXPECT_EQ(pair->files[1].path, "20251231120000_add_users.down.sql");

  auto diesel = NextVersionName(empty, "create_users", VersionStyle::kTimestamp,
                                At(k2025_12_31_12_00_00), SourceLayout::kDieselFolder);
  ASSERT_TRUE(diesel.ok());
  EXPECT_EQ(diesel->version, "2025-12-31-120000");
  EXPECT_EQ(diesel->files[0].path, "2025-12-31-120000_create_users/up.sql");
  EXPECT_EQ(diesel->files[1].path, "2025-12-31-120000_create_users/down.sql");

  auto flyway = NextVersionName(empty, "x", VersionStyle::kTimestamp, At(k2025_12_31_12_00_00),
                                SourceLayout::kFlyway);
  ASSERT_TRUE(flyway.ok());
  EXPECT_EQ(flyway->files[0].path, "V20251231120000__x.sql");
  EXPECT_EQ(flyway->files[1].path, "U20251231120000__x.sql");
}

TEST_F(SourceTest, NextVersionTimestampNeverGoesBackwards) {
  Write("20251231120000_a.sql", "SELECT 1;");
  MigrationSet set = ScanOk();
  auto next = NextVersionName(set, "b", VersionStyle::kTimestamp, At(k2025_12_31_12_00_00 - 60));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->version, "20251231120001");
}

TEST_F(SourceTest, NextVersionSequential) {
  MigrationSet empty;
  auto first = NextVersionName(empty, "init", VersionStyle::kSequential, At(0));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->version, "0001");
  EXPECT_EQ(first->files[0].path, "0001_init.sql");

  Write("0041_a.sql", "SELECT 1;");
  Write("0099_b.up.sql", "SELECT 1;");
  auto next = NextVersionName(ScanOk(), "c", VersionStyle::kSequential, At(0));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->version, "0100");

  Write("V1_9__c.sql", "SELECT 1;");
  fs::remove(Path("0041_a.sql"));
  fs::remove(Path("0099_b.up.sql"));
  auto dotted =
      NextVersionName(ScanOk(), "d", VersionStyle::kSequential, At(0), SourceLayout::kFlyway);
  ASSERT_TRUE(dotted.ok());
  EXPECT_EQ(dotted->version, "1.10");
  EXPECT_EQ(dotted->files[0].path, "V1.10__d.sql");
}

TEST_F(SourceTest, NextVersionRejectsBadInput) {
  MigrationSet empty;
  auto bad = NextVersionName(empty, "drop/etc", VersionStyle::kSequential, At(0));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(NextVersionName(empty, "  ", VersionStyle::kSequential, At(0)).ok());
  Write("2019-02-26-002946_x/up.sql", "SELECT 1;");
  auto after_diesel = NextVersionName(ScanOk(), "y", VersionStyle::kSequential, At(0));
  ASSERT_FALSE(after_diesel.ok());
  EXPECT_THAT(after_diesel.status().message(), HasSubstr("use the timestamp style"));
}

TEST_F(SourceTest, NewMigrationFilesScanBackAfterFillingIn) {
  auto next = NextVersionName(ScanOk(), "add users", VersionStyle::kSequential, At(0));
  ASSERT_TRUE(next.ok());
  Write(next->files[0].path, next->files[0].contents);
  // The template's empty up section must be filled in first.
  EXPECT_THAT(ScanError(), HasSubstr("the up section is empty"));
  Write(next->files[0].path,
        "-- ferry:up\nCREATE TABLE users ();\n-- ferry:down\nDROP TABLE users;\n");
  MigrationSet set = ScanOk();
  ASSERT_EQ(set.migrations.size(), 1u);
  EXPECT_EQ(set.migrations[0].description, "add users");
}

}  // namespace
}  // namespace ferry
