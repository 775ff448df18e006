// A memo of `ferry status`, so that status costs one short query however
// long the history is.
//
// Status is a pure function of three inputs: the migration files, the
// history table's rows and the output mode. The memo stores the rendered
// report under a key made of all three:
//   - the directory's signature (scan_cache.h: every file's name, size,
//     mtime in ns and inode; any edit, addition or removal changes it),
//   - the history's fingerprint, computed by the server in one query
//     (Migrator::ProbeHistory): the database and table oids, the row count
//     and the sum of a hash of each row's (id, xmin). Every INSERT, UPDATE
//     or DELETE gives the rows it touches a new xmin or changes the count,
//     so any change to the history, by ferry or by hand, changes it,
//   - the redacted URL, the directory, the history table, the mode, and the
//     ferry version.
// Only the live parts (the lock holder, open expand/contract changes) are
// read again on a hit. A key that differs in anything is a miss: status then
// computes the report in full, inside one REPEATABLE READ snapshot so the
// fingerprint stored matches the rows read, and replaces the memo.
//
// Files: <cache_dir>/status-<xxh3 of dir, URL, table, mode>.v1, written to a
// temporary file and renamed; corrupt or foreign files are ignored, failures
// to write too. `cache_dir = "off"` in ferry.toml (or FERRY_CACHE_DIR=off) disables it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ferry {

struct StatusMemoKey {
  std::string database;     // redacted URL
  std::string dir;          // migrations directory as given
  std::string history_table;
  std::string mode;         // e.g. "text", "text-all"
  uint64_t dir_signature = 0;
  std::string fingerprint;  // Migrator::ProbeHistory().fingerprint

  // The exact key line compared on load (includes the ferry version).
  std::string Line() const;
  // The memo file for this directory, database, table and mode.
  std::string Path(const std::string& cache_dir) const;
};

// The payload stored under `key`, or nullopt when there is none for exactly
// this key.
std::optional<std::string> LoadStatusMemo(const std::string& cache_dir, const StatusMemoKey& key);

// Stores `payload` under `key` (best effort: failures are ignored).
void SaveStatusMemo(const std::string& cache_dir, const StatusMemoKey& key,
                    const std::string& payload);

}  // namespace ferry
