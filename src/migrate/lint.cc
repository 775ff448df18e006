// Lint engine: splitting, per-file state (new tables and columns, open
// transaction blocks, lock_timeout), ignores, and grading by table size.
// The rules themselves are in lint_rules.cc; renderings in lint_report.cc.
#include "migrate/lint.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "migrate/lint_internal.h"
#include "migrate/sql_split.h"

namespace ferry {

std::string_view LintSeverityName(LintSeverity severity) {
  switch (severity) {
    case LintSeverity::kNote: return "note";
    case LintSeverity::kWarning: return "warning";
    case LintSeverity::kError: return "error";
  }
  return "error";
}

const std::vector<LintRuleInfo>& LintRules() {
  using S = LintSeverity;
  static const std::vector<LintRuleInfo> kRules = {
      {"create-index-non-concurrently", S::kError, true,
       "CREATE INDEX without CONCURRENTLY on an existing table blocks writes while it builds"},
      {"concurrently-in-transaction", S::kError, false,
       "CONCURRENTLY (or VACUUM, ...) inside BEGIN ... COMMIT: the server refuses it"},
      {"drop-index-non-concurrently", S::kWarning, false,
       "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table"},
      {"add-column-volatile-default", S::kError, true,
       "a column added with a volatile default (or any default before PostgreSQL 11) rewrites "
       "the table"},
      {"add-column-identity", S::kError, true,
       "a serial or identity column added to an existing table rewrites it"},
      {"add-column-stored-generated", S::kError, true,
       "a stored generated column added to an existing table rewrites it"},
      {"alter-column-type", S::kError, true,
       "changing a column's type rewrites the table and its indexes"},
      {"set-not-null", S::kError, true,
       "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE"},
      {"constraint-without-not-valid", S::kError, true,
       "a FOREIGN KEY or CHECK added without NOT VALID checks every row under a lock"},
      {"unique-constraint-without-index", S::kError, true,
       "UNIQUE or PRIMARY KEY added without USING INDEX builds the index under ACCESS EXCLUSIVE"},
      {"drop-column", S::kWarning, false, "DROP COLUMN destroys data and breaks readers of it"},
      {"drop-table", S::kWarning, false, "DROP TABLE destroys data and breaks readers of it"},
      {"drop-schema", S::kWarning, false, "DROP SCHEMA destroys every object in it"},
      {"rename-column", S::kError, false,
       "renaming a column breaks the running application, which uses the old name"},
      {"rename-table", S::kError, false,
       "renaming a table breaks the running application, which uses the old name"},
      {"create-and-drop-in-same-migration", S::kWarning, false,
       "a column or table created and dropped in the same migration"},
      {"dml-without-where", S::kError, true,
       "UPDATE or DELETE without WHERE on an existing table: one long transaction locking every "
       "row"},
      {"truncate-cascade", S::kError, false,
       "TRUNCATE ... CASCADE also empties every table that references this one"},
      {"vacuum-full-cluster", S::kError, true,
       "VACUUM FULL and CLUSTER rewrite the table under ACCESS EXCLUSIVE"},
      {"missing-lock-timeout", S::kWarning, false,
       "a statement taking a strong lock without a lock_timeout can stall all traffic"},
      {"integer-primary-key", S::kWarning, false, "integer primary keys run out at 2^31"},
      {"timestamp-without-time-zone", S::kWarning, false,
       "timestamp without time zone loses the offset; use timestamptz"},
      {"varchar-length", S::kWarning, false,
       "varchar(n) limits are costly to change later; use text (with a CHECK if needed)"},
      {"transaction-control", S::kError, false,
       "BEGIN/COMMIT in a file ferry already runs in a transaction"},
      {"cql-create-not-idempotent", S::kWarning, false,
       "CQL CREATE without IF NOT EXISTS: a migration run twice fails (seed 003 wants idempotent ones)"},
      {"cql-destructive", S::kError, false,
       "CQL DROP TABLE/KEYSPACE/TYPE, TRUNCATE or ALTER TABLE DROP destroys data: mark it when meant"},
      {"cql-readd-column", S::kError, false,
       "a dropped CQL column added again under another type: the server refuses or misreads old data"},
      {"cql-primary-key-change", S::kError, false,
       "a CQL primary key cannot change: new table, copy, switch, drop"},
      {"cql-alter-type", S::kError, false, "ALTER TABLE ... ALTER ... TYPE is refused by Cassandra 4+"},
      {"cql-secondary-index", S::kWarning, false,
       "a secondary index on a likely high-cardinality column queries every node"},
      {"cql-materialized-view", S::kWarning, false,
       "materialized views are experimental (off by default in Cassandra 4+) and can drift"},
      {"cql-allow-filtering", S::kWarning, false, "ALLOW FILTERING scans whole partitions or tables"},
      {"cql-table-options", S::kWarning, false,
       "compaction or gc_grace_seconds changed on an existing table: SSTables rewritten, tombstones"},
      {"cql-counter-mixed", S::kError, false,
       "a CQL table mixes counter and non-counter columns: the server refuses it"},
      {"lint-ignore-without-reason", S::kError, false, "a lint-ignore comment gives no reason"},
      {"lint-ignore-unknown-rule", S::kWarning, false, "a lint-ignore comment names no known rule"},
      {"parse-error", S::kError, false, "the PostgreSQL parser cannot read the file"},
  };
  return kRules;
}

const LintRuleInfo* FindLintRule(std::string_view id) {
  for (const LintRuleInfo& r : LintRules()) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

int LintReport::Count(LintSeverity severity) const {
  return static_cast<int>(std::count_if(findings.begin(), findings.end(),
                                        [&](const LintFinding& f) { return f.severity == severity; }));
}

namespace lint_internal {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string HumanRows(int64_t rows) {
  if (rows >= 1'000'000) return fmt::format("~{:.1f} million rows", static_cast<double>(rows) / 1e6);
  if (rows >= 10'000) return fmt::format("~{} thousand rows", rows / 1000);
  return fmt::format("~{} rows", rows);
}

FileLinter::FileLinter(const Script& script, const LintOptions& options, CarriedState* carried,
                       LintReport* report)
    : script_(script), options_(options), carried_(carried), report_(report) {}

bool FileLinter::IsNewTable(const std::string& key) const {
  if (carried_->new_tables.count(key) > 0) return true;
  if (key.rfind("public.", 0) == 0 && carried_->new_tables.count(key.substr(7)) > 0) return true;
  if (!options_.empty_tables_are_new) return false;
  const TableSize* size = SizeOf(key);
  return size != nullptr && size->EstimatedRows() == 0;
}

void FileLinter::AddNewTable(const std::string& schema, const std::string& name) {
  carried_->new_tables.insert(name);
  if (!schema.empty()) carried_->new_tables.insert(schema + "." + name);
}

const TableSize* FileLinter::SizeOf(const std::string& key) const {
  if (!options_.sizes_known) return nullptr;
  auto it = options_.table_sizes.find(key);
  return it == options_.table_sizes.end() ? nullptr : &it->second;
}

void FileLinter::Add(LintFinding f, std::optional<LintSeverity> cap) {
  const LintRuleInfo* rule = FindLintRule(f.rule);
  if (rule == nullptr) return;
  if (options_.disabled.count(f.rule) || options_.skip_rules.count(f.rule)) return;
  f.file = script_.path;
  if (f.line == 0) {
    f.line = current_line_;
    f.column = current_column_;
  }
  f.severity = rule->severity;
  if (cap && *cap < f.severity) f.severity = *cap;
  if (const TableSize* size = f.table.empty() ? nullptr : SizeOf(f.table)) {
    // One rule: the largest estimate; unknown is large (the rule's severity).
    const int64_t rows = size->EstimatedRows();
    f.table_rows = rows;
    if (rule->graded_by_size && rows >= 0) {
      // Small: a note; large: the rule's severity; between: at most a warning.
      if (rows < options_.small_table_rows) {
        f.severity = LintSeverity::kNote;
      } else if (rows < options_.large_table_rows && f.severity == LintSeverity::kError) {
        f.severity = LintSeverity::kWarning;
      }
    }
    if (rows < 0) {
      f.message += fmt::format(" ({}: size unknown, judged as large)", f.table);
    } else if (rows == size->RowsFromBytes() && rows > std::max(size->rows, size->live_rows)) {
      f.message += fmt::format(" ({} has {}, estimated from its {} MB)", f.table,
                               HumanRows(rows), size->bytes >> 20);
    } else {
      f.message += fmt::format(" ({} has {})", f.table, HumanRows(rows));
    }
  }
  if (Ignored(f)) return;
  report_->findings.push_back(std::move(f));
}

// ---- ignores -----------------------------------------------------------------

namespace {

struct CommentIgnore {
  bool file_level = false;
  std::vector<std::string> rules;
  std::string reason;
  size_t offset = 0;  // in the script (file-level ones above it: 0)
  int line = 0;
};

// Parses `-- ferry:lint-ignore[-file] RULES reason` at the start of `line`
// (after blanks). nullopt when the line is something else.
std::optional<CommentIgnore> ParseIgnore(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  if (line.substr(i, 2) != "--") return std::nullopt;
  i += 2;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  std::string_view rest = line.substr(i);
  if (rest.substr(0, 6) != "ferry:") return std::nullopt;
  rest.remove_prefix(6);
  size_t end = 0;
  while (end < rest.size() && rest[end] != ' ' && rest[end] != '\t') ++end;
  std::string name = Lower(rest.substr(0, end));
  std::replace(name.begin(), name.end(), '_', '-');
  CommentIgnore ig;
  if (name == "lint-ignore-file") {
    ig.file_level = true;
  } else if (name != "lint-ignore") {
    return std::nullopt;
  }
  rest.remove_prefix(end);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  end = 0;
  while (end < rest.size() && rest[end] != ' ' && rest[end] != '\t') ++end;
  std::string_view rules = rest.substr(0, end);
  while (!rules.empty()) {
    size_t comma = rules.find(',');
    std::string_view r = rules.substr(0, comma);
    if (!r.empty()) ig.rules.push_back(Lower(r));
    if (comma == std::string_view::npos) break;
    rules.remove_prefix(comma + 1);
  }
  std::string_view reason = rest.substr(end);
  while (!reason.empty() && (reason.front() == ' ' || reason.front() == '\t' ||
                             reason.front() == '-' || reason.front() == ':')) {
    reason.remove_prefix(1);
  }
  while (!reason.empty() && (reason.back() == ' ' || reason.back() == '\t')) reason.remove_suffix(1);
  ig.reason = std::string(reason);
  return ig;
}

}  // namespace

void FileLinter::ReadIgnores() {
  auto take = [&](std::string_view text, size_t base_offset, int first_line, bool only_file) {
    size_t pos = 0;
    int line = first_line;
    while (pos <= text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) eol = text.size();
      if (auto ig = ParseIgnore(text.substr(pos, eol - pos))) {
        if (!only_file || ig->file_level) {
          ig->offset = base_offset + pos;
          ig->line = line;
          current_line_ = line;
          current_column_ = 1;
          if (ig->reason.empty()) {
            Add({.rule = "lint-ignore-without-reason",
                 .message = "this lint-ignore gives no reason: write why the finding is safe "
                            "here after the rule id, e.g. '-- ferry:lint-ignore " +
                            (ig->rules.empty() ? std::string("RULE") : ig->rules.front()) +
                            " table is empty in production'"});
          }
          if (ig->rules.empty()) {
            Add({.rule = "lint-ignore-unknown-rule",
                 .message = "this lint-ignore names no rule: write the rule id (see 'ferry lint "
                            "--help' or docs/lint.md), or 'all'"});
          }
          for (const std::string& r : ig->rules) {
            if (r != "all" && FindLintRule(r) == nullptr) {
              Add({.rule = "lint-ignore-unknown-rule",
                   .message = fmt::format("lint-ignore names '{}', which is not a lint rule "
                                          "(see docs/lint.md)",
                                          r)});
            }
          }
          ignores_.push_back({ig->file_level, ig->rules, ig->offset, ig->line});
        }
      }
      if (eol == text.size()) break;
      pos = eol + 1;
      ++line;
    }
  };
  // File-level ignores may also sit above `-- ferry:up`, outside the script.
  if (script_.first_line > 1) {
    std::ifstream in(script_.path, std::ios::binary);
    if (in) {
      std::stringstream buffer;
      buffer << in.rdbuf();
      std::string text = buffer.str();
      size_t pos = 0;
      for (int line = 1; line < script_.first_line && pos != std::string::npos; ++line) {
        pos = text.find('\n', pos);
        if (pos != std::string::npos) ++pos;
      }
      if (pos != std::string::npos) take(std::string_view(text).substr(0, pos), 0, 1, true);
    }
  }
  take(script_.sql, 0, script_.first_line, false);
}

bool FileLinter::Ignored(const LintFinding& f) const {
  if (f.rule.rfind("lint-ignore", 0) == 0 || f.rule == "parse-error") return false;
  for (const Ignore& ig : ignores_) {
    bool names = std::find(ig.rules.begin(), ig.rules.end(), f.rule) != ig.rules.end() ||
                 std::find(ig.rules.begin(), ig.rules.end(), "all") != ig.rules.end();
    if (!names) continue;
    if (ig.file_level) return true;
    // A statement ignore covers the first statement after the comment.
    if (ig.offset < current_offset_ && ig.offset >= previous_end_) return true;
  }
  return false;
}

// ---- the file ------------------------------------------------------------------

void FileLinter::Run() {
  ReadIgnores();
  if (options_.grammar == SqlGrammar::kCql || script_.path.ends_with(".cql")) {
    RunCql();
    return;
  }
  auto split = SplitPostgres(script_.sql, script_.first_line);
  if (!split.ok()) {
    const Status& s = split.status();
    int line = std::atoi(s.Get("line").c_str());
    int column = std::atoi(s.Get("column").c_str());
    Add({.line = line > 0 ? line : script_.first_line,
         .column = column > 0 ? column : 1,
         .rule = "parse-error",
         .message = s.message()});
    return;
  }
  const std::vector<Statement>& statements = *split;
  lock_timeout_set_ = !script_.directives.lock_timeout.empty() &&
                      script_.directives.lock_timeout != "0";
  report_->statements += static_cast<int>(statements.size());
  for (const Statement& s : statements) {
    current_offset_ = s.offset;
    current_line_ = s.line;
    size_t bol = s.offset == 0 ? std::string::npos : script_.sql.rfind('\n', s.offset - 1);
    size_t start = bol == std::string::npos ? 0 : bol + 1;
    int column = 1;
    for (size_t i = start; i < s.offset; ++i) {
      if ((static_cast<unsigned char>(script_.sql[i]) & 0xC0) != 0x80) ++column;
    }
    current_column_ = column;
    LintStatement(s);
    previous_end_ = s.offset + s.text.size();
  }
}

}  // namespace lint_internal

int64_t TableSize::RowsFromBytes() const {
  if (bytes < 0) return -1;
  constexpr int64_t kPage = 8192, kPageHeader = 24, kLinePointer = 4;
  const int64_t width = std::max<int64_t>(row_width, 28) + kLinePointer;
  const int64_t per_page = std::max<int64_t>((kPage - kPageHeader) / width, 1);
  return (bytes / kPage) * per_page + ((bytes % kPage) * per_page) / kPage;
}

int64_t TableSize::EstimatedRows() const {
  return std::max({rows, live_rows, RowsFromBytes()});
}

Status ReadDatabaseFacts(Connection& conn, LintOptions* options) {
  if (!conn.traits().Has(Feature::kTableStatistics)) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("lint reads table sizes from PostgreSQL only, not {}",
                              conn.traits().name()));
  }
  FERRY_ASSIGN_OR_RETURN(QueryResult version, conn.Query("SHOW server_version_num"));
  if (!version.rows.empty() && !version.rows[0].empty() && version.rows[0][0]) {
    options->server_version_num = std::atoi(version.rows[0][0]->c_str());
  }
  // A partitioned table has no storage of its own: its leaves' sums
  // (pg_partition_tree, PostgreSQL 12+; before, unknown, so large).
  const bool tree = options->server_version_num == 0 || options->server_version_num >= 120000;
  const std::string leaves =
      tree ? "SELECT p.oid FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid "
             "WHERE t.isleaf"
           : "SELECT NULL::oid WHERE false";
  const std::string sql = fmt::format(
      "SELECT n.nspname, c.relname, "
      "CASE WHEN c.relkind = 'p' THEN (SELECT {1}(sum(greatest(l.reltuples, 0)), {2})::bigint "
      "FROM pg_class l WHERE l.oid IN ({0})) ELSE c.reltuples::bigint END, "
      "CASE WHEN c.relkind = 'p' THEN (SELECT {1}(sum(pg_relation_size(l.oid)), {2})::bigint "
      "FROM pg_class l WHERE l.oid IN ({0})) ELSE pg_relation_size(c.oid) END, "
      "CASE WHEN c.relkind = 'p' THEN (SELECT {1}(sum(s2.n_live_tup), {2})::bigint FROM "
      "pg_stat_user_tables s2 WHERE s2.relid IN ({0})) ELSE s.n_live_tup END, "
      "(SELECT 24 + coalesce(sum(CASE WHEN a.attlen > 0 THEN a.attlen ELSE 32 END), 0) FROM "
      "pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), "
      "(n.nspname = current_schema())::int "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
      "WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', "
      "'information_schema') AND n.nspname NOT LIKE 'pg_toast%' "
      "ORDER BY 7, 1, 2",
      // No leaves: empty (0) when the tree is known, else unknown (NULL).
      leaves, tree ? "coalesce" : "nullif", tree ? "0" : "NULL");
  FERRY_ASSIGN_OR_RETURN(QueryResult sizes, conn.Query(sql));
  // Current-schema rows come last, so they win the unqualified name.
  auto number = [](const std::optional<std::string>& v) {
    return v ? std::atoll(v->c_str()) : int64_t{-1};
  };
  for (const auto& row : sizes.rows) {
    if (row.size() < 6 || !row[0] || !row[1]) continue;
    TableSize size;
    size.rows = number(row[2]);
    size.bytes = number(row[3]);
    size.live_rows = number(row[4]);
    size.row_width = std::max<int64_t>(number(row[5]), 0);
    options->table_sizes[*row[0] + "." + *row[1]] = size;
    options->table_sizes[*row[1]] = size;
  }
  options->sizes_known = true;
  return Status();
}

LintReport LintScript(const Script& script, const LintOptions& options) {
  LintReport report;
  report.files = 1;
  report.server_version_num = options.server_version_num;
  report.sizes_known = options.sizes_known;
  lint_internal::CarriedState carried;
  lint_internal::FileLinter(script, options, &carried, &report).Run();
  return report;
}

Result<LintReport> LintMigrations(const std::vector<const Migration*>& to_lint,
                                  const LintOptions& options) {
  LintReport report;
  report.server_version_num = options.server_version_num;
  report.sizes_known = options.sizes_known;
  lint_internal::CarriedState carried;
  for (const Migration* m : to_lint) {
    if (m == nullptr) return Status(StatusCode::kInternal, "LintMigrations: null migration");
    ++report.files;
    if (!options.carry_across_files) carried = lint_internal::CarriedState();
    lint_internal::FileLinter(m->up, options, &carried, &report).Run();
  }
  return report;
}

}  // namespace ferry
