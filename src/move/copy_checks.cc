// Copy pre-checks; see copy_checks.h.
#include "move/copy_checks.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "move/sql_fragment.h"

namespace ferry {

Result<std::string> DatabaseIdentity(Connection& conn) {
  if (conn.engine() == Engine::kPostgres) {
    // pg_control_system() is for superusers and pg_monitor members only;
    // ask first, so that no refused call lands in the server's log.
    FERRY_ASSIGN_OR_RETURN(
        QueryResult may,
        conn.Query("SELECT has_function_privilege('pg_control_system()', 'EXECUTE')"));
    if (!may.empty() && may.Text(0, 0) == "t") {
      FERRY_ASSIGN_OR_RETURN(
          QueryResult id,
          conn.Query("SELECT system_identifier::text || ':' || current_database() "
                     "FROM pg_control_system()"));
      if (!id.empty()) return "postgres:" + id.Text(0, 0);
    }
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        conn.Query("SELECT pg_postmaster_start_time()::text || ':' || current_setting('port') || "
                   "':' || current_database()"));
    return "postgres-start:" + r.Text(0, 0);
  }
  FERRY_ASSIGN_OR_RETURN(QueryResult r, conn.Query("SELECT file FROM pragma_database_list "
                                                   "WHERE name = 'main'"));
  if (r.empty() || !r.rows[0][0] || r.rows[0][0]->empty()) return std::string();
  struct stat st {};
  if (stat(r.rows[0][0]->c_str(), &st) != 0) {
    return Status(StatusCode::kInternal, fmt::format("stat of the SQLite file {}: {}",
                                                     *r.rows[0][0], std::strerror(errno)));
  }
  return fmt::format("sqlite:{}:{}", static_cast<uint64_t>(st.st_dev),
                     static_cast<uint64_t>(st.st_ino));
}

Status CheckNotSelfCopy(bool same_database, const TableInfo& src, const TableInfo& dst,
                        const std::string& source_name) {
  if (!same_database || src.schema != dst.schema || src.name != dst.name) return Status();
  return Status(StatusCode::kInvalidArgument,
                fmt::format("table {} would be copied onto itself: --from and --to are the same "
                            "database (same {}); nothing was written",
                            source_name,
                            src.engine == Engine::kSqlite ? "file" : "server and database"))
      .With("table", source_name)
      .With("hint", "copy into another database, or into another table of this one");
}

Status CheckWhereShape(const std::string& where, Engine source_engine) {
  if (where.empty()) return Status();
  return source_engine == Engine::kPostgres ? CheckPgCondition("--where", where)
                                     : CheckSqliteCondition("--where", where);
}

Result<int64_t> PagesToSplit(Connection& src, const TableInfo& t) {
  const char* sql =
      t.partitioned
          ? "SELECT COALESCE(max(pg_relation_size(p.relid)), 0) / "
            "current_setting('block_size')::bigint FROM pg_partition_tree(to_regclass($1)) p "
            "WHERE p.isleaf"
          : "SELECT pg_relation_size(to_regclass($1)) / current_setting('block_size')::bigint";
  FERRY_ASSIGN_OR_RETURN(QueryResult r, src.Query(sql, {t.QualifiedName()}));
  return r.empty() || !r.rows[0][0] ? int64_t{0} : std::stoll(*r.rows[0][0]);
}

std::string PartitionNote(const TableInfo& src, bool target_exists, const TableInfo& dst) {
  if (target_exists && dst.partitioned) {
    return "the target table exists partitioned: each row goes to its partition";
  }
  if (!src.partitioned) return "";
  if (target_exists) {
    return "the source is partitioned; the target is a plain table and gets the rows of every "
           "partition";
  }
  return "the source is partitioned; --create-tables creates the target as a plain table with "
         "the rows of every partition (create the partitioned table on the target first to keep "
         "partitions)";
}

}  // namespace ferry
