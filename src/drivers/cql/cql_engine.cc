#include "drivers/cql/cql_engine.h"

#include <fmt/format.h>

#include "drivers/connection.h"
#include "drivers/cql/cql_split.h"
#include "drivers/cql/cql_describe.h"
#include "drivers/lease.h"
#if FERRY_WITH_CQL
#include "drivers/cql/cql_connection.h"
#include "drivers/cql/cql_lease.h"
#endif

namespace ferry::cql {
namespace {

class CqlTraits final : public EngineTraits {
 public:
  Engine engine() const override { return Engine::kCql; }
  // CQL offers none of the Features but lint rules: no transactions (so no transactional
  // DDL or transaction locks), no session locks (the migration lock is a
  // lease, OpenLease), no COPY in the protocol, no triggers for online
  // changes, no schemas besides keyspaces, and ferry's own tables are not
  // SQL (the history has its own store, migrate/cql_history.h). Lint has
  // CQL rules (migrate/cql_lint_rules.cc).
  bool Has(Feature feature) const override { return feature == Feature::kLintRules; }
  SqlGrammar grammar() const override { return SqlGrammar::kCql; }

  std::string_view TimestampType() const override { return "timestamp"; }
  // CQL has no generated keys: the caller supplies the id.
  std::string_view IdentityPrimaryKey() const override { return "bigint PRIMARY KEY"; }
  std::string_view BooleanType() const override { return "boolean"; }
  std::string_view BooleanLiteral(bool value) const override { return value ? "true" : "false"; }
  std::string_view BeginWrite() const override { return ""; }  // no transactions
  std::string Now() const override { return "toTimestamp(now())"; }
  // CQL binds with ?, not $n: the duration is the statement's next marker,
  // bound as text such as "30s" (timestamp + duration arithmetic, Cassandra 4+).
  std::string NowPlusSeconds(int) const override { return "toTimestamp(now()) + ?"; }
  // The driver already renders timestamps as ISO-8601 UTC text.
  std::string IsoTimestamp(std::string_view column) const override { return std::string(column); }

  // "keyspace.table", or "table" in the connection's keyspace.
  Result<bool> TableExists(Connection& conn, std::string_view qualified) const override {
    std::string keyspace;
    std::string_view table = qualified;
    if (size_t dot = qualified.find('.'); dot != std::string_view::npos) {
      keyspace = std::string(qualified.substr(0, dot));
      table = qualified.substr(dot + 1);
    } else {
      FERRY_ASSIGN_OR_RETURN(ServerInfo info, conn.Info());
      keyspace = info.database;
    }
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        conn.Query("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND "
                   "table_name = ?",
                   {keyspace, std::string(table)}));
    return !r.empty();
  }

  std::string_view MigrationSessionSetup() const override { return ""; }

  // After CREATE/ALTER/DROP of a keyspace, table, type, index, view,
  // function, aggregate or trigger: every node must see the change before
  // the next statement uses it.
  Status SettleSchema(Connection& conn, std::string_view statement,
                      std::chrono::milliseconds timeout) const override {
    if (!IsSchemaChange(statement)) return Status();
#if FERRY_WITH_CQL
    if (auto* cql = dynamic_cast<CqlConnection*>(&conn)) {
      return cql->WaitForSchemaAgreement(timeout);
    }
#else
    (void)timeout;
#endif
    (void)conn;
    return Status();
  }

  Result<std::string> DescribeSchema(Connection& conn, const std::string& scope) const override {
    return DescribeKeyspace(conn, scope);
  }

  Result<std::unique_ptr<TableLease>> OpenLease(Connection& conn, std::string table,
                                                std::string name, std::string owner,
                                                std::chrono::seconds ttl) const override {
#if FERRY_WITH_CQL
    if (auto* cql = dynamic_cast<CqlConnection*>(&conn)) {
      return std::unique_ptr<TableLease>(
          new Lease(cql, std::move(table), std::move(name), std::move(owner), ttl));
    }
#else
    (void)table, (void)name, (void)owner, (void)ttl;
#endif
    (void)conn;
    return Status(StatusCode::kUnimplemented, "this build has no CQL driver");
  }
};

}  // namespace

const EngineTraits& Traits() {
  static const CqlTraits traits;
  return traits;
}

}  // namespace ferry::cql
