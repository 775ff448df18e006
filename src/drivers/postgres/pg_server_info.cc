#include "drivers/postgres/pg_server_info.h"

#include <fmt/format.h>

#include <charconv>
#include <string>
#include <utility>

namespace ferry::postgres {
namespace {

bool Positive(const std::string& text) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size() && value > 0;
}

}  // namespace

Result<ServerInfo> DescribeServer(Connection& connection) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      connection.Query(
          "SELECT current_setting('server_version'), current_database(), session_user, "
          "current_user, current_setting('wal_level'), "
          "current_setting('max_replication_slots'), current_setting('max_wal_senders'), "
          "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
          "(SELECT rolreplication FROM pg_roles WHERE rolname = current_user), "
          "has_database_privilege(current_database(), 'CREATE'), "
          "current_setting('server_version_num')",
          {}));
  if (r.empty()) return Status(StatusCode::kInternal, "server information query returned no row");
  ServerInfo info;
  info.engine = "PostgreSQL";
  info.version = r.Text(0, 0);
  {
    const std::string& num = r.Text(0, 10);
    auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), info.version_num);
    if (ec != std::errc()) info.version_num = 0;
  }
  info.database = r.Text(0, 1);
  info.user = r.Text(0, 2);
  const std::string& current_user = r.Text(0, 3);
  const std::string& wal_level = r.Text(0, 4);
  const std::string& max_slots = r.Text(0, 5);
  const std::string& max_senders = r.Text(0, 6);
  bool superuser = r.Text(0, 7) == "t";
  bool replication = r.Text(0, 8) == "t";
  bool can_create = r.Text(0, 9) == "t";
  auto add = [&info](std::string name, bool available, std::string detail, std::string hint) {
    info.capabilities.push_back(
        {std::move(name), available, std::move(detail), available ? "" : std::move(hint)});
  };
  add("transactional_ddl", true, "DDL runs inside transactions", "");
  add("advisory_locks", true, "session-level pg_try_advisory_lock", "");
  add("copy", true, "COPY TO STDOUT / FROM STDIN in text, csv and binary", "");
  add("logical_replication", wal_level == "logical", "wal_level=" + wal_level,
      "set wal_level = logical in postgresql.conf and restart the server");
  add("replication_slots", Positive(max_slots), "max_replication_slots=" + max_slots,
      "set max_replication_slots to at least 1 in postgresql.conf and restart the server");
  add("max_wal_senders", Positive(max_senders), "max_wal_senders=" + max_senders,
      "set max_wal_senders to at least 1 in postgresql.conf and restart the server");
  add("replication_privilege", superuser || replication,
      fmt::format(
          "role {} {}", current_user,
          superuser ? "is a superuser" : (replication ? "has REPLICATION" : "lacks REPLICATION")),
      fmt::format("as a superuser run: ALTER ROLE {} REPLICATION", QuoteIdent(current_user)));
  add("create_privilege", can_create,
      fmt::format("role {} {} CREATE on database {}", current_user, can_create ? "has" : "lacks",
                  info.database),
      fmt::format("GRANT CREATE ON DATABASE {} TO {}", QuoteIdent(info.database),
                  QuoteIdent(current_user)));
  add("server_version_supported", info.version_num >= 110000, "PostgreSQL " + info.version,
      "upgrade the server to PostgreSQL 11 or later");
  return info;
}

}  // namespace ferry::postgres
