#include "drivers/sqlite/sqlite_connection.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "core/backoff.h"

namespace ferry::sqlite {
namespace {

using DbHandle = std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)>;
using StmtHandle = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

StatusCode CodeForSqlite(int code, std::string_view message) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StatusCode::kDeadlineExceeded;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:
      return StatusCode::kNotFound;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
    case SQLITE_NOTADB:
      return StatusCode::kInvalidArgument;
    case SQLITE_CORRUPT:
    case SQLITE_FULL:
    case SQLITE_IOERR:
      return StatusCode::kFailedPrecondition;
    case SQLITE_INTERRUPT:
      return StatusCode::kCancelled;
    case SQLITE_ERROR:
      if (message.find("no such table") != std::string_view::npos ||
          message.find("no such column") != std::string_view::npos) {
        return StatusCode::kNotFound;
      }
      return StatusCode::kInvalidArgument;
    default:
      return StatusCode::kUnknown;
  }
}

Status ErrorFrom(sqlite3* db, int code, std::string_view statement) {
  std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  int ext = db != nullptr ? sqlite3_extended_errcode(db) : code;
  Status status(CodeForSqlite(ext, message), message);
  status.Add("sqlite_code", sqlite3_errstr(ext));
  if (!statement.empty()) {
    status.Add("statement", Excerpt(statement));
    int offset = db != nullptr ? sqlite3_error_offset(db) : -1;
    if (offset >= 0) status.Add("position", std::to_string(offset + 1));
  }
  return status;
}

// "-12", "0", "42" but not "042", "+1", "1.0" or out-of-range values: the
// texts that an int64 prints back unchanged.
bool IsCanonicalInteger(const std::string& text, int64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  size_t digits = text[0] == '-' ? 1 : 0;
  if (digits == text.size()) return false;
  if (text[digits] == '0' && text.size() > digits + 1) return false;
  if (text == "-0") return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// Binds params to $N / ?N / ? placeholders.
Status Bind(sqlite3* db, sqlite3_stmt* stmt, const Params& params, std::string_view sql) {
  int count = sqlite3_bind_parameter_count(stmt);
  int positional = 0;
  for (int i = 1; i <= count; ++i) {
    const char* name = sqlite3_bind_parameter_name(stmt, i);
    size_t index = 0;
    if (name == nullptr) {
      index = static_cast<size_t>(positional++);
    } else {
      std::string_view n(name + 1);
      size_t value = 0;
      auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), value);
      if (ec != std::errc() || ptr != n.data() + n.size() || value == 0) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("parameter '{}' is not positional: write $1, $2 ...", name))
            .With("statement", Excerpt(sql));
      }
      index = value - 1;
    }
    if (index >= params.size()) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("statement uses parameter {} but {} were given", index + 1,
                                params.size()))
          .With("statement", Excerpt(sql));
    }
    const Value& v = params[index];
    int rc;
    int64_t number = 0;
    if (!v) {
      rc = sqlite3_bind_null(stmt, i);
    } else if (IsCanonicalInteger(*v, &number)) {
      // Bound as an integer: SQLite orders every integer before any text, so
      // "x < $1" with text '10' would be true for all x. Column affinity
      // still stores it as text in TEXT columns.
      rc = sqlite3_bind_int64(stmt, i, number);
    } else {
      rc = sqlite3_bind_text(stmt, i, v->data(), static_cast<int>(v->size()), SQLITE_TRANSIENT);
    }
    if (rc != SQLITE_OK) return ErrorFrom(db, rc, sql);
  }
  return Status();
}

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(DbHandle db, std::string path, std::string redacted, bool read_only)
      : db_(std::move(db)), path_(std::move(path)), redacted_(std::move(redacted)),
        read_only_(read_only) {}

  ~SqliteConnection() override {
    for (auto& [key, fd] : locks_) close(fd);
  }

  Engine engine() const override { return Engine::kSqlite; }
  const std::string& redacted_url() const override { return redacted_; }

  Result<int64_t> Exec(std::string_view sql) override {
    // Statement by statement, so DDL counts 0 rows and an error names the
    // statement that failed (and where it starts in the script).
    const char* p = sql.data();
    const char* end = sql.data() + sql.size();
    int64_t total = 0;
    auto at = [&sql](Status s, const char* start) {
      return std::move(s).With("script_offset", std::to_string(start - sql.data()));
    };
    while (p < end) {
      sqlite3_stmt* raw = nullptr;
      const char* tail = nullptr;
      int rc = sqlite3_prepare_v2(db_.get(), p, static_cast<int>(end - p), &raw, &tail);
      std::string_view text(p, static_cast<size_t>((tail ? tail : end) - p));
      if (rc != SQLITE_OK) {
        // No tail after a failed prepare: report up to the next ';'.
        std::string_view rest(p, static_cast<size_t>(end - p));
        // Leading whitespace is not part of the statement's position.
        size_t skip = rest.find_first_not_of(" \t\r\n");
        if (skip == std::string_view::npos) skip = 0;
        rest.remove_prefix(skip);
        Status e = ErrorFrom(db_.get(), rc, rest.substr(0, rest.find(';')));
        // sqlite3_error_offset counted from `p`; make it relative to the statement.
        if (std::string pos = e.Get("position"); !pos.empty()) {
          int v = std::max(1, std::atoi(pos.c_str()) - static_cast<int>(skip));
          e.Add("position", std::to_string(v));
        }
        return at(std::move(e), p + skip);
      }
      StmtHandle stmt(raw, &sqlite3_finalize);
      p = tail ? tail : end;
      if (stmt == nullptr) continue;  // whitespace or comments
      int64_t before = sqlite3_total_changes64(db_.get());
      do {
        rc = sqlite3_step(stmt.get());
      } while (rc == SQLITE_ROW);
      if (rc != SQLITE_DONE) {
        size_t skip = text.find_first_not_of(" \t\r\n");
        if (skip == std::string_view::npos) skip = 0;
        return at(ErrorFrom(db_.get(), rc, text.substr(skip)), text.data() + skip);
      }
      total += sqlite3_total_changes64(db_.get()) - before;
    }
    return total;
  }

  Result<std::vector<int64_t>> ExecBatch(const std::vector<BatchItem>& items) override {
    std::vector<int64_t> rows;
    rows.reserve(items.size());
    static const Params kNone;
    for (size_t i = 0; i < items.size(); ++i) {
      auto r = Query(items[i].sql, items[i].params ? *items[i].params : kNone);
      if (!r.ok()) return std::move(r).TakeStatus().With("batch_index", std::to_string(i));
      rows.push_back(r->rows_affected);
      if (items[i].result != nullptr) *items[i].result = std::move(*r);
    }
    return rows;
  }

  Result<QueryResult> Query(std::string_view sql, const Params& params) override {
    QueryResult result;
    bool have_columns = false;
    int64_t before = sqlite3_total_changes64(db_.get());
    Status s = Run(sql, params, [&](sqlite3_stmt* stmt) -> Status {
      int n = sqlite3_column_count(stmt);
      if (!have_columns) {
        FillColumns(stmt, &result.columns);
        have_columns = true;
      }
      std::vector<Value> row;
      row.reserve(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) row.push_back(ColumnValue(stmt, i));
      result.rows.push_back(std::move(row));
      return Status();
    }, &result.columns);
    if (!s.ok()) return s;
    // total_changes, not changes(): the latter repeats the last DML count
    // after a DDL statement.
    result.rows_affected = result.columns.empty()
                               ? sqlite3_total_changes64(db_.get()) - before
                               : static_cast<int64_t>(result.rows.size());
    return result;
  }

  Status Stream(std::string_view sql, const Params& params, const RowCallback& on_row) override {
    std::vector<Column> columns;
    RowView view;
    view.columns = &columns;
    std::vector<std::string> reals;  // text of REAL fields, alive during on_row
    return Run(sql, params, [&](sqlite3_stmt* stmt) -> Status {
      int n = sqlite3_column_count(stmt);
      if (columns.empty()) FillColumns(stmt, &columns);
      view.fields.assign(static_cast<size_t>(n), std::nullopt);
      reals.resize(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) {
        const int type = sqlite3_column_type(stmt, i);
        if (type == SQLITE_NULL) continue;
        if (type == SQLITE_FLOAT) {
          reals[static_cast<size_t>(i)] = RealText(sqlite3_column_double(stmt, i));
          view.fields[static_cast<size_t>(i)] = reals[static_cast<size_t>(i)];
          continue;
        }
        const void* data = type == SQLITE_BLOB ? sqlite3_column_blob(stmt, i)
                                               : sqlite3_column_text(stmt, i);
        int bytes = sqlite3_column_bytes(stmt, i);
        view.fields[static_cast<size_t>(i)] =
            std::string_view(static_cast<const char*>(data), static_cast<size_t>(bytes));
      }
      return on_row(view);
    }, nullptr);
  }

  Status Begin() override { return Exec("BEGIN IMMEDIATE").status(); }
  Status Commit() override { return Exec("COMMIT").status(); }
  Status Rollback() override {
    if (!InTransaction()) return Status();
    return Exec("ROLLBACK").status();
  }
  bool InTransaction() const override { return sqlite3_get_autocommit(db_.get()) == 0; }

  Result<bool> TryLock(int64_t key) override {
    if (locks_.count(key)) return true;
    std::string lock_path = (path_ == ":memory:" || path_.empty()) ? "" : path_ + ".ferry-lock";
    if (lock_path.empty()) {
      return Status(StatusCode::kUnimplemented, "an in-memory SQLite database cannot be locked");
    }
    if (read_only_) return LockIsFree(lock_path, key);
    int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return Status(StatusCode::kPermissionDenied,
                    fmt::format("cannot open lock file {}: {}", lock_path, std::strerror(errno)));
    }
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = static_cast<off_t>(static_cast<uint64_t>(key) % 0x7fffffffULL);
    fl.l_len = 1;
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      int err = errno;
      close(fd);
      if (err == EAGAIN || err == EACCES) return false;
      return Status(StatusCode::kUnknown,
                    fmt::format("cannot lock {}: {}", lock_path, std::strerror(err)));
    }
    locks_[key] = fd;
    return true;
  }

  // A read-only connection creates no lock file and takes no lock: TryLock
  // only tells whether someone holds it (no file: nobody).
  static Result<bool> LockIsFree(const std::string& lock_path, int64_t key) {
    int fd = open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return true;
      return Status(StatusCode::kPermissionDenied,
                    fmt::format("cannot open lock file {}: {}", lock_path, std::strerror(errno)));
    }
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = static_cast<off_t>(static_cast<uint64_t>(key) % 0x7fffffffULL);
    fl.l_len = 1;
    int rc = fcntl(fd, F_OFD_GETLK, &fl);
    int err = errno;
    close(fd);
    if (rc != 0) {
      return Status(StatusCode::kUnknown,
                    fmt::format("cannot test the lock {}: {}", lock_path, std::strerror(err)));
    }
    return fl.l_type == F_UNLCK;
  }

  Status Unlock(int64_t key) override {
    auto it = locks_.find(key);
    if (it == locks_.end()) {
      return Status(StatusCode::kFailedPrecondition, fmt::format("lock {} is not held", key));
    }
    close(it->second);  // closing the description releases the OFD lock
    locks_.erase(it);
    return Status();
  }

  Status CopyOut(std::string_view, const std::function<Status(std::string_view)>&) override {
    return Status(StatusCode::kUnimplemented, "SQLite has no COPY; ferry reads it with SELECT");
  }
  Result<std::unique_ptr<CopyWriter>> CopyIn(std::string_view) override {
    return Status(StatusCode::kUnimplemented,
                  "SQLite has no COPY; ferry writes it with batched prepared inserts");
  }

  Result<ServerInfo> Info() override {
    ServerInfo info;
    info.engine = "SQLite";
    info.version = sqlite3_libversion();
    info.version_num = sqlite3_libversion_number();
    info.database = path_;
    auto journal = Query("PRAGMA journal_mode", {});
    std::string mode = journal.ok() && !journal->empty() ? journal->Text(0, 0) : "unknown";
    auto fk = Query("PRAGMA foreign_keys", {});
    bool fk_on = fk.ok() && !fk->empty() && fk->Text(0, 0) == "1";
    info.capabilities = {
        {"transactional_ddl", true, "DDL runs inside transactions", ""},
        {"advisory_locks", path_ != ":memory:", "file lock on " + path_ + ".ferry-lock",
         path_ == ":memory:" ? "use a file database to share it between processes" : ""},
        {"wal_mode", mode == "wal", "journal_mode=" + mode,
         mode == "wal" ? "" : "WAL is unavailable here (in-memory or read-only database)"},
        {"foreign_keys", fk_on, fk_on ? "foreign_keys=on" : "foreign_keys=off", ""},
        {"copy", false, "no COPY protocol", "ferry uses batched prepared inserts for SQLite"},
    };
    return info;
  }

  int SessionId() const override { return static_cast<int>(getpid()); }

 private:
  static void FillColumns(sqlite3_stmt* stmt, std::vector<Column>* columns) {
    int n = sqlite3_column_count(stmt);
    columns->clear();
    for (int i = 0; i < n; ++i) {
      const char* name = sqlite3_column_name(stmt, i);
      columns->push_back(Column{name ? name : "", 0});
    }
  }

  // A REAL as the shortest text that reads back as the same double (SQLite's
  // own text keeps 15 digits and loses the rest); "1.0" rather than "1" so
  // it still reads as a real. Infinities keep SQLite's spelling ("Inf").
  static std::string RealText(double d) {
    if (!std::isfinite(d)) return d > 0 ? "Inf" : "-Inf";
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
    std::string out(buf, ec == std::errc() ? end : buf);
    if (out.find_first_of(".en") == std::string::npos) out += ".0";
    return out;
  }

  static Value ColumnValue(sqlite3_stmt* stmt, int i) {
    int type = sqlite3_column_type(stmt, i);
    if (type == SQLITE_NULL) return std::nullopt;
    if (type == SQLITE_FLOAT) return RealText(sqlite3_column_double(stmt, i));
    const void* data =
        type == SQLITE_BLOB ? sqlite3_column_blob(stmt, i) : sqlite3_column_text(stmt, i);
    int bytes = sqlite3_column_bytes(stmt, i);
    return std::string(static_cast<const char*>(data), static_cast<size_t>(bytes));
  }

  // Prepares one statement, binds, steps, calling on_row per row.
  Status Run(std::string_view sql, const Params& params,
             const std::function<Status(sqlite3_stmt*)>& on_row, std::vector<Column>* columns) {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw, &tail);
    if (rc != SQLITE_OK) return ErrorFrom(db_.get(), rc, sql);
    StmtHandle stmt(raw, &sqlite3_finalize);
    if (stmt == nullptr) return Status();  // empty statement
    std::string_view rest(tail, static_cast<size_t>(sql.data() + sql.size() - tail));
    if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
      return Status(StatusCode::kInvalidArgument,
                    "Query() takes one statement; use Exec() for scripts")
          .With("statement", Excerpt(sql));
    }
    FERRY_RETURN_IF_ERROR(Bind(db_.get(), stmt.get(), params, sql));
    if (columns != nullptr) FillColumns(stmt.get(), columns);
    while (true) {
      rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) return Status();
      if (rc != SQLITE_ROW) return ErrorFrom(db_.get(), rc, sql);
      Status s = on_row(stmt.get());
      if (!s.ok()) return s;
    }
  }

  DbHandle db_;
  std::string path_;
  std::string redacted_;
  std::map<int64_t, int> locks_;  // key -> fd holding the OFD lock
  bool read_only_ = false;
};

// A WAL-mode database (header byte 18 is 2) without a -wal file beside it.
bool IsIdleWalFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path + "-wal", ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char header[20] = {};
  if (!in.read(header, sizeof header)) return false;
  return std::string_view(header, 16) == std::string_view("SQLite format 3\0", 16) &&
         header[18] == 2;
}

// "file:PATH?immutable=1" with the URI's special characters escaped.
std::string ImmutableUri(const std::string& path) {
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      uri += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    } else {
      uri += c;
    }
  }
  return uri + "?immutable=1";
}

}  // namespace

Result<std::unique_ptr<Connection>> Open(const Url& url, const ConnectOptions& options) {
  const std::string& path = url.database();
  const auto& params = url.params();
  bool read_only = options.read_only || (params.count("mode") && params.at("mode") == "ro");
  if (path != ":memory:") {
    std::filesystem::path p(path);
    std::error_code ec;
    std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
    if (!std::filesystem::exists(dir, ec)) {
      return Status(StatusCode::kNotFound,
                    fmt::format("{}: directory '{}' does not exist; create it or choose another "
                                "path",
                                url.Redacted(), dir.string()));
    }
    if (std::filesystem::is_directory(p, ec)) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("{}: '{}' is a directory, not a SQLite file", url.Redacted(), path));
    }
    bool exists = std::filesystem::exists(p, ec);
    if (exists && access(path.c_str(), read_only ? R_OK : (R_OK | W_OK)) != 0) {
      return Status(StatusCode::kPermissionDenied,
                    fmt::format("{}: cannot {} '{}': {}; check the file's permissions",
                                url.Redacted(), read_only ? "read" : "read and write", path,
                                std::strerror(errno)));
    }
    if (!exists && read_only) {
      return Status(StatusCode::kNotFound,
                    fmt::format("{}: the SQLite file '{}' does not exist (this command only reads "
                                "and creates nothing); check the path",
                                url.Redacted(), path))
          .With("path", path);
    }
    if (!exists && access(dir.c_str(), W_OK) != 0) {
      return Status(StatusCode::kPermissionDenied,
                    fmt::format("{}: '{}' does not exist and cannot be created here", url.Redacted(),
                                path));
    }
  }
  sqlite3* raw = nullptr;
  int flags = (read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) |
              SQLITE_OPEN_NOMUTEX;
  std::string open_name = path;
  if (read_only && path != ":memory:" && IsIdleWalFile(path)) {
    // A reader of a WAL file creates -wal and -shm beside it and, being
    // read-only, cannot remove them: a read-only command would change the
    // directory, and fails in a read-only one. No -wal file means no
    // connection has the file open (SQLite keeps it while one does), so the
    // main file is the whole database: read it as immutable.
    open_name = ImmutableUri(path);
    flags |= SQLITE_OPEN_URI;
  }
  int rc = sqlite3_open_v2(open_name.c_str(), &raw, flags, nullptr);
  DbHandle db(raw, &sqlite3_close_v2);
  if (rc != SQLITE_OK) {
    return ErrorFrom(db.get(), rc, "").Prefix(fmt::format("{}: cannot open", url.Redacted()));
  }
  int busy_ms = 5000;
  if (params.count("busy_timeout")) {
    const std::string& v = params.at("busy_timeout");
    std::from_chars(v.data(), v.data() + v.size(), busy_ms);
  }
  sqlite3_busy_timeout(db.get(), busy_ms);
  auto conn = std::make_unique<SqliteConnection>(std::move(db), path, url.Redacted(), read_only);
  // The first real read tells whether the file is a database at all.
  std::string setup = "PRAGMA foreign_keys = ON;";
  if (!read_only && path != ":memory:") setup += "PRAGMA journal_mode = WAL;";
  // Turning a new file to WAL upgrades the pragma's own read transaction to a
  // write one; when several processes open the same new file at once, SQLite
  // answers SQLITE_BUSY at once there instead of calling the busy handler
  // (it would deadlock otherwise). So the setup itself waits, up to the same
  // busy timeout.
  auto r = conn->Exec(setup);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_ms);
  for (int attempt = 1; !r.ok() && (sqlite3_extended_errcode(raw) & 0xff) == SQLITE_BUSY &&
                        std::chrono::steady_clock::now() < deadline;
       ++attempt) {
    std::this_thread::sleep_for(
        RetryDelay(std::chrono::milliseconds(1), attempt, std::chrono::milliseconds(50)));
    r = conn->Exec(setup);
  }
  if (!r.ok()) {
    Status s = std::move(r).TakeStatus();
    return Status(s.code(), fmt::format("{}: {}{}", url.Redacted(), s.message(),
                                        s.message().find("not a database") != std::string::npos
                                            ? "; is this a SQLite file?"
                                            : ""));
  }
  return std::unique_ptr<Connection>(std::move(conn));
}

}  // namespace ferry::sqlite
