// Expand/contract, the expand side: parsing `-- ferry:expand` blocks,
// resolving and checking them against the table, the expand DDL, trigger
// and backfill (ExpandSteps), the state table. The contract phase:
// expand_complete.cc.
#include "move/expand.h"
#include "core/backoff.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/hash.h"
#include "core/url.h"
#include "drivers/registry.h"
#include "migrate/history.h"
#include "migrate/lock.h"
#include "move/backfill.h"
#include "move/expand_internal.h"
#include "move/table_info.h"

namespace ferry {

using namespace expand_internal;

namespace {

using nlohmann::json;







std::string Sanitize(std::string_view s) {
  std::string out;
  for (char c : s) {
    out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  }
  return out;
}

}  // namespace

namespace expand_internal {

// "ferry_expand_<version>_<table>", short enough for an identifier.
std::string ObjectName(std::string_view prefix, const std::string& version,
                       const std::string& table) {
  std::string base = fmt::format("{}_{}_{}", prefix, Sanitize(version), Sanitize(table));
  if (base.size() <= 60) return base;
  return fmt::format("{}_{:012x}", base.substr(0, 46), Xxh3(base) & 0xffffffffffffULL);
}

}  // namespace expand_internal

namespace {


std::string Cast(const std::string& expr, const std::string& type) {
  return fmt::format("CAST(({}) AS {})", expr, type);
}

// "NEW."a" AS "a", ..." for the table as it was (old columns).
std::string OldScope(const ExpandSpec& s) {
  std::string out;
  for (const std::string& c : s.old_columns) {
    out += fmt::format("{}NEW.{} AS {}", out.empty() ? "" : ", ", QuoteIdent(c), QuoteIdent(c));
  }
  return out;
}


// The table as it will be: kept old columns, then new ones by final name.
// `prefix` is "NEW." in the trigger, "t." for a table alias.
std::string NewScope(const ExpandSpec& s, std::string_view prefix, bool null_added = false) {
  std::string out;
  for (const std::string& c : s.old_columns) {
    if (IsReplaced(s, c)) continue;
    out += fmt::format("{}{}{} AS {}", out.empty() ? "" : ", ", prefix, QuoteIdent(c),
                       QuoteIdent(c));
  }
  for (const ExpandAdded& a : s.added) {
    out += fmt::format("{}{} AS {}", out.empty() ? "" : ", ",
                       null_added ? fmt::format("CAST(NULL AS {})", a.type)
                                  : fmt::format("{}{}", prefix, QuoteIdent(a.physical)),
                       QuoteIdent(a.name));
  }
  return out;
}

std::string RowOf(const std::vector<std::string>& exprs) {
  std::string out = "ROW(";
  for (size_t i = 0; i < exprs.size(); ++i) out += (i ? ", " : "") + exprs[i];
  return out + ")";
}

std::vector<std::string> AddedRef(const ExpandSpec& s, std::string_view prefix) {
  std::vector<std::string> out;
  for (const ExpandAdded& a : s.added) out.push_back(fmt::format("{}{}", prefix, QuoteIdent(a.physical)));
  return out;
}

std::vector<std::string> ReplacedRef(const ExpandSpec& s, std::string_view prefix) {
  std::vector<std::string> out;
  for (const ExpandReplaced& r : s.replaced) out.push_back(fmt::format("{}{}", prefix, QuoteIdent(r.name)));
  return out;
}

std::vector<std::string> UpExprs(const ExpandSpec& s) {
  std::vector<std::string> out;
  for (const ExpandAdded& a : s.added) out.push_back(Cast(a.up, a.type));
  return out;
}


// The PL/pgSQL trigger function that keeps both sides in step.
std::string TriggerFunctionSql(const ExpandSpec& s) {
  std::string fill_new, fill_old, fill_nulls;
  if (!s.added.empty()) {
    fill_new = fmt::format("SELECT {} INTO {} FROM (SELECT {}) AS ferry_row;",
                           Join(UpExprs(s), ", "), Join(AddedRef(s, "NEW."), ", "), OldScope(s));
  }
  std::vector<std::string> downs, targets;
  for (const ExpandReplaced& r : s.replaced) {
    if (r.down.empty()) continue;
    downs.push_back(Cast(r.down, r.type));
    targets.push_back("NEW." + QuoteIdent(r.name));
  }
  if (!downs.empty()) {
    fill_old = fmt::format("SELECT {} INTO {} FROM (SELECT {}) AS ferry_row;", Join(downs, ", "),
                           Join(targets, ", "), NewScope(s, "NEW."));
  }
  for (const ExpandNotNull& n : s.not_null) {
    if (n.up.empty()) continue;
    fill_nulls += fmt::format(
        "  IF NEW.{0} IS NULL THEN\n    SELECT {1} INTO NEW.{0} FROM (SELECT {2}) AS ferry_row;\n  "
        "END IF;\n",
        QuoteIdent(n.name), Cast(n.up, n.type), OldScope(s));
  }
  std::string body;
  if (!s.added.empty()) {
    std::string all_new_null;
    for (const std::string& ref : AddedRef(s, "NEW.")) {
      all_new_null += (all_new_null.empty() ? "" : " AND ") + ref + " IS NULL";
    }
    std::string new_changed = fmt::format("{} IS DISTINCT FROM {}", RowOf(AddedRef(s, "NEW.")),
                                          RowOf(AddedRef(s, "OLD.")));
    std::string old_changed = fmt::format("{} IS DISTINCT FROM {}", RowOf(ReplacedRef(s, "NEW.")),
                                          RowOf(ReplacedRef(s, "OLD.")));
    std::string new_is_up =
        fmt::format("{} IS NOT DISTINCT FROM (SELECT {} FROM (SELECT {}) AS ferry_row)",
                    RowOf(AddedRef(s, "NEW.")), RowOf(UpExprs(s)), OldScope(s));
    std::string else_old = fill_old.empty() ? "NULL;" : fill_old;
    body = fmt::format(
        "  IF TG_OP = 'INSERT' THEN\n"
        "    -- A writer of the old columns leaves the new ones NULL.\n"
        "    IF {all_new_null} THEN\n      {fill_new}\n    ELSE\n      {else_old}\n    END IF;\n"
        "  ELSIF ({old_changed}) AND NOT ({new_changed}) THEN\n"
        "    {fill_new}\n"
        "  ELSIF ({new_changed}) AND NOT ({old_changed}) THEN\n"
        "    -- The backfill writes exactly up(old): nothing to carry back.\n"
        "    IF NOT ({new_is_up}) THEN\n      {else_old}\n    END IF;\n"
        "  ELSIF NOT ({new_changed}) AND {all_new_null} THEN\n"
        "    {fill_new}\n"
        "  END IF;\n",
        fmt::arg("all_new_null", all_new_null), fmt::arg("fill_new", fill_new),
        fmt::arg("else_old", else_old), fmt::arg("old_changed", old_changed),
        fmt::arg("new_changed", new_changed), fmt::arg("new_is_up", new_is_up));
  }
  return fmt::format(
      "CREATE OR REPLACE FUNCTION {}.{}() RETURNS trigger LANGUAGE plpgsql AS $ferry_expand$\n"
      "-- ferry expand/contract: {} (version {}), {}:{}\n"
      "BEGIN\n{}{}  RETURN NEW;\nEND\n$ferry_expand$",
      QuoteIdent(s.schema), QuoteIdent(s.function), s.summary, s.version, s.file, s.line, body,
      fill_nulls);
}

std::string BackfillSet(const ExpandSpec& s) {
  std::vector<std::string> parts;
  for (const ExpandAdded& a : s.added) {
    parts.push_back(fmt::format("{} = {}", QuoteIdent(a.physical), Cast(a.up, a.type)));
  }
  for (const ExpandNotNull& n : s.not_null) {
    if (n.up.empty()) continue;
    parts.push_back(fmt::format("{0} = COALESCE({0}, {1})", QuoteIdent(n.name), Cast(n.up, n.type)));
  }
  return Join(parts, ", ");
}

}  // namespace

namespace expand_internal {

bool IsReplaced(const ExpandSpec& s, std::string_view name) {
  return std::any_of(s.replaced.begin(), s.replaced.end(),
                     [&](const ExpandReplaced& r) { return r.name == name; });
}

std::string Join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? std::string(sep) : "") + v[i];
  return out;
}

// Rows the backfill has still to do.
std::string BackfillWhere(const ExpandSpec& s) {
  std::vector<std::string> any;
  if (!s.added.empty()) {
    std::vector<std::string> nulls, up_nulls;
    for (const ExpandAdded& a : s.added) {
      nulls.push_back(QuoteIdent(a.physical) + " IS NULL");
      up_nulls.push_back(Cast(a.up, a.type) + " IS NULL");
    }
    any.push_back(fmt::format("({} AND NOT ({}))", Join(nulls, " AND "), Join(up_nulls, " AND ")));
  }
  for (const ExpandNotNull& n : s.not_null) {
    if (n.up.empty()) continue;
    any.push_back(fmt::format("({} IS NULL AND {} IS NOT NULL)", QuoteIdent(n.name),
                              Cast(n.up, n.type)));
  }
  return Join(any, " OR ");
}

}  // namespace expand_internal

namespace {

Statement MakeStatement(std::string text, int line) {
  Statement st;
  st.text = std::move(text);
  st.line = line;
  return st;
}

std::string StateDdl() {
  return fmt::format(
      "CREATE TABLE IF NOT EXISTS {} (version text NOT NULL, table_name text NOT NULL, script "
      "text NOT NULL, phase text NOT NULL, summary text NOT NULL, spec text NOT NULL, started_at "
      "timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), "
      "PRIMARY KEY (version, table_name))",
      kStateTable);
}

Status SetPhase(Connection& conn, const std::string& version, const std::string& table,
                const std::string& phase) {
  return conn
      .Query(fmt::format("UPDATE {} SET phase = $1, updated_at = now() WHERE version = $2 AND "
                         "table_name = $3",
                         kStateTable),
             {Value(phase), Value(version), Value(table)})
      .status();
}



}  // namespace

std::string ExpandSpec::Qualified() const { return QuoteIdent(schema) + "." + QuoteIdent(name); }

std::string ExpandSpec::ToJson() const {
  json j;
  j["format"] = 1;
  j["file"] = file;
  j["line"] = line;
  j["version"] = version;
  j["table"] = table;
  j["schema"] = schema;
  j["name"] = name;
  j["summary"] = summary;
  j["function"] = function;
  j["trigger"] = trigger;
  j["old_columns"] = old_columns;
  j["added"] = json::array();
  for (const ExpandAdded& a : added) {
    j["added"].push_back({{"name", a.name}, {"physical", a.physical}, {"type", a.type},
                          {"up", a.up}, {"not_null", a.not_null}});
  }
  j["replaced"] = json::array();
  for (const ExpandReplaced& r : replaced) {
    j["replaced"].push_back({{"name", r.name}, {"type", r.type}, {"down", r.down}});
  }
  j["not_null"] = json::array();
  for (const ExpandNotNull& n : not_null) {
    j["not_null"].push_back({{"name", n.name}, {"type", n.type}, {"up", n.up}});
  }
  j["batch_rows"] = batch_rows;
  j["workers"] = workers;
  return j.dump();
}

Result<ExpandSpec> ExpandSpec::FromJson(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", 0) != 1) {
    return Status(StatusCode::kFailedPrecondition,
                  "a ferry_expand_state row has a spec this ferry cannot read: upgrade ferry");
  }
  ExpandSpec s;
  s.file = j.value("file", "");
  s.line = j.value("line", 0);
  s.version = j.value("version", "");
  s.table = j.value("table", "");
  s.schema = j.value("schema", "");
  s.name = j.value("name", "");
  s.summary = j.value("summary", "");
  s.function = j.value("function", "");
  s.trigger = j.value("trigger", "");
  s.old_columns = j.value("old_columns", std::vector<std::string>());
  for (const json& a : j["added"]) {
    s.added.push_back({a.value("name", ""), a.value("physical", ""), a.value("type", ""),
                       a.value("up", ""), a.value("not_null", false)});
  }
  for (const json& r : j["replaced"]) {
    s.replaced.push_back({r.value("name", ""), r.value("type", ""), r.value("down", "")});
  }
  for (const json& n : j["not_null"]) {
    s.not_null.push_back({n.value("name", ""), n.value("type", ""), n.value("up", "")});
  }
  s.batch_rows = j.value("batch_rows", int64_t{10000});
  s.workers = j.value("workers", 1);
  return s;
}

namespace {



// Type-checks every expression against the table (WHERE false: no rows
// read), then runs the up expressions on a sample of rows.
Status TypeCheck(Connection& conn, const ExpandSpec& s) {
  auto check = [&](const std::string& sql, const std::string& what) -> Status {
    auto r = conn.Query(sql);
    if (r.ok()) return Status();
    Status e = std::move(r).TakeStatus();
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}:{}: {} does not work on {}.{}: {}; fix the expression in the "
                              "expand block (nothing was changed)",
                              s.file, s.line, what, s.schema, s.name, e.message()))
        .With("file", s.file)
        .With("line", std::to_string(s.line))
        .With("sqlstate", e.Get("sqlstate"));
  };
  for (const ExpandAdded& a : s.added) {
    FERRY_RETURN_IF_ERROR(check(fmt::format("SELECT {} FROM {} AS ferry_row WHERE false",
                                            Cast(a.up, a.type), s.Qualified()),
                                fmt::format("up expression for {} ({} -> {})", a.name, a.up, a.type)));
  }
  for (const ExpandNotNull& n : s.not_null) {
    if (n.up.empty()) continue;
    FERRY_RETURN_IF_ERROR(check(fmt::format("SELECT {} FROM {} AS ferry_row WHERE false",
                                            Cast(n.up, n.type), s.Qualified()),
                                fmt::format("up expression for {} ({})", n.name, n.up)));
  }
  for (const ExpandReplaced& r : s.replaced) {
    if (r.down.empty()) continue;
    FERRY_RETURN_IF_ERROR(check(
        fmt::format("SELECT {} FROM (SELECT {} FROM {} AS t WHERE false) AS ferry_row",
                    Cast(r.down, r.type), NewScope(s, "t.", /*null_added=*/true), s.Qualified()),
        fmt::format("down expression for {} ({} -> {})", r.name, r.down, r.type)));
  }
  // Values that type-check can still fail (a text that is not a number):
  // try the up expressions on the first rows before changing anything.
  std::vector<std::string> ups = UpExprs(s);
  for (const ExpandNotNull& n : s.not_null) {
    if (!n.up.empty()) ups.push_back(Cast(n.up, n.type));
  }
  if (!ups.empty()) {
    FERRY_RETURN_IF_ERROR(check(
        fmt::format("SELECT count({}) FROM (SELECT * FROM {} LIMIT 1000) AS ferry_row",
                    RowOf(ups), s.Qualified()),
        "an up expression, tried on the first 1000 rows,"));
  }
  return Status();
}

Result<bool> StateTableExists(Connection& conn) {
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         conn.Query("SELECT to_regclass($1) IS NOT NULL", {Value(std::string(kStateTable))}));
  return !r.rows.empty() && r.rows[0][0] && *r.rows[0][0] == "t";
}

class ExpandSteps final : public OnlineSteps {
 public:
  explicit ExpandSteps(ExpandStepsOptions options) : options_(options) {}

  Result<OnlinePrepared> Prepare(Connection& conn, const Migration& m) override {
    OnlinePrepared out;
    if (!conn.traits().Has(Feature::kOnlineChanges)) {
      return Status(StatusCode::kUnimplemented,
                    fmt::format("{}:{}: expand and backfill blocks need PostgreSQL (this database "
                                "is {})",
                                m.up.path, m.up.online.front().line, conn.traits().name()));
    }
    std::vector<ExpandState> open;
    FERRY_ASSIGN_OR_RETURN(std::vector<ExpandState> states, ListExpandStates(conn));
    for (ExpandState& st : states) {
      if (st.phase == "expanding" || st.phase == "expanded") open.push_back(std::move(st));
    }
    bool state_ddl = false;
    for (const OnlineBlock& block : m.up.online) {
      if (block.kind == "backfill") {
        FERRY_RETURN_IF_ERROR(ParseBackfill(block, m.up.path, nullptr));
        out.after_commit = true;
        continue;
      }
      FERRY_ASSIGN_OR_RETURN(Draft draft, ParseDraft(block, m.up.path));
      draft.spec.version = m.version.text();
      auto table = DescribeTable(conn, draft.spec.table);
      if (!table.ok()) {
        Status e = std::move(table).TakeStatus();
        return Status(e.code(), fmt::format("{}:{}: {}", m.up.path, block.line, e.message()))
            .With("file", m.up.path)
            .With("line", std::to_string(block.line));
      }
      if (!table->has_primary_key()) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("{}:{}: table {}.{} has no primary key: the backfill walks the "
                                  "key in batches and abort/complete need rows identified; add "
                                  "one in an earlier migration (ALTER TABLE {} ADD PRIMARY KEY "
                                  "(...)) and run 'ferry up' again (nothing was changed)",
                                  m.up.path, block.line, table->schema, table->name,
                                  table->QualifiedName()))
            .With("file", m.up.path)
            .With("line", std::to_string(block.line));
      }
      FERRY_ASSIGN_OR_RETURN(ExpandSpec spec, Resolve(std::move(draft), *table));
      for (const ExpandState& st : open) {
        if (st.table == spec.schema + "." + spec.name && st.version != spec.version) {
          return Status(StatusCode::kFailedPrecondition,
                        fmt::format("{}:{}: {} has an expand change still open (version {}: {}, "
                                    "{}): run 'ferry complete {}' or 'ferry abort {}' first",
                                    m.up.path, block.line, st.table, st.version, st.summary,
                                    st.phase, st.version, st.version));
        }
      }
      FERRY_RETURN_IF_ERROR(TypeCheck(conn, spec));
      const int line = block.line;
      if (!state_ddl) {
        out.statements.push_back(MakeStatement(StateDdl(), line));
        state_ddl = true;
      }
      for (const ExpandAdded& a : spec.added) {
        // Nullable, no default: a catalog change, no table rewrite.
        out.statements.push_back(MakeStatement(
            fmt::format("ALTER TABLE {} ADD COLUMN {} {}", spec.Qualified(), QuoteIdent(a.physical),
                        a.type),
            line));
      }
      out.statements.push_back(MakeStatement(TriggerFunctionSql(spec), line));
      out.statements.push_back(MakeStatement(
          fmt::format("DROP TRIGGER IF EXISTS {} ON {}", QuoteIdent(spec.trigger), spec.Qualified()),
          line));
      out.statements.push_back(MakeStatement(
          fmt::format("CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE "
                      "FUNCTION {}.{}()",
                      QuoteIdent(spec.trigger), spec.Qualified(), QuoteIdent(spec.schema),
                      QuoteIdent(spec.function)),
          line));
      out.statements.push_back(MakeStatement(
          fmt::format("INSERT INTO {} (version, table_name, script, phase, summary, spec) VALUES "
                      "({}, {}, {}, 'expanding', {}, {}) ON CONFLICT (version, table_name) DO "
                      "UPDATE SET phase = 'expanding', spec = EXCLUDED.spec, summary = "
                      "EXCLUDED.summary, updated_at = now()",
                      kStateTable, PgLiteral(spec.version), PgLiteral(spec.schema + "." + spec.name),
                      PgLiteral(m.script), PgLiteral(spec.summary), PgLiteral(spec.ToJson())),
          line));
      out.after_commit = true;
    }
    return out;
  }

  Status AfterCommit(const std::string& url, Connection& conn, const Migration& m,
                     EventBus* bus) override {
    StepPublisher progress(bus);
    FERRY_ASSIGN_OR_RETURN(std::vector<ExpandState> states, ListExpandStates(conn));
    for (const ExpandState& st : states) {
      if (st.version != m.version.text() || st.phase != "expanding") continue;
      FERRY_ASSIGN_OR_RETURN(ExpandSpec spec, ExpandSpec::FromJson(st.spec));
      BackfillOptions bo;
      bo.table = spec.schema + "." + spec.name;
      bo.set = BackfillSet(spec);
      bo.where = BackfillWhere(spec);
      bo.batch_rows = spec.batch_rows;
      bo.workers = spec.workers;
      bo.job_id = fmt::format("expand:{}:{}", spec.version, bo.table);
      if (!bo.set.empty()) {
        if (progress) progress("expand_backfill", fmt::format("{}: backfilling {}", bo.table, spec.summary));
        FERRY_RETURN_IF_ERROR(Backfill(url, bo, progress));
      }
      FERRY_RETURN_IF_ERROR(SetPhase(conn, st.version, st.table, "expanded"));
      if (progress) {
        progress("expand_phase",
                 fmt::format("{}: expanded ({}); old and new columns are kept in step; run "
                             "'ferry complete {}' when no old application version is left, or "
                             "'ferry abort {}' to undo",
                             st.table, spec.summary, st.version, st.version));
      }
    }
    for (const OnlineBlock& block : m.up.online) {
      if (block.kind != "backfill") continue;
      BackfillOptions bo;
      FERRY_RETURN_IF_ERROR(ParseBackfill(block, m.up.path, &bo));
      bo.job_id = fmt::format("migration:{}:{}:{}", m.version.text(), bo.table, block.line);
      if (progress) progress("backfill_started", fmt::format("{}:{}: backfill {} set {}", m.up.path, block.line, bo.table, bo.set));
      Status s = Backfill(url, bo, progress);
      if (!s.ok()) {
        return std::move(s).Prefix(fmt::format("{}:{}: backfill of {}", m.up.path, block.line, bo.table));
      }
    }
    return Status();
  }

  Result<std::vector<Statement>> PrepareUndo(Connection& conn, const Migration& m) override {
    std::vector<Statement> out;
    if (!conn.traits().Has(Feature::kOnlineChanges)) return out;
    FERRY_ASSIGN_OR_RETURN(std::vector<ExpandState> states, ListExpandStates(conn));
    for (const ExpandState& st : states) {
      if (st.version != m.version.text()) continue;
      if (st.phase == "aborted") continue;
      FERRY_ASSIGN_OR_RETURN(ExpandSpec spec, ExpandSpec::FromJson(st.spec));
      if (st.phase == "completed") {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("{}: the expand change on {} ({}) was completed on {}: its old "
                                  "columns are gone, so it cannot be aborted; roll forward with "
                                  "a new migration",
                                  m.up.path, st.table, st.summary, st.updated_at));
      }
      for (const ExpandReplaced& r : spec.replaced) {
        if (!r.down.empty() || options_.discard_new_writes) continue;
        std::string news;
        for (const ExpandAdded& a : spec.added) news += (news.empty() ? "" : ", ") + a.name;
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("cannot abort the change on {} ({}): {} has no down "
                                  "expression, so values written only to {} since the expand "
                                  "(by the new application version) cannot be carried back and "
                                  "would be lost. Nothing was changed. Either finish with 'ferry "
                                  "complete {}', or, if no new version wrote those columns, run "
                                  "'ferry abort {} --discard-new-writes'",
                                  st.table, st.summary, r.name, news, st.version, st.version))
            .With("file", m.up.path)
            .With("line", std::to_string(spec.line));
      }
      out.push_back(MakeStatement(fmt::format("DROP TRIGGER IF EXISTS {} ON {}",
                                              QuoteIdent(spec.trigger), spec.Qualified()),
                                  spec.line));
      out.push_back(MakeStatement(fmt::format("DROP FUNCTION IF EXISTS {}.{}()",
                                              QuoteIdent(spec.schema), QuoteIdent(spec.function)),
                                  spec.line));
      for (const ExpandAdded& a : spec.added) {
        out.push_back(MakeStatement(fmt::format("ALTER TABLE {} DROP COLUMN IF EXISTS {}",
                                                spec.Qualified(), QuoteIdent(a.physical)),
                                    spec.line));
      }
      out.push_back(MakeStatement(
          fmt::format("UPDATE {} SET phase = 'aborted', updated_at = now() WHERE version = {} AND "
                      "table_name = {}",
                      kStateTable, PgLiteral(st.version), PgLiteral(st.table)),
          spec.line));
    }
    return out;
  }

 private:
  // Reads a backfill block into `out` (nullptr: check only).
  static Status ParseBackfill(const OnlineBlock& block, const std::string& file,
                              BackfillOptions* out) {
    BackfillOptions bo;
    std::string_view header = block.header;
    bo.table = TakeIdent(&header);
    if (bo.table.empty() || !Trim(header).empty()) {
      return BlockError(file, block.line,
                        "'-- ferry:backfill' names one table: '-- ferry:backfill users', then "
                        "indented lines 'set b = a * 2', 'where b is null'");
    }
    for (const auto& [line, text] : block.body) {
      std::string_view s = text;
      std::string key = Lower(TakeIdent(&s));
      std::string value(Trim(s));
      if (value.empty()) {
        return BlockError(file, line, fmt::format("'{}' needs a value", key));
      }
      if (key == "set") bo.set = value;
      else if (key == "where") bo.where = value;
      else if (key == "check") bo.check_query = value;
      else if (key == "done_check") bo.done_check = value;
      else if (key == "batch_rows" || key == "workers" || key == "sleep_ms") {
        if (value.find_first_not_of("0123456789") != std::string::npos) {
          return BlockError(file, line, fmt::format("'{}' takes a number", key));
        }
        int64_t n = std::atoll(value.c_str());
        if (key == "batch_rows") bo.batch_rows = std::max<int64_t>(1, n);
        if (key == "workers") bo.workers = static_cast<int>(std::clamp<int64_t>(n, 1, 64));
        if (key == "sleep_ms") bo.sleep = std::chrono::milliseconds(n);
      } else {
        return BlockError(file, line,
                          fmt::format("unknown backfill key '{}': use set, where, check, "
                                      "done_check, batch_rows, workers, sleep_ms",
                                      key));
      }
    }
    if (bo.set.empty()) {
      return BlockError(file, block.line, "the backfill block needs 'set COLUMN = EXPRESSION'");
    }
    if (out != nullptr) *out = std::move(bo);
    return Status();
  }

  static Status Backfill(const std::string& url, const BackfillOptions& bo,
                         const StepPublisher& progress) {
    auto last = std::chrono::steady_clock::now();
    // The backfill's own events go on to the caller's bus (for metrics),
    // with a summary step at most once a second.
    EventBus backfill_bus;
    backfill_bus.Subscribe([&](const Event& event) {
      if (!progress || !event.backfill) return;
      Publish(progress.bus(), event);
      const BackfillProgress& e = *event.backfill;
      auto now = std::chrono::steady_clock::now();
      if (e.kind == BackfillProgress::Kind::kBatch && now - last < std::chrono::seconds(1)) return;
      last = now;
      if (e.kind == BackfillProgress::Kind::kBatch || e.kind == BackfillProgress::Kind::kFinished) {
        progress("backfill_progress",
                 fmt::format("{}: {} rows updated, {:.0f} rows/s{}", bo.table, e.rows_updated,
                             e.rows_per_second,
                             e.eta_seconds >= 0 ? fmt::format(", ETA {:.0f} s", e.eta_seconds)
                                                : ""));
      } else if (e.kind == BackfillProgress::Kind::kRetry || e.kind == BackfillProgress::Kind::kThrottled) {
        progress("backfill_" + std::string(BackfillProgressName(e.kind)), e.message);
      }
    });
    FERRY_ASSIGN_OR_RETURN(BackfillReport report, RunBackfill(url, bo, &backfill_bus));
    return report.CheckStatus();
  }

  ExpandStepsOptions options_;
};

}  // namespace


std::string ExpandStateTableExistsSql() {
  return fmt::format("(to_regclass({}) IS NOT NULL)", PgLiteral(kStateTable));
}

Result<std::vector<ExpandState>> ListExpandStates(Connection& conn,
                                                  std::optional<bool> table_exists) {
  std::vector<ExpandState> out;
  if (!conn.traits().Has(Feature::kOnlineChanges)) return out;
  if (!table_exists) {
    FERRY_ASSIGN_OR_RETURN(table_exists, StateTableExists(conn));
  }
  if (!*table_exists) return out;
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      conn.Query(fmt::format("SELECT version, table_name, script, phase, summary, "
                             "to_char(started_at AT TIME ZONE 'UTC', "
                             "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), to_char(updated_at AT TIME ZONE "
                             "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), spec FROM {} ORDER BY "
                             "started_at, version, table_name",
                             kStateTable)));
  for (size_t i = 0; i < r.rows.size(); ++i) {
    out.push_back({r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Text(i, 4),
                   r.Text(i, 5), r.Text(i, 6), r.Text(i, 7)});
  }
  return out;
}

std::shared_ptr<OnlineSteps> MakeOnlineSteps(ExpandStepsOptions options) {
  return std::make_shared<ExpandSteps>(options);
}

}  // namespace ferry
