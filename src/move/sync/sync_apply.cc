// Sync apply: decoded pgoutput messages onto the target, one source
// transaction per target transaction, in commit order.
//
// In:     Begin / Relation / Insert / Update / Delete / Truncate / Commit.
// Out:    the same changes on the target, with values bound as text
//         parameters (statements prepared per relation and column set).
// Resume: Commit writes the transaction's end LSN to ferry_sync_jobs in the
//         same target transaction; a transaction whose commit LSN lies
//         before the stored position was applied already and is skipped.
#include <fmt/format.h>

#include "move/sync/sync_internal.h"

namespace ferry::sync_internal {
namespace {

// OIDs below this are built-in types, equal on every server.
constexpr uint32_t kFirstNormalOid = 16384;

Value FieldValue(const pgoutput::Field& f) {
  if (f.kind == pgoutput::FieldKind::kText) return f.text;
  return std::nullopt;
}

// What differs between the source relation and the target table, or "".
std::string ColumnDifference(const pgoutput::Relation& r, const TableInfo& target) {
  for (const auto& c : r.columns) {
    const ColumnInfo* d = target.Find(c.name);
    if (d == nullptr || d->generated) {
      return fmt::format("column {} is on the source but not on the target", QuoteIdent(c.name));
    }
    if (c.type_oid < kFirstNormalOid && d->type_oid < kFirstNormalOid && c.type_oid != d->type_oid) {
      return fmt::format("column {} has type oid {} on the source, {} ({}) on the target",
                         QuoteIdent(c.name), c.type_oid, d->type_oid, d->type);
    }
  }
  for (const auto& d : target.columns) {
    if (d.generated) continue;
    bool found = false;
    for (const auto& c : r.columns) found = found || c.name == d.name;
    if (!found) {
      return fmt::format("column {} is on the target but no longer on the source",
                         QuoteIdent(d.name));
    }
  }
  return "";
}

}  // namespace

Status Applier::Apply(const pgoutput::Message& message) {
  return std::visit(
      [this](const auto& m) -> Status {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, pgoutput::Begin>) return OnBegin(m);
        if constexpr (std::is_same_v<T, pgoutput::Commit>) return OnCommit(m);
        if constexpr (std::is_same_v<T, pgoutput::Relation>) return OnRelation(m);
        if constexpr (std::is_same_v<T, pgoutput::Insert>) return skipping_ ? Status() : OnInsert(m);
        if constexpr (std::is_same_v<T, pgoutput::Update>) return skipping_ ? Status() : OnUpdate(m);
        if constexpr (std::is_same_v<T, pgoutput::Delete>) return skipping_ ? Status() : OnDelete(m);
        if constexpr (std::is_same_v<T, pgoutput::Truncate>) {
          return skipping_ ? Status() : OnTruncate(m);
        }
        return Status();  // Origin, Type: nothing to do
      },
      message);
}

void Applier::Abandon() {
  if (in_tx_ && !skipping_) (void)dst_.Rollback();
  in_tx_ = false;
  skipping_ = false;
}

Status Applier::OnBegin(const pgoutput::Begin& b) {
  if (in_tx_) {
    return Status(StatusCode::kInternal, "replication stream: Begin inside a transaction");
  }
  in_tx_ = true;
  tx_rows_ = 0;
  // The stored position is the end of the last applied commit record; a
  // transaction committed before it was applied already.
  skipping_ = b.final_lsn < applied_lsn_;
  if (skipping_) return Status();
  return dst_.Begin();
}

Status Applier::OnCommit(const pgoutput::Commit& c) {
  if (!in_tx_) {
    return Status(StatusCode::kInternal, "replication stream: Commit without Begin");
  }
  in_tx_ = false;
  if (skipping_ || c.end_lsn <= applied_lsn_) {
    if (!skipping_) (void)dst_.Rollback();
    skipping_ = false;
    ++skipped;
    return Status();
  }
  double commit_unix = pgoutput::PgTimeToUnix(c.commit_time);
  Status s = RecordApplied(dst_, job_, c.end_lsn, commit_unix, tx_rows_);
  if (s.ok()) s = dst_.Commit();
  if (!s.ok()) {
    (void)dst_.Rollback();
    return std::move(s).Prefix("committing a replicated transaction on the target");
  }
  applied_lsn_ = c.end_lsn;
  last_commit_unix_ = commit_unix;
  rows_applied += tx_rows_;
  ++transactions;
  return Status();
}

Status Applier::OnRelation(const pgoutput::Relation& r) {
  std::string name = TableNameFor(r.schema, r.name);
  if (!tables_.count(name)) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the source streams changes of table {}, which is not in sync job "
                              "'{}' (was the publication changed by hand?)",
                              name, job_));
  }
  auto target = DescribeTable(dst_, name);
  std::string diff;
  if (!target.ok()) {
    if (target.status().code() != StatusCode::kNotFound) return target.status();
    diff = "the target table is missing";
  } else {
    diff = ColumnDifference(r, *target);
  }
  if (!diff.empty()) {
    Abandon();
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("sync job '{}' stopped: table {} changed on the source (DDL): {}. "
                              "Nothing after position {} was applied. Make the target table "
                              "match (apply the same ALTER TABLE there), then run the same ferry "
                              "sync command again to resume",
                              job_, name, diff, pgoutput::LsnText(applied_lsn_)))
        .With("table", name);
  }
  Rel rel;
  rel.msg = r;
  rel.target = target->QualifiedName();
  for (size_t i = 0; i < r.columns.size(); ++i) {
    if (r.columns[i].key) rel.key.push_back(i);
  }
  relations_[r.id] = std::move(rel);
  return Status();
}

Result<const Applier::Rel*> Applier::Find(uint32_t id) const {
  auto it = relations_.find(id);
  if (it == relations_.end()) {
    return Status(StatusCode::kInternal,
                  fmt::format("replication stream: change for relation {} before its Relation "
                              "message",
                              id));
  }
  return &it->second;
}

Result<int64_t> Applier::Run(const std::string& sql, const Params& params) {
  FERRY_ASSIGN_OR_RETURN(std::vector<int64_t> n,
                         dst_.ExecBatch({{.sql = sql, .params = &params, .reuse = true}}));
  return n.empty() ? 0 : n[0];
}

Status Applier::RunOneRow(const std::string& sql, const Params& params, const char* what,
                          const std::string& target) {
  FERRY_ASSIGN_OR_RETURN(int64_t n, Run(sql, params));
  if (n != 1) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} {} replicated from the source found no row on the target: the "
                              "target has diverged (changed by someone else?); compare with "
                              "ferry verify, fix it, then run ferry sync again",
                              what, target));
  }
  ++tx_rows_;
  return Status();
}

// "WHERE k1 = $n AND ..." over the identity columns (`full`: every sent
// column, NULL-safe, since a FULL identity has no key).
std::string Applier::Where(const Rel& rel, const pgoutput::Tuple& tuple, bool full,
                           Params& params) const {
  std::string where;
  for (size_t i = 0; i < rel.msg.columns.size() && i < tuple.size(); ++i) {
    bool use = full ? tuple[i].kind != pgoutput::FieldKind::kUnchangedToast
                    : rel.msg.columns[i].key;
    if (!use) continue;
    params.push_back(FieldValue(tuple[i]));
    if (!where.empty()) where += " AND ";
    const std::string column = QuoteIdent(rel.msg.columns[i].name);
    where += full ? fmt::format("{} IS NOT DISTINCT FROM ${}", column, params.size())
                  : fmt::format("{} = ${}", column, params.size());
  }
  return where;
}

Status Applier::OnInsert(const pgoutput::Insert& m) {
  FERRY_ASSIGN_OR_RETURN(const Rel* rel, Find(m.relation));
  std::string cols, vals;
  Params params;
  for (size_t i = 0; i < rel->msg.columns.size() && i < m.tuple.size(); ++i) {
    if (!cols.empty()) {
      cols += ", ";
      vals += ", ";
    }
    cols += QuoteIdent(rel->msg.columns[i].name);
    params.push_back(FieldValue(m.tuple[i]));
    vals += fmt::format("${}", params.size());
  }
  FERRY_RETURN_IF_ERROR(Run(fmt::format("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({})",
                                        rel->target, cols, vals),
                            params)
                            .status());
  ++tx_rows_;
  return Status();
}

Status Applier::OnUpdate(const pgoutput::Update& m) {
  FERRY_ASSIGN_OR_RETURN(const Rel* rel, Find(m.relation));
  Params params;
  std::string set;
  for (size_t i = 0; i < rel->msg.columns.size() && i < m.tuple.size(); ++i) {
    // An unchanged TOASTed value is not sent: leave the column as it is.
    if (m.tuple[i].kind == pgoutput::FieldKind::kUnchangedToast) continue;
    params.push_back(FieldValue(m.tuple[i]));
    if (!set.empty()) set += ", ";
    set += fmt::format("{} = ${}", QuoteIdent(rel->msg.columns[i].name), params.size());
  }
  if (set.empty()) return Status();
  const bool full = m.old_kind == 'O';
  const pgoutput::Tuple& identity = m.old_kind != 0 ? m.old_tuple : m.tuple;
  std::string where = Where(*rel, identity, full, params);
  std::string sql =
      full ? fmt::format("UPDATE {0} SET {1} WHERE ctid = (SELECT ctid FROM {0} WHERE {2} LIMIT 1)",
                         rel->target, set, where)
           : fmt::format("UPDATE {} SET {} WHERE {}", rel->target, set, where);
  return RunOneRow(sql, params, "an UPDATE of", rel->target);
}

Status Applier::OnDelete(const pgoutput::Delete& m) {
  FERRY_ASSIGN_OR_RETURN(const Rel* rel, Find(m.relation));
  Params params;
  const bool full = m.old_kind == 'O';
  std::string where = Where(*rel, m.old_tuple, full, params);
  std::string sql =
      full ? fmt::format("DELETE FROM {0} WHERE ctid = (SELECT ctid FROM {0} WHERE {1} LIMIT 1)",
                         rel->target, where)
           : fmt::format("DELETE FROM {} WHERE {}", rel->target, where);
  return RunOneRow(sql, params, "a DELETE on", rel->target);
}

Status Applier::OnTruncate(const pgoutput::Truncate& m) {
  std::string list;
  for (uint32_t id : m.relations) {
    FERRY_ASSIGN_OR_RETURN(const Rel* rel, Find(id));
    if (!list.empty()) list += ", ";
    list += rel->target;
  }
  if (list.empty()) return Status();
  FERRY_RETURN_IF_ERROR(
      dst_.Exec(fmt::format("TRUNCATE {}{}", list, m.restart_identity ? " RESTART IDENTITY" : ""))
          .status());
  ++tx_rows_;
  return Status();
}

}  // namespace ferry::sync_internal
