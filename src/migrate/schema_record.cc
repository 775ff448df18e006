#include "migrate/schema_record.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>

namespace ferry {
namespace {

// The unqualified table name of a possibly qualified "schema.table".
std::string BaseName(const std::string& qualified) {
  size_t dot = qualified.rfind('.');
  return dot == std::string::npos ? qualified : qualified.substr(dot + 1);
}

// A SQL list of ferry's own table names: 'h', 'h_meta', 'h_objects'.
std::string OwnTables(Connection& conn, const std::string& history_table) {
  std::string base = BaseName(history_table);
  std::string out;
  for (const std::string& name : {base, base + "_meta", base + "_objects"}) {
    if (!out.empty()) out += ", ";
    out += conn.engine() == Engine::kPostgres ? PgLiteral(name) : "'" + name + "'";
  }
  return out;
}

std::string PgCatalogSql(const std::string& own) {
  // Relations of users' schemas, except ferry's (named ferry_* or the history's).
  const std::string rel = fmt::format(
      "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
      "AND c.relname NOT LIKE 'ferry\\_%' AND c.relname NOT IN ({})",
      own);
  return fmt::format(
      "SELECT 'table', n.nspname || '.' || c.relname, CASE c.relkind WHEN 'v' THEN 'view' "
      "WHEN 'm' THEN 'materialized view' WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN "
      "'foreign table' ELSE 'table' END "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {0} "
      "UNION ALL SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname, "
      "format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' "
      "END FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
      "JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped "
      "AND {0} "
      "UNION ALL SELECT 'index', n.nspname || '.' || ic.relname, pg_get_indexdef(i.indexrelid) "
      "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
      "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE {0} "
      "UNION ALL SELECT 'constraint', n.nspname || '.' || c.relname || '.' || k.conname, "
      "pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
      "JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE k.contype IN ('p', 'u', 'f', 'c', 'x') AND {0}",
      rel);
}

std::string SqliteCatalogSql(const std::string& own) {
  auto mine = [&own](std::string_view column) {
    return fmt::format("{0} NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND {0} NOT LIKE 'ferry\\_%' "
                       "ESCAPE '\\' AND {0} NOT IN ({1})",
                       column, own);
  };
  return fmt::format(
      "SELECT 'table', name, type FROM sqlite_master WHERE type IN ('table', 'view') AND {0} "
      "UNION ALL SELECT 'column', m.name || '.' || p.name, lower(p.type) || CASE WHEN "
      "p.\"notnull\" THEN ' not null' ELSE '' END FROM sqlite_master m, "
      "pragma_table_info(m.name) p WHERE m.type IN ('table', 'view') AND {1} "
      "UNION ALL SELECT 'index', name, coalesce(sql, '') FROM sqlite_master WHERE type = "
      "'index' AND {2} AND {0}",
      mine("name"), mine("m.name"), mine("tbl_name"));
}

// "public.users.email" -> "users.email" for messages.
std::string Shown(const std::string& name) {
  for (std::string_view prefix : {"public.", "main."}) {
    if (name.rfind(prefix, 0) == 0) return name.substr(prefix.size());
  }
  return name;
}

bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$';
}

// Where each identifier (lower case) is first and last named among the
// scripts a run completed, so attributing thousands of objects to hundreds
// of scripts is one pass over their text.
struct Mentions {
  std::map<std::string, std::pair<size_t, size_t>> at;  // word -> (first, last) script

  explicit Mentions(const std::vector<SchemaRecord::RunScript>& done) {
    for (size_t i = 0; i < done.size(); ++i) {
      const std::string& sql = done[i].sql;
      size_t pos = 0;
      while (pos < sql.size()) {
        if (!IsIdentChar(sql[pos])) {
          ++pos;
          continue;
        }
        size_t end = pos;
        std::string word;
        while (end < sql.size() && IsIdentChar(sql[end])) {
          word += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[end])));
          ++end;
        }
        auto [it, fresh] = at.try_emplace(std::move(word), i, i);
        if (!fresh) it->second.second = i;
        pos = end;
      }
    }
  }
  const std::pair<size_t, size_t>* Find(const std::string& word) const {
    std::string lower;
    for (char c : word) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = at.find(lower);
    return it == at.end() ? nullptr : &it->second;
  }
};

// "public.users.email" -> {"public", "users", "email"}.
std::vector<std::string> Parts(const std::string& name) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t dot = name.find('.', pos);
    out.push_back(name.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos));
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return out;
}

// Which completed script made (or last changed) `o`: see SchemaRecord::After.
std::string MadeBy(const SchemaObject& o, bool changed, const Mentions& mentions,
                   const std::vector<SchemaRecord::RunScript>& done) {
  std::vector<std::string> parts = Parts(o.name);
  std::vector<std::string> words = {parts.back()};
  if ((o.kind == "column" || o.kind == "constraint") && parts.size() >= 2) {
    words.push_back(parts[parts.size() - 2]);  // its table
  }
  for (const std::string& word : words) {
    if (const auto* at = mentions.Find(word)) return done[changed ? at->second : at->first].version;
  }
  // No script names it: one of the run's. Two or three are listed; a long
  // run is given as its range, so the text stays short whatever the run's
  // size (listing all made each object O(run) bytes: O(n^2) for a first up).
  if (done.size() <= 3) {
    std::string all;
    for (const auto& script : done) all += (all.empty() ? "" : ", ") + script.version;
    return all;
  }
  return fmt::format("one of {} .. {}", done.front().version, done.back().version);
}

}  // namespace

Result<std::vector<SchemaObject>> ReadSchemaObjects(Connection& conn,
                                                    const std::string& history_table) {
  const std::string own = OwnTables(conn, history_table);
  const bool pg = conn.engine() == Engine::kPostgres;
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         conn.Query(pg ? PgCatalogSql(own) : SqliteCatalogSql(own)));
  std::vector<SchemaObject> out;
  out.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    if (row.size() < 3 || !row[0] || !row[1]) continue;
    out.push_back({*row[0], *row[1], row[2] ? *row[2] : "", ""});
  }
  std::sort(out.begin(), out.end());
  return out;
}

SchemaRecord::SchemaRecord(Connection* conn, std::string history_table)
    : conn_(conn), history_table_(std::move(history_table)), table_(history_table_ + "_objects") {}

Result<bool> SchemaRecord::Exists() { return conn_->traits().TableExists(*conn_, table_); }

Status SchemaRecord::Create() {
  return conn_
      ->Exec(fmt::format("CREATE TABLE IF NOT EXISTS {} (kind text NOT NULL, name text NOT NULL, "
                         "detail text NOT NULL DEFAULT '', added_by text NOT NULL DEFAULT '', "
                         "PRIMARY KEY (kind, name))",
                         QuoteQualified(table_)))
      .status();
}

Result<std::vector<SchemaObject>> SchemaRecord::Load() {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r, conn_->Query(fmt::format("SELECT kind, name, detail, added_by FROM {} ORDER "
                                              "BY kind, name",
                                              QuoteQualified(table_))));
  std::vector<SchemaObject> out;
  for (const auto& row : r.rows) {
    if (row.size() < 4 || !row[0] || !row[1]) continue;
    out.push_back({*row[0], *row[1], row[2].value_or(""), row[3].value_or("")});
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status SchemaRecord::Store(const std::vector<SchemaObject>& add,
                           const std::vector<SchemaObject>& remove) {
  if (add.empty() && remove.empty()) return Status();
  const std::string upsert = fmt::format(
      "INSERT INTO {} (kind, name, detail, added_by) VALUES ($1, $2, $3, $4) ON CONFLICT (kind, "
      "name) DO UPDATE SET detail = excluded.detail, added_by = excluded.added_by",
      QuoteQualified(table_));
  const std::string del =
      fmt::format("DELETE FROM {} WHERE kind = $1 AND name = $2", QuoteQualified(table_));
  std::vector<Params> params;
  params.reserve(add.size() + remove.size());
  std::vector<Connection::BatchItem> batch;
  for (const SchemaObject& o : remove) params.push_back({o.kind, o.name});
  for (const SchemaObject& o : add) params.push_back({o.kind, o.name, o.detail, o.added_by});
  for (size_t i = 0; i < params.size(); ++i) {
    batch.push_back({i < remove.size() ? std::string_view(del) : std::string_view(upsert),
                     &params[i], nullptr, /*reuse=*/true});
  }
  FERRY_RETURN_IF_ERROR(conn_->Begin());
  auto ran = conn_->ExecBatch(batch);
  if (!ran.ok()) {
    (void)conn_->Rollback();
    return std::move(ran).TakeStatus();
  }
  return conn_->Commit();
}

Status SchemaRecord::Before(bool has_applied) {
  started_ = false;
  FERRY_ASSIGN_OR_RETURN(bool exists, Exists());
  FERRY_ASSIGN_OR_RETURN(before_, ReadSchemaObjects(*conn_, history_table_));
  if (!exists) {
    FERRY_RETURN_IF_ERROR(Create());
    if (has_applied) {
      // A history older than this record: the schema as it is now is what
      // the applied migrations made, as far as anyone can tell.
      std::vector<SchemaObject> adopted = before_;
      for (SchemaObject& o : adopted) o.added_by = "adopted";
      FERRY_RETURN_IF_ERROR(Store(adopted, {}));
    }
  }
  started_ = true;
  return Status();
}

Status SchemaRecord::After(const std::vector<RunScript>& done) {
  if (!started_) return Status();
  started_ = false;
  FERRY_ASSIGN_OR_RETURN(std::vector<SchemaObject> after, ReadSchemaObjects(*conn_, history_table_));
  std::map<std::pair<std::string, std::string>, const SchemaObject*> old;
  for (const SchemaObject& o : before_) old[{o.kind, o.name}] = &o;
  std::vector<SchemaObject> add;
  const Mentions mentions(done);
  for (const SchemaObject& o : after) {
    auto it = old.find({o.kind, o.name});
    const bool changed = it != old.end();
    if (changed) {
      const bool same = it->second->detail == o.detail;
      old.erase(it);
      if (same) continue;  // untouched by this run
    }
    add.push_back(o);
    add.back().added_by = MadeBy(o, changed, mentions, done);
  }
  std::vector<SchemaObject> removed;
  for (const auto& [key, o] : old) removed.push_back(*o);
  return Store(add, removed);
}

Result<std::vector<SchemaDrift>> SchemaRecord::Compare() {
  std::vector<SchemaDrift> out;
  FERRY_ASSIGN_OR_RETURN(bool exists, Exists());
  if (!exists) return out;
  FERRY_ASSIGN_OR_RETURN(std::vector<SchemaObject> recorded, Load());
  FERRY_ASSIGN_OR_RETURN(std::vector<SchemaObject> live, ReadSchemaObjects(*conn_, history_table_));
  std::map<std::pair<std::string, std::string>, const SchemaObject*> now;
  for (const SchemaObject& o : live) now[{o.kind, o.name}] = &o;
  // A missing table explains its missing columns, indexes and constraints.
  std::set<std::string> missing_tables;
  for (const SchemaObject& o : recorded) {
    if (o.kind == "table" && !now.count({o.kind, o.name})) missing_tables.insert(o.name + ".");
  }
  auto under_missing = [&](const SchemaObject& o) {
    if (o.kind == "table") return false;
    for (const std::string& t : missing_tables) {
      if (o.name.rfind(t, 0) == 0) return true;
    }
    return false;
  };
  for (const SchemaObject& o : recorded) {
    auto it = now.find({o.kind, o.name});
    const std::string by = o.added_by.empty() ? "" : fmt::format(" (made by {})", o.added_by);
    if (it == now.end()) {
      if (under_missing(o)) continue;
      out.push_back({o.kind, Shown(o.name), "missing",
                     fmt::format("missing {} {}{}", o.kind, Shown(o.name), by)});
    } else if (it->second->detail != o.detail) {
      out.push_back({o.kind, Shown(o.name), "changed",
                     fmt::format("{} {} is '{}', the migrations left '{}'{}", o.kind,
                                 Shown(o.name), it->second->detail, o.detail, by)});
    }
  }
  return out;
}

}  // namespace ferry
