// ferry's public API: what an application links to.
//
//   #include <ferry/ferry.h>
//   ferry::Result<ferry::ReadyReport> r =
//       ferry::EnsureReady("postgres://app@db/app", "migrations", {});
//   if (!r.ok()) { log(r.status().ToString()); exit(1); }
//
// No exception crosses this header; failures are Status values (status.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry {

struct EnsureReadyOptions {
  // true: apply pending migrations. false: only check, and report not ready
  // when anything is pending.
  bool auto_migrate = true;
  // How long to wait for another instance holding the migration lock (e.g.
  // several replicas starting at once: one migrates, the others wait).
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // Refuse to start when applied files changed or the history has failures.
  bool validate = true;
  // The application's supported schema range (seed 003's MinSupported and
  // Current). Empty means unchecked.
  std::string min_version;
  std::string current_version;
  std::string history_table = "ferry_schema_history";
  // Seed 003's AllowDowngrade: start even though the database is newer than
  // `current_version` (an application rolled back to an older release). The
  // newer applied versions, whose files this release lacks, are reported in
  // `notes` instead of failing validation; nothing is rolled back.
  bool allow_downgrade = false;
  // Seed 003's BackupBeforeMigration: when migrations are pending, first
  // write the schema as statements that re-create it to this file (or a new
  // file in this directory), as `ferry up --backup PATH` does (CQL: the
  // keyspace named in the URL); "" = none.
  // Engines without a schema describer (PostgreSQL, SQLite) refuse it
  // before migrating: use `ferry checkpoint` there.
  std::string backup_path;
};

struct ReadyReport {
  bool ready = false;             // the schema is compatible and nothing is pending
  std::string version_before;     // newest applied version on entry ("" when none)
  std::string version_after;      // and on return
  std::vector<std::string> applied;   // versions applied by this call
  int pending = 0;                // still pending (check-only mode)
  std::vector<std::string> problems;  // why not ready, one sentence each
  std::vector<std::string> notes;     // accepted oddities (allow_downgrade), one sentence each
  std::string backup_path;            // the schema backup written first ("" none)
  int64_t duration_ms = 0;
};

// Brings the database at `url` to the newest migration in `migrations_dir`
// (or checks it, with auto_migrate=false), for calling at application
// start-up. Safe to call from many processes at once: the migration lock
// serializes them and the late ones find nothing to do.
//
// Returns non-ok when it could not finish: kUnavailable (database
// unreachable), kDeadlineExceeded (lock held longer than `timeout`),
// kInvalidArgument (bad migration file, with file and line),
// kFailedPrecondition (drift, failed migration, database newer than the
// files). A reachable database that is merely not ready in check-only mode
// is ok() with report.ready == false.
Result<ReadyReport> EnsureReady(std::string_view url, std::string_view migrations_dir,
                                const EnsureReadyOptions& options = {});

// `base` with what the environment sets, for applications configured by
// environment variables (seed 003's names are read as aliases; ferry's own
// name wins when both are set):
//   FERRY_AUTO_MIGRATE      (SCYLLADB_AUTO_MIGRATE)       true/false/1/0/yes/no
//   FERRY_MIGRATION_TIMEOUT (SCYLLADB_MIGRATION_TIMEOUT)  e.g. 30s, 5m, 1h
//   FERRY_VALIDATE_SCHEMA   (SCYLLADB_VALIDATE_SCHEMA)    true/false/...
//   FERRY_ALLOW_DOWNGRADE   (SCYLLADB_ALLOW_DOWNGRADE)    true/false/...
//   FERRY_BACKUP_BEFORE_MIGRATION (SCYLLADB_BACKUP_BEFORE_MIGRATION)  a file
//                           or directory path for backup_path
// kInvalidArgument naming the variable for a value it cannot read.
Result<EnsureReadyOptions> EnsureReadyOptionsFromEnv(EnsureReadyOptions base = {});

// "0.1.0"
std::string_view LibraryVersion();

}  // namespace ferry
