// The lint rules: one parse tree (libpg_query JSON) per statement in, findings
// out. Each finding says what lock or rewrite the statement causes, whom it
// blocks for how long, and the SQL to write instead where one exists.
// Reading the parse tree: lint_tree.cc.
#include <fmt/format.h>
#include <pg_query.h>

#include <nlohmann/json.hpp>
#include <set>

#include "drivers/connection.h"

#include "migrate/lint_internal.h"
#include "migrate/lint_tree.h"

namespace ferry::lint_internal {
namespace {

constexpr std::string_view kQueueBehind =
    "; while it waits for the lock behind any longer transaction, every later query on the "
    "table queues behind it";

}  // namespace

void FileLinter::StrongLock(const std::string& lock, const std::string& table) {
  if (lock_timeout_set_ || options_.default_lock_timeout || lock_timeout_reported_) return;
  if (table.empty() || IsNewTable(table)) return;
  lock_timeout_reported_ = true;  // once per file: one directive fixes every statement
  Add({.rule = "missing-lock-timeout",
       .message = fmt::format("takes {} on {} with no lock_timeout: if a long transaction holds "
                              "a lock on {}, this statement waits, and every query after it "
                              "waits too",
                              lock, table, table),
       .lock = fmt::format("{} on {}", lock, table),
       .blocks = fmt::format("{} of the table, for as long as the longest running "
                             "transaction on it",
                             lock == "SHARE" ? "all writes" : "all reads and writes"),
       .safe_sql = "-- ferry:lock_timeout 5s\n"
                   "-- (at the top of the file; or SET lock_timeout = '5s'; before the "
                   "statement, or lock_timeout in ferry.toml)",
       .table = table});
}

void FileLinter::FollowRename(const std::string& kind, const std::string& schema,
                              const std::string& name, const std::string& column,
                              const std::string& newname) {
  const std::string key = schema.empty() ? name : schema + "." + name;
  if (kind == "OBJECT_INDEX") {
    if (carried_->new_indexes.count(name)) carried_->new_indexes.insert(newname);
    return;
  }
  if (kind == "OBJECT_COLUMN") {
    std::set<std::string>& cols = carried_->new_columns[key];
    if (IsNewTable(key) || cols.count(column)) cols.insert(newname);
    return;
  }
  if (kind != "OBJECT_TABLE" || !IsNewTable(key)) return;
  // The table keeps being new under its new name, with its new columns.
  AddNewTable(schema, newname);
  const std::set<std::string> cols = carried_->new_columns[key];
  carried_->new_columns[newname].insert(cols.begin(), cols.end());
  if (!schema.empty()) carried_->new_columns[schema + "." + newname].insert(cols.begin(), cols.end());
}

void FileLinter::LintStatement(const Statement& s) {
  PgQueryParseResult parsed = pg_query_parse(s.text.c_str());
  json tree;
  if (parsed.error == nullptr) tree = json::parse(parsed.parse_tree, nullptr, false);
  pg_query_free_parse_result(parsed);
  const json* stmts = Field(tree, "stmts");
  if (stmts == nullptr || !stmts->is_array() || stmts->empty()) return;
  const json* wrapper = Field((*stmts)[0], "stmt");
  if (wrapper == nullptr || !wrapper->is_object() || wrapper->empty()) return;
  const std::string type = wrapper->begin().key();
  const json& node = wrapper->begin().value();
  const std::string& sql = s.text;

  if (s.cannot_run_in_transaction && in_transaction_block_) {
    Add({.rule = "concurrently-in-transaction",
         .message = fmt::format("{} cannot run inside a transaction block: the server refuses it "
                                "(SQLSTATE 25001) and the whole block fails",
                                s.no_transaction_reason.empty() ? type : s.no_transaction_reason),
         .safe_sql = "remove BEGIN/COMMIT around it: ferry runs a file holding this statement "
                     "outside a transaction, statement by statement (put it in a migration of "
                     "its own so a failure leaves nothing half done)"});
  }

  if (type == "TransactionStmt") return LintTransaction(s, type, node);

  if (type == "VariableSetStmt") return LintVariableSet(s, type, node);

  if (type == "CreateStmt" || type == "CreateTableAsStmt") return LintCreateTable(s, type, node);

  if (type == "IndexStmt") return LintCreateIndex(s, type, node);

  if (type == "DropStmt") return LintDrop(s, type, node);

  if (type == "RenameStmt") return LintRename(s, type, node);

  if (type == "UpdateStmt" || type == "DeleteStmt") return LintUpdateDelete(s, type, node);

  if (type == "TruncateStmt") return LintTruncate(s, type, node);

  if (type == "VacuumStmt" || type == "ClusterStmt") return LintVacuumCluster(s, type, node);

  if (type != "AlterTableStmt") return;
  if (Str(node, "objtype") != "OBJECT_TABLE") return;
  Rel rel = RelOf(Field(node, "relation"));
  const std::string table = rel.key();
  const bool is_new = IsNewTable(table);
  std::set<std::string>& new_cols = carried_->new_columns[table];
  bool strong = false;
  for (const json& item : Arr(node, "cmds")) {
    LintAlterTableCmd(item, sql, table, rel.name, is_new, new_cols, &strong);
  }
  if (strong && !is_new) StrongLock("ACCESS EXCLUSIVE", table);
}

// One command of an ALTER TABLE on `table` (named `rel_name` in messages);
// `strong` is set when it takes a strong lock.
void FileLinter::LintAlterTableCmd(const json& item, const std::string& sql,
                                   const std::string& table, const std::string& rel_name,
                                   bool is_new, std::set<std::string>& new_cols, bool* strong) {
  const int version = options_.server_version_num;
  const json* cmd = Field(item, "AlterTableCmd");
  if (cmd == nullptr) return;
  std::string sub = Str(*cmd, "subtype");
  const json* def = Field(*cmd, "def");
  if (sub != "AT_ValidateConstraint") *strong = true;

  if (sub == "AT_AddColumn") {
    LintAddColumn(def, sql, table, rel_name, is_new, new_cols);
  } else if (sub == "AT_AlterColumnType") {
    std::string col = Str(*cmd, "name");
    if (is_new || new_cols.count(col)) return;
    const json* cd = def ? Field(*def, "ColumnDef") : nullptr;
    std::string t = TypeOf(cd);
    bool maybe_free = t == "text" || (t == "varchar" && !HasTypmods(cd));
    std::string type_text = TypeText(sql, cd);
    Add({.rule = "alter-column-type",
         .message = fmt::format("changing the type of {}.{} to {} rewrites {} and rebuilds its "
                                "indexes{}",
                                rel_name, col, type_text, table,
                                maybe_free ? " (unless it only drops a varchar limit, which "
                                             "is metadata only)"
                                           : ""),
         .lock = fmt::format("ACCESS EXCLUSIVE on {}", table),
         .blocks = "all reads and writes for the whole rewrite (minutes to hours on a large "
                   "table)",
         .safe_sql = fmt::format(
             "ALTER TABLE {0} ADD COLUMN {1}_new {2};\n-- deploy code writing both, backfill "
             "{1}_new in batches, switch reads, then in a later release:\nALTER TABLE {0} DROP "
             "COLUMN {1};",
             table, col, type_text),
         .table = table},
        maybe_free ? std::optional<LintSeverity>(LintSeverity::kWarning) : std::nullopt);
  } else if (sub == "AT_SetNotNull") {
    std::string col = Str(*cmd, "name");
    if (is_new || new_cols.count(col)) return;
    bool pg12 = version == 0 || version >= 120000;
    if (pg12 && carried_->validated_tables.count(table)) return;
    std::string check = fmt::format("{}_{}_not_null", rel_name, col);
    Add({.rule = "set-not-null",
         .message = fmt::format("SET NOT NULL on {}.{} reads every row to check it while "
                                "holding ACCESS EXCLUSIVE on {}",
                                rel_name, col, table),
         .lock = fmt::format("ACCESS EXCLUSIVE on {}", table),
         .blocks = "all reads and writes for the whole scan",
         .safe_sql =
             pg12 ? fmt::format(
                        "ALTER TABLE {0} ADD CONSTRAINT {2} CHECK ({1} IS NOT NULL) NOT VALID;\n"
                        "ALTER TABLE {0} VALIDATE CONSTRAINT {2};  -- scans without blocking "
                        "writes\nALTER TABLE {0} ALTER COLUMN {1} SET NOT NULL;  -- PostgreSQL "
                        "12+: uses the constraint, no scan\nALTER TABLE {0} DROP CONSTRAINT {2};",
                        table, col, check)
                  : fmt::format("ALTER TABLE {0} ADD CONSTRAINT {2} CHECK ({1} IS NOT NULL) NOT "
                                "VALID;\nALTER TABLE {0} VALIDATE CONSTRAINT {2};  -- before "
                                "PostgreSQL 12 keep the CHECK instead of SET NOT NULL",
                                table, col, check),
         .table = table});
  } else if (sub == "AT_ValidateConstraint") {
    carried_->validated_tables.insert(table);
  } else if (sub == "AT_DropColumn") {
    std::string col = Str(*cmd, "name");
    if (new_cols.count(col)) {
      Add({.rule = "create-and-drop-in-same-migration",
           .message = fmt::format("column {}.{} is added and dropped by the same pending "
                                  "migrations: remove both",
                                  rel_name, col)});
      return;
    }
    if (is_new) return;
    Add({.rule = "drop-column",
         .message = fmt::format(
             "DROP COLUMN {}.{} destroys its data. First make sure no deployed application "
             "version reads or writes it (ORMs that select every column count: ignore it in "
             "the code in an earlier release), no view, index or constraint needs it, and a "
             "backup exists if the data may be needed",
             rel_name, col),
         .lock = fmt::format("ACCESS EXCLUSIVE on {}", table),
         .blocks = "everything touching the table, briefly (the column is only marked dropped)",
         .table = table});
  } else if (sub == "AT_AddConstraint") {
    LintAddConstraint(def, sql, table, rel_name, is_new);
  }
}

// ALTER TABLE ... ADD COLUMN (`def` is the command's definition).
void FileLinter::LintAddColumn(const json* def, const std::string& sql, const std::string& table,
                               const std::string& rel_name, bool is_new,
                               std::set<std::string>& new_cols) {
  const int version = options_.server_version_num;
  const json* col = def ? Field(*def, "ColumnDef") : nullptr;
  if (col == nullptr) return;
  std::string name = Str(*col, "colname");
  std::string t = TypeOf(col);
  new_cols.insert(name);
  if (t == "timestamp") {
    Add({.rule = "timestamp-without-time-zone",
         .message = fmt::format("column {}.{} is timestamp without time zone: values carry no "
                                "offset, so servers or clients in other zones read them wrong",
                                rel_name, name),
         .safe_sql = fmt::format("ALTER TABLE {} ADD COLUMN {} timestamptz;", table, name)});
  }
  if (t == "varchar" && HasTypmods(col)) {
    Add({.rule = "varchar-length",
         .message = fmt::format("column {}.{} is {}: raising the limit later locks the table",
                                rel_name, name, TypeText(sql, col)),
         .safe_sql = fmt::format("ALTER TABLE {} ADD COLUMN {} text;  -- with CHECK "
                                 "(char_length({}) <= N) NOT VALID if the limit is a real rule",
                                 table, name, name)});
  }
  if (is_new) return;
  bool identity = IsSerialType(t);
  const json* generated = nullptr;
  const json* default_expr = nullptr;
  bool unique = false;
  for (const json& c : Arr(*col, "constraints")) {
    const json* con = Field(c, "Constraint");
    if (con == nullptr) continue;
    std::string ct = Str(*con, "contype");
    if (ct == "CONSTR_IDENTITY") identity = true;
    if (ct == "CONSTR_GENERATED") generated = con;
    if (ct == "CONSTR_DEFAULT") default_expr = Field(*con, "raw_expr");
    if (ct == "CONSTR_UNIQUE" || ct == "CONSTR_PRIMARY") unique = true;
  }
  std::string type_text = TypeText(sql, col);
  if (identity) {
    std::string base = IsSerialType(t) ? (t.find("big") == 0 || t == "serial8" ? "bigint"
                                                                                : "integer")
                                       : type_text;
    Add({.rule = "add-column-identity",
         .message = fmt::format("adding the {} column {}.{} to an existing table fills every "
                                "row, rewriting {} and its indexes",
                                IsSerialType(t) ? t : "identity", rel_name, name, table),
         .lock = fmt::format("ACCESS EXCLUSIVE on {}", table),
         .blocks = "all reads and writes for the whole rewrite",
         .safe_sql = fmt::format(
             "ALTER TABLE {0} ADD COLUMN {1} {2};\nCREATE SEQUENCE {3}_{1}_seq OWNED BY "
             "{0}.{1};\nALTER TABLE {0} ALTER COLUMN {1} SET DEFAULT "
             "nextval('{3}_{1}_seq');\n-- then backfill existing rows in batches",
             table, name, base == "integer" ? "bigint" : base, rel_name),
         .table = table});
  } else if (generated != nullptr) {
    Add({.rule = "add-column-stored-generated",
         .message = fmt::format("adding the stored generated column {}.{} computes it for "
                                "every row, rewriting {}",
                                rel_name, name, table),
         .lock = fmt::format("ACCESS EXCLUSIVE on {}", table),
         .blocks = "all reads and writes for the whole rewrite",
         .safe_sql = fmt::format("ALTER TABLE {} ADD COLUMN {} {};\n-- fill it with a "
                                 "trigger for new rows and a batched backfill for old ones",
                                 table, name, type_text),
         .table = table});
  } else if (default_expr != nullptr) {
    std::string culprit;
    Volatility v = VolatilityOf(*default_expr, &culprit);
    bool old_server = version > 0 && version < 110000;
    bool is_null = Field(*default_expr, "A_Const") != nullptr &&
                   Bool(*Field(*default_expr, "A_Const"), "isnull");
    std::string expr = Clause(sql, ExprStart(*default_expr), kColumnStops);
    std::string safe = fmt::format(
        "ALTER TABLE {0} ADD COLUMN {1} {2};\nALTER TABLE {0} ALTER COLUMN {1} SET DEFAULT "
        "{3};  -- new rows only\n-- then backfill existing rows in batches",
        table, name, type_text, expr);
    if (v == Volatility::kVolatile || (old_server && !is_null)) {
      Add({.rule = "add-column-volatile-default",
           .message =
               v == Volatility::kVolatile
                   ? fmt::format("the default of {}.{} calls the volatile {}, so every "
                                 "existing row gets its own value: {} is rewritten",
                                 rel_name, name, culprit, table)
                   : fmt::format("before PostgreSQL 11 (the server is {}.{}) any non-null "
                                 "default on a new column rewrites {}",
                                 version / 10000, (version / 100) % 100, table),
           .lock = fmt::format("ACCESS EXCLUSIVE on {}", table),
           .blocks = "all reads and writes for the whole rewrite",
           .safe_sql = safe,
           .table = table});
    } else if (v == Volatility::kUnknown) {
      Add({.rule = "add-column-volatile-default",
           .message = fmt::format("the default of {}.{} calls {}: if it is volatile, {} is "
                                  "rewritten (stable and immutable defaults are instant on "
                                  "PostgreSQL 11+)",
                                  rel_name, name, culprit, table),
           .lock = fmt::format("ACCESS EXCLUSIVE on {} (for a rewrite)", table),
           .blocks = "all reads and writes for the whole rewrite, if it is one",
           .safe_sql = safe,
           .table = table},
          LintSeverity::kWarning);
    }
  }
  if (unique) {
    Add({.rule = "unique-constraint-without-index",
         .message = fmt::format("the UNIQUE / PRIMARY KEY on the new column {}.{} builds its "
                                "index while holding ACCESS EXCLUSIVE on {}",
                                rel_name, name, table),
         .lock = fmt::format("ACCESS EXCLUSIVE on {}", table),
         .blocks = "all reads and writes for the whole index build",
         .safe_sql = fmt::format("ALTER TABLE {0} ADD COLUMN {1} {2};\nCREATE UNIQUE INDEX "
                                 "CONCURRENTLY {3}_{1}_key ON {0} ({1});\nALTER TABLE {0} "
                                 "ADD CONSTRAINT {3}_{1}_key UNIQUE USING INDEX {3}_{1}_key;",
                                 table, name, type_text, rel_name),
         .table = table});
  }
}

// ALTER TABLE ... ADD CONSTRAINT (`def` is the command's definition).
void FileLinter::LintAddConstraint(const json* def, const std::string& sql,
                                   const std::string& table, const std::string& rel_name,
                                   bool is_new) {
  const json* con = def ? Field(*def, "Constraint") : nullptr;
  if (con == nullptr || is_new) return;
  std::string ct = Str(*con, "contype");
  std::string conname = Str(*con, "conname");
  int loc = Int(*con, "location");
  if ((ct == "CONSTR_FOREIGN" && !Bool(*con, "skip_validation")) ||
      (ct == "CONSTR_CHECK" && Bool(*con, "initially_valid"))) {
    bool fk = ct == "CONSTR_FOREIGN";
    std::string name = conname;
    std::string text = Clause(sql, loc);
    if (name.empty()) {
      name = fk ? fmt::format("{}_{}_fkey", rel_name, Join(Names(Arr(*con, "fk_attrs")), "_"))
                : fmt::format("{}_check", rel_name);
      text = fmt::format("CONSTRAINT {} {}", name, text);
    }
    Rel ref = RelOf(Field(*con, "pktable"));
    Add({.rule = "constraint-without-not-valid",
         .message = fmt::format("adding the {} without NOT VALID checks every row of {} "
                                "while holding the lock",
                                fk ? "FOREIGN KEY" : "CHECK constraint", table),
         .lock = fk ? fmt::format("SHARE ROW EXCLUSIVE on {} and {}", table, ref.key())
                    : fmt::format("ACCESS EXCLUSIVE on {}", table),
         .blocks = fk ? "writes to both tables for the whole check"
                      : "all reads and writes for the whole check",
         .safe_sql = fmt::format("ALTER TABLE {0} ADD {1} NOT VALID;\nALTER TABLE {0} "
                                 "VALIDATE CONSTRAINT {2};  -- checks rows without blocking "
                                 "writes (in its own migration)",
                                 table, text, name),
         .table = table});
  } else if ((ct == "CONSTR_UNIQUE" || ct == "CONSTR_PRIMARY") &&
             Str(*con, "indexname").empty()) {
    std::vector<std::string> keys = Names(Arr(*con, "keys"));
    std::string name = conname.empty()
                           ? fmt::format("{}_{}_{}", rel_name, Join(keys, "_"),
                                         ct == "CONSTR_PRIMARY" ? "pkey" : "key")
                           : conname;
    Add({.rule = "unique-constraint-without-index",
         .message = fmt::format("adding {} ({}) builds its index while holding ACCESS "
                                "EXCLUSIVE on {}",
                                ct == "CONSTR_PRIMARY" ? "PRIMARY KEY" : "UNIQUE",
                                Join(keys, ", "), table),
         .lock = fmt::format("ACCESS EXCLUSIVE on {}", table),
         .blocks = "all reads and writes for the whole index build",
         .safe_sql = fmt::format("CREATE UNIQUE INDEX CONCURRENTLY {0} ON {1} ({2});  -- in "
                                 "a migration of its own\nALTER TABLE {1} ADD CONSTRAINT {0} "
                                 "{3} USING INDEX {0};",
                                 name, table, Join(keys, ", "),
                                 ct == "CONSTR_PRIMARY" ? "PRIMARY KEY" : "UNIQUE"),
         .table = table});
  }
}

void FileLinter::LintTransaction(const Statement& s, const std::string& /*type*/, const json& node) {
  const std::string& sql = s.text;
  std::string kind = Str(node, "kind");
  if (kind == "TRANS_STMT_BEGIN" || kind == "TRANS_STMT_START") in_transaction_block_ = true;
  if (kind == "TRANS_STMT_COMMIT" || kind == "TRANS_STMT_ROLLBACK") in_transaction_block_ = false;
  // A no-transaction file runs its own BEGIN/COMMIT as written.
  if (script_.directives.no_transaction) return;
  Add({.rule = "transaction-control",
       .message = fmt::format("'{}' controls transactions, but ferry already runs each "
                              "migration in its own transaction (ferry refuses the file)",
                              Excerpt(sql, 40)),
       .safe_sql = "remove BEGIN/COMMIT; write '-- ferry:no-transaction' at the top if the file "
                   "must run statement by statement"});
}

void FileLinter::LintVariableSet(const Statement& /*s*/, const std::string& /*type*/, const json& node) {
  std::string name = Str(node, "name");
  if (name == "lock_timeout") {
    std::string value;
    for (const json& a : Arr(node, "args")) {
      if (const json* c = Field(a, "A_Const")) {
        if (const json* sv = Field(*c, "sval")) value = Str(*sv, "sval");
        if (const json* iv = Field(*c, "ival")) value = std::to_string(Int(*iv, "ival", 0));
      }
    }
    lock_timeout_set_ = Str(node, "kind") == "VAR_SET_VALUE" && value != "0" && !value.empty();
  }
}

void FileLinter::LintCreateTable(const Statement& s, const std::string& type, const json& node) {
  const std::string& sql = s.text;
  const json* rv = type == "CreateStmt" ? Field(node, "relation") : nullptr;
  if (type == "CreateTableAsStmt") {
    if (const json* into = Field(node, "into")) rv = Field(*into, "rel");
  }
  Rel rel = RelOf(rv);
  AddNewTable(rel.schema, rel.name);
  if (type != "CreateStmt") return;
  // Column types, and an integer primary key.
  std::map<std::string, std::string> types;
  std::vector<std::string> pk;
  std::map<std::string, const json*> defs;
  for (const json& elt : Arr(node, "tableElts")) {
    if (const json* col = Field(elt, "ColumnDef")) {
      std::string name = Str(*col, "colname");
      types[name] = TypeOf(col);
      defs[name] = col;
      for (const json& c : Arr(*col, "constraints")) {
        if (const json* con = Field(c, "Constraint")) {
          if (Str(*con, "contype") == "CONSTR_PRIMARY") pk.push_back(name);
        }
      }
    } else if (const json* con = Field(elt, "Constraint")) {
      if (Str(*con, "contype") == "CONSTR_PRIMARY") {
        for (const std::string& k : Names(Arr(*con, "keys"))) pk.push_back(k);
      }
    }
  }
  for (const auto& [name, col] : defs) {
    std::string t = types[name];
    int loc = Int(*col, "location", -1);
    (void)loc;
    if (t == "timestamp") {
      Add({.rule = "timestamp-without-time-zone",
           .message = fmt::format("column {}.{} is timestamp without time zone: values carry no "
                                  "offset, so servers or clients in other zones read them wrong",
                                  rel.name, name),
           .safe_sql = fmt::format("{} timestamptz", name)});
    }
    if (t == "varchar" && HasTypmods(col)) {
      Add({.rule = "varchar-length",
           .message = fmt::format("column {}.{} is {}: raising the limit later locks the table, "
                                  "and the limit rarely matches a real rule",
                                  rel.name, name, TypeText(sql, col)),
           .safe_sql = fmt::format("{} text  -- add CHECK (char_length({}) <= N) if a limit is a "
                                   "real rule",
                                   name, name)});
    }
  }
  if (pk.size() == 1) {
    std::string t = types[pk[0]];
    if (t == "int4" || t == "int2" || t == "serial" || t == "serial4" || t == "smallserial" ||
        t == "serial2") {
      Add({.rule = "integer-primary-key",
           .message = fmt::format("primary key {}.{} is a 32-bit {}: it runs out at 2,147,483,647 "
                                  "and widening it later rewrites the table and every "
                                  "referencing table",
                                  rel.name, pk[0], t),
           .safe_sql = fmt::format("{} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY", pk[0])});
    }
  }
}

void FileLinter::LintCreateIndex(const Statement& s, const std::string& /*type*/, const json& node) {
  const std::string& sql = s.text;
  Rel rel = RelOf(Field(node, "relation"));
  std::string idx = Str(node, "idxname");
  if (!idx.empty()) carried_->new_indexes.insert(idx);
  if (Bool(node, "concurrent") || IsNewTable(rel.key())) return;
  StrongLock("SHARE", rel.key());
  Add({.rule = "create-index-non-concurrently",
       .message = fmt::format("CREATE INDEX without CONCURRENTLY on the existing table {} "
                              "blocks every INSERT, UPDATE and DELETE on it until the index is "
                              "built",
                              rel.key()),
       .lock = fmt::format("SHARE on {}", rel.key()),
       .blocks = "writers of the table, for the whole index build (minutes to hours on a large "
                 "table); reads continue",
       .safe_sql = WithConcurrently(sql) +
                   "\n-- in a migration of its own: ferry runs it outside a transaction",
       .table = rel.key()});
}

void FileLinter::LintDrop(const Statement& /*s*/, const std::string& /*type*/, const json& node) {
  std::string kind = Str(node, "removeType");
  std::vector<std::vector<std::string>> objects;
  for (const json& o : Arr(node, "objects")) {
    if (const json* list = Field(o, "List")) {
      objects.push_back(Names(Arr(*list, "items")));
    } else if (const json* str = Field(o, "String")) {
      objects.push_back({Str(*str, "sval")});
    }
  }
  for (const std::vector<std::string>& parts : objects) {
    std::string key = Join(parts, ".");
    std::string name = parts.empty() ? "" : parts.back();
    if (kind == "OBJECT_INDEX") {
      if (Bool(node, "concurrent") || carried_->new_indexes.count(name)) continue;
      Add({.rule = "drop-index-non-concurrently",
           .message = fmt::format("DROP INDEX {} without CONCURRENTLY takes ACCESS EXCLUSIVE on "
                                  "its table; queued behind a long transaction it stops all "
                                  "traffic to the table",
                                  key),
           .lock = "ACCESS EXCLUSIVE on the index's table",
           .blocks = "all reads and writes of the table while it waits for and holds the lock",
           .safe_sql = fmt::format("DROP INDEX CONCURRENTLY {}{};\n-- in a migration of its "
                                   "own: ferry runs it outside a transaction",
                                   Bool(node, "missing_ok") ? "IF EXISTS " : "", key)});
    } else if (kind == "OBJECT_TABLE") {
      if (carried_->new_tables.count(key) > 0) {
        Add({.rule = "create-and-drop-in-same-migration",
             .message = fmt::format("table {} is created and dropped by the same pending "
                                    "migrations: nothing is left of it; remove both",
                                    key)});
        continue;
      }
      StrongLock("ACCESS EXCLUSIVE", key);
      Add({.rule = "drop-table",
           .message = fmt::format(
               "DROP TABLE {} destroys its data. First make sure: no deployed application "
               "version reads or writes it (ship the code that stops using it in an earlier "
               "release), no views, functions or foreign keys depend on it, and a backup exists "
               "if the data may be needed",
               key),
           .lock = fmt::format("ACCESS EXCLUSIVE on {}", key),
           .blocks = "everything touching the table, briefly (the drop itself is fast)",
           .safe_sql = fmt::format("ALTER TABLE {} RENAME TO {}_deprecated;  -- in one "
                                   "release; DROP TABLE in a later one, once nothing broke",
                                   key, name),
           .table = key});
    } else if (kind == "OBJECT_SCHEMA") {
      Add({.rule = "drop-schema",
           .message = fmt::format("DROP SCHEMA {}{} destroys every object in it. First make "
                                  "sure nothing uses any of them and a backup exists",
                                  key,
                                  Str(node, "behavior") == "DROP_CASCADE" ? " CASCADE" : "")});
    }
  }
}

void FileLinter::LintRename(const Statement& /*s*/, const std::string& /*type*/, const json& node) {
  std::string kind = Str(node, "renameType");
  Rel rel = RelOf(Field(node, "relation"));
  std::string newname = Str(node, "newname");
  if (rel.name.empty()) return;
  FollowRename(kind, rel.schema, rel.name, Str(node, "subname"), newname);
  if (IsNewTable(rel.key())) return;
  if (kind == "OBJECT_COLUMN") {
    std::string col = Str(node, "subname");
    if (carried_->new_columns[rel.key()].count(col)) return;
    StrongLock("ACCESS EXCLUSIVE", rel.key());
    Add({.rule = "rename-column",
         .message = fmt::format("renaming {}.{} to {} breaks every running application "
                                "version that still uses {}",
                                rel.key(), col, newname, col),
         .lock = fmt::format("ACCESS EXCLUSIVE on {}", rel.key()),
         .blocks = "everything touching the table, briefly",
         .safe_sql = fmt::format(
             "ALTER TABLE {0} ADD COLUMN {1} <type>;\n-- deploy code writing both {2} and {1}, "
             "backfill {1} in batches, deploy code reading {1}, then in a later release:\n"
             "ALTER TABLE {0} DROP COLUMN {2};",
             rel.key(), newname, col),
         .table = rel.key()});
  } else if (kind == "OBJECT_TABLE") {
    StrongLock("ACCESS EXCLUSIVE", rel.key());
    Add({.rule = "rename-table",
         .message = fmt::format("renaming table {} to {} breaks every running application "
                                "version that still uses {}",
                                rel.key(), newname, rel.name),
         .lock = fmt::format("ACCESS EXCLUSIVE on {}", rel.key()),
         .blocks = "everything touching the table, briefly",
         .safe_sql = fmt::format("ALTER TABLE {0} RENAME TO {1};\nCREATE VIEW {0} AS SELECT * "
                                 "FROM {1};  -- old name keeps working; drop the view once "
                                 "no deployed code uses it",
                                 rel.key(), newname),
         .table = rel.key()});
  }
}

void FileLinter::LintUpdateDelete(const Statement& /*s*/, const std::string& type, const json& node) {
  Rel rel = RelOf(Field(node, "relation"));
  if (Field(node, "whereClause") != nullptr || IsNewTable(rel.key())) return;
  bool update = type == "UpdateStmt";
  Add({.rule = "dml-without-where",
       .message = fmt::format("{} without WHERE touches every row of {} in one transaction: "
                              "each row stays locked until the migration commits, and the "
                              "dead rows bloat the table",
                              update ? "UPDATE" : "DELETE", rel.key()),
       .lock = fmt::format("ROW EXCLUSIVE on {}, and a row lock on every row", rel.key()),
       .blocks = "every writer of any row of the table until the migration commits; vacuum "
                 "cannot clean up meanwhile",
       .safe_sql = update
                       ? fmt::format("-- a batched backfill, each batch its own transaction "
                                     "(a file with -- ferry:no-transaction, or a job):\n"
                                     "UPDATE {0} SET ... WHERE id IN (SELECT id FROM {0} "
                                     "WHERE <not yet updated> LIMIT 10000);  -- repeat until "
                                     "0 rows",
                                     rel.key())
                       : fmt::format("TRUNCATE {0};  -- if every row must go and nothing "
                                     "references it; otherwise in batches:\n"
                                     "DELETE FROM {0} WHERE ctid IN (SELECT ctid FROM {0} "
                                     "LIMIT 10000);  -- repeat until 0 rows",
                                     rel.key()),
       .table = rel.key()});
}

void FileLinter::LintTruncate(const Statement& /*s*/, const std::string& /*type*/, const json& node) {
  std::vector<std::string> tables;
  for (const json& r : Arr(node, "relations")) {
    if (const json* rv = Field(r, "RangeVar")) tables.push_back(RelOf(rv).key());
  }
  for (const std::string& t : tables) {
    if (!IsNewTable(t)) StrongLock("ACCESS EXCLUSIVE", t);
  }
  if (Str(node, "behavior") == "DROP_CASCADE") {
    Add({.rule = "truncate-cascade",
         .message = fmt::format("TRUNCATE {} CASCADE also empties every table with a foreign "
                                "key to it, and their referencing tables in turn",
                                Join(tables, ", ")),
         .lock = fmt::format("ACCESS EXCLUSIVE on {} and every table reached", Join(tables, ", ")),
         .blocks = "all reads and writes of those tables until commit",
         .safe_sql = fmt::format("TRUNCATE {};  -- list every table to empty explicitly",
                                 Join(tables, ", "))});
  }
}

void FileLinter::LintVacuumCluster(const Statement& /*s*/, const std::string& type, const json& node) {
  bool full = type == "ClusterStmt";
  std::vector<std::string> tables;
  if (type == "VacuumStmt") {
    for (const json& o : Arr(node, "options")) {
      if (const json* def = Field(o, "DefElem")) full |= Str(*def, "defname") == "full";
    }
    for (const json& r : Arr(node, "rels")) {
      if (const json* vr = Field(r, "VacuumRelation")) {
        tables.push_back(RelOf(Field(*vr, "relation")).key());
      }
    }
  } else if (const json* rv = Field(node, "relation")) {
    tables.push_back(RelOf(rv).key());
  }
  if (!full) return;
  std::string what = type == "ClusterStmt" ? "CLUSTER" : "VACUUM FULL";
  std::string list = tables.empty() ? std::string("every table") : Join(tables, ", ");
  Add({.rule = "vacuum-full-cluster",
       .message = fmt::format("{} rewrites {} completely while holding ACCESS EXCLUSIVE", what,
                              list),
       .lock = fmt::format("ACCESS EXCLUSIVE on {}", list),
       .blocks = "all reads and writes for the whole rewrite (minutes to hours)",
       .safe_sql = "use pg_repack (rewrites online), or plain VACUUM plus REINDEX INDEX "
                   "CONCURRENTLY; outside migrations",
       .table = tables.size() == 1 ? tables[0] : ""});
}

}  // namespace ferry::lint_internal

namespace ferry {

std::string CreatedIndexName(std::string_view sql) {
  std::string text(sql);
  PgQueryParseResult parsed = pg_query_parse(text.c_str());
  nlohmann::json tree;
  if (parsed.error == nullptr) tree = nlohmann::json::parse(parsed.parse_tree, nullptr, false);
  pg_query_free_parse_result(parsed);
  const nlohmann::json* stmts = tree.is_object() && tree.contains("stmts") ? &tree["stmts"] : nullptr;
  if (stmts == nullptr || !stmts->is_array() || stmts->empty()) return "";
  const nlohmann::json& stmt = (*stmts)[0].value("stmt", nlohmann::json::object());
  if (!stmt.contains("IndexStmt")) return "";
  return stmt["IndexStmt"].value("idxname", std::string());
}

}  // namespace ferry
