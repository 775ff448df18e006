// Sync run: the front of ferry sync.
//
// In:     SyncOptions.
// Out:    a new job: publication, slot (pgoutput, exported snapshot),
//         initial copy of the tables from that snapshot (move/copy.h),
//         then the stream; a known job: the stream from its position.
// Resume: see sync.h; a job whose initial copy was interrupted cannot
//         resume (its snapshot is gone) and says how to start over.
#include <fmt/format.h>

#include <set>

#include "core/url.h"
#include "drivers/registry.h"
#include "move/copy.h"
#include "move/sync/sync_internal.h"

namespace ferry {
namespace {

using namespace sync_internal;

Status Validate(const SyncOptions& o) {
  if (o.from_url.empty() || o.to_url.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "ferry sync needs both --from URL (source) and --to URL (target)");
  }
  if (o.all && !o.tables.empty()) {
    return Status(StatusCode::kInvalidArgument, "give either --tables a,b or --all, not both");
  }
  if (o.stop_after.count() < 0) {
    return Status(StatusCode::kInvalidArgument, "--stop-after must not be negative");
  }
  return SyncSlotName(o.job).status();
}

// The publication, the slot (its snapshot) and the job row of a new job.
// On failure nothing of them is left behind.
struct Created {
  uint64_t consistent_point = 0;
  std::string snapshot;
};
Result<Created> CreateJob(const Plan& plan, Connection& src, Connection& dst,
                          postgres::ReplicationSession& repl) {
  JobRow row;
  row.job = plan.job;
  row.slot = plan.slot;
  row.publication = plan.publication;
  row.source = src.redacted_url();
  std::string list;
  for (const auto& t : plan.tables) {
    row.tables.push_back(t.name);
    if (!list.empty()) list += ", ";
    list += t.source.QualifiedName();
  }
  row.phase = SyncPhase::kCopying;
  FERRY_RETURN_IF_ERROR(InsertJob(dst, row));
  Status s = src.Exec(fmt::format("CREATE PUBLICATION {} FOR TABLE {}", QuoteIdent(plan.publication),
                                  list))
                 .status();
  if (!s.ok()) {
    (void)DeleteJob(dst, plan.job);
    return std::move(s).Prefix("creating the publication on the source");
  }
  auto slot = repl.Command(fmt::format("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT",
                                       QuoteIdent(plan.slot)));
  if (!slot.ok()) {
    (void)src.Exec(fmt::format("DROP PUBLICATION IF EXISTS {}", QuoteIdent(plan.publication)));
    (void)DeleteJob(dst, plan.job);
    return std::move(slot).TakeStatus().Prefix("creating the replication slot on the source");
  }
  Created c;
  FERRY_ASSIGN_OR_RETURN(c.consistent_point, pgoutput::ParseLsn(slot->Text(0, 1)));
  c.snapshot = slot->Text(0, 2);
  return c;
}

Result<int64_t> InitialCopy(const SyncOptions& o, const Plan& plan, const std::string& snapshot,
                            EventBus* bus) {
  CopyOptions c;
  c.from_url = o.from_url;
  c.to_url = o.to_url;
  for (const auto& t : plan.tables) c.tables.push_back(t.name);
  c.create_tables = o.create_tables;
  c.workers = o.copy_workers;
  c.job_id = "sync:" + o.job;
  c.snapshot = snapshot;
  c.cancel = o.cancel;
  auto summary = RunCopy(c, bus);
  if (!summary.ok()) {
    return std::move(summary).TakeStatus().Prefix(fmt::format(
        "initial copy of sync job '{}' (run ferry sync --drop {} --from ... --to ..., empty the "
        "target tables, and start again)",
        o.job, o.job));
  }
  return summary->rows_copied;
}

}  // namespace

Result<SyncSummary> RunSync(const SyncOptions& o, EventBus* bus) {
  FERRY_RETURN_IF_ERROR(Validate(o));
  auto started = std::chrono::steady_clock::now();
  FERRY_ASSIGN_OR_RETURN(Url src_url, Url::Parse(o.from_url));
  ConnectOptions co;
  co.application_name = "ferry sync";
  auto src_or = OpenConnection(src_url, co);
  if (!src_or.ok()) return std::move(src_or).TakeStatus().Prefix("source");
  auto dst_or = OpenConnection(o.to_url, co);
  if (!dst_or.ok()) return std::move(dst_or).TakeStatus().Prefix("target");
  Connection& src = **src_or;
  Connection& dst = **dst_or;
  // Marks the applier's session: a cut-over guard lets it write (reverse sync).
  FERRY_RETURN_IF_ERROR(dst.Exec("SET ferry.apply = 'on'").status());
  FERRY_ASSIGN_OR_RETURN(Plan plan, PlanSync(o, src, dst));

  SyncSummary summary;
  summary.job = plan.job;
  summary.slot = plan.slot;
  summary.resumed = plan.existing.has_value();
  std::set<std::string> names;
  for (const auto& t : plan.tables) names.insert(t.name);

  auto repl_or = postgres::OpenReplication(src_url, co);
  if (!repl_or.ok()) return std::move(repl_or).TakeStatus().Prefix("source (replication)");
  postgres::ReplicationSession& repl = **repl_or;
  uint64_t start = 0;
  if (!plan.existing) {
    FERRY_ASSIGN_OR_RETURN(Created created, CreateJob(plan, src, dst, repl));
    FERRY_ASSIGN_OR_RETURN(summary.rows_copied, InitialCopy(o, plan, created.snapshot, bus));
    FERRY_RETURN_IF_ERROR(SetAppliedLsn(dst, plan.job, created.consistent_point));
    start = created.consistent_point;
  } else {
    start = plan.existing->applied_lsn;
  }
  FERRY_RETURN_IF_ERROR(StartStreamWindow(dst, plan.job, SyncPhase::kCatchingUp));
  FERRY_RETURN_IF_ERROR(repl.Start(fmt::format(
      "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names {})",
      QuoteIdent(plan.slot), pgoutput::LsnText(start), PgLiteral(QuoteIdent(plan.publication)))));

  Applier applier(dst, plan.job, names, start);
  StreamContext ctx;
  ctx.options = &o;
  ctx.replication = &repl;
  ctx.src = &src;
  ctx.dst = &dst;
  ctx.applier = &applier;
  ctx.bus = bus;
  ctx.database = DatabaseLabel(o.to_url);
  auto reason = StreamChanges(ctx);
  if (!reason.ok()) {
    applier.Abandon();
    Status failed = reason.status();
    (void)SetPhase(dst, plan.job, SyncPhase::kStopped, failed.message());
    SyncProgress p;
    p.phase = "stopped";
    p.applied_lsn = pgoutput::LsnText(applier.applied_lsn());
    p.rows_applied = applier.rows_applied;
    p.transactions = applier.transactions;
    Event e = SyncEventOf("sync_failed", plan.job, ctx.database, std::move(p), 0);
    e.error_type = ErrorTypeOf(failed);
    e.message = RedactSecrets(failed.message());
    Publish(bus, e);
    return failed;
  }
  summary.stop_reason = *reason;
  summary.rows_applied = applier.rows_applied;
  summary.transactions = applier.transactions;
  summary.skipped_transactions = applier.skipped;
  summary.applied_lsn = pgoutput::LsnText(applier.applied_lsn());
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

}  // namespace ferry
