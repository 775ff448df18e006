// CQL driver (Apache Cassandra, ScyllaDB): ferry's Connection over the CQL
// native protocol v4, written from the specification (docs/cql.md).
//
// URL: cql://user:pass@host1:9042,host2:9042/keyspace?consistency=LOCAL_QUORUM
//      &serial_consistency=LOCAL_SERIAL&dc=dc1&compression=lz4|none
//      &connect_timeout=SECONDS&request_timeout=SECONDS&page_size=N
// (scylla:// and cassandra:// are aliases). The first reachable host is the
// control node; the others are found in system.local/system.peers_v2.
//
// Behaviour:
//   - Query/Stream with parameters prepare the statement once (cached) and
//     EXECUTE it with the values encoded by the bind types (text forms as in
//     cql_types.h); an UNPREPARED answer re-prepares and retries once.
//     Parameters are written ? in the CQL text.
//   - EXECUTE goes to the node owning the partition key's Murmur3 token
//     (token-aware routing, restricted to ?dc= when given); one session per
//     node, opened on first use, with requests multiplexed by stream id.
//   - Results are paged (page_size rows per page, paging_state).
//   - No transactions: Begin/Commit/Rollback, TryLock/Unlock and COPY are
//     kUnimplemented (the CQL migration engine uses a lightweight-
//     transaction lease instead).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/connection.h"
#include "drivers/cql/cql_messages.h"
#include "drivers/cql/cql_session.h"

namespace ferry::cql {

struct NodeInfo {
  std::string address;  // native-protocol address
  int port = 9042;
  std::string datacenter;
  std::string rack;
  std::string release_version;
  std::string host_id;
  std::string schema_version;
  std::vector<int64_t> tokens;
  bool control = false;  // the node this connection queried
};

// A request sent by SendExecute and not yet waited for.
struct PendingExecute {
  Session* session = nullptr;
  int16_t stream = 0;
};

// Per-call settings; unset fields take the URL's.
struct ExecOptions {
  std::optional<Consistency> consistency;
  std::optional<Consistency> serial_consistency;
  std::optional<int32_t> page_size;
};

class CqlConnection : public Connection {
 public:
  static Result<std::unique_ptr<CqlConnection>> Open(const Url& url, const ConnectOptions& options);
  ~CqlConnection() override;

  Engine engine() const override { return Engine::kCql; }
  const std::string& redacted_url() const override { return redacted_url_; }
  Result<int64_t> Exec(std::string_view sql) override;
  Result<std::vector<int64_t>> ExecBatch(const std::vector<BatchItem>& items) override;
  Result<QueryResult> Query(std::string_view sql, const Params& params = {}) override;
  Status Stream(std::string_view sql, const Params& params, const RowCallback& on_row) override;
  Status Begin() override;
  Status Commit() override;
  Status Rollback() override;
  bool InTransaction() const override { return false; }
  Result<bool> TryLock(int64_t key) override;
  Status Unlock(int64_t key) override;
  Status CopyOut(std::string_view copy_sql,
                 const std::function<Status(std::string_view chunk)>& sink) override;
  Result<std::unique_ptr<CopyWriter>> CopyIn(std::string_view copy_sql) override;
  Result<ServerInfo> Info() override;
  int SessionId() const override;

  // One statement with options; every page is fetched when `all_pages`.
  Result<ResultMessage> Run(std::string_view cql, const Params& params, const ExecOptions& options,
                            bool all_pages = true);
  // A logged/unlogged/counter BATCH of (statement, parameters).
  Status Batch(BatchType type, const std::vector<std::pair<std::string, Params>>& statements,
               const ExecOptions& options = {});
  // Pipelined writes: SendExecute prepares `cql` (once, cached), encodes the
  // values, routes the EXECUTE token-aware and returns without waiting;
  // WaitExecute reads its answer (a server ERROR as its Status; an
  // Unprepared error is returned as is: re-run the statement with Run(),
  // which re-prepares). Many requests may be in flight at once, on one or
  // several node sessions; wait for every one before the connection is used
  // otherwise (Run/Query/Stream). A session replaced after it broke is kept
  // until the connection closes, so a pending request never dangles.
  Result<PendingExecute> SendExecute(std::string_view cql, const Params& params,
                                     const ExecOptions& options = {});
  Status WaitExecute(const PendingExecute& pending);
  // Result rows as text, by the result's column types.
  static Result<QueryResult> ToText(const ResultMessage& result);

  // The control node first, then its peers (system.local, system.peers_v2
  // or system.peers on servers without it).
  Result<std::vector<NodeInfo>> Nodes();
  // Waits until every node that answers reports the same schema_version;
  // kDeadlineExceeded naming the versions and their nodes after `timeout`.
  Status WaitForSchemaAgreement(std::chrono::milliseconds timeout);

  const std::string& keyspace() const { return keyspace_; }
  Consistency consistency() const { return consistency_; }
  // Warnings the server attached to the last request.
  const std::vector<std::string>& last_warnings() const { return last_warnings_; }
  // CQL type names of the last Query/Stream result's columns.
  const std::vector<std::string>& last_column_types() const { return last_column_types_; }
  // The protocol version and whether LZ4 is on.
  int protocol_version() const { return kProtocolV4; }
  bool compressed() const;
  // "Cassandra" or "ScyllaDB" (from the SUPPORTED options).
  std::string product() const;
  // The node an EXECUTE of `cql` with `params` would be routed to ("" when
  // not routable: no partition key bound, or another partitioner).
  Result<std::string> RouteFor(std::string_view cql, const Params& params);

 private:
  struct Prepared {
    std::string id;
    std::vector<ColumnSpec> bind_columns;
    std::vector<uint16_t> pk_indexes;
    std::vector<ColumnSpec> result_columns;
  };
  struct NodeSession {
    std::string endpoint;
    std::unique_ptr<Session> session;
  };

  CqlConnection() = default;
  Status Connect(const Url& url, const ConnectOptions& options);
  Status LoadRing();
  Result<const Prepared*> Prepare(Session* session, std::string_view cql, bool force = false);
  Result<std::vector<RawValue>> Encode(const Prepared& prepared, const Params& params,
                                       std::string_view cql);
  Session* RouteSession(const Prepared& prepared, const std::vector<RawValue>& values);
  Result<ResultMessage> RunOnce(Session* session, std::string_view cql, const Params& params,
                                const QueryParams& qp, const Prepared** used);
  Result<ResultMessage> Finish(Result<Response> response);
  QueryParams BaseParams(const ExecOptions& options) const;
  Status WithStatement(Status status, std::string_view cql) const;

  std::string redacted_url_;
  std::string keyspace_;
  std::string user_;
  std::string datacenter_;
  SessionOptions session_options_;
  Consistency consistency_ = Consistency::kLocalQuorum;
  std::optional<Consistency> serial_consistency_;
  int32_t page_size_ = 5000;
  std::unique_ptr<Session> control_;
  std::map<std::string, NodeSession> nodes_;          // by endpoint, other than control
  std::vector<std::unique_ptr<Session>> retired_;     // broken sessions replaced (see SendExecute)
  std::map<int64_t, std::string> ring_;               // token -> endpoint
  bool murmur3_ = false;
  std::map<std::string, Prepared, std::less<>> prepared_;
  std::vector<std::string> last_warnings_;
  std::vector<std::string> last_column_types_;
};

Result<std::unique_ptr<Connection>> Open(const Url& url, const ConnectOptions& options);

// "host1:9042,host2" -> {{"host1", 9042}, {"host2", default_port}}.
Result<std::vector<std::pair<std::string, int>>> ParseHosts(std::string_view hosts,
                                                             int default_port);

}  // namespace ferry::cql
