// CQL lint rules (FileLinter::RunCql): the same findings, ignores, disabled
// rules and report formats as PostgreSQL's, for CQL migrations (seed 003).
// Statements come from the CQL splitter; each is read as a token list
// (keywords compared in upper case, names lower-cased unless quoted).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "drivers/cql/cql_split.h"
#include "migrate/cql_tokens.h"
#include "migrate/lint_internal.h"

namespace ferry::lint_internal {
namespace {

using cql_tokens::ReadColumns;
using cql_tokens::Tokenize;
using cql_tokens::Tokens;

// The unqualified part of "ks.table".
std::string Bare(const std::string& name) {
  size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

// A column whose values are likely all different (an index on it fans out).
bool LikelyHighCardinality(const std::string& column) {
  for (std::string_view s : {"id", "uuid", "email", "token", "hash", "key", "cid", "at", "time",
                             "timestamp", "ts"}) {
    if (column == s || column.ends_with("_" + std::string(s))) return true;
  }
  return false;
}

}  // namespace

void FileLinter::RunCql() {
  auto split = cql::SplitCql(script_.sql, script_.first_line);
  if (!split.ok()) {
    Add({.line = std::atoi(split.status().Get("line").c_str()),
         .column = 1,
         .rule = "parse-error",
         .message = split.status().message()});
    return;
  }
  report_->statements += static_cast<int>(split->size());
  for (const cql::CqlStatement& s : *split) {
    current_offset_ = s.offset;
    current_line_ = s.line;
    current_column_ = s.column;
    LintCqlStatement(s.text);
    previous_end_ = s.offset + s.text.size();
  }
}

void FileLinter::LintCqlStatement(std::string_view text) {
  Tokens t(Tokenize(text));
  if (t.Has({"ALLOW", "FILTERING"})) {
    Add({.rule = "cql-allow-filtering",
         .message = "ALLOW FILTERING reads whole partitions or the whole table to answer; in a "
                    "migration (and in the application) query a table keyed for the read"});
  }
  if (t.Is(0, "CREATE")) {
    LintCqlCreate(t, text);
  } else if (t.Is(0, "TRUNCATE") || (t.Is(0, "DROP") && (t.Is(1, "TABLE") || t.Is(1, "KEYSPACE") ||
                                                         t.Is(1, "TYPE") || t.Is(1, "COLUMNFAMILY")))) {
    LintCqlDestructive(t);
  } else if (t.Is(0, "ALTER") && t.Is(1, "TABLE")) {
    LintCqlAlterTable(t);
  }
}

// CREATE ...: idempotence, counters mixed in a table, views, indexes.
void FileLinter::LintCqlCreate(const Tokens& t, std::string_view text) {
  size_t i = 1;
  if (t.Is(i, "OR") && t.Is(i + 1, "REPLACE")) return;  // functions: idempotent already
  std::string kind = t.at(i).upper;
  if (kind == "CUSTOM" || kind == "MATERIALIZED") kind += " " + t.at(++i).upper;
  const bool if_not_exists = t.Is(i + 1, "IF") && t.Is(i + 2, "NOT") && t.Is(i + 3, "EXISTS");
  size_t name_at = if_not_exists ? i + 4 : i + 1;
  size_t after = name_at;
  const std::string name = t.QualifiedName(name_at, &after);
  if (!if_not_exists && kind != "ROLE" && kind != "USER") {
    Add({.rule = "cql-create-not-idempotent",
         .message = fmt::format("CREATE {} {} without IF NOT EXISTS fails when the migration "
                                "runs again (after a partial failure, or on a second cluster)",
                                kind, name),
         .safe_sql = fmt::format("CREATE {} IF NOT EXISTS {} ...", kind, name)});
  }
  if (kind == "TABLE") {
    auto& types = carried_->cql_column_types[name];
    auto& key = carried_->cql_primary_keys[name];
    if (t.Is(after, "(")) ReadColumns(t, after, &types, &key);
    carried_->new_tables.insert(name);
    carried_->new_tables.insert(Bare(name));
    bool counter = false, other = false;
    for (const auto& [col, type] : types) {
      if (key.count(col)) continue;
      (type == "COUNTER" ? counter : other) = true;
    }
    if (counter && other) {
      Add({.rule = "cql-counter-mixed",
           .message = fmt::format("table {} mixes counter and non-counter columns outside its "
                                  "primary key: the server refuses it; put the counters in a "
                                  "table of their own",
                                  name),
           .table = name});
    }
  } else if (kind == "MATERIALIZED VIEW") {
    Add({.rule = "cql-materialized-view",
         .message = fmt::format("materialized view {}: experimental and disabled by default in "
                                "Cassandra 4+, and a view can drift from its base table; "
                                "maintain a second table from the application instead",
                                name)});
  } else if (kind == "INDEX" || kind == "CUSTOM INDEX") {
    const bool sai = t.Has({"USING"}) && (text.find("sai") != std::string_view::npos ||
                                          text.find("StorageAttached") != std::string_view::npos);
    size_t on = 0;
    while (on < t.size() && !t.Is(on, "ON")) ++on;
    size_t col_at = on + 1;
    const std::string table = t.QualifiedName(on + 1, &col_at);
    const std::string column = t.at(col_at + 1).name;
    if (!sai && !carried_->new_tables.count(table) && LikelyHighCardinality(column)) {
      Add({.rule = "cql-secondary-index",
           .message = fmt::format("a secondary index on {}.{} (likely one value per row) makes "
                                  "every read ask every node; keep a table keyed by {} instead, "
                                  "or use a storage-attached index (USING 'sai')",
                                  table, column, column),
           .table = table});
    }
  }
}

// TRUNCATE, DROP TABLE/KEYSPACE/TYPE of a table this file did not create.
void FileLinter::LintCqlDestructive(const Tokens& t) {
  size_t name_at = t.Is(0, "TRUNCATE") ? (t.Is(1, "TABLE") ? 2 : 1) : 2;
  if (t.Is(name_at, "IF")) name_at += 2;
  size_t after = 0;
  const std::string name = t.QualifiedName(name_at, &after);
  if (!carried_->new_tables.count(name)) {
    Add({.rule = "cql-destructive",
         .message = fmt::format("{} {} destroys data on every node (no undo); when it is meant, "
                                "say so above it: -- ferry:lint-ignore cql-destructive <why>",
                                t.at(0).upper, name),
         .table = name});
  }
}

// ALTER TABLE: key columns, dropped columns (and re-added ones), type
// changes, table options.
void FileLinter::LintCqlAlterTable(const Tokens& t) {
  size_t i = 2;
  const std::string table = t.QualifiedName(2, &i);
  const bool is_new = carried_->new_tables.count(table) > 0;
  auto& key = carried_->cql_primary_keys[table];
  auto& types = carried_->cql_column_types[table];
  auto& dropped = carried_->cql_dropped[table];
  if (t.Is(i, "DROP")) {
    std::vector<std::string> cols;
    for (size_t k = i + 1; k < t.size(); ++k) {
      if (!t.at(k).name.empty() && !t.Is(k, "IF") && !t.Is(k, "EXISTS")) cols.push_back(t.at(k).name);
    }
    for (const std::string& c : cols) {
      if (key.count(c)) {
        Add({.rule = "cql-primary-key-change",
             .message = fmt::format("{} is part of {}'s primary key, which cannot change: create "
                                    "a new table with the new key, copy the rows (ferry copy), "
                                    "switch readers and writers, then drop the old table",
                                    c, table),
             .table = table});
      } else if (!is_new) {
        Add({.rule = "cql-destructive",
             .message = fmt::format("ALTER TABLE {} DROP {} deletes that column's data on every "
                                    "node; when it is meant: -- ferry:lint-ignore cql-destructive "
                                    "<why>",
                                    table, c),
             .table = table});
      }
      dropped[c] = types.count(c) ? types[c] : "";
      types.erase(c);
    }
  } else if (t.Is(i, "ADD")) {
    size_t k = i + 1;
    if (t.Is(k, "(")) ++k;
    const std::string col = t.at(k).name;
    std::string type;
    for (size_t j = k + 1; j < t.size() && !t.Is(j, ")") && !t.Is(j, ","); ++j) type += t.at(j).upper;
    auto was = dropped.find(col);
    if (was != dropped.end() && was->second != type) {
      Add({.rule = "cql-readd-column",
           .message = fmt::format("column {}.{} was dropped{} and is added again as {}: Cassandra "
                                  "refuses a type that cannot read the old cells; use a new "
                                  "column name",
                                  table, col,
                                  was->second.empty() ? "" : " (it was " + was->second + ")", type),
           .table = table});
    }
    types[col] = type;
  } else if (t.Is(i, "ALTER") && t.Has({"TYPE"}, i)) {
    const std::string col = t.at(i + 1).name;
    Add({.rule = key.count(col) ? "cql-primary-key-change" : "cql-alter-type",
         .message = fmt::format("ALTER TABLE {} ALTER {} TYPE: Cassandra 4+ refuses type changes; "
                                "add a column of the new type, backfill it, switch readers",
                                table, col),
         .table = table});
  } else if (t.Is(i, "WITH") && !is_new &&
             (t.Has({"COMPACTION"}, i) || t.Has({"GC_GRACE_SECONDS"}, i))) {
    Add({.rule = "cql-table-options",
         .message = fmt::format("changing compaction rewrites {}'s SSTables on every node; a "
                                "gc_grace_seconds shorter than your repair interval lets deleted "
                                "data come back; do it in a quiet hour, one change at a time",
                                table),
         .table = table});
  }
}

}  // namespace ferry::lint_internal
