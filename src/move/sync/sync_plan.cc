// Sync plan: every check before a sync creates or changes anything.
//
// In:     SyncOptions, open source and target sessions.
// Out:    Plan: job, slot and publication names, the tables with their
//         source description and replica identity, the job row if any.
// Resume: an existing job row on the target is a resume: its tables are
//         used and the target tables may hold rows.
#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "move/sync/sync_internal.h"

namespace ferry {
namespace sync_internal {
namespace {

Status CheckServer(Connection& src, Connection& dst) {
  if (src.engine() != Engine::kPostgres || dst.engine() != Engine::kPostgres) {
    return Status(StatusCode::kInvalidArgument,
                  "ferry sync streams PostgreSQL to PostgreSQL: give postgres:// URLs for "
                  "--from and --to (for other pairs use ferry copy)");
  }
  FERRY_ASSIGN_OR_RETURN(QueryResult wal, src.Query("SELECT current_setting('wal_level')"));
  if (wal.Text(0, 0) != "logical") {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the source {} runs with wal_level={}; logical replication needs "
                              "wal_level=logical: run ALTER SYSTEM SET wal_level = logical as a "
                              "superuser and restart the server, then run ferry sync again",
                              src.redacted_url(), wal.Text(0, 0)))
        .With("hint", "ALTER SYSTEM SET wal_level = logical; restart PostgreSQL");
  }
  FERRY_ASSIGN_OR_RETURN(
      QueryResult role,
      src.Query("SELECT current_user, rolreplication OR rolsuper FROM pg_roles"
                " WHERE rolname = current_user"));
  if (role.empty() || role.Text(0, 1) != "t") {
    std::string name = role.empty() ? std::string("this role") : role.Text(0, 0);
    return Status(StatusCode::kPermissionDenied,
                  fmt::format("role {} on the source may not replicate: a superuser must run "
                              "ALTER ROLE {} REPLICATION (or connect --from as a role that has "
                              "REPLICATION)",
                              name, QuoteIdent(name)))
        .With("hint", fmt::format("ALTER ROLE {} REPLICATION", QuoteIdent(name)));
  }
  return Status();
}

Result<char> ReplicaIdentity(Connection& src, const TableInfo& t) {
  FERRY_ASSIGN_OR_RETURN(QueryResult r,
                         src.Query("SELECT relreplident::text FROM pg_class WHERE oid = $1::regclass",
                                   {t.QualifiedName()}));
  return r.empty() || r.Text(0, 0).empty() ? 'd' : r.Text(0, 0)[0];
}

Status CheckIdentity(const PlannedTable& t) {
  const std::string alter = fmt::format("ALTER TABLE {} REPLICA IDENTITY FULL", t.source.QualifiedName());
  if (t.replica_identity == 'n') {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("table {} has REPLICA IDENTITY NOTHING on the source: its updates "
                              "and deletes cannot be replicated; add a primary key or run {}",
                              t.name, alter))
        .With("table", t.name);
  }
  if (t.replica_identity == 'd' && !t.source.has_primary_key()) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("table {} has no primary key and no replica identity on the "
                              "source, so its updates and deletes cannot be replicated; add a "
                              "primary key, or run {} on the source",
                              t.name, alter))
        .With("table", t.name);
  }
  return Status();
}

// A new job copies into empty tables only.
Status CheckTarget(const SyncOptions& o, Connection& dst, PlannedTable& t, bool resuming) {
  auto info = DescribeTable(dst, t.name);
  if (!info.ok()) {
    if (info.status().code() != StatusCode::kNotFound) return info.status();
    if (resuming || !o.create_tables) {
      return Status(StatusCode::kNotFound,
                    fmt::format("table {} does not exist on the target {}; create it, or pass "
                                "--create-tables to create it like ferry copy does",
                                t.name, dst.redacted_url()))
          .With("table", t.name);
    }
    return Status();
  }
  t.target_exists = true;
  if (resuming) return Status();
  FERRY_ASSIGN_OR_RETURN(
      QueryResult rows,
      dst.Query(fmt::format("SELECT EXISTS (SELECT 1 FROM {})", info->QualifiedName())));
  if (rows.Text(0, 0) == "t") {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("table {} on the target already has rows, and a new sync copies "
                              "into empty tables; empty it (TRUNCATE {}) or choose another "
                              "target. To continue an existing sync, use --resume with its --job",
                              t.name, info->QualifiedName()))
        .With("table", t.name);
  }
  return Status();
}

// A new job: its slot and publication must not exist yet.
Status CheckFreeNames(Connection& src, const Plan& plan) {
  FERRY_ASSIGN_OR_RETURN(SlotInfo slot, ReadSlot(src, plan.slot));
  if (slot.exists) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("replication slot {} already exists on the source (database {}) "
                              "and belongs to no sync job '{}' on this target; if it is left "
                              "over from an abandoned sync, remove it with ferry sync --drop {} "
                              "--from ... --to ..., otherwise choose another --job",
                              plan.slot, slot.database, plan.job, plan.job))
        .With("slot", plan.slot);
  }
  FERRY_ASSIGN_OR_RETURN(QueryResult pub,
                         src.Query("SELECT 1 FROM pg_publication WHERE pubname = $1",
                                   {plan.publication}));
  if (!pub.empty()) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("publication {} already exists on the source and belongs to no "
                              "sync job '{}' on this target; remove it with ferry sync --drop "
                              "{} --from ... --to ..., or choose another --job",
                              plan.publication, plan.job, plan.job));
  }
  return Status();
}

}  // namespace

Result<SlotInfo> ReadSlot(Connection& src, const std::string& slot) {
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      src.Query("SELECT active, coalesce(database, ''),"
                " coalesce(pg_current_wal_lsn() - coalesce(confirmed_flush_lsn, restart_lsn), 0)::bigint"
                " FROM pg_replication_slots WHERE slot_name = $1",
                {slot}));
  SlotInfo info;
  if (r.empty()) return info;
  info.exists = true;
  info.active = r.Text(0, 0) == "t";
  info.database = r.Text(0, 1);
  info.retained_bytes = std::stoll(r.Text(0, 2));
  return info;
}

Result<SlotInfo> ReadSlotOnceIdle(Connection& src, const std::string& slot) {
  FERRY_ASSIGN_OR_RETURN(SlotInfo info, ReadSlot(src, slot));
  for (int wait = 0; wait < 20 && info.active; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    FERRY_ASSIGN_OR_RETURN(info, ReadSlot(src, slot));
  }
  return info;
}

Result<Plan> PlanSync(const SyncOptions& o, Connection& src, Connection& dst) {
  FERRY_RETURN_IF_ERROR(CheckServer(src, dst));
  Plan plan;
  plan.job = o.job;
  FERRY_ASSIGN_OR_RETURN(plan.slot, SyncSlotName(o.job));
  plan.publication = plan.slot;
  FERRY_ASSIGN_OR_RETURN(plan.existing, ReadJob(dst, o.job));
  std::vector<std::string> names;
  if (plan.existing) {
    if (plan.existing->source != src.redacted_url()) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("sync job '{}' on the target follows {}, not {}; choose another "
                                "--job, or remove the old one with ferry sync --drop {}",
                                o.job, plan.existing->source, src.redacted_url(), o.job));
    }
    if (plan.existing->phase == SyncPhase::kCopying) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("the initial copy of sync job '{}' was interrupted, and the "
                                "snapshot it read from is gone; run ferry sync --drop {} "
                                "--from ... --to ..., empty the target tables, and start again",
                                o.job, o.job));
    }
    if (plan.existing->phase == SyncPhase::kCutOver ||
        plan.existing->phase == SyncPhase::kRolledBack) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("sync job '{}' was cut over (ferry cutover): the target is the "
                                "primary now; remove the job with ferry sync --drop {}",
                                o.job, o.job));
    }
    FERRY_ASSIGN_OR_RETURN(SlotInfo slot, ReadSlotOnceIdle(src, plan.slot));
    if (!slot.exists) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("sync job '{}' needs replication slot {} on the source, which is "
                                "gone (dropped by hand?): changes since then are lost to it; run "
                                "ferry sync --drop {}, empty the target tables and start again",
                                o.job, plan.slot, o.job));
    }
    if (slot.active) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("sync job '{}' is already running (its slot {} is in use); stop "
                                "that process first",
                                o.job, plan.slot));
    }
    names = plan.existing->tables;
  } else {
    if (o.resume) {
      return Status(StatusCode::kNotFound,
                    fmt::format("--resume: there is no sync job '{}' on the target {}; drop "
                                "--resume to start it",
                                o.job, dst.redacted_url()));
    }
    FERRY_RETURN_IF_ERROR(CheckFreeNames(src, plan));
    if (o.all) {
      FERRY_ASSIGN_OR_RETURN(names, ListTables(src));
    } else {
      names = o.tables;
    }
    if (names.empty()) {
      return Status(StatusCode::kInvalidArgument,
                    "no tables to sync: name them with --tables a,b or pass --all");
    }
  }
  for (const std::string& n : names) {
    PlannedTable t;
    auto info = DescribeTable(src, n);
    if (!info.ok()) return std::move(info).TakeStatus().Prefix("source");
    t.source = std::move(*info);
    t.name = TableNameFor(t.source.schema, t.source.name);
    FERRY_ASSIGN_OR_RETURN(t.replica_identity, ReplicaIdentity(src, t.source));
    FERRY_RETURN_IF_ERROR(CheckIdentity(t));
    FERRY_RETURN_IF_ERROR(CheckTarget(o, dst, t, plan.existing.has_value()));
    plan.tables.push_back(std::move(t));
  }
  return plan;
}

}  // namespace sync_internal

Result<std::string> SyncSlotName(std::string_view job) {
  if (job.empty()) {
    return Status(StatusCode::kInvalidArgument, "--job: the sync job needs a name");
  }
  std::string out = "ferry_sync_";
  for (char c : job) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    out.push_back(ok ? c : '_');
  }
  if (out.size() > 63) out.resize(63);
  return out;
}

}  // namespace ferry
