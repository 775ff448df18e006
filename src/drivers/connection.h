// Connection: one session with one database, behind which every engine sits.
//
// Contract for all implementations:
//   - Used by one thread at a time. Open one Connection per thread.
//   - Every failure is a Status whose context carries what the server said:
//     "sqlstate", "statement" (excerpt), "position" (1-based character offset
//     into the statement), "detail", "hint". Never a password.
//   - Values are passed and returned as text (nullopt is SQL NULL) and bound as
//     parameters, never spliced into SQL. Identifiers go through QuoteIdent().
//   - Take every setting from the URL (and libpq's own environment, which libpq
//     reads itself); never read FERRY_* variables in a driver.
//   - A capability the engine lacks returns kUnimplemented.
//
// How to add a driver: see "How to add an engine" in drivers/engine.h. The
// Connection's factory is
//   `Result<std::unique_ptr<Connection>> Open(const Url&, const ConnectOptions&)`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/url.h"
#include "drivers/engine.h"
#include "ferry/status.h"

namespace ferry {

// One parameter or field in text form; nullopt is SQL NULL.
using Value = std::optional<std::string>;
using Params = std::vector<Value>;

struct Column {
  std::string name;
  uint32_t type_oid = 0;  // PostgreSQL type OID; 0 where the engine has none
};

struct QueryResult {
  std::vector<Column> columns;
  std::vector<std::vector<Value>> rows;
  int64_t rows_affected = 0;  // INSERT/UPDATE/DELETE/COPY count, else rows returned

  bool empty() const { return rows.empty(); }
  // Field (row, col) or "" when NULL. Aborts on out-of-range (programmer error).
  const std::string& Text(size_t row, size_t col) const;
  bool IsNull(size_t row, size_t col) const { return !rows.at(row).at(col).has_value(); }
};

// A row handed to a streaming callback; the views are valid only during the call.
struct RowView {
  const std::vector<Column>* columns = nullptr;
  std::vector<std::optional<std::string_view>> fields;
};
// Return a non-ok Status to stop the stream; it is returned from Stream().
using RowCallback = std::function<Status(const RowView&)>;

// One thing ferry relies on, and whether this server offers it.
struct Capability {
  std::string name;    // "transactional_ddl", "advisory_locks", "copy", ...
  bool available = false;
  std::string detail;  // what was found ("wal_level=replica")
  std::string hint;    // what to change when it is missing; "" when available
};

struct ServerInfo {
  std::string engine;      // "PostgreSQL", "SQLite"
  std::string version;     // "15.18", "3.40.1"
  int version_num = 0;     // 150018, 3040001
  std::string database;    // database name or file path
  std::string user;        // session user ("" for SQLite)
  std::vector<Capability> capabilities;
};

struct ConnectOptions {
  std::chrono::seconds connect_timeout{10};  // used when the URL sets none
  std::string application_name = "ferry";
  // A short, read-only session (status, history, health): PostgreSQL may
  // serve it with the built-in light client instead of loading libpq
  // (drivers/postgres/pg_light.h); it falls back to libpq by itself.
  bool short_session = false;
  // The command only reads (status, history, validate, verify, a copy's
  // source). SQLite: the file must exist (a missing one is kNotFound naming
  // the path, never created) and is opened SQLITE_OPEN_READONLY, so a
  // read-only file or directory works without ?mode=ro. PostgreSQL: no
  // effect here (read-only commands keep their own transactions).
  bool read_only = false;
};

// Streams data into COPY ... FROM STDIN. Call Finish() or Abort() exactly once.
class CopyWriter {
 public:
  virtual ~CopyWriter() = default;
  virtual Status Write(std::string_view data) = 0;
  // Ends the COPY; returns the number of rows the server stored.
  virtual Result<int64_t> Finish() = 0;
  // Ends the COPY with an error so the server discards everything written.
  virtual Status Abort(std::string_view reason) = 0;
};

class Connection {
 public:
  virtual ~Connection() = default;

  // The engine this session speaks; its traits say what it can do.
  virtual Engine engine() const = 0;
  const EngineTraits& traits() const { return TraitsOf(engine()); }
  // The connection's URL with secrets removed.
  virtual const std::string& redacted_url() const = 0;

  // Runs one statement or a script of several (no parameters, no results),
  // in one round trip where the engine allows. Returns the rows affected by
  // all its statements together. On failure the Status's "position" is
  // relative to the failing statement when "script_offset" (its byte offset
  // in `sql`) is present, else relative to the whole script.
  virtual Result<int64_t> Exec(std::string_view sql) = 0;

  // Runs statements in order, in one round trip where the engine allows
  // (PostgreSQL pipeline mode), each as its own statement (one statement per
  // item; `params` may be null). Stops at the first failure: its Status has
  // "batch_index" (0-based item) and a "position" relative to that item.
  // Returns the rows affected by each item; an item with `result` set also
  // receives its rows there (e.g. INSERT ... RETURNING).
  //
  // `reuse` says the same text will be sent again and again (ferry's own
  // BEGIN, history INSERT, ...): a driver may keep it prepared on the
  // server and skip parsing and planning it next time. A statement that
  // another one deallocated (DEALLOCATE ALL in a migration) is prepared
  // again; when that happens in the batch's first item outside a transaction
  // block, nothing has run and the batch is sent once more. Inside a
  // transaction block the failure (SQLSTATE 26000) is returned: the block is
  // aborted, and only the caller can redo what it held.
  struct BatchItem {
    std::string_view sql;
    const Params* params = nullptr;
    QueryResult* result = nullptr;
    bool reuse = false;
  };
  virtual Result<std::vector<int64_t>> ExecBatch(const std::vector<BatchItem>& items) = 0;

  // Runs one statement with bound parameters ($1, $2 ... on PostgreSQL;
  // ?1 or $1 style on SQLite) and returns its whole result.
  virtual Result<QueryResult> Query(std::string_view sql, const Params& params = {}) = 0;

  // Runs one statement and hands rows to `on_row` one at a time, without
  // holding the whole result in memory. A non-ok Status from `on_row` stops
  // it, with the same cancel rule as CopyOut (kCancelled cancels the query
  // even inside a transaction block).
  virtual Status Stream(std::string_view sql, const Params& params, const RowCallback& on_row) = 0;

  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;
  virtual bool InTransaction() const = 0;

  // Session-bound exclusive lock on `key`: released by Unlock() or when the
  // session ends (also when the process is killed). Non-blocking.
  virtual Result<bool> TryLock(int64_t key) = 0;
  virtual Status Unlock(int64_t key) = 0;

  // COPY: `copy_sql` is a full "COPY ... TO STDOUT" / "FROM STDIN" statement;
  // the format (text, csv, binary) is whatever it names. A non-ok Status
  // from `sink` stops CopyOut and is returned; outside a transaction block
  // the server's COPY is cancelled, inside one the rest is read and dropped
  // (a cancel would abort the transaction) unless the Status is kCancelled:
  // then the COPY is cancelled anyway and the transaction is left aborted
  // (for callers that roll it back next).
  virtual Status CopyOut(std::string_view copy_sql,
                         const std::function<Status(std::string_view chunk)>& sink) = 0;
  virtual Result<std::unique_ptr<CopyWriter>> CopyIn(std::string_view copy_sql) = 0;

  // Engine, version and the capabilities ferry relies on, with hints.
  virtual Result<ServerInfo> Info() = 0;

  // Server-side process id of this session (PostgreSQL backend pid), or the
  // local process id for embedded engines.
  virtual int SessionId() const = 0;

  // Messages the server sends besides results (PostgreSQL NOTICE, WARNING,
  // INFO: RAISE NOTICE in a migration) go to `handler`, on the thread making
  // the call that received them, while it runs. Without a handler they go to
  // the debug log. Engines without such messages never call it.
  using NoticeHandler = std::function<void(std::string_view severity, std::string_view message)>;
  void SetNoticeHandler(NoticeHandler handler) { notice_handler_ = std::move(handler); }

 protected:
  // For drivers: hands one server message to the handler; false when none is set.
  bool Notice(std::string_view severity, std::string_view message) const {
    if (!notice_handler_) return false;
    notice_handler_(severity, message);
    return true;
  }

 private:
  NoticeHandler notice_handler_;
};

// "name" -> "\"name\""; embedded quotes doubled. Same rule for PostgreSQL and SQLite.
std::string QuoteIdent(std::string_view name);
// Quotes a possibly schema-qualified name given as "schema.table".
std::string QuoteQualified(std::string_view name);

// A PostgreSQL string literal for `value`, for the few places that cannot
// bind a parameter (COPY, SET, SET TRANSACTION SNAPSHOT, DDL scripts):
// 'it''s', or E'a\\b' when it holds a backslash, so it reads the same whatever
// standard_conforming_strings is. PostgreSQL only; everywhere else, bind.
std::string PgLiteral(std::string_view value);

// `text` on one line: runs of spaces, tabs and line breaks become one space.
std::string FoldWhitespace(std::string_view text);

// First `max_chars` characters of `sql` on one line, for error context.
std::string Excerpt(std::string_view sql, size_t max_chars = 200);

}  // namespace ferry
