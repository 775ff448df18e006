// Copy engine: plan (validate, split), then workers lease chunks from the
// target's control tables and move each chunk in one target transaction.
//
// In:     CopyOptions.
// Out:    rows in the target tables; events on a bus; a CopySummary.
// Resume: ferry_jobs/ferry_chunks on the target. A chunk's rows and its
//         FinishChunk() commit together; a re-run leases only chunks that
//         are not done (dead local owners' leases are reclaimed at once,
//         other owners' when their lease expires).
#include "move/copy.h"
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

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;
using ConnPtr = std::unique_ptr<Connection>;

enum class Split { kPrimaryKey, kCtid, kSingle };

std::string_view SplitName(Split s) {
  switch (s) {
    case Split::kPrimaryKey: return "primary key";
    case Split::kCtid: return "ctid pages";
    case Split::kSingle: return "single chunk";
  }
  return "?";
}

// One table of the job as both sides see it.
struct TableJob {
  std::string source_name;  // as given / listed
  std::string target_name;
  TableInfo src;
  TableInfo dst;            // valid when target_exists (or after creation)
  bool target_exists = false;
  bool target_has_rows = false;
  Split split = Split::kPrimaryKey;
  std::vector<const ColumnInfo*> columns;  // source columns copied, in order
  std::vector<std::string> ddl;
  // Run once every chunk is in (PostgreSQL target created by the job): the
  // primary key, so that rows go into a bare heap (copy_indexes.h).
  std::vector<std::string> after;
  std::string partition_note;  // PartitionNote() for the plan
  int64_t estimated_rows = -1;
  std::vector<KeyRange> ranges;
  // Filled by BuildSql().
  std::string column_list;  // quoted names
  std::string select_list;  // source expressions
  std::string copy_in;      // PostgreSQL target
  std::string insert_prefix;  // SQLite target: INSERT INTO t (cols) VALUES
  std::vector<bool> blob_param;  // SQLite target: bind column i as BLOB
  std::vector<bool> bytea_hex;   // PostgreSQL source -> SQLite: decode '\x..'
};

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

bool IsPg(const Connection& c) { return c.engine() == Engine::kPostgres; }

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

// Session settings for PostgreSQL sources read as text: unambiguous,
// lossless text forms (ISO dates, UTC offsets, hex bytea, shortest exact
// floats).
constexpr const char* kPgSourceSession =
    "SET standard_conforming_strings = on; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
    "SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'";

struct Prepared {
  ConnPtr src, dst;
  std::vector<TableJob> tables;
  std::string job_id;
  std::optional<JobRow> existing;
  std::string snapshot;  // exported by src (kept open) on a PostgreSQL source
  std::string target_display;  // the target's redacted URL
};

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

// ---- running ----


// The SQL a worker runs per chunk, fixed per table.
void BuildSql(TableJob& t, Engine target_engine) {
  const bool pg_src = t.src.engine == Engine::kPostgres;
  const bool pg_dst = target_engine == Engine::kPostgres;
  t.column_list.clear();
  t.select_list.clear();
  t.blob_param.clear();
  t.bytea_hex.clear();
  for (const ColumnInfo* c : t.columns) {
    std::string q = QuoteIdent(c->name);
    if (!t.column_list.empty()) t.column_list += ", ";
    t.column_list += q;
    std::string expr = q;
    const ColumnInfo* d = t.target_exists ? t.dst.Find(c->name) : nullptr;
    if (pg_src && !pg_dst) {
      std::string base = StripTypmod(c->base_type);
      if (!c->is_array && base == "boolean") expr = fmt::format("({})::boolean::int", q);
      t.bytea_hex.push_back(!c->is_array && base == "bytea");
      t.blob_param.push_back(!c->is_array && base == "bytea");
    } else if (!pg_src) {
      bool to_bytea = pg_dst ? (d ? StripTypmod(d->base_type) == "bytea"
                                  : PgTypeForSqlite(c->type) == "bytea")
                             : false;
      expr = fmt::format(
          "CASE typeof({0}) WHEN 'real' THEN printf('%!.17g', {0}){1} ELSE {0} END", q,
          to_bytea ? fmt::format(" WHEN 'blob' THEN '\\x' || lower(hex({}))", q) : "");
      t.bytea_hex.push_back(false);
      std::string_view aff = SqliteAffinity(d ? d->type : c->type);
      t.blob_param.push_back(!pg_dst && aff == "BLOB" && !(d ? d->type : c->type).empty());
    }
    if (!t.select_list.empty()) t.select_list += ", ";
    t.select_list += expr;
  }
  std::string target = t.dst.QualifiedName();
  if (pg_dst) {
    t.copy_in = fmt::format("COPY {} ({}) FROM STDIN{}", target, t.column_list,
                            pg_src ? " (FORMAT binary)" : "");
  } else {
    t.insert_prefix = fmt::format("INSERT INTO {} ({}) VALUES ", target, t.column_list);
  }
}

// The reader -> writer pipe of each worker: blocks of kBlockBytes, at most
// kBlocks of them (recycled), so a worker holds about 2 MiB however large the
// table (one row larger than a block grows its block for that row only).
constexpr size_t kBlocks = 8;
constexpr size_t kBlockBytes = 256 * 1024;

struct ChunkCount {
  int64_t rows = 0;
  int64_t bytes = 0;
};

class Worker {
 public:
  Worker(const CopyOptions& o, std::vector<TableJob>& tables, const std::string& job_id,
         const std::string& snapshot, std::string owner, Progress& progress,
         std::atomic<bool>& fatal_flag, Status* fatal, std::mutex* fatal_mu)
      : o_(o), tables_(tables), job_id_(job_id), snapshot_(snapshot), owner_(std::move(owner)),
        progress_(progress), stop_(fatal_flag), fatal_(fatal), fatal_mu_(fatal_mu) {}

  void Run() {
    Status s = Loop();
    if (!s.ok()) {
      std::lock_guard lock(*fatal_mu_);
      if (fatal_->ok()) *fatal_ = s;
      stop_ = true;
    }
    if (src_) (void)src_->Rollback();
  }

 private:
  Status Connect() {
    if (!src_) {
      FERRY_ASSIGN_OR_RETURN(src_, Open(o_.from_url, "source"));
      if (IsPg(*src_)) {
        FERRY_RETURN_IF_ERROR(src_->Exec(kPgSourceSession).status());
      }
      src_in_snapshot_ = false;
    }
    if (IsPg(*src_) && !src_in_snapshot_) {
      Status s = src_->Exec(fmt::format("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                                        "SET TRANSACTION SNAPSHOT {}",
                                        PgLiteral(snapshot_)))
                     .status();
      if (!s.ok()) {
        (void)src_->Rollback();
        if (s.code() == StatusCode::kUnavailable) {
          src_.reset();
          return s;
        }
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("cannot join the job's snapshot {} on the source: {}; run ferry "
                                  "copy again to resume with a new snapshot",
                                  snapshot_, s.message()));
      }
      src_in_snapshot_ = true;
    }
    if (!dst_) {
      FERRY_ASSIGN_OR_RETURN(dst_, Open(o_.to_url, "target"));
    }
    return Status();
  }

  // After a failed attempt: leave both sessions ready (or drop them).
  void Reset(const Status& why) {
    if (dst_) {
      if (why.code() == StatusCode::kUnavailable || !dst_->Rollback().ok()) dst_.reset();
    }
    if (src_) {
      if (why.code() == StatusCode::kUnavailable || !src_->Rollback().ok()) src_.reset();
      src_in_snapshot_ = false;
    }
  }

  // Retries `fn` on retryable errors with backoff, reconnecting.
  template <typename F>
  auto Retrying(F fn) -> decltype(fn()) {
    for (int attempt = 1;; ++attempt) {
      Status c = Connect();
      if (c.ok()) {
        auto r = fn();
        if (r.ok()) return r;
        c = StatusOf(r);
      }
      if (!IsRetryable(c.code()) || attempt >= o_.max_attempts || stop_) return c;
      FERRY_LOG_INFO("copy: retrying after: {}", c.ToString());
      Reset(c);
      std::this_thread::sleep_for(Backoff(attempt));
    }
  }

  static Status StatusOf(const Status& s) { return s; }
  template <typename T>
  static Status StatusOf(const Result<T>& r) {
    return r.status();
  }
  static std::chrono::milliseconds Backoff(int attempt) {
    return RetryDelay(std::chrono::milliseconds(500), attempt, std::chrono::milliseconds(8000));
  }

  bool Cancelled() const { return o_.cancel != nullptr && o_.cancel->load(); }

  // Gives a leased chunk back (pending), e.g. when the run stops between
  // two attempts of it.
  Status Release(int64_t chunk_id) {
    return Retrying([&]() -> Status {
      ControlTables ctl(*dst_);
      return ctl.ReleaseLease(job_id_, chunk_id, owner_);
    });
  }

  Status Loop() {
    while (!stop_ && !Cancelled()) {
      auto leased = Retrying([&]() -> Result<std::optional<ChunkRow>> {
        ControlTables ctl(*dst_);
        return ctl.LeaseChunk(job_id_, owner_, o_.lease, o_.max_attempts);
      });
      if (!leased.ok()) return std::move(leased).TakeStatus();
      if (!*leased) return Status();
      FERRY_RETURN_IF_ERROR(Process(**leased));
    }
    return Status();
  }

  TableJob* FindTable(const std::string& name) {
    for (auto& t : tables_) {
      if (t.target_name == name) return &t;
    }
    return nullptr;
  }

  Status Process(ChunkRow chunk) {
    TableJob* t = FindTable(chunk.table_name);
    if (t == nullptr) {
      return Status(StatusCode::kInternal,
                    fmt::format("chunk {} names table {} that is not in the job", chunk.chunk_id,
                                chunk.table_name));
    }
    FERRY_ASSIGN_OR_RETURN(KeyRange range, KeyRange::Decode(chunk.range_spec));
    CopyProgress ev;
    ev.table = t->target_name;
    ev.chunk_id = chunk.chunk_id;
    ev.range = RangeText(*t, range);
    ev.attempt = chunk.attempts;
    progress_.Emit("chunk_started", ev, false, false);
    Status last;
    bool out_of_attempts = false;  // else the run stopped between attempts
    for (int attempt = 1; attempt <= o_.max_attempts && !stop_ && !Cancelled(); ++attempt) {
      Status c = Connect();
      if (c.ok()) {
        auto r = CopyChunk(*t, range, chunk);
        if (r.ok()) {
          ev.rows = r->rows;
          ev.bytes = r->bytes;
          ev.error.clear();
          progress_.Emit("chunk_done", ev, true, false);
          return Status();
        }
        c = r.status();
      }
      Reset(c);
      if (c.Get("lease") == "lost") return Status();  // another worker owns it now
      last = c;
      if (!IsRetryable(c.code()) || attempt == o_.max_attempts) {
        out_of_attempts = true;
        break;
      }
      ev.attempt = attempt;
      ev.error = c.ToString();
      progress_.Emit("chunk_retry", ev, false, false, ErrorTypeOf(c));
      std::this_thread::sleep_for(Backoff(attempt));
    }
    if (!out_of_attempts) return Release(chunk.chunk_id);
    // Failed for good: record it (outside any chunk transaction). This
    // worker already retried what can be retried, so the chunk is not leased
    // again in this run (the next run resets failed chunks).
    chunk.state = ChunkState::kFailed;
    chunk.attempts = std::max(chunk.attempts, o_.max_attempts);
    chunk.error = last.ToString();
    chunk.rows = CountSourceRows(*t, range);
    chunk.bytes = 0;
    Status rec = Retrying([&]() -> Status {
      ControlTables ctl(*dst_);
      return ctl.FinishChunk(chunk);
    });
    if (!rec.ok() && rec.code() != StatusCode::kAborted) return rec;
    ev.rows = std::max<int64_t>(chunk.rows, 0);
    ev.bytes = 0;
    ev.error = chunk.error;
    progress_.Emit("chunk_failed", ev, false, true, ErrorTypeOf(last));
    return Status();
  }

  int64_t CountSourceRows(const TableJob& t, const KeyRange& range) {
    if (!Connect().ok()) return 0;
    Params params;
    std::string pred = ChunkPredicate(t, range, o_.where, params);
    auto r = src_->Query(fmt::format("SELECT count(*) FROM {} WHERE {}", t.src.QualifiedName(), pred),
                         params);
    if (!r.ok() || r->empty()) {
      Reset(r.status());
      return 0;
    }
    return std::stoll(r->Text(0, 0));
  }

  // One attempt: rows and FinishChunk in one target transaction.
  Result<ChunkCount> CopyChunk(const TableJob& t, const KeyRange& range, const ChunkRow& lease) {
    FERRY_RETURN_IF_ERROR(dst_->Begin());
    Result<ChunkCount> moved = Status(StatusCode::kInternal, "no copy path");
    if (IsPg(*dst_)) {
      moved = IsPg(*src_) ? PgToPg(t, range) : RowsToPg(t, range);
    } else {
      moved = RowsToSqlite(t, range);
    }
    if (!moved.ok()) return moved;
    ChunkRow done = lease;
    done.state = ChunkState::kDone;
    done.rows = moved->rows;
    done.bytes = moved->bytes;
    done.error.clear();
    ControlTables ctl(*dst_);
    Status f = ctl.FinishChunk(done);
    if (!f.ok()) {
      if (f.code() == StatusCode::kAborted && f.message().find("no longer leased") != std::string::npos) {
        return std::move(f).With("lease", "lost");
      }
      return f;
    }
    FERRY_RETURN_IF_ERROR(dst_->Commit());
    return moved;
  }

  // Binary COPY out -> binary COPY in, bytes passed through untouched: the
  // source is read on a thread of its own while this one writes the target.
  Result<ChunkCount> PgToPg(const TableJob& t, const KeyRange& range) {
    Params params;
    std::string pred = ChunkPredicate(t, range, o_.where, params);
    std::string out_sql =
        pred == "TRUE" && !t.src.partitioned  // COPY t TO refuses a partitioned table
            ? fmt::format("COPY {} ({}) TO STDOUT (FORMAT binary)", t.src.QualifiedName(),
                          t.column_list)
            : fmt::format("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT (FORMAT binary)",
                          t.column_list, t.src.QualifiedName(), InlineParams(pred, params));
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<CopyWriter> writer, dst_->CopyIn(t.copy_in));
    ChunkCount count;
    FERRY_RETURN_IF_ERROR(PumpInto(*writer, &count.bytes, [&]() -> Status {
      // One call per row (libpq hands rows over one at a time); the pipe
      // copies it into the current block.
      return src_->CopyOut(out_sql, [&](std::string_view row) -> Status {
        return pipe_.Append(row) ? Status() : TargetStopped();
      });
    }));
    FERRY_ASSIGN_OR_RETURN(count.rows, writer->Finish());
    return count;
  }

  static Status TargetStopped() {
    return Status(StatusCode::kCancelled, "the target stopped taking rows");
  }

  // The chunk's two threads: `produce` runs on a reader thread and fills
  // pipe_ from the source while this thread hands each block to `consume`
  // (which writes it into the open target transaction). A consume error
  // stops the reader (its source query is cancelled: kCancelled, see
  // Connection::CopyOut); a produce error ends the blocks at once. Returns
  // the first error, and in `*target_failed` which side it came from.
  Status Pump(const std::function<Status()>& produce,
              const std::function<Status(std::string_view)>& consume, bool* target_failed) {
    pipe_.Reset();
    std::thread reader([&] { pipe_.Close(produce()); });
    Status written;
    while (std::string* block = pipe_.Receive()) {
      written = consume(*block);
      pipe_.Recycle(block);
      if (!written.ok()) {
        pipe_.Stop();
        break;
      }
    }
    reader.join();
    *target_failed = !written.ok();
    return *target_failed ? std::move(written) : pipe_.producer_status();
  }

  // Pump into a COPY FROM STDIN: on an error on either side the COPY IN is
  // aborted, so nothing of the chunk reaches the target. Adds the bytes
  // written to `*bytes`.
  Status PumpInto(CopyWriter& writer, int64_t* bytes, const std::function<Status()>& produce) {
    bool target_failed = false;
    Status s = Pump(
        produce,
        [&](std::string_view block) {
          *bytes += static_cast<int64_t>(block.size());
          return writer.Write(block);
        },
        &target_failed);
    if (!s.ok()) {
      Status aborted = writer.Abort(target_failed ? "target write failed" : "source read failed");
      if (!aborted.ok()) FERRY_LOG_DEBUG("copy: aborting the COPY IN: {}", aborted.ToString());
    }
    return s;
  }

  std::string SelectSql(const TableJob& t, const KeyRange& range, Params& params) {
    std::string pred = ChunkPredicate(t, range, o_.where, params);
    return fmt::format("SELECT {} FROM {} WHERE {}", t.select_list, t.src.QualifiedName(), pred);
  }

  // Streamed rows -> COPY text format into PostgreSQL: rows are read and
  // encoded on the reader thread, written by this one (PumpInto).
  Result<ChunkCount> RowsToPg(const TableJob& t, const KeyRange& range) {
    Params params;
    std::string sql = SelectSql(t, range, params);
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<CopyWriter> writer, dst_->CopyIn(t.copy_in));
    ChunkCount count;
    int64_t rows = 0;  // counted by the reader thread, read after it was joined
    FERRY_RETURN_IF_ERROR(PumpInto(*writer, &count.bytes, [&]() -> Status {
      return src_->Stream(sql, params, [&](const RowView& row) -> Status {
        std::string* out = pipe_.buffer();
        if (out == nullptr) return TargetStopped();
        for (size_t i = 0; i < row.fields.size(); ++i) {
          if (i) *out += '\t';
          if (!row.fields[i]) {
            *out += "\\N";
          } else {
            AppendCopyText(*row.fields[i], out);
          }
        }
        *out += '\n';
        ++rows;
        return pipe_.SendIfFull() ? Status() : TargetStopped();
      });
    }));
    count.rows = rows;
    FERRY_ASSIGN_OR_RETURN(int64_t stored, writer->Finish());
    if (stored != count.rows) {
      return Status(StatusCode::kInternal,
                    fmt::format("table {}: read {} rows but the target stored {}", t.target_name,
                                count.rows, stored));
    }
    return count;
  }

  // Streamed rows -> multi-row prepared INSERTs into SQLite: rows are read
  // on the reader thread, bound and inserted by this one (Pump).
  Result<ChunkCount> RowsToSqlite(const TableJob& t, const KeyRange& range) {
    Params params;
    std::string sql = SelectSql(t, range, params);
    const size_t ncols = t.columns.size();
    const size_t per_stmt = std::max<size_t>(1, std::min<size_t>(256, 32000 / std::max<size_t>(ncols, 1)));
    std::string full_sql;  // for a full batch, built once
    auto build = [&](size_t nrows) {
      std::string s = t.insert_prefix;
      for (size_t r = 0; r < nrows; ++r) {
        s += r ? ",(" : "(";
        for (size_t c = 0; c < ncols; ++c) {
          if (c) s += ',';
          // Anonymous "?": SQLite looks numbered and named parameters up by
          // a linear search, quadratic over a batch.
          s += t.blob_param[c] ? "CAST(? AS BLOB)" : "?";
        }
        s += ')';
      }
      return s;
    };
    Params batch;
    batch.reserve(per_stmt * ncols);
    size_t rows_in_batch = 0;
    auto flush = [&]() -> Status {
      if (rows_in_batch == 0) return Status();
      if (rows_in_batch == per_stmt && full_sql.empty()) full_sql = build(per_stmt);
      FERRY_RETURN_IF_ERROR(
          dst_->Query(rows_in_batch == per_stmt ? full_sql : build(rows_in_batch), batch).status());
      batch.clear();
      rows_in_batch = 0;
      return Status();
    };
    // The reader thread encodes each row into pipe_ (per field a tag byte,
    // 0 for NULL, else 1, the length and the bytes, bytea already decoded);
    // this thread binds the rows in batches. A row never spans two blocks.
    ChunkCount count;  // counted by the reader thread, read after it was joined
    bool target_failed = false;
    Status s = Pump(
        [&]() -> Status {
          std::string decoded;
          return src_->Stream(sql, params, [&](const RowView& row) -> Status {
            std::string* out = pipe_.buffer();
            if (out == nullptr) return TargetStopped();
            if (row.fields.size() != ncols) {
              return Status(StatusCode::kInternal,
                            fmt::format("table {}: the source returned {} columns, expected {}",
                                        t.source_name, row.fields.size(), ncols));
            }
            for (size_t i = 0; i < ncols; ++i) {
              const auto& f = row.fields[i];
              if (!f) {
                out->push_back('\0');
                continue;
              }
              count.bytes += static_cast<int64_t>(f->size());
              std::string_view value = *f;
              if (t.bytea_hex[i]) {
                if (!DecodePgHexBytea(*f, &decoded)) {
                  return Status(StatusCode::kInternal,
                                fmt::format("column {}.{}: bytea not in hex form", t.source_name,
                                            t.columns[i]->name));
                }
                value = decoded;
              }
              const uint64_t n = value.size();
              out->push_back('\1');
              out->append(reinterpret_cast<const char*>(&n), sizeof n);
              out->append(value);
            }
            ++count.rows;
            return pipe_.SendIfFull() ? Status() : TargetStopped();
          });
        },
        [&](std::string_view block) -> Status {
          size_t pos = 0;
          while (pos < block.size()) {
            for (size_t c = 0; c < ncols; ++c) {
              if (block[pos++] == '\0') {
                batch.emplace_back(std::nullopt);
                continue;
              }
              uint64_t n = 0;
              std::memcpy(&n, block.data() + pos, sizeof n);
              pos += sizeof n;
              batch.emplace_back(std::string(block.substr(pos, n)));
              pos += n;
            }
            if (++rows_in_batch == per_stmt) FERRY_RETURN_IF_ERROR(flush());
          }
          return Status();
        },
        &target_failed);
    if (s.ok()) s = flush();
    if (!s.ok()) return s;
    return count;
  }

  const CopyOptions& o_;
  std::vector<TableJob>& tables_;
  const std::string& job_id_;
  const std::string& snapshot_;
  std::string owner_;
  Progress& progress_;
  std::atomic<bool>& stop_;
  Status* fatal_;
  std::mutex* fatal_mu_;
  ConnPtr src_, dst_;
  bool src_in_snapshot_ = false;
  BlockPipe pipe_{kBlocks, kBlockBytes};
};

Result<CopySummary> Tally(Connection& dst, const std::string& job_id,
                          const std::vector<TableJob>& tables) {
  ControlTables ctl(dst);
  FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(job_id));
  CopySummary s;
  s.job_id = job_id;
  s.chunks_total = static_cast<int64_t>(chunks.size());
  for (const ChunkRow& c : chunks) {
    if (c.state == ChunkState::kDone) {
      s.chunks_done++;
      s.rows_copied += c.rows;
      s.bytes_copied += c.bytes;
    } else if (c.state == ChunkState::kFailed) {
      s.chunks_failed++;
      s.rows_failed += c.rows;
      std::string range = c.range_spec;
      for (const auto& t : tables) {
        if (t.target_name != c.table_name) continue;
        auto r = KeyRange::Decode(c.range_spec);
        if (r.ok()) range = RangeText(t, *r);
      }
      s.failures.push_back({c.table_name, range, c.error});
    }
  }
  return s;
}

// Chunks still leased by a worker of this process go back to pending.
Status ReleaseOwnLeases(Connection& dst, const std::string& job_id) {
  ControlTables ctl(dst);
  FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(job_id));
  const std::string mine = ThisWorkerName() + "/";
  for (const ChunkRow& c : chunks) {
    if (c.state == ChunkState::kLeased && c.lease_owner.rfind(mine, 0) == 0) {
      FERRY_RETURN_IF_ERROR(ctl.ReleaseLease(job_id, c.chunk_id, c.lease_owner));
    }
  }
  return Status();
}

}  // namespace

std::string DefaultCopyJobId(const CopyOptions& o) {
  if (o.all) return "copy:all";
  std::vector<std::string> names = o.tables;
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::string joined;
  for (const auto& n : names) joined += (joined.empty() ? "" : ",") + n;
  if (joined.size() > 100) {
    uint64_t h = XXH3_64bits(joined.data(), joined.size());
    joined = fmt::format("{}...{:016x}", joined.substr(0, 80), h);
  }
  return "copy:" + joined;
}

Result<CopyPlan> PlanCopy(const CopyOptions& options) {
#ifdef FERRY_WITH_CQL
  if (IsCqlTarget(options.to_url)) return PlanCopyToCql(options);
#endif
  FERRY_ASSIGN_OR_RETURN(Prepared p, Prepare(options, /*for_run=*/false));
  CopyPlan plan;
  plan.job_id = p.job_id;
  plan.source = p.src->redacted_url();
  plan.target = p.target_display;
  plan.resumes = p.existing.has_value() && !options.restart &&
                 p.existing->state != JobState::kDone;
  std::map<std::string, int64_t> existing_chunks;
  if (p.existing && !options.restart) {
    ControlTables ctl(*p.dst);
    FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(p.job_id));
    for (const auto& c : chunks) existing_chunks[c.table_name]++;
  }
  for (const TableJob& t : p.tables) {
    CopyTablePlan tp;
    tp.source_name = t.source_name;
    tp.target_name = t.target_name;
    tp.split = std::string(SplitName(t.split));
    tp.estimated_rows = t.estimated_rows;
    tp.chunks = t.ranges.empty() ? existing_chunks[t.target_name]
                                 : static_cast<int64_t>(t.ranges.size());
    tp.target_exists = t.target_exists;
    tp.target_has_rows = t.target_has_rows;
    tp.ddl = t.ddl;
    for (const auto& a : t.after) tp.ddl.push_back("-- after the data:\n" + a);
    tp.partition_note = t.partition_note;
    plan.tables.push_back(std::move(tp));
  }
  return plan;
}

Result<CopySummary> RunCopy(const CopyOptions& options, EventBus* bus,
                            CopySummary* partial) {
#ifdef FERRY_WITH_CQL
  if (IsCqlTarget(options.to_url)) return RunCopyToCql(options, bus, partial);
#endif
  auto started = Clock::now();
  CopyOptions o = options;
  if (o.dry_run) {
    return Status(StatusCode::kInvalidArgument, "RunCopy with dry_run: call PlanCopy instead");
  }
  // --restart: drop the old job's rows and progress first.
  if (o.restart) {
    bool placeholder = false;
    FERRY_ASSIGN_OR_RETURN(ConnPtr dst, OpenTargetForPlan(o.to_url, &placeholder));
    ControlTables ctl(*dst);
    std::string job_id = o.job_id.empty() ? DefaultCopyJobId(o) : o.job_id;
    FERRY_ASSIGN_OR_RETURN(std::optional<JobRow> job, FindJob(*dst, job_id));
    if (job) {
      nlohmann::json spec = nlohmann::json::parse(job->spec, nullptr, false);
      if (!spec.is_discarded() && spec.value("mode", "") == "append" && !o.truncate) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("job '{}' appended to tables that had rows; --restart would "
                                  "empty them. Add --truncate to accept that, or remove the "
                                  "copied rows yourself and delete the job",
                                  job_id));
      }
      FERRY_RETURN_IF_ERROR(dst->Begin());
      Status s = SetLockTimeout(*dst, o.lock_timeout);
      if (s.ok() && !spec.is_discarded() && spec.contains("tables")) {
        for (const auto& t : spec["tables"]) {
          std::string name = t.value("target", "");
          auto info = DescribeTable(*dst, name);
          if (!info.ok()) continue;  // dropped since: nothing to empty
          s = ExecUnderLockTimeout(
              *dst, (IsPg(*dst) ? "TRUNCATE " : "DELETE FROM ") + info->QualifiedName(), name);
          if (!s.ok()) break;
        }
      }
      if (s.ok()) s = ctl.DeleteJob(job_id);
      if (!s.ok()) {
        (void)dst->Rollback();
        return s;
      }
      FERRY_RETURN_IF_ERROR(dst->Commit());
    }
    o.restart = false;
  }

  FERRY_ASSIGN_OR_RETURN(Prepared p, Prepare(o, /*for_run=*/true));
  ControlTables ctl(*p.dst);
  const bool resuming = p.existing.has_value();
  if (resuming && p.existing->state == JobState::kDone) {
    FERRY_ASSIGN_OR_RETURN(CopySummary s, Tally(*p.dst, p.job_id, p.tables));
    s.already_done = true;
    s.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return s;
  }
  JobRow job;
  if (!resuming) {
    // Everything is checked; now the target changes, in one transaction.
    job.job_id = p.job_id;
    job.kind = "copy";
    job.spec = SpecJson(o, *p.src, *p.dst, p.tables).dump();
    job.state = JobState::kRunning;
    job.owner = ThisWorkerName();
    std::vector<ChunkRow> chunks;
    for (const TableJob& t : p.tables) {
      for (const KeyRange& r : t.ranges) {
        ChunkRow c;
        c.job_id = p.job_id;
        c.chunk_id = static_cast<int64_t>(chunks.size()) + 1;
        c.table_name = t.target_name;
        c.range_spec = r.Encode();
        chunks.push_back(std::move(c));
      }
    }
    FERRY_RETURN_IF_ERROR(ctl.Ensure());
    FERRY_RETURN_IF_ERROR(p.dst->Begin());
    Status s = SetLockTimeout(*p.dst, o.lock_timeout);
    for (TableJob& t : p.tables) {
      if (!s.ok()) break;
      for (const std::string& ddl : t.ddl) {
        s = ExecUnderLockTimeout(*p.dst, ddl, t.target_name);
        if (!s.ok()) {
          s = WithTable(std::move(s).Prefix("creating the target table"), t.target_name);
          break;
        }
      }
      if (s.ok() && o.truncate && t.target_exists && t.target_has_rows) {
        s = ExecUnderLockTimeout(
            *p.dst, (IsPg(*p.dst) ? "TRUNCATE " : "DELETE FROM ") + t.dst.QualifiedName(),
            t.target_name);
      }
    }
    if (s.ok()) s = ctl.CreateJob(job);
    if (s.ok()) s = ctl.AddChunks(chunks);
    if (!s.ok()) {
      (void)p.dst->Rollback();
      return s;
    }
    FERRY_RETURN_IF_ERROR(p.dst->Commit());
  } else {
    job = *p.existing;
    FERRY_ASSIGN_OR_RETURN(int64_t reclaimed, ctl.ReclaimDeadLeases(p.job_id));
    if (reclaimed > 0) FERRY_LOG_INFO("copy: reclaimed {} chunks of dead workers", reclaimed);
    FERRY_RETURN_IF_ERROR(ctl.ResetFailedChunks(p.job_id));
    job.state = JobState::kRunning;
    job.owner = ThisWorkerName();
    job.error.clear();
    FERRY_RETURN_IF_ERROR(ctl.UpdateJob(job));
  }
  // Created tables are described now, for the SQL.
  for (TableJob& t : p.tables) {
    if (!t.target_exists) {
      FERRY_ASSIGN_OR_RETURN(t.dst, DescribeTable(*p.dst, t.target_name));
      t.target_exists = true;
    }
    BuildSql(t, p.dst->engine());
  }

  // Progress starts from what earlier runs finished.
  Progress progress(p.job_id, DatabaseLabel(options.to_url), bus);
  FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(p.job_id));
  std::map<std::string, int64_t> per_table;
  for (const auto& c : chunks) per_table[c.table_name]++;
  for (const TableJob& t : p.tables) {
    progress.AddTable(t.target_name, t.estimated_rows, per_table[t.target_name]);
  }
  for (const auto& c : chunks) {
    if (c.state == ChunkState::kDone) progress.AddDone(c.table_name, c.rows, c.bytes);
  }
  progress.EmitJob("job_started");

  int workers = o.workers;
  if (!IsPg(*p.dst) && workers > 1) {
    FERRY_LOG_INFO("copy: SQLite takes one writer at a time; using 1 worker");
    workers = 1;
  }
  std::atomic<bool> stop{false};
  Status fatal;
  std::mutex fatal_mu;
  {
    std::vector<std::unique_ptr<Worker>> pool;
    std::vector<std::thread> threads;
    for (int i = 0; i < workers; ++i) {
      pool.push_back(std::make_unique<Worker>(o, p.tables, p.job_id, p.snapshot,
                                              fmt::format("{}/w{}", ThisWorkerName(), i + 1),
                                              progress, stop, &fatal, &fatal_mu));
    }
    for (auto& w : pool) threads.emplace_back([&w] { w->Run(); });
    for (auto& t : threads) t.join();
  }
  if (IsPg(*p.src)) (void)p.src->Rollback();  // releases the snapshot

  // The coordinator's target session may have died with a server restart.
  if (!p.dst->Query("SELECT 1").ok()) {
    FERRY_ASSIGN_OR_RETURN(p.dst, Open(o.to_url, "target"));
  }
  // No lease of this run outlives it (a worker that failed mid-chunk).
  FERRY_RETURN_IF_ERROR(ReleaseOwnLeases(*p.dst, p.job_id));
  FERRY_ASSIGN_OR_RETURN(CopySummary summary, Tally(*p.dst, p.job_id, p.tables));
  summary.resumed = resuming;
  summary.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  ControlTables ctl2(*p.dst);
  job.rows_done = summary.rows_copied;
  job.rows_failed = summary.rows_failed;
  job.bytes_done = summary.bytes_copied;
  const bool all_done = summary.chunks_done == summary.chunks_total;
  const bool cancelled = o.cancel != nullptr && o.cancel->load() && !all_done;
  if (all_done && fatal.ok()) {
    // Every row is in: build the keys deferred by --create-tables.
    std::vector<DeferredDdl> todo;
    for (const TableJob& t : p.tables) {
      if (!t.after.empty()) todo.push_back({t.target_name, t.after});
    }
    fatal = BuildDeferred(o.to_url, todo, o.workers, o.lock_timeout.count());
  }
  if (cancelled && fatal.ok()) {
    job.state = JobState::kCancelled;
    job.error = "cancelled";
  } else if (!fatal.ok()) {
    job.state = JobState::kFailed;
    job.error = fatal.ToString();
  } else if (summary.chunks_failed > 0) {
    job.state = JobState::kFailed;
    job.error = fmt::format("{} chunks failed", summary.chunks_failed);
  } else {
    job.state = all_done ? JobState::kDone : JobState::kRunning;  // others still at work
    job.error.clear();
  }
  Status upd = ctl2.UpdateJob(job);
  if (!upd.ok()) FERRY_LOG_WARN("copy: recording the job's state: {}", upd.ToString());
  progress.EmitJob("job_done");
  if (partial != nullptr) *partial = summary;
  if (!fatal.ok()) return fatal;
  if (cancelled) {
    return Status(StatusCode::kCancelled,
                  fmt::format("copy job {} stopped by a signal: {} of {} chunks done, no chunk "
                              "left leased; run the same command again to resume",
                              p.job_id, summary.chunks_done, summary.chunks_total))
        .With("job", p.job_id);
  }
  if (summary.chunks_failed > 0) {
    Status s(StatusCode::kFailedPrecondition,
             fmt::format("{} of {} chunks failed ({} rows); the first: table {} range {}: {}. "
                         "Fix the cause and run the same command again to retry them",
                         summary.chunks_failed, summary.chunks_total, summary.rows_failed,
                         summary.failures[0].table, summary.failures[0].range,
                         summary.failures[0].error));
    return std::move(s).With("table", summary.failures[0].table);
  }
  return summary;
}

Result<CopyStatus> ReadCopyStatus(const std::string& target_url, const std::string& job_id) {
  FERRY_ASSIGN_OR_RETURN(ConnPtr dst, Open(target_url, "target"));
  ControlTables ctl(*dst);
  auto job = ctl.GetJob(job_id);
  if (!job.ok() || !*job) {
    if (!job.ok() && dst->Query("SELECT 1 FROM ferry_jobs LIMIT 0").ok()) {
      return std::move(job).TakeStatus();
    }
    std::string known;
    auto jobs = ctl.ListJobs("copy");
    if (jobs.ok()) {
      for (const auto& j : *jobs) known += (known.empty() ? "" : ", ") + j.job_id;
    }
    return Status(StatusCode::kNotFound,
                  fmt::format("no copy job '{}' on {}{}", job_id, dst->redacted_url(),
                              known.empty() ? "" : "; jobs there: " + known));
  }
  CopyStatus st;
  const JobRow& j = **job;
  st.job_id = j.job_id;
  st.state = std::string(JobStateName(j.state));
  st.created_at = j.created_at;
  st.updated_at = j.updated_at;
  st.finished_at = j.finished_at;
  st.owner = j.owner;
  st.error = j.error;
  st.spec = j.spec;
  FERRY_ASSIGN_OR_RETURN(std::vector<ChunkRow> chunks, ctl.ListChunks(job_id));
  std::map<std::string, size_t> index;
  for (const ChunkRow& c : chunks) {
    auto it = index.find(c.table_name);
    if (it == index.end()) {
      it = index.emplace(c.table_name, st.tables.size()).first;
      st.tables.push_back(CopyStatusTable{c.table_name});
    }
    CopyStatusTable& t = st.tables[it->second];
    t.chunks_total++;
    if (c.state == ChunkState::kDone) {
      t.chunks_done++;
      t.rows += c.rows;
      t.bytes += c.bytes;
      st.rows_done += c.rows;
      st.bytes_done += c.bytes;
    } else if (c.state == ChunkState::kFailed) {
      t.chunks_failed++;
      st.rows_failed += c.rows;
      st.failures.push_back({c.table_name, c.range_spec, c.error});
    } else if (c.state == ChunkState::kLeased) {
      t.chunks_leased++;
    }
  }
  return st;
}

}  // namespace ferry
