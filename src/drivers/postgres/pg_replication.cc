#include "drivers/postgres/pg_replication.h"

#include <fmt/format.h>
#include <poll.h>

#include <cstdlib>
#include <vector>

#include "drivers/postgres/pg_connection.h"
#include "drivers/postgres/pg_error.h"

namespace ferry::postgres {
namespace {

class PgReplicationSession : public ReplicationSession {
 public:
  PgReplicationSession(PgConn conn, std::string redacted)
      : conn_(std::move(conn)), redacted_(std::move(redacted)) {}

  Result<QueryResult> Command(std::string_view command) override {
    if (streaming_) {
      return Status(StatusCode::kFailedPrecondition,
                    "replication session is streaming; no command can run on it");
    }
    std::string sql(command);
    PgResult res = MakePgResult(Pq().PQexec(conn_.get(), sql.c_str()));
    if (!res) return Lost(sql);
    ExecStatusType st = Pq().PQresultStatus(res.get());
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      if (Pq().PQstatus(conn_.get()) != CONNECTION_OK) return Lost(sql);
      return ErrorFromResult(res.get(), sql);
    }
    QueryResult out;
    int fields = Pq().PQnfields(res.get());
    for (int c = 0; c < fields; ++c) {
      out.columns.push_back({Pq().PQfname(res.get(), c), Pq().PQftype(res.get(), c)});
    }
    int rows = Pq().PQntuples(res.get());
    for (int r = 0; r < rows; ++r) {
      std::vector<Value> row;
      for (int c = 0; c < fields; ++c) {
        if (Pq().PQgetisnull(res.get(), r, c)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(Pq().PQgetvalue(res.get(), r, c),
                                       static_cast<size_t>(Pq().PQgetlength(res.get(), r, c))));
        }
      }
      out.rows.push_back(std::move(row));
    }
    out.rows_affected = rows;
    return out;
  }

  Status Start(std::string_view command) override {
    std::string sql(command);
    PgResult res = MakePgResult(Pq().PQexec(conn_.get(), sql.c_str()));
    if (!res) return Lost(sql);
    if (Pq().PQresultStatus(res.get()) != PGRES_COPY_BOTH) {
      if (Pq().PQstatus(conn_.get()) != CONNECTION_OK) return Lost(sql);
      return ErrorFromResult(res.get(), sql);
    }
    streaming_ = true;
    return Status();
  }

  Result<std::optional<std::string>> Read(std::chrono::milliseconds timeout) override {
    for (int round = 0; round < 2; ++round) {
      char* buffer = nullptr;
      int n = Pq().PQgetCopyData(conn_.get(), &buffer, /*async=*/1);
      if (n > 0) {
        std::string message(buffer, static_cast<size_t>(n));
        Pq().PQfreemem(buffer);
        return std::optional<std::string>(std::move(message));
      }
      if (n == -1) return Ended();
      if (n < -1) return Lost("reading the replication stream");
      if (round == 1) break;
      pollfd fd{Pq().PQsocket(conn_.get()), POLLIN, 0};
      int ready = poll(&fd, 1, static_cast<int>(timeout.count()));
      if (ready < 0) {
        return Status(StatusCode::kUnavailable, "waiting for the replication stream: poll failed");
      }
      if (ready == 0) return std::optional<std::string>();
      if (Pq().PQconsumeInput(conn_.get()) == 0) return Lost("reading the replication stream");
    }
    return std::optional<std::string>();
  }

  Status Send(std::string_view message) override {
    if (Pq().PQputCopyData(conn_.get(), message.data(), static_cast<int>(message.size())) != 1 ||
        Pq().PQflush(conn_.get()) != 0) {
      return Lost("sending a standby status update");
    }
    return Status();
  }

  const std::string& redacted_url() const override { return redacted_; }

 private:
  Status Lost(std::string_view what) const {
    return Status(StatusCode::kUnavailable,
                  fmt::format("replication session to {} failed ({}): {}", redacted_, Excerpt(what, 80),
                              CleanMessage(Pq().PQerrorMessage(conn_.get()))));
  }

  // The server ended the COPY: its final result says why.
  Status Ended() {
    PgResult res = MakePgResult(Pq().PQgetResult(conn_.get()));
    if (res && Pq().PQresultStatus(res.get()) == PGRES_FATAL_ERROR) {
      Status s = ErrorFromResult(res.get(), "START_REPLICATION");
      return Status(StatusCode::kUnavailable,
                    fmt::format("the replication stream from {} ended: {}", redacted_, s.message()));
    }
    return Status(StatusCode::kUnavailable,
                  fmt::format("the replication stream from {} ended", redacted_));
  }

  PgConn conn_;
  std::string redacted_;
  bool streaming_ = false;
};

}  // namespace

Result<std::unique_ptr<ReplicationSession>> OpenReplication(const Url& url,
                                                            const ConnectOptions& options) {
  FERRY_RETURN_IF_ERROR(LoadLibpq());
  FERRY_ASSIGN_OR_RETURN(PgConn conn, ConnectLibpq(url, options, "database"));
  return std::unique_ptr<ReplicationSession>(
      std::make_unique<PgReplicationSession>(std::move(conn), url.Redacted()));
}

}  // namespace ferry::postgres
