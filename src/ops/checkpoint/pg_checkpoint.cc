// PostgreSQL checkpoints: pg_dump -Fc to take one; pg_restore to SQL, then
// psql --single-transaction -v ON_ERROR_STOP=1 to restore it, so a failed
// restore changes nothing.
//
// In:     the database URL (its password goes to the tools as PGPASSWORD in
//         their environment, never on their command line), the scope.
// Out:    dump.pgdump in the checkpoint folder; on restore, the objects in
//         scope as they were (tables created since are dropped first).
// Resume: a restore is one transaction: run it again after a failure.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ops/checkpoint/checkpoint_internal.h"
#include "ops/checkpoint/child_process.h"

namespace ferry::checkpoint {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDumpFile = "dump.pgdump";

// What the tools need to reach the database: --dbname without secrets, and
// the environment that carries the password.
struct ToolTarget {
  std::string dbname_arg;
  std::vector<std::pair<std::string, std::string>> env;
};

ToolTarget TargetOf(const Url& url) {
  ToolTarget t;
  t.dbname_arg = "--dbname=" + url.ConnectionText();
  if (url.has_password()) t.env.emplace_back("PGPASSWORD", url.password().Reveal());
  t.env.emplace_back("PGAPPNAME", "ferry-checkpoint");
  return t;
}

// The last lines of a tool's stderr, one line, for an error message.
std::string Tail(const std::string& err) {
  std::string text = err.size() > 2000 ? err.substr(err.size() - 2000) : err;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return RedactSecrets(FoldWhitespace(text));
}

// "pg_dump (PostgreSQL) 15.18 (Debian ...)" -> 15
Result<std::pair<int, std::string>> ToolVersion(const std::string& path) {
  FERRY_ASSIGN_OR_RETURN(ChildResult r, RunChild({.argv = {path, "--version"}}));
  std::string line = r.out.substr(0, r.out.find('\n'));
  size_t paren = line.find(") ");
  if (r.exit_code != 0 || paren == std::string::npos) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} --version did not answer as a PostgreSQL tool: {}", path,
                              Tail(r.err + line)));
  }
  int major = std::atoi(line.c_str() + paren + 2);
  return std::make_pair(major, line);
}

// Finds `name` and checks it is at least as new as the server.
Result<std::string> Tool(const CheckpointOptions& o, const std::string& name, int server_major,
                         std::string* version_line = nullptr) {
  FERRY_ASSIGN_OR_RETURN(std::string path, FindProgram(o.pg_bin, name));
  FERRY_ASSIGN_OR_RETURN(auto version, ToolVersion(path));
  if (version.first < server_major) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} is version {} but the server is PostgreSQL {}: a dump tool "
                              "must be as new as the server. Install the PostgreSQL {} client "
                              "(Debian: postgresql-client-{}) and pass --pg-bin DIR or set "
                              "[checkpoint] pg_bin",
                              path, version.first, server_major, server_major, server_major));
  }
  if (version_line != nullptr) *version_line = version.second;
  return path;
}

// pg_dump -n / -t patterns that match exactly one name: each part quoted.
std::string ExactPattern(std::string_view name) {
  auto quote = [](std::string_view part) {
    std::string out = "\"";
    for (char c : part) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  };
  size_t dot = name.find('.');
  if (dot == std::string_view::npos) return quote(name);
  return quote(name.substr(0, dot)) + "." + quote(name.substr(dot + 1));
}

Status CheckScopeExists(Connection& conn, const CheckpointManifest& m) {
  for (const std::string& s : m.schemas) {
    FERRY_ASSIGN_OR_RETURN(QueryResult r,
                           conn.Query("SELECT 1 FROM pg_namespace WHERE nspname = $1", {s}));
    if (r.empty()) {
      return Status(StatusCode::kNotFound,
                    fmt::format("schema '{}' does not exist in this database; check --schema", s));
    }
  }
  for (const std::string& t : m.tables) {
    FERRY_ASSIGN_OR_RETURN(QueryResult r, conn.Query("SELECT to_regclass($1) IS NOT NULL",
                                                     {QuoteQualified(t)}));
    if (r.empty() || r.Text(0, 0) != "t") {
      return Status(StatusCode::kNotFound,
                    fmt::format("table '{}' does not exist in this database; check --table "
                                "(schema.table, or a table on the search path)",
                                t));
    }
  }
  return Status();
}

int ServerMajor(Connection& conn, std::string* version) {
  Result<ServerInfo> info = conn.Info();
  if (!info.ok()) return 0;
  *version = info->version;
  return info->version_num / 10000;
}

}  // namespace

Status PgCreate(const CheckpointOptions& o, const Url& url, Connection& conn,
                const std::string& folder, CheckpointManifest* m) {
  FERRY_RETURN_IF_ERROR(CheckScopeExists(conn, *m));
  const int major = ServerMajor(conn, &m->server_version);
  FERRY_ASSIGN_OR_RETURN(std::string pg_dump, Tool(o, "pg_dump", major, &m->tool));
  // Restoring needs both; refuse now rather than when it is too late.
  FERRY_RETURN_IF_ERROR(Tool(o, "pg_restore", major).status());
  FERRY_RETURN_IF_ERROR(Tool(o, "psql", major).status());
  m->dump_file = kDumpFile;
  ToolTarget target = TargetOf(url);
  ChildSpec spec;
  spec.argv = {pg_dump, "--format=custom", "--no-password", "--strict-names",
               "--file=" + (fs::path(folder) / kDumpFile).string()};
  for (const std::string& s : m->schemas) spec.argv.push_back("--schema=" + ExactPattern(s));
  for (const std::string& t : m->tables) spec.argv.push_back("--table=" + ExactPattern(t));
  spec.argv.push_back(target.dbname_arg);
  spec.env = target.env;
  FERRY_ASSIGN_OR_RETURN(ChildResult r, RunChild(spec));
  if (r.exit_code != 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("pg_dump failed (exit {}): {}", r.exit_code, Tail(r.err)));
  }
  return Status();
}

namespace {

// The objects the restore drops before the dump re-creates what was there,
// as (label, statement). Schemas in scope are dropped whole, except public,
// which is kept (it belongs to the database, not the dump): its tables,
// views, sequences, functions and types are dropped one by one. Objects
// that belong to an extension are left to the extension.
Status PlanDrops(Connection& conn, const CheckpointManifest& m,
                 std::vector<std::pair<std::string, std::string>>* drops) {
  if (m.scope == CheckpointScope::kTables) {
    // pg_restore --clean drops exactly the tables it re-creates.
    for (const std::string& t : m.tables) drops->emplace_back("table " + t, "");
    return Status();
  }
  std::vector<std::string> schemas = m.schemas;
  if (m.scope == CheckpointScope::kDatabase) {
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        conn.Query("SELECT n.nspname FROM pg_namespace n WHERE n.nspname NOT LIKE 'pg\\_%' "
                   "AND n.nspname <> 'information_schema' AND NOT EXISTS (SELECT 1 FROM "
                   "pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid "
                   "AND d.deptype = 'e') ORDER BY n.nspname"));
    for (size_t i = 0; i < r.rows.size(); ++i) schemas.push_back(r.Text(i, 0));
  }
  for (const std::string& s : schemas) {
    if (s != "public") {
      drops->emplace_back("schema " + s,
                          fmt::format("DROP SCHEMA IF EXISTS {} CASCADE;", QuoteIdent(s)));
      continue;
    }
    // Not extension members; sequences owned by a column go with their table.
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        conn.Query(
            "SELECT kind, name, ident FROM ("
            " SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' "
            "  WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, "
            "  c.relname, format('%I.%I', n.nspname, c.relname), 1"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind IN ('r','p','v','m','S','f') AND NOT c.relispartition"
            "  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
            "   AND d.objid = c.oid AND d.deptype IN ('e','a','i'))"
            " UNION ALL"
            " SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' "
            "  ELSE 'FUNCTION' END, p.proname, p.oid::regprocedure::text, 2"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1"
            "  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass"
            "   AND d.objid = p.oid AND d.deptype = 'e')"
            " UNION ALL"
            " SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.typname, "
            "  format('%I.%I', n.nspname, t.typname), 3"
            " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1"
            "  AND (t.typtype IN ('e','d','r','m') OR (t.typtype = 'c' AND (SELECT relkind FROM "
            "  pg_class WHERE oid = t.typrelid) = 'c'))"
            "  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass"
            "   AND d.objid = t.oid AND d.deptype IN ('e','i'))"
            ") o(kind, name, ident, ord) ORDER BY ord, name",
            {s}));
    for (size_t i = 0; i < r.rows.size(); ++i) {
      std::string kind = r.Text(i, 0);
      std::string label = kind + " " + r.Text(i, 2);
      for (char& c : label) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      drops->emplace_back(label, fmt::format("DROP {} IF EXISTS {} CASCADE;", kind, r.Text(i, 2)));
    }
  }
  return Status();
}

// The dump's table of contents as "TABLE public t" lines (pg_restore -l).
Result<std::vector<std::string>> ListDump(const std::string& pg_restore, const std::string& dump) {
  FERRY_ASSIGN_OR_RETURN(ChildResult r, RunChild({.argv = {pg_restore, "--list", dump}}));
  if (r.exit_code != 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("pg_restore --list {} failed (exit {}): {}", dump, r.exit_code,
                              Tail(r.err)));
  }
  std::vector<std::string> out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == ';') continue;
    std::istringstream words(line);
    std::vector<std::string> w;
    std::string word;
    while (words >> word) w.push_back(word);
    // "215; 1259 16393 TABLE public t postgres": id; class oid, kind..., owner
    if (w.size() < 5) continue;
    std::string entry;
    for (size_t i = 3; i + 1 < w.size(); ++i) entry += (entry.empty() ? "" : " ") + w[i];
    out.push_back(entry);
  }
  return out;
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("could not write {}; check free space", path));
  }
  return Status();
}

}  // namespace

Status PgRestore(const CheckpointOptions& o, const Url& url, Connection& conn,
                 const std::string& folder, RestoreReport* report) {
  const CheckpointManifest& m = report->checkpoint;
  std::string server_version;
  const int major = ServerMajor(conn, &server_version);
  FERRY_ASSIGN_OR_RETURN(std::string pg_restore, Tool(o, "pg_restore", major));
  FERRY_ASSIGN_OR_RETURN(std::string psql, Tool(o, "psql", major));
  const std::string dump = (fs::path(folder) / m.dump_file).string();
  std::vector<std::pair<std::string, std::string>> drops;
  FERRY_RETURN_IF_ERROR(PlanDrops(conn, m, &drops));
  for (const auto& d : drops) report->drops.push_back(d.first);
  FERRY_ASSIGN_OR_RETURN(report->restores, ListDump(pg_restore, dump));
  if (o.dry_run) return Status();

  const std::string drop_sql = (fs::path(folder) / "restore-drops.sql.tmp").string();
  const std::string restore_sql = (fs::path(folder) / "restore.sql.tmp").string();
  struct Cleanup {
    std::vector<std::string> files;
    ~Cleanup() {
      std::error_code ec;
      for (const std::string& f : files) fs::remove(f, ec);
    }
  } cleanup{{drop_sql, restore_sql}};
  std::string drop_text = "SET lock_timeout = 0;\n";
  for (const auto& d : drops) {
    if (!d.second.empty()) drop_text += d.second + "\n";
  }
  FERRY_RETURN_IF_ERROR(WriteText(drop_sql, drop_text));
  // The whole SQL is written out first: should pg_restore fail halfway,
  // psql never sees a truncated script it would commit.
  FERRY_ASSIGN_OR_RETURN(ChildResult gen,
                         RunChild({.argv = {pg_restore, "--clean", "--if-exists",
                                            "--file=" + restore_sql, dump}}));
  if (gen.exit_code != 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("pg_restore could not read {} (exit {}): {}", dump, gen.exit_code,
                              Tail(gen.err)));
  }
  ToolTarget target = TargetOf(url);
  ChildSpec apply;
  apply.argv = {psql,         "--no-psqlrc",           "--quiet",    "--no-password",
                "--single-transaction", "--set=ON_ERROR_STOP=1", "--file=" + drop_sql,
                "--file=" + restore_sql, target.dbname_arg};
  apply.env = target.env;
  FERRY_ASSIGN_OR_RETURN(ChildResult r, RunChild(apply));
  if (r.exit_code != 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("psql stopped at an error and rolled back (exit {}): {}",
                              r.exit_code, Tail(r.err)));
  }
  return Status();
}

}  // namespace ferry::checkpoint
