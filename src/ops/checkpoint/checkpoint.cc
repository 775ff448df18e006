// Checkpoint create and restore: the front that opens the database, fills
// the manifest and hands the dump itself to the engine's stage
// (pg_checkpoint.cc or sqlite_checkpoint.cc, chosen by
// its capabilities: SnapshotOf()).
//
// In:     CheckpointOptions (URL, folder, scope), a checkpoint name.
// Out:    <dir>/<name>/{dump, manifest.json}; the manifest is written last,
//         so a folder without one is an unfinished checkpoint.
// Resume: a failed create removes its folder; a failed restore changes
//         nothing (one transaction), so both are simply run again.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "drivers/registry.h"
#include "migrate/history.h"
#include "migrate/version.h"
#include "ops/checkpoint/checkpoint.h"
#include "ops/checkpoint/checkpoint_internal.h"

namespace ferry {

namespace fs = std::filesystem;
using namespace checkpoint;

namespace {
bool NewerVersion(const std::string& a, const std::string& b) {
  Result<Version> va = Version::Parse(a);
  Result<Version> vb = Version::Parse(b);
  if (!va.ok() || !vb.ok()) return a > b;
  return *va > *vb;
}
}  // namespace

Result<std::string> CurrentMigrationVersion(Connection& conn, const std::string& history_table) {
  History history(&conn, history_table);
  FERRY_ASSIGN_OR_RETURN(bool exists, history.Exists());
  if (!exists) return std::string();
  FERRY_ASSIGN_OR_RETURN(std::vector<HistoryRow> rows, history.Load());
  // The newest version whose latest row is a success (a later undo row
  // marks it rolled back).
  std::string newest;
  for (const HistoryRow& r : rows) {
    if (r.kind != HistoryKind::kVersioned || r.status != HistoryStatus::kSuccess) continue;
    if (newest.empty() || NewerVersion(r.version, newest)) newest = r.version;
  }
  return newest;
}

namespace checkpoint {
SnapshotMethod SnapshotOf(const EngineTraits& traits) {
  if (traits.Has(Feature::kSchemas) && traits.Has(Feature::kCopyProtocol)) {
    return SnapshotMethod::kDumpTools;
  }
  if (traits.Has(Feature::kSqlTables) && !traits.Has(Feature::kCopyProtocol)) {
    return SnapshotMethod::kOnlineBackup;
  }
  return SnapshotMethod::kNone;
}
}  // namespace checkpoint

namespace {

Status Unsupported(const Connection& conn) {
  return Status(StatusCode::kUnimplemented,
                fmt::format("checkpoints are not available for {} databases (PostgreSQL and "
                            "SQLite only; docs/checkpoints.md)",
                            conn.traits().name()));
}

Status CheckScope(const CheckpointOptions& o, const Connection& conn) {
  if (!o.schemas.empty() && !o.tables.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "give --schema or --table, not both: a checkpoint covers the database, some "
                  "schemas or some tables");
  }
  if ((!o.schemas.empty() || !o.tables.empty()) &&
      SnapshotOf(conn.traits()) != SnapshotMethod::kDumpTools) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} checkpoints cover the whole database file; drop --schema and "
                              "--table",
                              conn.traits().name()));
  }
  return Status();
}

}  // namespace

Result<CheckpointManifest> CreateCheckpoint(const CheckpointOptions& o, const std::string& name) {
  FERRY_RETURN_IF_ERROR(CheckCheckpointName(name));
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(o.url));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection(url));
  if (SnapshotOf(conn->traits()) == SnapshotMethod::kNone) return Unsupported(*conn);
  FERRY_RETURN_IF_ERROR(CheckScope(o, *conn));
  const std::string folder = FolderOf(o.dir, name);
  std::error_code ec;
  if (fs::exists(folder, ec)) {
    return Status(StatusCode::kAlreadyExists,
                  fmt::format("checkpoint '{}' exists already in {}; pick another name or "
                              "'ferry checkpoint delete {}'",
                              name, o.dir, name));
  }
  fs::create_directories(folder, ec);
  if (ec) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("cannot create {}: {}; check --dir-checkpoints / [checkpoint] dir",
                              folder, ec.message()));
  }
  CheckpointManifest m;
  m.name = name;
  m.engine = std::string(conn->traits().name());
  m.database = url.Redacted();
  m.created_at = IsoNow();
  m.scope = !o.schemas.empty()  ? CheckpointScope::kSchemas
            : !o.tables.empty() ? CheckpointScope::kTables
                                : CheckpointScope::kDatabase;
  m.schemas = o.schemas;
  m.tables = o.tables;
  m.note = o.note;
  auto start = std::chrono::steady_clock::now();
  Status s;
  Result<std::string> version = CurrentMigrationVersion(*conn, o.history_table);
  if (!version.ok()) {
    s = version.status();
  } else {
    m.migration_version = *version;
    s = SnapshotOf(conn->traits()) == SnapshotMethod::kDumpTools
            ? PgCreate(o, url, *conn, folder, &m)
            : SqliteCreate(url, folder, &m);
  }
  m.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  if (s.ok()) m.size_bytes = static_cast<int64_t>(fs::file_size(fs::path(folder) / m.dump_file, ec));
  if (s.ok()) s = WriteManifest(folder, m);
  if (!s.ok()) {
    fs::remove_all(folder, ec);
    return std::move(s).Prefix(fmt::format("checkpoint '{}' not taken", name));
  }
  return m;
}

Result<RestoreReport> RestoreCheckpoint(const CheckpointOptions& o, const std::string& name) {
  FERRY_ASSIGN_OR_RETURN(CheckpointManifest m, ReadCheckpoint(o.dir, name));
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(o.url));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenConnection(url));
  if (SnapshotOf(conn->traits()) == SnapshotMethod::kNone) return Unsupported(*conn);
  if (m.engine != conn->traits().name()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("checkpoint '{}' was taken from a {} database ({}); {} is {}: "
                              "restore it into a {} database",
                              name, m.engine, m.database, url.Redacted(), conn->traits().name(),
                              m.engine));
  }
  const std::string folder = FolderOf(o.dir, name);
  RestoreReport report;
  report.checkpoint = m;
  report.dry_run = o.dry_run;
  auto start = std::chrono::steady_clock::now();
  Status s = SnapshotOf(conn->traits()) == SnapshotMethod::kDumpTools
                 ? PgRestore(o, url, *conn, folder, &report)
                 : SqliteRestore(o, url, *conn, folder, &report);
  if (!s.ok()) {
    return std::move(s).Prefix(fmt::format("checkpoint '{}' not restored; the database is "
                                           "unchanged",
                                           name));
  }
  report.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  return report;
}

}  // namespace ferry
