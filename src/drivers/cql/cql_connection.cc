#include "drivers/cql/cql_connection.h"

#include <unistd.h>

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <thread>

#include "drivers/cql/cql_error.h"
#include "drivers/cql/cql_split.h"
#include "drivers/cql/murmur3.h"

namespace ferry::cql {
namespace {

Status Invalid(std::string message) { return Status(StatusCode::kInvalidArgument, std::move(message)); }

Result<int> ParamInt(const Url& url, const std::string& key, int fallback) {
  auto it = url.params().find(key);
  if (it == url.params().end()) return fallback;
  int v = 0;
  auto [ptr, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  if (ec != std::errc() || ptr != it->second.data() + it->second.size() || v <= 0) {
    return Invalid(fmt::format("URL parameter {}={} must be a positive number", key, it->second));
  }
  return v;
}

std::string ParamText(const Url& url, const std::string& key) {
  auto it = url.params().find(key);
  return it == url.params().end() ? "" : it->second;
}

std::string QuoteCqlIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

const std::string* Cell(const QueryResult& r, size_t row, std::string_view column) {
  for (size_t c = 0; c < r.columns.size(); ++c) {
    if (r.columns[c].name == column && r.rows[row][c]) return &*r.rows[row][c];
  }
  return nullptr;
}

// "{'-9223', '42'}" (set<text> as text) -> tokens.
std::vector<int64_t> ParseTokens(const std::string* set_text) {
  std::vector<int64_t> out;
  if (set_text == nullptr) return out;
  std::string_view s = *set_text;
  size_t i = 0;
  while ((i = s.find('\'', i)) != std::string_view::npos) {
    size_t end = s.find('\'', i + 1);
    if (end == std::string_view::npos) break;
    int64_t t = 0;
    std::string_view tok = s.substr(i + 1, end - i - 1);
    if (std::from_chars(tok.data(), tok.data() + tok.size(), t).ec == std::errc()) out.push_back(t);
    i = end + 1;
  }
  return out;
}

NodeInfo NodeFrom(const QueryResult& r, size_t row, bool local, int default_port) {
  NodeInfo n;
  auto text = [&](std::string_view col) {
    const std::string* v = Cell(r, row, col);
    return v ? *v : std::string();
  };
  n.address = local ? text("rpc_address") : text("native_address");
  if (n.address.empty()) n.address = text("rpc_address");
  if (n.address.empty() || n.address == "0.0.0.0") n.address = text("peer");
  std::string port = local ? "" : text("native_port");
  n.port = default_port;
  if (!port.empty()) std::from_chars(port.data(), port.data() + port.size(), n.port);
  n.datacenter = text("data_center");
  n.rack = text("rack");
  n.release_version = text("release_version");
  n.host_id = text("host_id");
  n.schema_version = text("schema_version");
  n.tokens = ParseTokens(Cell(r, row, "tokens"));
  n.control = local;
  return n;
}

std::string Endpoint(const std::string& host, int port) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port)
                                             : fmt::format("{}:{}", host, port);
}

}  // namespace

Result<std::vector<std::pair<std::string, int>>> ParseHosts(std::string_view hosts, int default_port) {
  std::vector<std::pair<std::string, int>> out;
  size_t start = 0;
  while (start <= hosts.size()) {
    size_t comma = hosts.find(',', start);
    std::string_view item = hosts.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                                 : comma - start);
    start = comma == std::string_view::npos ? hosts.size() + 1 : comma + 1;
    if (item.empty()) continue;
    std::string host(item);
    int port = default_port;
    size_t colon = item.rfind(':');
    if (!item.empty() && item.front() == '[') {
      size_t close = item.find(']');
      if (close == std::string_view::npos) return Invalid(fmt::format("unclosed '[' in host '{}'", item));
      host = std::string(item.substr(1, close - 1));
      colon = item.find(':', close);
    } else if (colon != std::string_view::npos) {
      host = std::string(item.substr(0, colon));
    }
    if (colon != std::string_view::npos) {
      std::string_view p = item.substr(colon + 1);
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
      if (ec != std::errc() || ptr != p.data() + p.size() || port <= 0 || port > 65535) {
        return Invalid(fmt::format("port '{}' of host '{}' is not a number from 1 to 65535", p, host));
      }
    }
    out.emplace_back(host, port);
  }
  if (out.empty()) return Invalid("no host in the CQL URL (cql://user:pass@host:9042/keyspace)");
  return out;
}

Result<std::unique_ptr<Connection>> Open(const Url& url, const ConnectOptions& options) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<CqlConnection> c, CqlConnection::Open(url, options));
  return std::unique_ptr<Connection>(std::move(c));
}

CqlConnection::~CqlConnection() = default;

Result<std::unique_ptr<CqlConnection>> CqlConnection::Open(const Url& url,
                                                            const ConnectOptions& options) {
  std::unique_ptr<CqlConnection> c(new CqlConnection());
  Status st = c->Connect(url, options);
  if (!st.ok()) {
    return Status(st.code(), fmt::format("{} ({})", st.message(), url.Redacted()))
        .With("node", st.Get("node"))
        .With("cql_error", st.Get("cql_error"));
  }
  return c;
}

Status CqlConnection::Connect(const Url& url, const ConnectOptions& options) {
  redacted_url_ = url.Redacted();
  keyspace_ = url.database();
  user_ = url.user();
  datacenter_ = ParamText(url, "dc");
  FERRY_ASSIGN_OR_RETURN(auto hosts, ParseHosts(url.host(), url.port() > 0 ? url.port() : 9042));
  if (std::string cl = ParamText(url, "consistency"); !cl.empty()) {
    FERRY_ASSIGN_OR_RETURN(consistency_, ParseConsistency(cl));
  } else if (datacenter_.empty()) {
    consistency_ = Consistency::kQuorum;
  }
  if (std::string cl = ParamText(url, "serial_consistency"); !cl.empty()) {
    FERRY_ASSIGN_OR_RETURN(serial_consistency_, ParseConsistency(cl));
  }
  FERRY_ASSIGN_OR_RETURN(page_size_, ParamInt(url, "page_size", 5000));
  FERRY_ASSIGN_OR_RETURN(int connect_s, ParamInt(url, "connect_timeout",
                                                 static_cast<int>(options.connect_timeout.count())));
  FERRY_ASSIGN_OR_RETURN(int request_s, ParamInt(url, "request_timeout", 60));
  std::string compression = ParamText(url, "compression");
  if (!compression.empty() && compression != "lz4" && compression != "none") {
    return Invalid(fmt::format("URL parameter compression={} must be lz4 or none", compression));
  }
  session_options_.user = url.user();
  session_options_.password = url.password().Reveal();
  session_options_.compression = compression != "none";
  session_options_.connect_timeout = std::chrono::seconds(connect_s);
  session_options_.request_timeout = std::chrono::seconds(request_s);
  Status last;
  for (const auto& [host, port] : hosts) {
    session_options_.host = host;
    session_options_.port = port;
    auto s = Session::Connect(session_options_);
    if (s.ok()) {
      control_ = std::move(s).value();
      break;
    }
    last = s.status();
    if (last.code() != StatusCode::kUnavailable) return last;  // bad login: no use trying others
  }
  if (!control_) return last;
  if (!keyspace_.empty()) {
    auto use = Run("USE " + QuoteCqlIdent(keyspace_), {}, {});
    if (!use.ok()) {
      if (use.status().Get("cql_error") == "Invalid") {
        return Status(StatusCode::kNotFound,
                      fmt::format("keyspace '{}' does not exist on the cluster; create it first "
                                  "(CREATE KEYSPACE ...) or fix the URL's path",
                                  keyspace_))
            .With("cql_error", "Invalid");
      }
      return use.status();
    }
  }
  return LoadRing();
}

Status CqlConnection::LoadRing() {
  FERRY_ASSIGN_OR_RETURN(QueryResult local, Query("SELECT partitioner FROM system.local"));
  const std::string* partitioner = local.empty() ? nullptr : Cell(local, 0, "partitioner");
  murmur3_ = partitioner != nullptr && partitioner->ends_with("Murmur3Partitioner");
  FERRY_ASSIGN_OR_RETURN(std::vector<NodeInfo> nodes, Nodes());
  ring_.clear();
  for (const auto& n : nodes) {
    if (!datacenter_.empty() && n.datacenter != datacenter_) continue;
    std::string ep = n.control ? control_->endpoint() : Endpoint(n.address, n.port);
    for (int64_t t : n.tokens) ring_[t] = ep;
  }
  return Status();
}

Result<std::vector<NodeInfo>> CqlConnection::Nodes() {
  const std::string cols = "data_center, rack, release_version, host_id, schema_version, tokens";
  FERRY_ASSIGN_OR_RETURN(QueryResult local,
                         Query("SELECT rpc_address, " + cols + " FROM system.local"));
  std::vector<NodeInfo> out;
  for (size_t r = 0; r < local.rows.size(); ++r) {
    out.push_back(NodeFrom(local, r, true, session_options_.port));
    out.back().address = session_options_.host;
  }
  auto peers = Query("SELECT peer, native_address, native_port, " + cols + " FROM system.peers_v2");
  if (!peers.ok()) {
    peers = Query("SELECT peer, rpc_address, " + cols + " FROM system.peers");
  }
  if (!peers.ok()) return peers.status();
  for (size_t r = 0; r < peers->rows.size(); ++r) {
    out.push_back(NodeFrom(*peers, r, false, session_options_.port));
  }
  return out;
}

Status CqlConnection::WaitForSchemaAgreement(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto pause = std::chrono::milliseconds(20);; pause = std::min(pause * 2, std::chrono::milliseconds(500))) {
    FERRY_ASSIGN_OR_RETURN(std::vector<NodeInfo> nodes, Nodes());
    std::map<std::string, std::vector<std::string>> versions;
    for (const auto& n : nodes) {
      if (!n.schema_version.empty()) versions[n.schema_version].push_back(Endpoint(n.address, n.port));
    }
    if (versions.size() <= 1) return Status();
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string detail;
      for (const auto& [v, eps] : versions) {
        detail += fmt::format("{}{}: {}", detail.empty() ? "" : "; ", v, fmt::join(eps, ", "));
      }
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("the nodes did not agree on the schema within {} ms ({}); check "
                                "that every node is up, then run again",
                                timeout.count(), detail));
    }
    std::this_thread::sleep_for(pause);
  }
}

QueryParams CqlConnection::BaseParams(const ExecOptions& options) const {
  QueryParams qp;
  qp.consistency = options.consistency.value_or(consistency_);
  qp.serial_consistency = options.serial_consistency ? options.serial_consistency : serial_consistency_;
  qp.page_size = options.page_size.value_or(page_size_);
  return qp;
}

Status CqlConnection::WithStatement(Status status, std::string_view cql) const {
  if (status.ok()) return status;
  return std::move(status).With("statement", Excerpt(cql, 200));
}

Result<ResultMessage> CqlConnection::Finish(Result<Response> response) {
  if (!response.ok()) return response.status();
  last_warnings_ = response->warnings;
  if (response->header.opcode != Opcode::kResult) {
    return Status(StatusCode::kInternal, fmt::format("CQL protocol error: {} where RESULT was expected",
                                                     OpcodeName(response->header.opcode)));
  }
  return ParseResult(response->body);
}

Result<const CqlConnection::Prepared*> CqlConnection::Prepare(Session* session, std::string_view cql,
                                                              bool force) {
  auto it = prepared_.find(cql);
  if (it != prepared_.end() && !force) return &it->second;
  FERRY_ASSIGN_OR_RETURN(ResultMessage r, Finish(session->Request(Opcode::kPrepare, PrepareBody(cql))));
  if (r.kind != ResultKind::kPrepared) {
    return Status(StatusCode::kInternal, "CQL protocol error: PREPARE did not return a prepared id");
  }
  Prepared p{std::move(r.prepared_id), std::move(r.bind_columns), std::move(r.pk_indexes),
             std::move(r.columns)};
  auto [pos, inserted] = prepared_.insert_or_assign(std::string(cql), std::move(p));
  return &pos->second;
}

Result<std::vector<RawValue>> CqlConnection::Encode(const Prepared& prepared, const Params& params,
                                                    std::string_view cql) {
  if (params.size() != prepared.bind_columns.size()) {
    return Invalid(fmt::format("the statement has {} bind markers but {} values were given",
                               prepared.bind_columns.size(), params.size()));
  }
  std::vector<RawValue> values;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i]) {
      values.emplace_back();
      continue;
    }
    auto v = EncodeValue(prepared.bind_columns[i].type, *params[i]);
    if (!v.ok()) {
      return WithStatement(Status(StatusCode::kInvalidArgument,
                                  fmt::format("parameter {} ({}): {}", i + 1,
                                              prepared.bind_columns[i].name, v.status().message())),
                           cql);
    }
    values.emplace_back(std::move(v).value());
  }
  return values;
}

Session* CqlConnection::RouteSession(const Prepared& prepared, const std::vector<RawValue>& values) {
  if (!murmur3_ || ring_.empty() || prepared.pk_indexes.empty()) return control_.get();
  std::vector<std::string> parts;
  for (uint16_t idx : prepared.pk_indexes) {
    if (idx >= values.size() || !values[idx]) return control_.get();
    parts.push_back(*values[idx]);
  }
  int64_t token = Murmur3Token(RoutingKey(parts));
  auto it = ring_.lower_bound(token);
  const std::string& ep = it == ring_.end() ? ring_.begin()->second : it->second;
  if (ep == control_->endpoint()) return control_.get();
  NodeSession& node = nodes_[ep];
  if (!node.session || node.session->broken()) {
    SessionOptions o = session_options_;
    auto hosts = ParseHosts(ep, session_options_.port);
    if (!hosts.ok()) return control_.get();
    o.host = hosts->front().first;
    o.port = hosts->front().second;
    auto s = Session::Connect(o);
    if (!s.ok()) return control_.get();  // the coordinator forwards the request
    if (node.session) retired_.push_back(std::move(node.session));
    node.endpoint = ep;
    node.session = std::move(s).value();
    if (!keyspace_.empty()) {
      auto use = node.session->Request(Opcode::kQuery, QueryBody("USE " + QuoteCqlIdent(keyspace_), {}));
      if (!use.ok()) return control_.get();
    }
  }
  return node.session.get();
}

Result<std::string> CqlConnection::RouteFor(std::string_view cql, const Params& params) {
  FERRY_ASSIGN_OR_RETURN(const Prepared* p, Prepare(control_.get(), cql));
  FERRY_ASSIGN_OR_RETURN(std::vector<RawValue> values, Encode(*p, params, cql));
  if (!murmur3_ || p->pk_indexes.empty()) return std::string();
  return RouteSession(*p, values)->endpoint();
}

Result<ResultMessage> CqlConnection::RunOnce(Session* session, std::string_view cql,
                                             const Params& params, const QueryParams& qp,
                                             const Prepared** used) {
  if (params.empty() && *used == nullptr) {
    return Finish(session->Request(Opcode::kQuery, QueryBody(cql, qp)));
  }
  if (*used == nullptr) {
    FERRY_ASSIGN_OR_RETURN(*used, Prepare(control_.get(), cql));
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<RawValue> values, Encode(**used, params, cql));
  QueryParams with_values = qp;
  with_values.values = std::move(values);
  Session* target = qp.paging_state ? session : RouteSession(**used, with_values.values);
  auto result = Finish(target->Request(Opcode::kExecute, ExecuteBody((*used)->id, with_values)));
  if (!result.ok() && IsUnprepared(result.status())) {
    // The node lost (or never had) the statement: prepare it there and retry once.
    FERRY_ASSIGN_OR_RETURN(*used, Prepare(target, cql, /*force=*/true));
    result = Finish(target->Request(Opcode::kExecute, ExecuteBody((*used)->id, with_values)));
  }
  return result;
}

Result<ResultMessage> CqlConnection::Run(std::string_view cql, const Params& params,
                                         const ExecOptions& options, bool all_pages) {
  QueryParams qp = BaseParams(options);
  const Prepared* prepared = nullptr;
  auto first = RunOnce(control_.get(), cql, params, qp, &prepared);
  if (!first.ok()) return WithStatement(first.status(), cql);
  ResultMessage out = std::move(first).value();
  if (out.kind == ResultKind::kRows && out.columns.empty() && prepared != nullptr) {
    out.columns = prepared->result_columns;
  }
  while (all_pages && out.paging_state) {
    qp.paging_state = out.paging_state;
    auto next = RunOnce(control_.get(), cql, params, qp, &prepared);
    if (!next.ok()) return WithStatement(next.status(), cql);
    for (auto& row : next->rows) out.rows.push_back(std::move(row));
    out.paging_state = next->paging_state;
  }
  return out;
}

Result<PendingExecute> CqlConnection::SendExecute(std::string_view cql, const Params& params,
                                                  const ExecOptions& options) {
  FERRY_ASSIGN_OR_RETURN(const Prepared* p, Prepare(control_.get(), cql));
  FERRY_ASSIGN_OR_RETURN(std::vector<RawValue> values, Encode(*p, params, cql));
  QueryParams qp = BaseParams(options);
  qp.values = std::move(values);
  qp.skip_metadata = true;
  Session* target = RouteSession(*p, qp.values);
  auto stream = target->Send(Opcode::kExecute, ExecuteBody(p->id, qp));
  if (!stream.ok()) return WithStatement(stream.status(), cql);
  return PendingExecute{target, *stream};
}

Status CqlConnection::WaitExecute(const PendingExecute& pending) {
  if (pending.session == nullptr) return Status(StatusCode::kInternal, "WaitExecute without a request");
  return Finish(pending.session->Wait(pending.stream)).status();
}

Result<QueryResult> CqlConnection::ToText(const ResultMessage& result) {
  QueryResult out;
  for (const auto& c : result.columns) out.columns.push_back(Column{c.name, 0});
  for (const auto& raw : result.rows) {
    std::vector<Value> row;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (!raw[i]) {
        row.emplace_back();
        continue;
      }
      if (i >= result.columns.size()) return Status(StatusCode::kInternal, "CQL row wider than its metadata");
      FERRY_ASSIGN_OR_RETURN(std::string text, DecodeValue(result.columns[i].type, *raw[i]));
      row.emplace_back(std::move(text));
    }
    out.rows.push_back(std::move(row));
  }
  out.rows_affected = static_cast<int64_t>(out.rows.size());
  return out;
}

Result<QueryResult> CqlConnection::Query(std::string_view sql, const Params& params) {
  FERRY_ASSIGN_OR_RETURN(ResultMessage r, Run(sql, params, {}));
  last_column_types_.clear();
  for (const auto& c : r.columns) last_column_types_.push_back(TypeName(c.type));
  return ToText(r);
}

Status CqlConnection::Stream(std::string_view sql, const Params& params, const RowCallback& on_row) {
  QueryParams qp = BaseParams({});
  const Prepared* prepared = nullptr;
  std::vector<ColumnSpec> specs;
  do {
    auto page = RunOnce(control_.get(), sql, params, qp, &prepared);
    if (!page.ok()) return WithStatement(page.status(), sql);
    if (!page->columns.empty()) specs = page->columns;
    if (specs.empty() && prepared != nullptr) specs = prepared->result_columns;
    page->columns = specs;
    FERRY_ASSIGN_OR_RETURN(QueryResult text, ToText(*page));
    for (auto& row : text.rows) {
      RowView view;
      view.columns = &text.columns;
      for (auto& v : row) view.fields.push_back(v ? std::optional<std::string_view>(*v) : std::nullopt);
      FERRY_RETURN_IF_ERROR(on_row(view));
    }
    qp.paging_state = page->paging_state;
  } while (qp.paging_state);
  return Status();
}

Result<int64_t> CqlConnection::Exec(std::string_view sql) {
  FERRY_ASSIGN_OR_RETURN(std::vector<CqlStatement> statements, SplitCql(sql));
  for (const auto& st : statements) {
    auto r = Run(st.text, {}, {});
    if (!r.ok()) {
      return Status(r.status()).With("script_offset", std::to_string(st.offset))
          .With("line", std::to_string(st.line));
    }
  }
  return int64_t{0};
}

Result<std::vector<int64_t>> CqlConnection::ExecBatch(const std::vector<BatchItem>& items) {
  std::vector<int64_t> counts;
  for (size_t i = 0; i < items.size(); ++i) {
    static const Params kNone;
    auto r = Run(items[i].sql, items[i].params ? *items[i].params : kNone, {});
    if (!r.ok()) return Status(r.status()).With("batch_index", std::to_string(i));
    if (items[i].result != nullptr) {
      FERRY_ASSIGN_OR_RETURN(*items[i].result, ToText(*r));
    }
    counts.push_back(static_cast<int64_t>(r->rows.size()));
  }
  return counts;
}

Status CqlConnection::Batch(BatchType type, const std::vector<std::pair<std::string, Params>>& statements,
                            const ExecOptions& options) {
  std::vector<BatchStatement> items;
  for (const auto& [cql, params] : statements) {
    BatchStatement b;
    if (params.empty()) {
      b.query_or_id = cql;
    } else {
      FERRY_ASSIGN_OR_RETURN(const Prepared* p, Prepare(control_.get(), cql));
      FERRY_ASSIGN_OR_RETURN(b.values, Encode(*p, params, cql));
      b.query_or_id = p->id;
      b.prepared = true;
    }
    items.push_back(std::move(b));
  }
  QueryParams qp = BaseParams(options);
  auto r = Finish(control_->Request(Opcode::kBatch,
                                    BatchBody(type, items, qp.consistency, qp.serial_consistency)));
  if (!r.ok() && IsUnprepared(r.status())) {
    for (const auto& [cql, params] : statements) {
      if (!params.empty()) FERRY_RETURN_IF_ERROR(Prepare(control_.get(), cql, true).status());
    }
    return Batch(type, statements, options);
  }
  return r.status();
}

Status CqlConnection::Begin() {
  return Status(StatusCode::kUnimplemented, "CQL has no transactions; statements run one by one");
}
Status CqlConnection::Commit() { return Begin(); }
Status CqlConnection::Rollback() { return Begin(); }
Result<bool> CqlConnection::TryLock(int64_t) {
  return Status(StatusCode::kUnimplemented, "CQL has no session locks; ferry uses a lease table");
}
Status CqlConnection::Unlock(int64_t) { return TryLock(0).status(); }
Status CqlConnection::CopyOut(std::string_view, const std::function<Status(std::string_view)>&) {
  return Status(StatusCode::kUnimplemented, "COPY is a cqlsh command, not part of CQL");
}
Result<std::unique_ptr<CopyWriter>> CqlConnection::CopyIn(std::string_view) {
  return Status(StatusCode::kUnimplemented, "COPY is a cqlsh command, not part of CQL");
}
int CqlConnection::SessionId() const { return static_cast<int>(getpid()); }
bool CqlConnection::compressed() const { return control_->compressed(); }

std::string CqlConnection::product() const {
  for (const auto& [key, values] : control_->supported()) {
    if (key.starts_with("SCYLLA")) return "ScyllaDB";
  }
  return "Cassandra";
}

Result<ServerInfo> CqlConnection::Info() {
  FERRY_ASSIGN_OR_RETURN(QueryResult local, Query("SELECT release_version FROM system.local"));
  ServerInfo info;
  info.engine = product();
  info.version = local.empty() ? "" : local.Text(0, 0);
  int major = 0, minor = 0, patch = 0;
  std::sscanf(info.version.c_str(), "%d.%d.%d", &major, &minor, &patch);
  info.version_num = major * 10000 + minor * 100 + patch;
  info.database = keyspace_;
  info.user = user_;
  info.capabilities.push_back({"transactional_ddl", false, "CQL has no transactions",
                               "migrations run statement by statement, each recorded"});
  info.capabilities.push_back({"lightweight_transactions", true, "INSERT ... IF NOT EXISTS", ""});
  info.capabilities.push_back({"lz4_compression", compressed(), compressed() ? "on" : "off",
                               compressed() ? "" : "the server did not offer lz4"});
  info.capabilities.push_back({"token_aware_routing", murmur3_,
                               murmur3_ ? "Murmur3Partitioner" : "another partitioner",
                               murmur3_ ? "" : "requests go to the control node"});
  return info;
}

}  // namespace ferry::cql
