// Copy engine, planning stage: validate the options, open both sides,
// describe and check every table, create or check the job, and cut each
// table into chunks (primary-key ranges, ctid page ranges, or one chunk).
#include "move/copy.h"
#include "move/copy_internal.h"
#include "core/backoff.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include <unistd.h>

#include "core/log.h"
#include "core/url.h"
#include "drivers/registry.h"
#include "move/block_pipe.h"
#include "move/control.h"
#include "move/copy_checks.h"
#include "move/copy_indexes.h"
#include "move/copy_progress.h"
#include "move/copy_cql.h"
#include "move/copy_types.h"
#include "move/table_info.h"

namespace ferry::copy_internal {

std::string_view SplitName(Split s) {
  switch (s) {
    case Split::kPrimaryKey: return "primary key";
    case Split::kCtid: return "ctid pages";
    case Split::kSingle: return "single chunk";
  }
  return "?";
}

// Replaces $N in `sql` by the quoted literal params[N-1]. COPY takes no
// parameters, so the range bounds (key values read from the source itself)
// are inlined as literals; the session runs with standard_conforming_strings
// on, so doubling quotes is the whole escaping.
std::string InlineParams(std::string_view sql, const Params& params) {
  std::string out;
  for (size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] == '$' && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      size_t j = i + 1;
      size_t n = 0;
      while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j]))) {
        n = n * 10 + static_cast<size_t>(sql[j] - '0');
        ++j;
      }
      if (n >= 1 && n <= params.size()) {
        out += params[n - 1] ? PgLiteral(*params[n - 1]) : "NULL";
        i = j - 1;
        continue;
      }
    }
    out += sql[i];
  }
  return out;
}

std::string RangeText(const TableJob& t, const KeyRange& r) {
  if (t.split == Split::kCtid) {
    return fmt::format("pages [{}, {})", r.lower ? r.lower->at(0) : "0",
                       r.upper ? r.upper->at(0) : "end");
  }
  if (t.split == Split::kSingle) return "whole table";
  return r.ToString();
}

// WHERE clause of one chunk (params appended for $N).
std::string ChunkPredicate(const TableJob& t, const KeyRange& r, const std::string& where,
                           Params& params) {
  std::string pred;
  if (t.split == Split::kPrimaryKey) {
    pred = RangePredicate(t.src, r, params);
  } else if (t.split == Split::kCtid) {
    // Page numbers are integers ferry computed; they are validated on decode.
    if (r.lower) pred = fmt::format("ctid >= '({},0)'::tid", r.lower->at(0));
    if (r.upper) {
      pred += fmt::format("{}ctid < '({},0)'::tid", pred.empty() ? "" : " AND ", r.upper->at(0));
    }
    if (pred.empty()) pred = "TRUE";
  } else {
    pred = "TRUE";
  }
  if (!where.empty()) pred = fmt::format("({}) AND (\n{}\n)", pred, where);
  return pred;
}

// The target's name as DescribeTable reads it (parts quoted when they hold
// a dot or a quote): the source's schema.table between PostgreSQL servers,
// the bare name otherwise.
std::string TargetNameFor(const TableInfo& src, Engine target_engine) {
  if (target_engine == Engine::kSqlite || src.engine == Engine::kSqlite) {
    return TableNameFor("", src.name);
  }
  return TableNameFor(src.schema, src.name);
}

// The target's name quoted for SQL, from its (possibly quoted) name.
std::string QuotedTarget(const std::string& target_name, bool pg_target) {
  auto [schema, table] = SplitTableName(target_name);
  if (!pg_target || schema.empty()) return QuoteIdent(table);
  return QuoteIdent(schema) + "." + QuoteIdent(table);
}

Status WithTable(Status s, const std::string& table) {
  return std::move(s).With("table", table);
}

// ---- planning ----

struct Planner {
  const CopyOptions& opts;
  Connection& src;
  Connection& dst;
  bool resuming = false;
  bool same_database = false;  // DatabaseIdentity of both sides is equal
  std::string dst_display;     // the target's redacted URL

  Status CheckWhere(const TableJob& t) {
    if (opts.where.empty()) return Status();
    auto r = src.Query(fmt::format("SELECT 1 FROM {} WHERE (\n{}\n) LIMIT 0",
                                   t.src.QualifiedName(), opts.where));
    if (r.ok()) return Status();
    const Status& e = r.status();
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--where does not apply to table {}: {}", t.source_name,
                              e.message()))
        .With("table", t.source_name)
        .With("where", opts.where);
  }

  // CREATE TYPE / CREATE DOMAIN statements the target lacks (PostgreSQL pair).
  Status TypeDdl(const ColumnInfo& c, std::set<std::string>* seen, std::vector<std::string>* out) {
    auto exists_on_target = [&](const std::string& name) -> Result<bool> {
      FERRY_ASSIGN_OR_RETURN(QueryResult r,
                             dst.Query("SELECT to_regtype($1) IS NOT NULL", {name}));
      return !r.empty() && r.Text(0, 0) == "t";
    };
    std::string elem = c.base_type;
    if (c.is_array && elem.size() > 2 && elem.ends_with("[]")) elem.resize(elem.size() - 2);
    // Enum (directly, as array element, or under a domain).
    if (c.kind == 'e' && !seen->count(elem)) {
      seen->insert(elem);
      FERRY_ASSIGN_OR_RETURN(bool exists, exists_on_target(elem));
      if (!exists) {
        FERRY_ASSIGN_OR_RETURN(
            QueryResult labels,
            src.Query("SELECT enumlabel FROM pg_enum WHERE enumtypid = to_regtype($1) "
                      "ORDER BY enumsortorder",
                      {elem}));
        std::string list;
        for (auto& row : labels.rows) list += (list.empty() ? "" : ", ") + PgLiteral(*row[0]);
        out->push_back(fmt::format("CREATE TYPE {} AS ENUM ({})", elem, list));
      }
    } else if ((c.kind == 'c' || c.kind == 'r' || c.kind == 'm') && !seen->count(elem)) {
      seen->insert(elem);
      FERRY_ASSIGN_OR_RETURN(bool exists, exists_on_target(elem));
      if (!exists) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("column {} has type {}, a {} type that does not exist on the "
                                  "target; create it there first (ferry creates enums and domains, "
                                  "not composite or range types)",
                                  c.name, c.type, c.kind == 'c' ? "composite" : "range"))
            .With("column", c.name);
      }
    }
    if (c.type_oid != c.base_oid && c.type_oid != 0 && !seen->count(c.type)) {
      seen->insert(c.type);
      FERRY_ASSIGN_OR_RETURN(bool exists, exists_on_target(c.type));
      if (!exists) {
        FERRY_ASSIGN_OR_RETURN(
            QueryResult d,
            src.Query("SELECT t.typnotnull, pg_get_expr(t.typdefaultbin, 0), "
                      "(SELECT string_agg(pg_get_constraintdef(k.oid), ' ' ORDER BY k.conname) "
                      "FROM pg_constraint k WHERE k.contypid = t.oid) "
                      "FROM pg_type t WHERE t.oid = $1::bigint::oid",
                      {std::to_string(c.type_oid)}));
        std::string sql = fmt::format("CREATE DOMAIN {} AS {}", c.type, c.base_type);
        if (!d.empty()) {
          if (d.rows[0][1]) sql += " DEFAULT " + *d.rows[0][1];
          if (d.Text(0, 0) == "t") sql += " NOT NULL";
          if (d.rows[0][2]) sql += " " + *d.rows[0][2];
        }
        out->push_back(std::move(sql));
      }
    }
    return Status();
  }

  Status CreateDdl(TableJob& t) {
    const bool pg_target = IsPg(dst);
    std::vector<std::string> defs;
    std::set<std::string> seen;
    if (pg_target && t.src.engine == Engine::kPostgres && t.src.schema != "public") {
      t.ddl.push_back(fmt::format("CREATE SCHEMA IF NOT EXISTS {}", QuoteIdent(t.src.schema)));
    }
    for (const ColumnInfo& c : t.src.columns) {
      std::string type;
      if (pg_target && t.src.engine == Engine::kPostgres) {
        FERRY_RETURN_IF_ERROR(TypeDdl(c, &seen, &t.ddl));
        type = c.type;
        if (c.generated && c.default_expr) {
          defs.push_back(fmt::format("{} {} GENERATED ALWAYS AS ({}) STORED", QuoteIdent(c.name),
                                     type, *c.default_expr));
          continue;
        }
      } else if (pg_target) {
        type = PgTypeForSqlite(c.type);
      } else if (t.src.engine == Engine::kPostgres) {
        FERRY_ASSIGN_OR_RETURN(type, SqliteTypeFor(c, t.source_name));
      } else {
        type = c.type;
      }
      if (c.generated) continue;  // SQLite generated columns: their values are copied as data
      defs.push_back(fmt::format("{}{}{}{}", QuoteIdent(c.name), type.empty() ? "" : " ", type,
                                 c.not_null ? " NOT NULL" : ""));
    }
    std::string name = QuotedTarget(t.target_name, pg_target);
    if (t.src.has_primary_key() && pg_target) {
      t.after.push_back(
          fmt::format("ALTER TABLE {} ADD PRIMARY KEY ({})", name, t.src.KeyColumnList()));
    } else if (t.src.has_primary_key()) {
      defs.push_back(fmt::format("PRIMARY KEY ({})", t.src.KeyColumnList()));
    }
    std::string body;
    for (const auto& d : defs) body += (body.empty() ? "\n  " : ",\n  ") + d;
    t.ddl.push_back(fmt::format("CREATE TABLE {} ({}\n)", name, body));
    return Status();
  }

  Status CheckColumns(TableJob& t) {
    for (const ColumnInfo* c : t.columns) {
      const ColumnInfo* d = t.dst.Find(c->name);
      if (d == nullptr) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("column {} of table {} does not exist in the target table {}; "
                                  "add it there (or use --create-tables with a new table)",
                                  c->name, t.source_name, t.target_name))
            .With("table", t.target_name)
            .With("column", c->name);
      }
      std::string why = IncompatibleReason(*c, t.src.engine, *d, t.dst.engine);
      if (!why.empty()) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("table {}: {}", t.target_name, why))
            .With("table", t.target_name)
            .With("column", c->name);
      }
    }
    for (const ColumnInfo& d : t.dst.columns) {
      if (d.generated || !d.not_null || d.default_expr || d.identity != 0) continue;
      if (t.src.Find(d.name) == nullptr) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("target table {} has column {} NOT NULL without a default, "
                                  "and the source table {} has no such column",
                                  t.target_name, d.name, t.source_name))
            .With("table", t.target_name)
            .With("column", d.name);
      }
    }
    return Status();
  }

  // `stored_split`: the split name a resumed job recorded ("" for a new job).
  Result<TableJob> Describe(const std::string& source_name, const std::string& target_hint,
                            const std::string& stored_split = "") {
    TableJob t;
    t.source_name = source_name;
    auto src_info = DescribeTable(src, source_name);
    if (!src_info.ok()) {
      return std::move(src_info).TakeStatus().Prefix("source");
    }
    t.src = std::move(*src_info);
    t.target_name = target_hint.empty() ? TargetNameFor(t.src, dst.engine()) : target_hint;
    for (const ColumnInfo& c : t.src.columns) {
      // A PostgreSQL generated column is recomputed by the target; SQLite's
      // generated columns are copied as plain values.
      if (c.generated && t.src.engine == Engine::kPostgres) continue;
      t.columns.push_back(&c);
      if (!IsPg(dst) && t.src.engine == Engine::kPostgres) {
        FERRY_RETURN_IF_ERROR(SqliteTypeFor(c, source_name).status());
      }
    }
    if (!stored_split.empty()) {
      // A resumed job's chunks were cut one way; they are read back that way.
      if (stored_split == SplitName(Split::kPrimaryKey)) {
        t.split = Split::kPrimaryKey;
      } else if (stored_split == SplitName(Split::kCtid)) {
        t.split = Split::kCtid;
      } else {
        t.split = Split::kSingle;
      }
    } else if (opts.split == "key") {
      if (!t.src.has_primary_key()) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("--split key: source table {} has no primary key; use --split "
                                  "pages (PostgreSQL source) or --split auto",
                                  source_name))
            .With("table", source_name);
      }
      t.split = Split::kPrimaryKey;
    } else if (opts.split == "pages") {
      if (t.src.engine != Engine::kPostgres) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("--split pages needs a PostgreSQL source; {} is on {}: use "
                                  "--split key or --split auto",
                                  source_name, EngineName(t.src.engine)))
            .With("table", source_name);
      }
      t.split = Split::kCtid;
    } else if (t.src.has_primary_key()) {
      t.split = Split::kPrimaryKey;
    } else if (t.src.engine == Engine::kPostgres) {
      t.split = Split::kCtid;
    } else {
      t.split = Split::kSingle;
    }
    t.estimated_rows = t.src.estimated_rows;
    if (t.src.engine == Engine::kSqlite || t.estimated_rows < 0) {
      FERRY_ASSIGN_OR_RETURN(QueryResult n,
                             src.Query("SELECT count(*) FROM " + t.src.QualifiedName()));
      t.estimated_rows = std::stoll(n.Text(0, 0));
    }
    FERRY_RETURN_IF_ERROR(CheckWhere(t));
    auto dst_info = DescribeTable(dst, t.target_name);
    if (dst_info.ok()) {
      t.dst = std::move(*dst_info);
      t.target_exists = true;
      FERRY_RETURN_IF_ERROR(CheckNotSelfCopy(same_database, t.src, t.dst, t.source_name));
      FERRY_RETURN_IF_ERROR(CheckColumns(t));
      FERRY_ASSIGN_OR_RETURN(QueryResult any,
                             dst.Query("SELECT 1 FROM " + t.dst.QualifiedName() + " LIMIT 1"));
      t.target_has_rows = !any.empty();
      if (t.target_has_rows && !resuming && !opts.truncate && !opts.append) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("target table {} already has rows; nothing was written. Use "
                                  "--truncate to empty it first or --append to add to its rows",
                                  t.target_name))
            .With("table", t.target_name);
      }
    } else if (dst_info.status().code() == StatusCode::kNotFound) {
      if (!opts.create_tables) {
        return Status(StatusCode::kNotFound,
                      fmt::format("target table {} does not exist on {}; create it, or add "
                                  "--create-tables to let ferry create it from the source's "
                                  "columns",
                                  t.target_name, dst_display))
            .With("table", t.target_name);
      }
      FERRY_RETURN_IF_ERROR(WithTable(CreateDdl(t), t.source_name));
    } else {
      return std::move(dst_info).TakeStatus().Prefix("target");
    }
    t.partition_note = PartitionNote(t.src, t.target_exists, t.dst);
    return t;
  }

  // Chunk ranges; runs inside the snapshot on a PostgreSQL source.
  Status SplitRanges(TableJob& t) {
    const int64_t per = std::max<int64_t>(opts.batch_rows, 1);
    if (t.split == Split::kPrimaryKey) {
      if (HasIntegerKey(t.src)) {
        // min/max and equal-width ranges: no pass over the key index. With a
        // filter the estimate is the table's (more, smaller chunks at worst).
        auto ranges = SplitIntegerKeyRange(src, t.src, opts.where, t.estimated_rows, per);
        if (ranges.ok()) {
          t.ranges = std::move(*ranges);
          return Status();
        }
        if (ranges.status().code() != StatusCode::kFailedPrecondition) return ranges.status();
      }
      FERRY_ASSIGN_OR_RETURN(t.ranges, SplitByKey(src, t.src, KeyRange{}, opts.where, per));
      return Status();
    }
    if (t.split == Split::kSingle) {
      t.ranges = {KeyRange{}};
      return Status();
    }
    FERRY_ASSIGN_OR_RETURN(int64_t pages, PagesToSplit(src, t.src));
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        src.Query("SELECT c.reltuples::bigint, c.relpages::bigint FROM pg_class c WHERE c.oid = "
                  "to_regclass($1)",
                  {t.src.QualifiedName()}));
    int64_t tuples = r.empty() || t.src.partitioned ? -1 : std::stoll(r.Text(0, 0));
    int64_t relpages = r.empty() ? 0 : std::stoll(r.Text(0, 1));
    double per_page = (tuples > 0 && relpages > 0) ? static_cast<double>(tuples) / relpages : 60.0;
    if (t.estimated_rows > 0 && pages > 0 && tuples <= 0) {
      per_page = static_cast<double>(t.estimated_rows) / static_cast<double>(pages);
    }
    int64_t step = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(per) / std::max(per_page, 1.0)));
    t.ranges.clear();
    std::optional<KeyTuple> lower;
    for (int64_t p = step; p < pages; p += step) {
      KeyTuple upper{std::to_string(p)};
      t.ranges.push_back(KeyRange{lower, upper});
      lower = upper;
    }
    t.ranges.push_back(KeyRange{lower, std::nullopt});  // to the end, also pages added later
    return Status();
  }
};

// ---- job spec ----

nlohmann::json SpecJson(const CopyOptions& o, const Connection& src, const Connection& dst,
                        const std::vector<TableJob>& tables) {
  nlohmann::json t = nlohmann::json::array();
  for (const auto& tj : tables) {
    t.push_back({{"source", tj.source_name},
                 {"target", tj.target_name},
                 {"split", std::string(SplitName(tj.split))},
                 {"after", tj.after}});
  }
  return {{"from", src.redacted_url()},
          {"to", dst.redacted_url()},
          {"where", o.where},
          {"batch_rows", o.batch_rows},
          {"mode", o.truncate ? "truncate" : (o.append ? "append" : "empty")},
          {"tables", t}};
}

Status Validate(const CopyOptions& o) {
  if (o.from_url.empty() || o.to_url.empty()) {
    return Status(StatusCode::kInvalidArgument, "copy needs --from URL and --to URL");
  }
  if (o.tables.empty() && !o.all) {
    return Status(StatusCode::kInvalidArgument,
                  "name the tables to copy with --table T (repeatable), or use --all");
  }
  if (!o.tables.empty() && o.all) {
    return Status(StatusCode::kInvalidArgument, "use either --table or --all, not both");
  }
  if (o.truncate && o.append) {
    return Status(StatusCode::kInvalidArgument, "use either --truncate or --append, not both");
  }
  if (o.workers < 1 || o.workers > 64) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--workers {} is out of range: use 1 to 64", o.workers));
  }
  if (o.batch_rows < 1) {
    return Status(StatusCode::kInvalidArgument, "--batch-rows must be at least 1");
  }
  if (o.split != "auto" && o.split != "key" && o.split != "pages") {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--split {:?} is not known: use auto, key or pages", o.split));
  }
  return Status();
}

Result<ConnPtr> Open(const std::string& url, std::string_view side) {
  ConnectOptions co;
  co.read_only = side == "source";  // a source is only read (SQLite: never created)
  auto c = OpenConnection(url, co);
  if (!c.ok()) return std::move(c).TakeStatus().Prefix(side);
  return std::move(*c);
}

// The target for planning. A SQLite file that does not exist yet is not
// created before the checks pass: an empty in-memory database stands in
// for it (every table missing, no job), and `*placeholder` is set so that
// a run opens the real file after the checks.
Result<ConnPtr> OpenTargetForPlan(const std::string& url, bool* placeholder) {
  *placeholder = false;
  auto parsed = Url::Parse(url);
  if (parsed.ok() && parsed->scheme() == "sqlite" && parsed->database() != ":memory:") {
    std::error_code ec;
    std::filesystem::path p(parsed->database());
    std::filesystem::path dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
    if (!std::filesystem::exists(p, ec) && std::filesystem::is_directory(dir, ec) &&
        access(dir.c_str(), W_OK) == 0) {
      *placeholder = true;
      return Open("sqlite::memory:", "target");
    }
  }
  return Open(url, "target");
}

std::string RedactedUrl(const std::string& url) {
  auto parsed = Url::Parse(url);
  return parsed.ok() ? parsed->Redacted() : std::string("(unparsable URL)");
}

// ferry_jobs may not exist yet (nothing was ever written there): no job.
Result<std::optional<JobRow>> FindJob(Connection& dst, const std::string& job_id) {
  ControlTables ctl(dst);
  auto job = ctl.GetJob(job_id);
  if (job.ok()) return *job;
  if (dst.Query("SELECT 1 FROM ferry_jobs LIMIT 0").ok()) return std::move(job).TakeStatus();
  if (dst.InTransaction()) (void)dst.Rollback();
  return std::optional<JobRow>();
}

// Runs `sql` (TRUNCATE, CREATE ...) inside the target's open transaction
// under the lock timeout; a timeout names the table and says nothing was
// written.
Status ExecUnderLockTimeout(Connection& dst, const std::string& sql, const std::string& table) {
  Status s = dst.Exec(sql).status();
  if (s.code() != StatusCode::kDeadlineExceeded) return s;
  return Status(StatusCode::kDeadlineExceeded,
                fmt::format("target table {} stayed locked by another session past the lock "
                            "timeout ({}); nothing was written. Find the session holding the "
                            "lock (pg_locks), or raise --lock-timeout",
                            table, FoldWhitespace(s.message())))
      .With("table", table)
      .With("statement", Excerpt(sql));
}

Status SetLockTimeout(Connection& dst, std::chrono::milliseconds timeout) {
  if (!IsPg(dst)) return Status();  // SQLite waits its busy_timeout
  return dst.Query("SELECT set_config('lock_timeout', $1, true)",
                   {fmt::format("{}ms", timeout.count())})
      .status();
}

Result<std::vector<std::string>> TableNames(const CopyOptions& o, Connection& src) {
  if (!o.all) return o.tables;
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> names, ListTables(src));
  if (names.empty()) {
    return Status(StatusCode::kNotFound,
                  fmt::format("--all: the source {} has no user tables", src.redacted_url()));
  }
  return names;
}

// Opens both sides, reads the job, describes and validates every table.
// With `export_snapshot` (a run, not a plan) a PostgreSQL source starts the
// job's snapshot and the ranges are computed inside it.
Result<Prepared> Prepare(const CopyOptions& o, bool for_run) {
  FERRY_RETURN_IF_ERROR(Validate(o));
  Prepared p;
  FERRY_ASSIGN_OR_RETURN(p.src, Open(o.from_url, "source"));
  FERRY_RETURN_IF_ERROR(CheckWhereShape(o.where, p.src->engine()));
  bool placeholder = false;
  FERRY_ASSIGN_OR_RETURN(p.dst, OpenTargetForPlan(o.to_url, &placeholder));
  p.target_display = placeholder ? RedactedUrl(o.to_url) : p.dst->redacted_url();
  p.job_id = o.job_id.empty() ? DefaultCopyJobId(o) : o.job_id;
  if (IsPg(*p.src)) FERRY_RETURN_IF_ERROR(p.src->Exec(kPgSourceSession).status());
  FERRY_ASSIGN_OR_RETURN(std::string src_id, DatabaseIdentity(*p.src));
  FERRY_ASSIGN_OR_RETURN(std::string dst_id, DatabaseIdentity(*p.dst));

  // Nothing is written before every check passed: the control tables are
  // created by the run, after Prepare.
  FERRY_ASSIGN_OR_RETURN(p.existing, FindJob(*p.dst, p.job_id));
  if (p.existing && p.existing->kind != "copy") {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("job '{}' on the target is a {} job, not a copy; choose another "
                              "--job name",
                              p.job_id, p.existing->kind));
  }

  struct Name {
    std::string source, target, split;  // split: "" for a new job
    std::vector<std::string> after;     // a resumed job's deferred keys
  };
  std::vector<Name> names;
  if (p.existing && !o.restart) {
    nlohmann::json spec = nlohmann::json::parse(p.existing->spec, nullptr, false);
    if (spec.is_discarded() || !spec.contains("tables")) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("job '{}' has an unreadable spec in ferry_jobs; run with "
                                "--restart to start it over",
                                p.job_id));
    }
    if (spec.value("from", "") != p.src->redacted_url()) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("job '{}' on the target copies from {}, not {}; name this copy "
                                "with --job NAME, or start the job over with --restart",
                                p.job_id, spec.value("from", ""), p.src->redacted_url()));
    }
    if (spec.value("where", "") != o.where) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("job '{}' was started with --where {:?}, this run has {:?}; "
                                "resume with the same filter, or use --restart or another --job",
                                p.job_id, spec.value("where", ""), o.where));
    }
    for (const auto& t : spec["tables"]) {
      std::vector<std::string> after;
      if (t.contains("after") && t["after"].is_array()) {
        for (const auto& a : t["after"]) {
          if (a.is_string()) after.push_back(a.get<std::string>());
        }
      }
      names.push_back({t.value("source", ""), t.value("target", ""), t.value("split", ""),
                       std::move(after)});
    }
    for (const auto& n : names) {
      const bool pages = n.split == SplitName(Split::kCtid);
      if ((o.split == "key" && pages) ||
          (o.split == "pages" && n.split == SplitName(Split::kPrimaryKey))) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("job '{}' split table {} by {}; a resume keeps that split, so "
                                  "drop --split {} (or start over with --restart)",
                                  p.job_id, n.source, n.split, o.split))
            .With("table", n.source);
      }
    }
  } else {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> list, TableNames(o, *p.src));
    for (auto& n : list) names.push_back({n, "", "", {}});
  }

  Planner planner{o, *p.src, *p.dst, p.existing.has_value() && !o.restart,
                  !src_id.empty() && src_id == dst_id, p.target_display};
  for (const auto& n : names) {
    FERRY_ASSIGN_OR_RETURN(TableJob t, planner.Describe(n.source, n.target, n.split));
    if (!n.after.empty()) t.after = n.after;
    p.tables.push_back(std::move(t));
  }
  // The same target twice (e.g. a.t and b.t into SQLite) would mix rows.
  std::set<std::string> targets;
  for (const auto& t : p.tables) {
    if (!targets.insert(t.target_name).second) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("two source tables map to the target table {}", t.target_name))
          .With("table", t.target_name);
    }
  }
  if (for_run && IsPg(*p.src)) {
    FERRY_RETURN_IF_ERROR(p.src->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").status());
    if (!o.snapshot.empty()) {
      // Joins the given snapshot; the workers join it the same way.
      Status joined =
          p.src->Exec(fmt::format("SET TRANSACTION SNAPSHOT {}", PgLiteral(o.snapshot))).status();
      if (!joined.ok()) return std::move(joined).Prefix("joining the given snapshot");
      p.snapshot = o.snapshot;
    } else {
      FERRY_ASSIGN_OR_RETURN(QueryResult snap, p.src->Query("SELECT pg_export_snapshot()"));
      p.snapshot = snap.Text(0, 0);
    }
  }
  if (!p.existing || o.restart) {
    for (auto& t : p.tables) FERRY_RETURN_IF_ERROR(WithTable(planner.SplitRanges(t), t.source_name));
  }
  if (for_run && placeholder) {
    FERRY_ASSIGN_OR_RETURN(p.dst, Open(o.to_url, "target"));
  }
  return p;
}

}  // namespace ferry::copy_internal
