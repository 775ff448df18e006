// Partition status and planning: reads the catalog, compares it with the
// declaration, and lists what maintain would do. Changes nothing.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "ops/partition/partition_internal.h"

namespace ferry::partition {
namespace {

std::string ArchiveText(const PartitionSpec& spec) {
  return spec.archive == ArchiveKind::kSchema ? "schema:" + spec.archive_schema : "none";
}

// Whether a child already covers exactly `range`, and whether one overlaps it.
const ChildPartition* Exact(const ParentTable& p, const Range& range) {
  for (const ChildPartition& c : p.children) {
    if (c.range == range) return &c;
  }
  return nullptr;
}
const ChildPartition* Overlapping(const ParentTable& p, const Range& range) {
  for (const ChildPartition& c : p.children) {
    if (c.range.lower < range.upper && range.lower < c.range.upper) return &c;
  }
  return nullptr;
}

bool PastRetention(const TablePlan& plan, const ChildPartition& c) {
  return plan.cut && !c.detach_pending && c.range.upper <= *plan.cut;
}

std::string Bound(const ParentTable& p, int64_t key) {
  if (key == std::numeric_limits<int64_t>::min()) return "MINVALUE";
  if (key == std::numeric_limits<int64_t>::max()) return "MAXVALUE";
  return BoundText(p.key, key);
}

std::string CheckName(const std::string& child) { return child.substr(0, 50) + "_ferry_bound"; }

std::vector<std::string> PremakeSql(const ParentTable& p, const std::string& child,
                                    const Range& r) {
  std::string c = QuoteIdent(p.schema) + "." + QuoteIdent(child);
  std::string col = QuoteIdent(p.column);
  return {fmt::format("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                      "INCLUDING INDEXES INCLUDING STORAGE INCLUDING GENERATED INCLUDING COMMENTS)",
                      c, p.Qualified()),
          fmt::format("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NOT NULL AND {} >= {} AND "
                      "{} < {})",
                      c, QuoteIdent(CheckName(child)), col, col, BoundLiteral(p.key, r.lower), col,
                      BoundLiteral(p.key, r.upper))};
}

std::vector<std::string> AttachSql(const ParentTable& p, const std::string& child, const Range& r) {
  std::string c = QuoteIdent(p.schema) + "." + QuoteIdent(child);
  std::string attach =
      fmt::format("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})", p.Qualified(),
                  c, BoundLiteral(p.key, r.lower), BoundLiteral(p.key, r.upper));
  std::string drop_check =
      fmt::format("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}", c, QuoteIdent(CheckName(child)));
  if (!p.default_child) return {attach, drop_check};
  std::string cols;
  for (const std::string& name : p.columns) cols += (cols.empty() ? "" : ", ") + QuoteIdent(name);
  std::string col = QuoteIdent(p.column);
  std::string def = p.default_child->Qualified();
  return {"BEGIN",
          fmt::format("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", def),
          fmt::format("WITH moved AS (DELETE FROM {} WHERE {} >= {} AND {} < {} RETURNING {}) "
                      "INSERT INTO {} ({}) SELECT {} FROM moved",
                      def, col, BoundLiteral(p.key, r.lower), col, BoundLiteral(p.key, r.upper),
                      cols, c, cols, cols),
          attach,
          "COMMIT",
          drop_check};
}

}  // namespace

std::string Dotted(const std::string& schema, const std::string& name) {
  return schema + "." + name;
}

Result<std::vector<TablePlan>> LoadPlans(Connection& conn, const PartitionOptions& options) {
  FERRY_ASSIGN_OR_RETURN(std::vector<PartitionSpec> specs, LoadPartitionSpecs(options.config_file));
  std::vector<TablePlan> plans;
  bool matched = false;
  for (PartitionSpec& spec : specs) {
    TablePlan plan;
    FERRY_ASSIGN_OR_RETURN(plan.parent, ReadParent(conn, spec));
    if (!options.table.empty() && options.table != spec.table &&
        options.table != Dotted(plan.parent.schema, plan.parent.name) &&
        options.table != plan.parent.name) {
      continue;
    }
    matched = true;
    if (spec.interval.is_time()) {
      plan.now = options.now.value_or(std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
    } else {
      FERRY_ASSIGN_OR_RETURN(plan.now, MaxKey(conn, plan.parent));
    }
    plan.wanted = WantedRanges(spec.interval, plan.now, spec.premake);
    plan.cut = RetentionCut(spec.retention, plan.now);
    plan.spec = std::move(spec);
    plans.push_back(std::move(plan));
  }
  if (specs.empty()) {
    return Status(
        StatusCode::kNotFound,
        fmt::format("no [[partitions]] entry in {}: declare the table there (see "
                    "docs/partitions.md)",
                    options.config_file.empty() ? "ferry.toml (none found)" : options.config_file));
  }
  if (!matched) {
    return Status(StatusCode::kNotFound,
                  fmt::format("table {} is not declared in {}: add a [[partitions]] entry for it",
                              options.table, options.config_file));
  }
  return plans;
}

Result<TableStatus> StatusOf(Connection& conn, const TablePlan& plan) {
  const ParentTable& p = plan.parent;
  TableStatus s;
  s.table = Dotted(p.schema, p.name);
  s.column = p.column;
  s.column_type = p.column_type;
  s.interval = IntervalText(plan.spec.interval);
  s.retention = RetentionText(plan.spec.retention);
  s.archive = ArchiveText(plan.spec);
  s.origin = plan.spec.origin;
  for (size_t i = 0; i < p.children.size(); ++i) {
    const ChildPartition& c = p.children[i];
    PartitionRow row{Dotted(c.schema, c.name),
                     Bound(p, c.range.lower),
                     Bound(p, c.range.upper),
                     c.estimated_rows,
                     c.bytes,
                     PastRetention(plan, c),
                     c.detach_pending};
    if (row.past_retention) s.past_retention.push_back(row.name);
    s.partitions.push_back(std::move(row));
    if (i == 0) continue;
    const Range& prev = p.children[i - 1].range;
    if (prev.upper < c.range.lower) {
      s.gaps.push_back({"", Bound(p, prev.upper), Bound(p, c.range.lower)});
    } else if (prev.upper > c.range.lower) {
      s.overlaps.push_back({Dotted(p.children[i - 1].schema, p.children[i - 1].name) + " / " +
                                Dotted(c.schema, c.name),
                            Bound(p, c.range.lower),
                            Bound(p, std::min(prev.upper, c.range.upper))});
    }
  }
  for (const Range& r : plan.wanted) {
    if (Exact(p, r) == nullptr) {
      s.missing.push_back({Dotted(p.schema, ChildName(p.name, plan.spec.interval, r)),
                           Bound(p, r.lower), Bound(p, r.upper)});
    }
  }
  if (p.default_child) {
    s.default_partition = Dotted(p.default_child->schema, p.default_child->name);
    FERRY_ASSIGN_OR_RETURN(s.default_rows, CountRows(conn, p.default_child->Qualified()));
  }
  s.default_wanted_missing = plan.spec.default_partition && !p.default_child;
  return s;
}

Result<std::vector<TableStatus>> PartitionStatus(const PartitionOptions& options) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn,
                         OpenPartitionSession(options.url, options.lock_timeout));
  FERRY_ASSIGN_OR_RETURN(std::vector<TablePlan> plans, LoadPlans(*conn, options));
  std::vector<TableStatus> out;
  for (const TablePlan& plan : plans) {
    FERRY_ASSIGN_OR_RETURN(TableStatus s, StatusOf(*conn, plan));
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

// The partitions past retention, or a refusal: every partition would go
// (without `force`), or the archive schema is missing or already holds one
// of their names. Runs before anything is planned, so a refusal changes nothing.
Result<std::vector<const ChildPartition*>> ExpiredOrRefusal(Connection& conn, const TablePlan& plan,
                                                            bool force) {
  const ParentTable& p = plan.parent;
  const std::string table = Dotted(p.schema, p.name);
  std::vector<const ChildPartition*> expired;
  for (const ChildPartition& c : p.children) {
    if (PastRetention(plan, c)) expired.push_back(&c);
  }
  if (!expired.empty() && expired.size() == p.children.size() && !force) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{}: retention '{}' would detach every partition of {} (the newest "
                              "ends {}, the cut is {}): nothing was changed; check retention and "
                              "the clock, or pass --force",
                              plan.spec.origin, RetentionText(plan.spec.retention), table,
                              Bound(p, p.children.back().range.upper), Bound(p, *plan.cut)));
  }
  if (!expired.empty() && plan.spec.archive == ArchiveKind::kSchema) {
    const std::string& schema = plan.spec.archive_schema;
    FERRY_ASSIGN_OR_RETURN(bool exists, SchemaExists(conn, schema));
    if (!exists) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{}: archive schema '{}' does not exist: create it (CREATE SCHEMA "
                                "{}) or change archive; nothing was detached or dropped",
                                plan.spec.origin, schema, QuoteIdent(schema)));
    }
    for (const ChildPartition* c : expired) {
      FERRY_ASSIGN_OR_RETURN(Relation taken, FindRelation(conn, schema, c->name));
      if (taken.exists) {
        return Status(StatusCode::kFailedPrecondition,
                      fmt::format("{}: archive schema '{}' already holds a table {}: rename or "
                                  "drop it there; nothing was detached or dropped",
                                  plan.spec.origin, schema, c->name));
      }
    }
  }
  return expired;
}

}  // namespace

Result<std::vector<PartitionAction>> PlanActions(Connection& conn, const TablePlan& plan,
                                                 bool force) {
  const ParentTable& p = plan.parent;
  const std::string table = Dotted(p.schema, p.name);
  std::vector<PartitionAction> out;
  auto action = [&](ActionKind kind, const std::string& child, const Range* r) {
    PartitionAction a;
    a.kind = kind;
    a.table = table;
    a.partition = Dotted(p.schema, child);
    if (r != nullptr) {
      a.lower = Bound(p, r->lower);
      a.upper = Bound(p, r->upper);
    }
    return a;
  };
  FERRY_ASSIGN_OR_RETURN(std::vector<const ChildPartition*> expired,
                         ExpiredOrRefusal(conn, plan, force));
  if (plan.spec.default_partition && !p.default_child) {
    std::string name = p.name.substr(0, 55) + "_default";
    PartitionAction a = action(ActionKind::kCreateDefault, name, nullptr);
    a.sql = {fmt::format("CREATE TABLE {}.{} PARTITION OF {} DEFAULT", QuoteIdent(p.schema),
                         QuoteIdent(name), p.Qualified())};
    out.push_back(std::move(a));
  }
  for (const Range& r : plan.wanted) {
    if (Exact(p, r) != nullptr) continue;
    std::string child = ChildName(p.name, plan.spec.interval, r);
    if (const ChildPartition* other = Overlapping(p, r)) {
      return Status(
          StatusCode::kFailedPrecondition,
          fmt::format("{}: partition {} ({} to {}) overlaps the range {} to {} that the "
                      "declaration wants: its interval differs from interval = \"{}\"; "
                      "detach or re-create it by hand, or correct the declaration",
                      plan.spec.origin, Dotted(other->schema, other->name),
                      Bound(p, other->range.lower), Bound(p, other->range.upper), Bound(p, r.lower),
                      Bound(p, r.upper), IntervalText(plan.spec.interval)));
    }
    FERRY_ASSIGN_OR_RETURN(Relation existing, FindRelation(conn, p.schema, child));
    if (existing.is_partition) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("{}: {} is already a partition of another table: rename it",
                                plan.spec.origin, Dotted(p.schema, child)));
    }
    PartitionAction premake = action(ActionKind::kPremake, child, &r);
    premake.sql = PremakeSql(p, child, r);
    if (existing.exists) {
      // Left by an interrupted maintain: keep the table, renew its CHECK.
      premake.sql[0] =
          fmt::format("ALTER TABLE {}.{} DROP CONSTRAINT IF EXISTS {}", QuoteIdent(p.schema),
                      QuoteIdent(child), QuoteIdent(CheckName(child)));
    }
    out.push_back(std::move(premake));
    PartitionAction attach = action(ActionKind::kAttach, child, &r);
    attach.sql = AttachSql(p, child, r);
    if (p.default_child) {
      FERRY_ASSIGN_OR_RETURN(attach.rows, CountInRange(conn, p.default_child->Qualified(), p, r));
    }
    out.push_back(std::move(attach));
  }
  for (const ChildPartition& c : p.children) {
    if (c.detach_pending) {
      PartitionAction a = action(ActionKind::kDetach, c.name, &c.range);
      a.sql = {
          fmt::format("ALTER TABLE {} DETACH PARTITION {} FINALIZE", p.Qualified(), c.Qualified())};
      out.push_back(std::move(a));
    }
  }
  for (const ChildPartition* c : expired) {
    PartitionAction detach = action(ActionKind::kDetach, c->name, &c->range);
    detach.sql = {fmt::format("ALTER TABLE {} DETACH PARTITION {}{}", p.Qualified(), c->Qualified(),
                              p.default_child ? "" : " CONCURRENTLY")};
    out.push_back(std::move(detach));
    if (plan.spec.archive == ArchiveKind::kSchema) {
      PartitionAction archive = action(ActionKind::kArchive, c->name, &c->range);
      archive.sql = {fmt::format("ALTER TABLE {} SET SCHEMA {}", c->Qualified(),
                                 QuoteIdent(plan.spec.archive_schema))};
      out.push_back(std::move(archive));
    } else {
      PartitionAction drop = action(ActionKind::kDrop, c->name, &c->range);
      drop.sql = {fmt::format("DROP TABLE {}", c->Qualified())};
      out.push_back(std::move(drop));
    }
  }
  return out;
}

}  // namespace ferry::partition
