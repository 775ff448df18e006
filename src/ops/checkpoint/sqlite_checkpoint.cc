// SQLite checkpoints: the online backup API copies the live database into
// database.sqlite in the checkpoint folder, and back on restore. A backup
// run in one step writes its destination in one transaction: a failed
// restore leaves the database as it was.
//
// In:     a sqlite: URL naming a file (not :memory:).
// Out:    database.sqlite, a complete SQLite file (open it with sqlite3).
// Resume: nothing to resume; run the command again.
#include <fmt/format.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>

#include "ops/checkpoint/checkpoint_internal.h"

namespace ferry::checkpoint {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDumpFile = "database.sqlite";

using Db = std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)>;

Result<Db> OpenFile(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw, &sqlite3_close_v2);
  if (rc != SQLITE_OK) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("cannot open {}: {}", path,
                              raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(db.get(), 5000);
  return db;
}

// Copies `from` into `to` in one step (one transaction on `to`).
Status Copy(sqlite3* from, sqlite3* to, const std::string& what) {
  sqlite3_backup* b = sqlite3_backup_init(to, "main", from, "main");
  if (b == nullptr) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{}: {}", what, sqlite3_errmsg(to)));
  }
  int rc = SQLITE_OK;
  for (int attempt = 0; attempt < 100; ++attempt) {
    rc = sqlite3_backup_step(b, -1);
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    sqlite3_sleep(100);
  }
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    return Status(rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? StatusCode::kUnavailable
                                                            : StatusCode::kFailedPrecondition,
                  fmt::format("{}: {}", what, sqlite3_errstr(rc)));
  }
  return Status();
}

Status CheckFile(const Url& url) {
  if (url.database() == ":memory:" || url.database().empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "an in-memory SQLite database cannot be checkpointed; use a file");
  }
  return Status();
}

Result<std::vector<std::string>> TablesOf(sqlite3* db) {
  std::vector<std::string> out;
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT type || ' ' || name FROM sqlite_schema WHERE name NOT LIKE "
                         "'sqlite\\_%' ESCAPE '\\' AND type IN ('table','view') ORDER BY name",
                         -1, &raw, nullptr) != SQLITE_OK) {
    return Status(StatusCode::kFailedPrecondition, sqlite3_errmsg(db));
  }
  std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw, &sqlite3_finalize);
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0)));
  }
  return out;
}

}  // namespace

Status SqliteCreate(const Url& url, const std::string& folder, CheckpointManifest* m) {
  FERRY_RETURN_IF_ERROR(CheckFile(url));
  m->dump_file = kDumpFile;
  m->tool = fmt::format("sqlite3 online backup {}", sqlite3_libversion());
  m->server_version = sqlite3_libversion();
  FERRY_ASSIGN_OR_RETURN(Db from, OpenFile(url.database(), SQLITE_OPEN_READONLY));
  FERRY_ASSIGN_OR_RETURN(Db to, OpenFile((fs::path(folder) / kDumpFile).string(),
                                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  return Copy(from.get(), to.get(), "backup into the checkpoint");
}

Status SqliteRestore(const CheckpointOptions& o, const Url& url, Connection& conn,
                     const std::string& folder, RestoreReport* report) {
  (void)conn;
  FERRY_RETURN_IF_ERROR(CheckFile(url));
  const std::string dump = (fs::path(folder) / report->checkpoint.dump_file).string();
  FERRY_ASSIGN_OR_RETURN(Db from, OpenFile(dump, SQLITE_OPEN_READONLY));
  FERRY_ASSIGN_OR_RETURN(Db to, OpenFile(url.database(), SQLITE_OPEN_READWRITE));
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> now, TablesOf(to.get()));
  for (std::string& t : now) report->drops.push_back(std::move(t));
  FERRY_ASSIGN_OR_RETURN(report->restores, TablesOf(from.get()));
  if (o.dry_run) return Status();
  return Copy(from.get(), to.get(), "restore from the checkpoint");
}

}  // namespace ferry::checkpoint
