// Migration sources: reading a directory of migration files.
//
// One scanner reads every supported layout; layouts may be mixed in one
// directory (each version still appears once):
//
//   ferry / dbmate   VERSION_name.sql with sections:
//                      -- ferry:up        (or dbmate's -- migrate:up)
//                      CREATE TABLE ...;
//                      -- ferry:down      (optional; or -- migrate:down)
//                      DROP TABLE ...;
//                    Without any section marker the whole file is the up
//                    script of a forward-only migration (no down).
//   golang-migrate   VERSION_name.up.sql + VERSION_name.down.sql (down optional)
//   diesel           VERSION_name/up.sql + VERSION_name/down.sql (down optional;
//                    metadata.toml `run_in_transaction = false` is honoured)
//   Flyway           V<version>__name.sql (up), U<version>__name.sql (its down),
//                    R__name.sql (repeatable: no version, runs after the
//                    versioned ones in description order, again whenever its
//                    checksum changes)
//
// VERSION is anything Version::Parse accepts (see version.h); in the
// VERSION_name forms it ends at the first '_'. The description is the name
// with '_' turned into spaces. Every layout also takes .cql in place of .sql
// (CQL scripts: 1_init.cql, V1.0.0__init.cql, 1_x/up.cql). Hidden entries and
// files not ending in .sql or .cql (README.md, metadata.toml) are ignored, as
// are subdirectories holding neither up.sql nor down.sql (nor up.cql, down.cql). Files are read as UTF-8; a BOM is dropped and
// CRLF / CR line ends become LF.
//
// Directives are SQL comments read by ferry (the server sees plain comments).
// The prefix is `ferry:` or dbmate's `migrate:`; '-' and '_' are
// interchangeable in names:
//
//   -- ferry:no-transaction         run the script outside a transaction
//   -- ferry:transaction false      the same (dbmate: transaction:false)
//   -- ferry:lock_timeout 5s        SET lock_timeout for the script
//   -- ferry:statement_timeout 1min SET statement_timeout for the script
//
// A value may also follow the name after ':' or '=' (lock_timeout:5s).
// Timeouts are PostgreSQL durations: a number with an optional unit us, ms,
// s, min, h or d (no unit means milliseconds), passed through as written.
// Where directives go:
//   - on a section marker line: `-- ferry:up transaction:false lock_timeout:5s`
//     (a trailing `-- comment` there is ignored);
//   - on their own comment lines at the top of a section (before its first
//     SQL), or at the top of a file without markers (every layout);
//   - on comment lines above `-- ferry:up`: then they apply to both sections.
// Online steps (docs/online-changes.md), anywhere in the up script, each a
// header line plus indented comment lines below it (the block ends at the
// first line that is not an indented `--` comment):
//
//   -- ferry:expand users                  zero-downtime column change
//   --   change amount type numeric(12,2)
//   --   down amount = round(amount)::integer
//   -- ferry:backfill users                batched UPDATE after the DDL
//   --   set   b = a * 2
//   --   where b is null
//
// The scanner only collects the blocks (Script::online); move/expand.h reads
// them. A third section `-- ferry:verify` (after up) holds verify queries;
// golang-migrate layouts use VERSION_name.verify.sql, diesel folders
// verify.sql (docs/online-changes.md#verify).
// `-- ferry:lint-ignore ...` and `-- ferry:lint-ignore-file ...` are read by
// `ferry lint` (migrate/lint.h) and may appear anywhere; the scanner treats
// them as plain comments.
// Any other `ferry:` / `migrate:` name, or a directive below SQL, is an error.
// Markers and directives are recognised line by line, as dbmate does; dbmate's
// `-- migrate:` lines count only at the very start of a line (an indented
// one is a plain comment, as dbmate reads it).
//
// Checksums: "sha256v1:" + lower-case hex SHA-256 of the canonical bytes of
// the up script only: UTF-8 BOM removed, CRLF and CR turned into LF, trailing
// whitespace at the end removed. For a sectioned file the up script starts
// on the line after `-- ferry:up` and ends before `-- ferry:down`, so moving
// an unchanged up script between layouts, adding a down section, or
// re-saving with Windows line ends keeps the checksum; editing the up SQL (or
// the comment lines inside it) changes it. "v1" names this algorithm; a
// future change of canonical form gets a new prefix, and history rows keep
// the prefix they were written with.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ferry/status.h"
#include "migrate/version.h"

namespace ferry {

enum class MigrationKind : uint8_t {
  kVersioned,   // applied once, in version order
  kRepeatable,  // Flyway R__: re-applied whenever its checksum changes
};

enum class SourceLayout : uint8_t {
  kSingleFile,    // VERSION_name.sql, sectioned or forward-only
  kUpDownFiles,   // golang-migrate VERSION_name.up.sql / .down.sql
  kDieselFolder,  // VERSION_name/up.sql, down.sql
  kFlyway,        // V / U / R files
};

// "versioned", "repeatable" (the history table's kind column).
std::string_view MigrationKindName(MigrationKind kind);
// "single-file", "up-down-files", "diesel-folder", "flyway".
std::string_view SourceLayoutName(SourceLayout layout);

struct Migration;
// How to give `m` a down script in its own layout, as a hint that completes
// "has no down section; ...": a '-- ferry:down' section (single file), a
// VERSION_name.down.sql file (golang-migrate), a U file (Flyway), down.sql
// in the folder (diesel).
std::string HowToAddDown(const Migration& m);

struct Directives {
  bool no_transaction = false;
  std::string lock_timeout;       // PostgreSQL duration as written; "" = server default
  std::string statement_timeout;  // likewise

  bool operator==(const Directives&) const = default;
};

// A `-- ferry:expand` or `-- ferry:backfill` block of an up script.
struct OnlineBlock {
  std::string kind;  // "expand" or "backfill"
  std::string header;  // text after the directive name ("users")
  // The indented comment lines below it, "--" and indentation removed, with
  // their file lines.
  std::vector<std::pair<int, std::string>> body;
  int line = 0;  // file line of the header

  bool operator==(const OnlineBlock&) const = default;
};

// One direction of a migration.
struct Script {
  std::string path;  // file holding it (the directory joined with its name)
  // Canonical text: BOM dropped, LF line ends, trailing whitespace removed.
  std::string sql;
  int first_line = 1;     // 1-based line of `path` where `sql` begins
  Directives directives;  // effective: file-wide, then marker line, then section top
  std::vector<OnlineBlock> online;  // up scripts only: expand / backfill blocks
};

struct Migration {
  Version version;  // empty for repeatable migrations
  std::string description;
  MigrationKind kind = MigrationKind::kVersioned;
  SourceLayout layout = SourceLayout::kSingleFile;
  std::string script;  // up script path relative to the directory ("1_init.sql")
  Script up;
  std::optional<Script> down;  // absent: forward-only (empty down sections count as absent)
  // Queries that must return no rows (or one true) after up; absent when
  // there are none. Not part of the checksum.
  std::optional<Script> verify;
  std::string checksum;        // ChecksumV1(up.sql)
};

struct MigrationSet {
  std::string dir;
  // Versioned migrations by ascending version, then repeatable ones by
  // description.
  std::vector<Migration> migrations;

  // The migration with a version equal to `version`, or nullptr.
  const Migration* Find(const Version& version) const;
  // The highest version, or nullptr when there is no versioned migration.
  const Version* Latest() const;
  // .sql files that fit no layout, relative to `dir`, when the scan was told
  // to ignore them (ScanOptions::ignore_unknown_files); sorted.
  std::vector<std::string> ignored;
};

inline constexpr std::string_view kChecksumPrefix = "sha256v1:";

// The canonical form of a script (idempotent): BOM dropped, CRLF and CR
// turned into LF, trailing whitespace at the end removed.
std::string CanonicalScriptText(std::string_view text);
// "sha256v1:<hex>" of CanonicalScriptText(up_sql).
std::string ChecksumV1(std::string_view up_sql);

// Reads every migration in `dir` (not recursive, except diesel folders).
//
// kNotFound when `dir` does not exist; kInvalidArgument when it is not a
// directory; kPermissionDenied when it may not be read (kUnknown for other
// listing failures). Any problem with
// the files fails the whole scan with kInvalidArgument and a message listing
// every problem, one per line, each starting with the path (and line):
// duplicate versions, names that cannot be parsed or fit no layout, a down
// without an up, empty up scripts, invalid UTF-8 or NUL bytes, unreadable
// files, misplaced or unknown directives, a down section before the up one.
struct ScanOptions {
  // Accept empty up scripts (templates just written by `ferry new`). Only for
  // listing versions: never apply a set scanned this way.
  bool allow_empty = false;
  // The caller needs versions, names and checksums only (status, health):
  // the result may come from the scan cache in `cache_dir` (scan_cache.h),
  // with empty SQL and no directives. Never apply a set scanned this way.
  bool metadata_only = false;
  std::string cache_dir;  // "" = no cache
  // The directory's signature when the caller took it already (before the
  // scan, e.g. on another thread while connecting); else taken here.
  std::optional<uint64_t> signature;
  // .sql files that fit no layout (a seed script, a Flyway directory's other
  // files) are listed in MigrationSet::ignored instead of failing the scan
  // (ferry.toml `[migrations] unknown_files = "ignore"`). Names that look
  // like a layout but cannot be parsed still fail. Such scans skip the scan
  // cache.
  bool ignore_unknown_files = false;
};
Result<MigrationSet> ScanDirectory(const std::string& dir, ScanOptions options = {});

// ---- ferry new ----------------------------------------------------------

enum class VersionStyle : uint8_t {
  kTimestamp,   // UTC YYYYMMDDHHMMSS (diesel: YYYY-MM-DD-HHMMSS) from the clock
  kSequential,  // the highest version plus one, keeping its zero padding
};

struct NewFile {
  std::string path;      // relative to the migrations directory
  std::string contents;  // template to write
};

struct NewMigration {
  std::string version;
  std::vector<NewFile> files;  // create every one; folders as needed
};

// Names the next migration after `existing` for `ferry new NAME`.
//
// `name` may hold letters, digits, '_', '-' and spaces ('-' and spaces become
// '_'). Timestamp style takes the time from `now` and, should that not sort
// after the latest version (clock skew, two in one second), uses the latest
// plus one. Sequential style increments the last component of the latest
// version ("0042" -> "0043", "1.1" -> "1.2"; "0001" when there is none).
// Files per layout: single file (with empty up/down sections), .up.sql +
// .down.sql, diesel folder up.sql + down.sql, Flyway V + U.
// kInvalidArgument for a bad name, or sequential numbering after a diesel
// timestamp (use the timestamp style).
Result<NewMigration> NextVersionName(const MigrationSet& existing, std::string_view name,
                                     VersionStyle style, std::chrono::system_clock::time_point now,
                                     SourceLayout layout = SourceLayout::kSingleFile);

}  // namespace ferry
