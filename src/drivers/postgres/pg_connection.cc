#include "drivers/postgres/pg_connection.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/log.h"
#include "drivers/postgres/pg_error.h"
#include "drivers/postgres/pg_light.h"
#include "drivers/postgres/pg_server_info.h"
#include "drivers/postgres/pg_session.h"

namespace ferry::postgres {
namespace {

// PQputCopyData takes an int length; larger writes are split.
constexpr size_t kMaxCopyChunk = 1 << 20;
// The protocol carries at most this many bind parameters.
constexpr size_t kMaxParams = 65535;

void LogNotice(void* /*arg*/, const char* message) {
  FERRY_LOG_DEBUG("postgres: {}", CleanMessage(message == nullptr ? "" : message));
}

// PQcmdTuples as a number, or `fallback` when the command reports none.
int64_t CmdTuples(const PGresult* result, int64_t fallback) {
  const char* text = Pq().PQcmdTuples(const_cast<PGresult*>(result));  // libpq only reads it
  if (text == nullptr || *text == '\0') return fallback;
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text, text + std::strlen(text), value);
  return ec == std::errc() ? value : fallback;
}

std::vector<Column> ColumnsOf(const PGresult* result) {
  std::vector<Column> columns;
  int n = Pq().PQnfields(result);
  columns.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const char* name = Pq().PQfname(result, i);
    columns.push_back(
        {name == nullptr ? "" : name, static_cast<uint32_t>(Pq().PQftype(result, i))});
  }
  return columns;
}

// Columns, rows and count of a PGRES_TUPLES_OK / PGRES_COMMAND_OK result.
void TakeRows(const PGresult* r, QueryResult* out) {
  out->columns = ColumnsOf(r);
  int nrows = Pq().PQntuples(r);
  int ncols = Pq().PQnfields(r);
  out->rows.clear();
  out->rows.reserve(static_cast<size_t>(nrows));
  for (int row = 0; row < nrows; ++row) {
    std::vector<Value> fields;
    fields.reserve(static_cast<size_t>(ncols));
    for (int col = 0; col < ncols; ++col) {
      if (Pq().PQgetisnull(r, row, col)) {
        fields.emplace_back(std::nullopt);
      } else {
        fields.emplace_back(std::string(Pq().PQgetvalue(r, row, col),
                                        static_cast<size_t>(Pq().PQgetlength(r, row, col))));
      }
    }
    out->rows.push_back(std::move(fields));
  }
  out->rows_affected = CmdTuples(r, nrows);
}

bool IsCopyState(ExecStatusType status) {
  return status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH;
}

Status NotForThisCall(std::string_view statement, std::string_view what) {
  return Status(StatusCode::kInvalidArgument, std::string(what))
      .With("statement", Excerpt(statement));
}

// Cancels the running query from outside the session. Best effort.
void CancelQuery(PGconn* conn) {
  PGcancel* cancel = Pq().PQgetCancel(conn);
  if (cancel == nullptr) return;
  char errbuf[256];
  if (Pq().PQcancel(cancel, errbuf, sizeof errbuf) == 0) {
    FERRY_LOG_DEBUG("postgres: cancel request failed: {}", CleanMessage(errbuf));
  }
  Pq().PQfreeCancel(cancel);
}

class PgCopyWriter;

class PgConnection final : public PgSession {
 public:
  PgConnection(PgConn conn, std::string redacted_url)
      : conn_(std::move(conn)), redacted_url_(std::move(redacted_url)) {}
  ~PgConnection() override;

  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  Engine engine() const override { return Engine::kPostgres; }
  const std::string& redacted_url() const override { return redacted_url_; }

  // libpq's notice processor for this session: "NOTICE:  text\n".
  static void OnNotice(void* self, const char* message) {
    std::string_view text = message == nullptr ? "" : message;
    size_t colon = text.find(":  ");
    std::string_view severity = colon == std::string_view::npos ? "NOTICE" : text.substr(0, colon);
    std::string clean = CleanMessage(colon == std::string_view::npos ? text : text.substr(colon + 3));
    if (static_cast<PgConnection*>(self)->Notice(severity, clean)) return;
    LogNotice(nullptr, message);
  }

  Result<int64_t> Exec(std::string_view sql) override;
  Result<std::vector<int64_t>> ExecBatch(const std::vector<BatchItem>& items) override;
  Result<QueryResult> Query(std::string_view sql, const Params& params) override;
  Status Stream(std::string_view sql, const Params& params, const RowCallback& on_row) override;

  bool InTransaction() const override;

  Status CopyOut(std::string_view copy_sql,
                 const std::function<Status(std::string_view chunk)>& sink) override;
  Result<std::unique_ptr<CopyWriter>> CopyIn(std::string_view copy_sql) override;

  Result<ServerInfo> Info() override;
  int SessionId() const override { return Pq().PQbackendPID(conn_.get()); }

 private:
  friend class PgCopyWriter;

  PGconn* conn() const { return conn_.get(); }
  // kFailedPrecondition while a COPY FROM STDIN is open, kUnavailable once
  // the session is gone.
  Status CheckReady(std::string_view statement) const override;
  // The Status for a failed call: the server error in `result` (or libpq's
  // message when null), as kUnavailable when the session was lost.
  Status Failure(const PGresult* result, std::string_view statement) const;
  // Reads and drops every pending result, ending any COPY state, so the
  // session is ready for the next command. Returns the first error seen.
  Status DrainResults(std::string_view statement);
  // Reads COPY OUT data until its end, dropping it.
  void DiscardCopyData();
  Status RunControl(std::string_view sql, std::string* tag) override;
  // One try of ExecBatch; *retry is set when the first item failed because
  // its prepared statement was gone (so nothing ran).
  Result<std::vector<int64_t>> SendBatch(const std::vector<BatchItem>& items, bool* retry);

  PgConn conn_;
  std::string redacted_url_;
  PgCopyWriter* copy_writer_ = nullptr;  // the open CopyIn writer, not owned
  // BatchItem::reuse texts prepared on this session, by name.
  std::unordered_map<std::string, std::string> prepared_;
  int prepared_count_ = 0;
};

class PgCopyWriter final : public CopyWriter {
 public:
  PgCopyWriter(PgConnection* owner, std::string statement)
      : owner_(owner), statement_(std::move(statement)) {}
  ~PgCopyWriter() override {
    if (owner_ != nullptr) {
      Status s = Abort("COPY writer destroyed without Finish()");
      if (!s.ok()) FERRY_LOG_DEBUG("postgres: aborting COPY: {}", s.ToString());
    }
  }

  PgCopyWriter(const PgCopyWriter&) = delete;
  PgCopyWriter& operator=(const PgCopyWriter&) = delete;

  Status Write(std::string_view data) override {
    FERRY_RETURN_IF_ERROR(CheckOpen());
    while (!data.empty()) {
      size_t n = std::min(data.size(), kMaxCopyChunk);
      if (Pq().PQputCopyData(owner_->conn(), data.data(), static_cast<int>(n)) != 1) {
        Status error = owner_->Failure(nullptr, statement_);
        return error;
      }
      data.remove_prefix(n);
    }
    return Status();
  }

  Result<int64_t> Finish() override {
    FERRY_RETURN_IF_ERROR(CheckOpen());
    PgConnection* owner = Release();
    if (Pq().PQputCopyEnd(owner->conn(), nullptr) != 1) {
      Status error = owner->Failure(nullptr, statement_);
      (void)owner->DrainResults(statement_);
      return error;
    }
    int64_t rows = 0;
    Status error;
    while (PGresult* raw = Pq().PQgetResult(owner->conn())) {
      PgResult result = MakePgResult(raw);
      ExecStatusType status = Pq().PQresultStatus(raw);
      if (status == PGRES_COMMAND_OK) {
        rows = CmdTuples(raw, 0);
      } else if (IsCopyState(status)) {
        result.reset();
        Status drained = owner->DrainResults(statement_);
        if (error.ok()) error = drained.ok() ? owner->Failure(nullptr, statement_) : drained;
        break;
      } else if (status == PGRES_FATAL_ERROR && error.ok()) {
        error = owner->Failure(raw, statement_);
      }
    }
    if (!error.ok()) return error;
    return rows;
  }

  Status Abort(std::string_view reason) override {
    FERRY_RETURN_IF_ERROR(CheckOpen());
    PgConnection* owner = Release();
    std::string why(reason.empty() ? "aborted by ferry" : reason);
    if (Pq().PQputCopyEnd(owner->conn(), why.c_str()) != 1) {
      Status error = owner->Failure(nullptr, statement_);
      (void)owner->DrainResults(statement_);
      return error;
    }
    // The server answers the abort with an error (57014): that is success.
    Status drained = owner->DrainResults(statement_);
    if (Pq().PQstatus(owner->conn()) == CONNECTION_BAD) return drained;
    return Status();
  }

  // Called by the connection when it is destroyed first.
  void Detach() { owner_ = nullptr; }

 private:
  Status CheckOpen() const {
    if (owner_ != nullptr) return Status();
    return Status(
               StatusCode::kFailedPrecondition,
               "COPY writer is closed (Finish() or Abort() was called, or its connection is gone)")
        .With("statement", Excerpt(statement_));
  }
  PgConnection* Release() {
    PgConnection* owner = owner_;
    owner_->copy_writer_ = nullptr;
    owner_ = nullptr;
    return owner;
  }

  PgConnection* owner_;
  std::string statement_;
};

PgConnection::~PgConnection() {
  if (copy_writer_ != nullptr) copy_writer_->Detach();
}

Status PgConnection::CheckReady(std::string_view statement) const {
  if (copy_writer_ != nullptr) {
    return Status(StatusCode::kFailedPrecondition,
                  "a COPY FROM STDIN is open on this connection: call Finish() or Abort() on its "
                  "writer first")
        .With("statement", Excerpt(statement));
  }
  if (Pq().PQstatus(conn()) == CONNECTION_BAD) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("the connection to {} was lost; reconnect", redacted_url_))
        .With("statement", Excerpt(statement));
  }
  return Status();
}

Status PgConnection::Failure(const PGresult* result, std::string_view statement) const {
  bool lost = Pq().PQstatus(conn()) == CONNECTION_BAD;
  if (result != nullptr && !lost) return ErrorFromResult(result, statement);
  std::string message = CleanMessage(result != nullptr ? Pq().PQresultErrorMessage(result)
                                                       : Pq().PQerrorMessage(conn()));
  if (!lost) {
    return Status(StatusCode::kUnknown, message.empty() ? "libpq call failed" : message)
        .With("statement", Excerpt(statement));
  }
  Status status(StatusCode::kUnavailable,
                fmt::format("lost the connection to {}: {}", redacted_url_,
                            message.empty() ? "server closed the connection" : message));
  if (result != nullptr) {
    Status server = ErrorFromResult(result, statement);
    for (const auto& [key, value] : server.context()) status.Add(key, value);
  }
  return std::move(status).With("statement", Excerpt(statement));
}

void PgConnection::DiscardCopyData() {
  while (true) {
    char* buffer = nullptr;
    int n = Pq().PQgetCopyData(conn(), &buffer, 0);
    if (buffer != nullptr) Pq().PQfreemem(buffer);
    if (n < 0) return;
  }
}

Status PgConnection::DrainResults(std::string_view statement) {
  Status first;
  int copy_results = 0;
  while (PGresult* raw = Pq().PQgetResult(conn())) {
    PgResult result = MakePgResult(raw);
    ExecStatusType status = Pq().PQresultStatus(raw);
    if (status == PGRES_COPY_IN || status == PGRES_COPY_BOTH) {
      if (++copy_results > 2) break;  // cannot end it: the session is unusable
      Pq().PQputCopyEnd(conn(), "not a COPY this call can run");
    } else if (status == PGRES_COPY_OUT) {
      if (++copy_results > 2) break;
      DiscardCopyData();
    } else if (status == PGRES_FATAL_ERROR && first.ok()) {
      first = Failure(raw, statement);
    }
  }
  return first;
}

Result<int64_t> PgConnection::Exec(std::string_view sql) {
  FERRY_RETURN_IF_ERROR(CheckReady(sql));
  std::string text(sql);
  if (Pq().PQsendQuery(conn(), text.c_str()) != 1) return Failure(nullptr, sql);
  int64_t rows = 0;
  Status error;
  while (PGresult* raw = Pq().PQgetResult(conn())) {
    PgResult result = MakePgResult(raw);
    ExecStatusType status = Pq().PQresultStatus(raw);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      rows += CmdTuples(raw, Pq().PQntuples(raw));
    } else if (IsCopyState(status)) {
      result.reset();
      if (status == PGRES_COPY_OUT) {
        DiscardCopyData();
      } else {
        Pq().PQputCopyEnd(conn(), "Exec cannot feed COPY FROM STDIN; ferry uses CopyIn for that");
      }
      if (error.ok()) {
        error = NotForThisCall(sql,
                               "COPY to or from the client cannot run through Exec; use "
                               "CopyOut/CopyIn");
      }
    } else if (status == PGRES_FATAL_ERROR && error.ok()) {
      error = Failure(raw, sql);
    }
  }
  if (error.ok() && Pq().PQstatus(conn()) == CONNECTION_BAD) error = Failure(nullptr, sql);
  if (!error.ok()) return error;
  return rows;
}

// Pipeline mode: every item is sent, then one sync, then the results are
// read: one round trip for the batch. After a failure the server skips the
// remaining items (PGRES_PIPELINE_ABORTED) until the sync. Items marked
// `reuse` run as named prepared statements (Parse once per session).
Result<std::vector<int64_t>> PgConnection::ExecBatch(const std::vector<BatchItem>& items) {
  // Resending is safe only when the batch began outside a transaction block:
  // inside one, the failed item aborted work that came before the batch.
  const bool idle = Pq().PQtransactionStatus(conn()) == PQTRANS_IDLE;
  bool retry = false;
  auto done = SendBatch(items, &retry);
  if (retry && idle) {
    // Deallocated behind our back (DEALLOCATE ALL): the first item failed, so
    // the server skipped the rest up to the sync and the session is idle
    // again with nothing run; prepare anew.
    done = SendBatch(items, &retry);
  }
  return done;
}

Result<std::vector<int64_t>> PgConnection::SendBatch(const std::vector<BatchItem>& items,
                                                     bool* retry) {
  *retry = false;
  if (items.empty()) return std::vector<int64_t>();
  FERRY_RETURN_IF_ERROR(CheckReady(items.front().sql));
  FERRY_RETURN_IF_ERROR(RefuseCopyFromStdin(items));
  if (Pq().PQenterPipelineMode(conn()) != 1) return Failure(nullptr, items.front().sql);
  std::vector<std::string> texts;
  texts.reserve(items.size());
  // What each command sent yields results for: an item, or the Parse of a
  // new prepared statement (its name, kept once the server confirms it).
  struct Sent {
    size_t item;
    std::string preparing;
  };
  std::vector<Sent> sent;
  sent.reserve(items.size() + 4);
  std::unordered_map<std::string, std::string> preparing;
  Status error;
  for (size_t index = 0; index < items.size(); ++index) {
    const BatchItem& item = items[index];
    texts.emplace_back(item.sql);
    std::vector<const char*> values;
    if (item.params != nullptr) {
      for (const Value& p : *item.params) values.push_back(p ? p->c_str() : nullptr);
    }
    const int n = static_cast<int>(values.size());
    const char* const* v = values.empty() ? nullptr : values.data();
    int ok;
    if (item.reuse) {
      std::string name;
      if (auto it = prepared_.find(texts.back()); it != prepared_.end()) {
        name = it->second;
      } else if (auto p = preparing.find(texts.back()); p != preparing.end()) {
        name = p->second;  // the same text twice in this batch: one Parse
      } else {
        name = fmt::format("ferry_{}", ++prepared_count_);
        if (Pq().PQsendPrepare(conn(), name.c_str(), texts.back().c_str(), n, nullptr) != 1) {
          error = Failure(nullptr, item.sql).With("batch_index", std::to_string(index));
          break;
        }
        preparing[texts.back()] = name;
        sent.push_back({index, name});
      }
      ok = Pq().PQsendQueryPrepared(conn(), name.c_str(), n, v, nullptr, nullptr, 0);
    } else {
      ok = Pq().PQsendQueryParams(conn(), texts.back().c_str(), n, nullptr, v, nullptr, nullptr, 0);
    }
    if (ok != 1) {
      error = Failure(nullptr, item.sql).With("batch_index", std::to_string(index));
      break;
    }
    sent.push_back({index, ""});
  }
  std::vector<int64_t> rows(items.size(), 0);
  size_t items_sent = 0;
  if (Pq().PQpipelineSync(conn()) != 1 && error.ok()) error = Failure(nullptr, items.front().sql);
  // Each sent command yields its result(s) then a null; the sync yields
  // PGRES_PIPELINE_SYNC.
  for (const Sent& s : sent) {
    const BatchItem& item = items[s.item];
    while (PGresult* raw = Pq().PQgetResult(conn())) {
      PgResult result = MakePgResult(raw);
      ExecStatusType status = Pq().PQresultStatus(raw);
      if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        if (!s.preparing.empty()) {
          prepared_[std::string(item.sql)] = s.preparing;
          continue;
        }
        rows[s.item] += CmdTuples(raw, Pq().PQntuples(raw));
        if (item.result != nullptr) TakeRows(raw, item.result);
      } else if (status == PGRES_FATAL_ERROR && error.ok()) {
        error = Failure(raw, item.sql).With("batch_index", std::to_string(s.item));
        if (item.reuse && error.Get("sqlstate") == "26000") {
          // No such prepared statement: DEALLOCATE ALL took them all.
          prepared_.clear();
          *retry = s.item == 0;
        }
      }
    }
    if (s.preparing.empty()) items_sent = s.item + 1;
  }
  rows.resize(items_sent);
  while (PGresult* raw = Pq().PQgetResult(conn())) {
    PgResult result = MakePgResult(raw);
    if (Pq().PQresultStatus(raw) == PGRES_PIPELINE_SYNC) break;
  }
  if (Pq().PQexitPipelineMode(conn()) != 1 && error.ok())
    error = Failure(nullptr, items.front().sql);
  if (error.ok() && Pq().PQstatus(conn()) == CONNECTION_BAD)
    error = Failure(nullptr, items.front().sql);
  if (!error.ok()) return error;
  return rows;
}

Result<QueryResult> PgConnection::Query(std::string_view sql, const Params& params) {
  FERRY_RETURN_IF_ERROR(CheckReady(sql));
  if (params.size() > kMaxParams) {
    return NotForThisCall(sql, fmt::format("{} parameters given; PostgreSQL accepts at most {}",
                                           params.size(), kMaxParams));
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Value& p : params) values.push_back(p ? p->c_str() : nullptr);
  std::string text(sql);
  PgResult result =
      MakePgResult(Pq().PQexecParams(conn(), text.c_str(), static_cast<int>(values.size()), nullptr,
                                     values.data(), nullptr, nullptr, 0));
  if (!result) return Failure(nullptr, sql);
  ExecStatusType status = Pq().PQresultStatus(result.get());
  if (IsCopyState(status)) {
    result.reset();
    (void)DrainResults(sql);
    return NotForThisCall(sql,
                          "COPY to or from the client cannot run through Query; use "
                          "CopyOut/CopyIn");
  }
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
    return Failure(result.get(), sql);
  }
  QueryResult out;
  const PGresult* r = result.get();
  TakeRows(r, &out);
  return out;
}

Status PgConnection::Stream(std::string_view sql, const Params& params, const RowCallback& on_row) {
  FERRY_RETURN_IF_ERROR(CheckReady(sql));
  if (params.size() > kMaxParams) {
    return NotForThisCall(sql, fmt::format("{} parameters given; PostgreSQL accepts at most {}",
                                           params.size(), kMaxParams));
  }
  // Cancelling inside a transaction block would abort the transaction.
  const bool may_cancel = Pq().PQtransactionStatus(conn()) == PQTRANS_IDLE;
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Value& p : params) values.push_back(p ? p->c_str() : nullptr);
  std::string text(sql);
  if (Pq().PQsendQueryParams(conn(), text.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0) != 1) {
    return Failure(nullptr, sql);
  }
  if (Pq().PQsetSingleRowMode(conn()) != 1) {
    (void)DrainResults(sql);
    return Status(StatusCode::kInternal, "libpq refused single-row mode")
        .With("statement", Excerpt(sql));
  }
  std::vector<Column> columns;
  bool have_columns = false;
  RowView view;
  view.columns = &columns;
  Status error;
  Status stopped;  // the callback's non-ok Status, once it stops the stream
  while (PGresult* raw = Pq().PQgetResult(conn())) {
    PgResult result = MakePgResult(raw);
    ExecStatusType status = Pq().PQresultStatus(raw);
    if (!stopped.ok()) continue;  // draining after an early stop
    if (status == PGRES_SINGLE_TUPLE || status == PGRES_TUPLES_OK) {
      if (!have_columns) {
        columns = ColumnsOf(raw);
        have_columns = true;
      }
      int ncols = Pq().PQnfields(raw);
      for (int row = 0; row < Pq().PQntuples(raw) && stopped.ok(); ++row) {
        view.fields.clear();
        for (int col = 0; col < ncols; ++col) {
          if (Pq().PQgetisnull(raw, row, col)) {
            view.fields.emplace_back(std::nullopt);
          } else {
            view.fields.emplace_back(
                std::string_view(Pq().PQgetvalue(raw, row, col),
                                 static_cast<size_t>(Pq().PQgetlength(raw, row, col))));
          }
        }
        stopped = on_row(view);
      }
      if (!stopped.ok() && (may_cancel || stopped.code() == StatusCode::kCancelled)) {
        CancelQuery(conn());
      }
    } else if (IsCopyState(status)) {
      result.reset();
      (void)DrainResults(sql);
      error = NotForThisCall(sql,
                             "COPY to or from the client cannot run through Stream; use "
                             "CopyOut/CopyIn");
      break;
    } else if (status == PGRES_FATAL_ERROR && error.ok()) {
      error = Failure(raw, sql);
    }
  }
  if (!stopped.ok()) return stopped;
  if (error.ok() && Pq().PQstatus(conn()) == CONNECTION_BAD) error = Failure(nullptr, sql);
  return error;
}

Status PgConnection::RunControl(std::string_view sql, std::string* tag) {
  FERRY_RETURN_IF_ERROR(CheckReady(sql));
  std::string text(sql);
  PgResult result = MakePgResult(Pq().PQexec(conn(), text.c_str()));
  if (!result || Pq().PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    return Failure(result.get(), sql);
  }
  *tag = Pq().PQcmdStatus(result.get());
  return Status();
}

bool PgConnection::InTransaction() const {
  PGTransactionStatusType status = Pq().PQtransactionStatus(conn());
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

Status PgConnection::CopyOut(std::string_view copy_sql,
                             const std::function<Status(std::string_view chunk)>& sink) {
  FERRY_RETURN_IF_ERROR(CheckReady(copy_sql));
  const bool may_cancel = Pq().PQtransactionStatus(conn()) == PQTRANS_IDLE;
  std::string text(copy_sql);
  PgResult result = MakePgResult(Pq().PQexec(conn(), text.c_str()));
  if (!result) return Failure(nullptr, copy_sql);
  ExecStatusType status = Pq().PQresultStatus(result.get());
  if (status == PGRES_FATAL_ERROR) return Failure(result.get(), copy_sql);
  if (status != PGRES_COPY_OUT) {
    result.reset();
    (void)DrainResults(copy_sql);
    return NotForThisCall(copy_sql, "CopyOut needs a COPY ... TO STDOUT statement");
  }
  result.reset();
  Status stopped;
  int n = 0;
  while (true) {
    char* buffer = nullptr;
    n = Pq().PQgetCopyData(conn(), &buffer, 0);
    if (n > 0 && stopped.ok()) {
      // One call per row: no Status is assigned unless the sink stops.
      Status s = sink(std::string_view(buffer, static_cast<size_t>(n)));
      if (!s.ok()) {
        stopped = std::move(s);
        // kCancelled: the caller gives the transaction up; stop the server now.
        if (may_cancel || stopped.code() == StatusCode::kCancelled) CancelQuery(conn());
      }
    }
    if (buffer != nullptr) Pq().PQfreemem(buffer);
    if (n < 0) break;
  }
  Status error;
  if (n == -2) error = Failure(nullptr, copy_sql);
  Status final_status = DrainResults(copy_sql);
  if (!stopped.ok()) return stopped;
  if (!final_status.ok()) return final_status;
  if (error.ok() && Pq().PQstatus(conn()) == CONNECTION_BAD) error = Failure(nullptr, copy_sql);
  return error;
}

Result<std::unique_ptr<CopyWriter>> PgConnection::CopyIn(std::string_view copy_sql) {
  FERRY_RETURN_IF_ERROR(CheckReady(copy_sql));
  std::string text(copy_sql);
  PgResult result = MakePgResult(Pq().PQexec(conn(), text.c_str()));
  if (!result) return Failure(nullptr, copy_sql);
  ExecStatusType status = Pq().PQresultStatus(result.get());
  if (status == PGRES_FATAL_ERROR) return Failure(result.get(), copy_sql);
  if (status != PGRES_COPY_IN) {
    result.reset();
    (void)DrainResults(copy_sql);
    return NotForThisCall(copy_sql, "CopyIn needs a COPY ... FROM STDIN statement");
  }
  auto writer = std::make_unique<PgCopyWriter>(this, std::string(copy_sql));
  copy_writer_ = writer.get();
  return std::unique_ptr<CopyWriter>(std::move(writer));
}

Result<ServerInfo> PgConnection::Info() { return DescribeServer(*this); }

}  // namespace

Result<PgConn> ConnectLibpq(const Url& url, const ConnectOptions& options,
                           const char* replication) {
  // Keywords are applied in order, so the URL (expanded from "dbname")
  // overrides the defaults before it, and client_encoding after it is fixed.
  std::vector<const char*> keys;
  std::vector<const char*> values;
  const auto& params = url.params();
  const bool service = params.count("service") > 0 || std::getenv("PGSERVICE") != nullptr;
  std::string timeout = std::to_string(options.connect_timeout.count());
  if (options.connect_timeout.count() > 0 && !service &&
      std::getenv("PGCONNECT_TIMEOUT") == nullptr) {
    keys.push_back("connect_timeout");
    values.push_back(timeout.c_str());
  }
  if (!options.application_name.empty()) {
    keys.push_back("fallback_application_name");
    values.push_back(options.application_name.c_str());
  }
  // The URL without its secrets, then the secrets as their own keywords
  // (later keywords win): the only place libpq receives them.
  keys.push_back("dbname");
  values.push_back(url.ConnectionText().c_str());
  if (url.has_password()) {
    keys.push_back("password");
    values.push_back(url.password().Reveal().c_str());
  }
  if (!url.ssl_password().empty()) {
    keys.push_back("sslpassword");
    values.push_back(url.ssl_password().Reveal().c_str());
  }
  if (replication != nullptr) {
    keys.push_back("replication");
    values.push_back(replication);
  }
  keys.push_back("client_encoding");
  values.push_back("UTF8");
  keys.push_back(nullptr);
  values.push_back(nullptr);

  PgConn conn = MakePgConn(Pq().PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1));
  if (!conn) {
    return Status(
        StatusCode::kInternal,
        fmt::format("connecting to {}: libpq could not allocate a connection", url.Redacted()));
  }
  if (Pq().PQstatus(conn.get()) != CONNECTION_OK) {
    auto text = [](const char* s) { return s == nullptr ? std::string() : std::string(s); };
    ConnectTarget target{url.Redacted(), text(Pq().PQhost(conn.get())),
                         text(Pq().PQport(conn.get())), text(Pq().PQdb(conn.get())),
                         text(Pq().PQuser(conn.get()))};
    if (target.host.empty()) target.host = url.host();
    if (target.database.empty()) target.database = url.database();
    return ConnectError(Pq().PQerrorMessage(conn.get()), target);
  }
  return conn;
}

Result<std::unique_ptr<Connection>> Open(const Url& url, const ConnectOptions& options) {
  // A short read-only session is served without loading libpq when the
  // light client can (pg_light.h); it says kUnimplemented, before or after
  // reaching the server, when libpq must do it (TLS, Kerberos, .pgpass...).
  if (options.short_session) {
    auto light = OpenLight(url, options);
    if (light.ok() || light.status().code() != StatusCode::kUnimplemented) return light;
    FERRY_LOG_DEBUG("postgres: using libpq: {}", light.status().message());
  }
  FERRY_RETURN_IF_ERROR(LoadLibpq());
  FERRY_ASSIGN_OR_RETURN(PgConn conn, ConnectLibpq(url, options));
  PGconn* raw = conn.get();
  auto session = std::make_unique<PgConnection>(std::move(conn), url.Redacted());
  Pq().PQsetNoticeProcessor(raw, &PgConnection::OnNotice, session.get());
  return std::unique_ptr<Connection>(std::move(session));
}

}  // namespace ferry::postgres
