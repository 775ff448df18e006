// Checkpoints: restorable points of a database taken before risky work.
//
// A checkpoint is one folder <dir>/<name>/ holding the dump and a
// manifest.json (written to a temporary file, then renamed). How the dump is
// taken follows the engine's capabilities (checkpoint_internal.h, SnapshotOf):
//   kDumpTools     PostgreSQL: pg_dump -Fc of the database, some schemas or
//                  some tables; restored by pg_restore -f FILE, then psql
//                  --single-transaction -v ON_ERROR_STOP=1, so a failed
//                  restore changes nothing. The tools come from `pg_bin`, or
//                  PATH; their major version must be >= the server's.
//   kOnlineBackup  SQLite: the online backup API copies the database file
//                  into the checkpoint and back (whole database only).
//   kNone          CQL, Redis: kUnimplemented.
// Secrets: the password goes to the tools in PGPASSWORD in the child's
// environment, never on a command line, and never into the manifest, which
// keeps the redacted URL only. Children run by fork/exec, not a shell.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry {

class Connection;

inline constexpr int kCheckpointFormatVersion = 1;

// What a checkpoint covers.
enum class CheckpointScope : uint8_t { kDatabase, kSchemas, kTables };
std::string_view ToText(CheckpointScope scope);  // "database", "schemas", "tables"
Result<CheckpointScope> CheckpointScopeFromText(std::string_view text);

struct CheckpointManifest {
  int format_version = kCheckpointFormatVersion;
  std::string name;
  std::string engine;         // EngineName(): "postgres", "sqlite"
  std::string database;       // redacted URL
  std::string created_at;     // ISO 8601 UTC
  int64_t size_bytes = 0;     // the dump file
  int64_t duration_ms = 0;    // time to take it
  CheckpointScope scope = CheckpointScope::kDatabase;
  std::vector<std::string> schemas;  // kSchemas
  std::vector<std::string> tables;   // kTables ("schema.table" or "table")
  std::string migration_version;     // newest applied version then ("" none)
  std::string dump_file;             // file name inside the folder
  std::string tool;                  // "pg_dump (PostgreSQL) 15.18", "sqlite3 backup 3.40.1"
  std::string server_version;
  std::string note;                  // why it was taken ("ferry up --checkpoint")
};

// Manifest text (JSON) and back. Parse refuses an unknown format version,
// a missing name, an unknown scope, and says which field is wrong.
std::string ManifestToJson(const CheckpointManifest& m);
Result<CheckpointManifest> ParseManifest(std::string_view text);
// kInvalidArgument unless `name` is 1-100 of [A-Za-z0-9._-], not starting
// with '.' or '-' (it names a folder).
Status CheckCheckpointName(std::string_view name);

struct CheckpointOptions {
  std::string url;  // the database URL as given (may hold a password; never stored)
  std::string dir = ".ferry/checkpoints";
  std::string pg_bin;  // folder of pg_dump/pg_restore/psql ("" = PATH)
  std::string history_table = "ferry_schema_history";
  std::vector<std::string> schemas;  // create: scope (empty: whole database)
  std::vector<std::string> tables;
  std::string note;
  bool dry_run = false;  // restore: say what would be dropped and restored
};

// Takes checkpoint `name`; kAlreadyExists when the folder exists. On any
// failure the partial folder is removed.
Result<CheckpointManifest> CreateCheckpoint(const CheckpointOptions& options,
                                            const std::string& name);
// Every checkpoint in `dir`, oldest first; an unreadable manifest is an
// error naming its file. A missing `dir` is an empty list.
Result<std::vector<CheckpointManifest>> ListCheckpoints(const std::string& dir);
Result<CheckpointManifest> ReadCheckpoint(const std::string& dir, const std::string& name);

struct RestoreReport {
  CheckpointManifest checkpoint;
  bool dry_run = false;
  std::vector<std::string> drops;     // what is dropped first ("table public.t", ...)
  std::vector<std::string> restores;  // what the dump re-creates ("TABLE public t", ...)
  int64_t duration_ms = 0;
};
// Restores checkpoint `name` into the database of options.url. The database
// must be the engine the checkpoint was taken from. Nothing changes on failure.
Result<RestoreReport> RestoreCheckpoint(const CheckpointOptions& options, const std::string& name);

Status DeleteCheckpoint(const std::string& dir, const std::string& name);
// Deletes all but the newest `keep` checkpoints; returns the deleted names.
// kInvalidArgument when keep < 1.
Result<std::vector<std::string>> PruneCheckpoints(const std::string& dir, int keep);

// The newest successfully applied versioned migration in `history_table`
// ("" when the table is missing or empty).
Result<std::string> CurrentMigrationVersion(Connection& conn, const std::string& history_table);

}  // namespace ferry
