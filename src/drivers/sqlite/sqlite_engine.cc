#include "drivers/sqlite/sqlite_engine.h"

#include <fmt/format.h>

#include "drivers/connection.h"

namespace ferry::sqlite {
namespace {

class SqliteTraits final : public EngineTraits {
 public:
  Engine engine() const override { return Engine::kSqlite; }
  bool Has(Feature feature) const override {
    // DDL is transactional in SQLite, it has session (file) locks and
    // ferry's tables are SQL; everything else in Feature is a server's
    // (statistics, COPY, triggers in PL/pgSQL, catalog views).
    return feature == Feature::kTransactionalDdl || feature == Feature::kTransactions ||
           feature == Feature::kSessionLocks || feature == Feature::kSqlTables;
  }
  SqlGrammar grammar() const override { return SqlGrammar::kSqlite; }

  std::string_view TimestampType() const override { return "text"; }
  std::string_view IdentityPrimaryKey() const override {
    return "INTEGER PRIMARY KEY AUTOINCREMENT";
  }
  std::string_view BooleanType() const override { return "integer"; }
  std::string_view BooleanLiteral(bool value) const override { return value ? "1" : "0"; }
  std::string_view BeginWrite() const override { return "BEGIN IMMEDIATE"; }
  std::string Now() const override { return "strftime('%Y-%m-%dT%H:%M:%fZ','now')"; }
  std::string NowPlusSeconds(int param) const override {
    return fmt::format("strftime('%Y-%m-%dT%H:%M:%fZ','now', '+' || ${} || ' seconds')", param);
  }
  // Stored as ISO-8601 text already.
  std::string IsoTimestamp(std::string_view column) const override { return std::string(column); }

  // "schema.table" names an attached database's table ("main" by default).
  Result<bool> TableExists(Connection& conn, std::string_view qualified) const override {
    std::string_view schema = "main";
    std::string_view name = qualified;
    if (size_t dot = qualified.find('.'); dot != std::string_view::npos) {
      schema = qualified.substr(0, dot);
      name = qualified.substr(dot + 1);
    }
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        conn.Query(fmt::format("SELECT count(*) FROM {}.sqlite_master WHERE type = 'table' AND "
                               "name = $1",
                               QuoteIdent(schema)),
                   {std::string(name)}));
    return r.Text(0, 0) != "0";
  }

  std::string_view MigrationSessionSetup() const override { return ""; }
};

}  // namespace

const EngineTraits& Traits() {
  static const SqliteTraits traits;
  return traits;
}

}  // namespace ferry::sqlite
