// The light PostgreSQL client (see pg_light.h), its query side: Exec, Query,
// Stream, ExecBatch over the extended protocol, errors, notices, cancel.
// Written from the PostgreSQL documentation chapter "Frontend/Backend
// Protocol" (message flow and formats). The other stages: pg_light_internal.h.
#include "drivers/postgres/pg_light.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nettle/base64.h>
#include <nettle/hmac.h>
#include <nettle/md5.h>
#include <nettle/pbkdf2.h>
#include <nettle/sha2.h>
#include <poll.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/log.h"
#include "drivers/postgres/pg_error.h"
#include "drivers/postgres/pg_server_info.h"
#include "drivers/postgres/pg_session.h"
#include "drivers/postgres/pg_light_internal.h"

namespace ferry::postgres::light_internal {

Status ParseDataRow(std::string_view body, std::vector<std::optional<std::string_view>>* fields) {
  fields->clear();
  BodyReader reader(body);
  int16_t count = reader.I16();
  if (!reader.ok() || count < 0) return Status(StatusCode::kInternal, "malformed DataRow message");
  fields->reserve(static_cast<size_t>(count));
  for (int16_t i = 0; i < count; ++i) {
    int32_t length = reader.I32();
    if (!reader.ok() || length < -1)
      return Status(StatusCode::kInternal, "malformed DataRow message");
    if (length == -1) {
      fields->emplace_back(std::nullopt);
    } else {
      std::string_view value = reader.Take(static_cast<size_t>(length));
      if (!reader.ok()) return Status(StatusCode::kInternal, "malformed DataRow message");
      fields->emplace_back(value);
    }
  }
  if (!reader.rest().empty()) return Status(StatusCode::kInternal, "malformed DataRow message");
  return Status();
}

int64_t RowsFromTag(std::string_view tag, int64_t fallback) {
  static constexpr std::array<std::string_view, 8> kCounted = {
      "INSERT ", "UPDATE ", "DELETE ", "SELECT ", "MOVE ", "FETCH ", "COPY ", "MERGE "};
  bool counted = false;
  for (std::string_view prefix : kCounted) counted = counted || tag.starts_with(prefix);
  if (!counted) return fallback;
  size_t space = tag.rfind(' ');
  std::string_view number = tag.substr(space + 1);
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  return ec == std::errc() && ptr == number.data() + number.size() ? value : fallback;
}

Status LightConnection::CheckReady(std::string_view statement) const {
  if (broken_) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("the connection to {} was lost; reconnect", redacted_url_))
        .With("statement", Excerpt(statement));
  }
  return Status();
}

Status LightConnection::CheckStatement(std::string_view sql, size_t params) const {
  FERRY_RETURN_IF_ERROR(CheckReady(sql));
  if (sql.find('\0') != std::string_view::npos) {
    return NotForThisCall(sql, "the statement holds a NUL byte, which PostgreSQL cannot take");
  }
  if (params > light_internal::kMaxParams) {
    return NotForThisCall(sql, fmt::format("{} parameters given; PostgreSQL accepts at most {}",
                                           params, light_internal::kMaxParams));
  }
  return Status();
}

Status LightConnection::Lost(std::string_view statement, std::string_view why) {
  broken_ = true;
  wire_.Close();
  std::string reason(why);
  if (fatal_) reason = fatal_->message();
  Status status(StatusCode::kUnavailable,
                fmt::format("connection to {} lost: {}", redacted_url_, reason));
  if (fatal_) {
    for (const auto& [key, value] : fatal_->context()) {
      if (key != "statement") status.Add(key, value);
    }
  }
  return std::move(status).With("statement", Excerpt(statement));
}

Status LightConnection::Flush(std::string_view statement) {
  std::string error;
  bool sent = wire_.Send(out_, std::nullopt, &error);
  out_.clear();
  if (!sent) {
    // The server may have said why before it closed: read what is there.
    char type = 0;
    std::string_view body;
    std::string ignored;
    while (
        wire_.ReadMessage(&type, &body, Clock::now() + std::chrono::milliseconds(200), &ignored)) {
      if (type == 'E') (void)ServerError(body, statement);
    }
    return Lost(statement, error);
  }
  return Status();
}

Status LightConnection::ServerError(std::string_view body, std::string_view statement) {
  ErrorFields fields(body);
  Status status = fields.ToStatus(statement);
  std::string severity = fields.Severity();
  if (severity == "FATAL" || severity == "PANIC") fatal_ = status;
  return status;
}

void LightConnection::HandleNotice(std::string_view body) {
  ErrorFields fields(body);
  if (Notice(fields.Severity(), CleanMessage(fields.Get('M').value_or("")))) return;
  FERRY_LOG_DEBUG("postgres: {}: {}", fields.Severity(),
                  CleanMessage(fields.Get('M').value_or("")));
}

Status LightConnection::Next(char* type, std::string_view* body, std::string_view statement) {
  while (true) {
    std::string error;
    if (!wire_.ReadMessage(type, body, std::nullopt, &error)) return Lost(statement, error);
    switch (*type) {
      case 'N':
        HandleNotice(*body);
        continue;
      case 'A':  // NotificationResponse: ferry does not LISTEN
        continue;
      case 'S': {
        BodyReader reader(*body);
        std::string_view name = reader.CString();
        std::string_view value = reader.CString();
        if (reader.ok() && name == "server_version") server_version_ = std::string(value);
        continue;
      }
      default:
        return Status();
    }
  }
}

void LightConnection::AppendExtended(std::string_view sql, const Params* params, bool describe) {
  MessageWriter w(&out_);
  w.Begin('P');
  w.Str("");
  w.Str(sql);
  w.I16(0);
  w.End();
  w.Begin('B');
  w.Str("");
  w.Str("");
  w.I16(0);  // every parameter in text
  size_t count = params == nullptr ? 0 : params->size();
  w.I16(static_cast<int16_t>(static_cast<uint16_t>(count)));
  for (size_t i = 0; i < count; ++i) {
    const Value& value = (*params)[i];
    if (!value) {
      w.I32(-1);
    } else {
      w.I32(static_cast<int32_t>(value->size()));
      w.Raw(*value);
    }
  }
  w.I16(0);  // every result column in text
  w.End();
  if (describe) {
    w.Begin('D');
    w.Byte('P');
    w.Str("");
    w.End();
  }
  w.Begin('E');
  w.Str("");
  w.I32(0);  // all rows
  w.End();
}

void LightConnection::AppendSync() {
  MessageWriter w(&out_);
  w.Begin('S');
  w.End();
}

void LightConnection::RefuseCopyIn(bool extended) {
  MessageWriter w(&out_);
  w.Begin('f');
  w.Str("ferry: COPY FROM STDIN cannot run through this call; use CopyIn");
  w.End();
  // The server ignored our Sync while it waited for COPY data: send another.
  if (extended) AppendSync();
  std::string error;
  if (!wire_.Send(out_, std::nullopt, &error)) {
    broken_ = true;  // reported by the next read
  }
  out_.clear();
}

std::vector<Column> LightConnection::Columns(std::string_view row_description, bool* ok) {
  BodyReader reader(row_description);
  int16_t count = reader.I16();
  std::vector<Column> columns;
  if (count > 0) columns.reserve(static_cast<size_t>(count));
  for (int16_t i = 0; i < count && reader.ok(); ++i) {
    Column column;
    column.name = std::string(reader.CString());
    reader.I32();  // table oid
    reader.I16();  // column number
    column.type_oid = reader.U32();
    reader.I16();  // type size
    reader.I32();  // type modifier
    reader.I16();  // format
    columns.push_back(std::move(column));
  }
  *ok = reader.ok() && count >= 0;
  return columns;
}

Status LightConnection::ReadReplies(const ReplyHooks& hooks) {
  auto decorated = [&hooks](Status s) {
    return hooks.decorate ? hooks.decorate(std::move(s)) : std::move(s);
  };
  Status error;  // the first error; reported once the server is ready again
  while (true) {
    char type = 0;
    std::string_view body;
    FERRY_RETURN_IF_ERROR(Next(&type, &body, hooks.statement()));
    switch (type) {
      case '1':  // ParseComplete
      case '2':  // BindComplete
      case 'n':  // NoData
      case 's':  // PortalSuspended
      case 'd':  // CopyData / CopyDone of a COPY being refused
      case 'c':
        break;
      case 'T':
        if (hooks.columns) FERRY_RETURN_IF_ERROR(hooks.columns(body));
        break;
      case 'D':
        if (hooks.row) FERRY_RETURN_IF_ERROR(hooks.row(body));
        break;
      case 'C':
        if (hooks.done) hooks.done(BodyReader(body).CString());
        break;
      case 'I':  // EmptyQueryResponse
        if (hooks.empty) hooks.empty();
        break;
      case 'E': {
        Status server = ServerError(body, hooks.statement());
        if (error.ok()) error = decorated(std::move(server));
        break;
      }
      case 'G':  // CopyInResponse, CopyBothResponse: ended here
      case 'W':
      case 'H':  // CopyOutResponse: its data is dropped above
        if (type != 'H') RefuseCopyIn(hooks.extended);
        if (error.ok()) {
          error = decorated(NotForThisCall(
              hooks.statement(),
              fmt::format("COPY to or from the client cannot run through {}; use CopyOut/CopyIn",
                          hooks.call)));
        }
        break;
      case 'Z':
        tx_status_ = body.empty() ? 'I' : body[0];
        return error;
      default:
        return Lost(hooks.statement(), fmt::format("protocol error: unexpected message '{}'", type));
    }
  }
}

Status LightConnection::ReadColumns(std::string_view body, std::vector<Column>* columns,
                                    std::string_view statement) {
  bool ok = false;
  *columns = Columns(body, &ok);
  if (!ok) return Lost(statement, "protocol error: malformed RowDescription");
  return Status();
}

Status LightConnection::AppendRow(std::string_view body, QueryResult* out,
                                  std::string_view statement) {
  if (!ParseDataRow(body, &fields_).ok()) {
    return Lost(statement, "protocol error: malformed DataRow");
  }
  std::vector<Value> row;
  row.reserve(fields_.size());
  for (const auto& field : fields_) row.emplace_back(field ? Value(std::string(*field)) : Value());
  out->rows.push_back(std::move(row));
  return Status();
}

Result<int64_t> LightConnection::Simple(std::string_view sql, std::string* last_tag) {
  FERRY_RETURN_IF_ERROR(CheckStatement(sql, 0));
  MessageWriter w(&out_);
  w.Begin('Q');
  w.Str(sql);
  w.End();
  FERRY_RETURN_IF_ERROR(Flush(sql));
  int64_t rows = 0;
  int64_t returned = 0;  // rows of the current statement's result
  ReplyHooks hooks;
  hooks.call = "Exec";
  hooks.extended = false;
  hooks.statement = [sql] { return sql; };
  hooks.columns = [&returned](std::string_view) {
    returned = 0;
    return Status();
  };
  hooks.row = [&returned](std::string_view) {
    ++returned;
    return Status();
  };
  hooks.done = [&](std::string_view tag) {
    rows += RowsFromTag(tag, returned);
    if (last_tag != nullptr) *last_tag = std::string(tag);
    returned = 0;
  };
  FERRY_RETURN_IF_ERROR(ReadReplies(hooks));
  return rows;
}

Result<int64_t> LightConnection::Exec(std::string_view sql) { return Simple(sql, nullptr); }

Result<QueryResult> LightConnection::Query(std::string_view sql, const Params& params) {
  FERRY_RETURN_IF_ERROR(CheckStatement(sql, params.size()));
  AppendExtended(sql, &params, /*describe=*/true);
  AppendSync();
  FERRY_RETURN_IF_ERROR(Flush(sql));
  QueryResult out;
  ReplyHooks hooks;
  hooks.call = "Query";
  hooks.statement = [sql] { return sql; };
  hooks.columns = [&](std::string_view body) { return ReadColumns(body, &out.columns, sql); };
  hooks.row = [&](std::string_view body) { return AppendRow(body, &out, sql); };
  hooks.done = [&out](std::string_view tag) {
    out.rows_affected = RowsFromTag(tag, static_cast<int64_t>(out.rows.size()));
  };
  FERRY_RETURN_IF_ERROR(ReadReplies(hooks));
  return out;
}

Status LightConnection::Stream(std::string_view sql, const Params& params,
                               const RowCallback& on_row) {
  FERRY_RETURN_IF_ERROR(CheckStatement(sql, params.size()));
  // Cancelling inside a transaction block would abort the transaction.
  const bool may_cancel = tx_status_ == 'I';
  AppendExtended(sql, &params, /*describe=*/true);
  AppendSync();
  FERRY_RETURN_IF_ERROR(Flush(sql));
  std::vector<Column> columns;
  RowView view;
  view.columns = &columns;
  Status stopped;  // what on_row returned to stop early
  ReplyHooks hooks;
  hooks.call = "Stream";
  hooks.statement = [sql] { return sql; };
  hooks.columns = [&](std::string_view body) { return ReadColumns(body, &columns, sql); };
  hooks.row = [&](std::string_view body) -> Status {
    if (!stopped.ok()) return Status();  // draining after an early stop
    if (!ParseDataRow(body, &view.fields).ok()) {
      return Lost(sql, "protocol error: malformed DataRow");
    }
    stopped = on_row(view);
    if (!stopped.ok() && (may_cancel || stopped.code() == StatusCode::kCancelled)) Cancel();
    return Status();
  };
  Status error = ReadReplies(hooks);
  if (!stopped.ok() && !broken_) return stopped;
  return error;
}

// All items, then one Sync: one round trip, and after a failure the server
// skips the remaining items until the Sync (as libpq's pipeline mode).
Result<std::vector<int64_t>> LightConnection::ExecBatch(const std::vector<BatchItem>& items) {
  if (items.empty()) return std::vector<int64_t>();
  FERRY_RETURN_IF_ERROR(RefuseCopyFromStdin(items));
  for (const BatchItem& item : items) {
    FERRY_RETURN_IF_ERROR(
        CheckStatement(item.sql, item.params == nullptr ? 0 : item.params->size()));
  }
  for (const BatchItem& item : items) {
    if (item.result != nullptr) *item.result = QueryResult();
    AppendExtended(item.sql, item.params, /*describe=*/item.result != nullptr);
  }
  AppendSync();
  FERRY_RETURN_IF_ERROR(Flush(items.front().sql));
  std::vector<int64_t> rows;
  rows.reserve(items.size());
  size_t current = 0;     // the item whose replies are being read
  int64_t returned = 0;   // rows of its result
  auto statement = [&]() -> std::string_view {
    return items[std::min(current, items.size() - 1)].sql;
  };
  auto result = [&]() -> QueryResult* {
    return current < items.size() ? items[current].result : nullptr;
  };
  auto finish = [&](int64_t count) {
    if (QueryResult* r = result()) r->rows_affected = count;
    rows.push_back(count);
    returned = 0;
    ++current;
  };
  ReplyHooks hooks;
  hooks.call = "ExecBatch";
  hooks.statement = statement;
  hooks.columns = [&](std::string_view body) -> Status {
    QueryResult* r = result();
    return r == nullptr ? Status() : ReadColumns(body, &r->columns, statement());
  };
  hooks.row = [&](std::string_view body) -> Status {
    ++returned;
    QueryResult* r = result();
    return r == nullptr ? Status() : AppendRow(body, r, statement());
  };
  hooks.done = [&](std::string_view tag) { finish(RowsFromTag(tag, returned)); };
  hooks.empty = [&] { finish(0); };
  hooks.decorate = [&current](Status s) {
    return std::move(s).With("batch_index", std::to_string(current));
  };
  FERRY_RETURN_IF_ERROR(ReadReplies(hooks));
  return rows;
}

Status LightConnection::RunControl(std::string_view sql, std::string* tag) {
  return Simple(sql, tag).status();
}

void LightConnection::Cancel() {
  const Deadline deadline = Clock::now() + std::chrono::seconds(5);
  std::string error;
  int fd = ConnectTo(address_, deadline, &error);
  if (fd < 0) {
    FERRY_LOG_DEBUG("postgres: cancel request failed: {}", error);
    return;
  }
  Wire cancel;
  cancel.Adopt(fd);
  std::string packet;
  MessageWriter w(&packet);
  w.Begin(0);
  w.I32(kCancelRequestCode);
  w.I32(backend_pid_);
  w.I32(secret_key_);
  w.End();
  if (!cancel.Send(packet, deadline, &error)) {
    FERRY_LOG_DEBUG("postgres: cancel request failed: {}", error);
    return;
  }
  // The server closes the connection once it has passed the request on.
  char byte = 0;
  while (cancel.ReadByte(&byte, deadline, &error)) {
  }
}

}  // namespace ferry::postgres::light_internal
