// Migrator, the lock stage: the migration lock (own connection) and the
// start of every command that changes the database (scan, lock, history).
#include <fmt/format.h>

#include "core/log.h"
#include "migrate/migrator.h"
#include "migrate/migrator_internal.h"

namespace ferry {

using namespace migrator_internal;

Result<std::unique_ptr<MigrationLock>> Migrator::Lock() {
  if (std::string_view setup = conn_->traits().MigrationSessionSetup(); !setup.empty()) {
    auto r = conn_->Exec(setup);  // harmless when refused (drivers/engine.h)
    if (!r.ok()) FERRY_LOG_DEBUG("migration session setup: {}", r.status().ToString());
  }
  return MigrationLock::Acquire(url_, options_.history_table, options_.lock_wait,
                                [this](const LockHolder& h) {
                                  MigrationStep e;
                                  e.message = fmt::format("waiting for the migration lock held by "
                                                          "{} since {}",
                                                          h.who, h.since);
                                  Emit("lock_wait", e);
                                });
}

Result<Migrator::Locked> Migrator::LockAndLoad(History* history) {
  FERRY_ASSIGN_OR_RETURN(MigrationSet files, Scan());
  Locked locked;
  FERRY_ASSIGN_OR_RETURN(locked.lock, Lock());
  FERRY_RETURN_IF_ERROR(history->Ensure());
  FERRY_ASSIGN_OR_RETURN(std::vector<HistoryRow> rows, history->Load());
  FERRY_ASSIGN_OR_RETURN(locked.report, Compute(std::move(files), std::move(rows), true));
  return locked;
}

Result<History::Probe> Migrator::ProbeHistory(const std::vector<std::string>& extra) {
  if (!conn_->traits().Has(Feature::kHistoryFingerprint)) {
    return Status(StatusCode::kUnimplemented, "the history probe needs PostgreSQL");
  }
  History history(conn_.get(), options_.history_table);
  std::vector<std::string> all{MigrationLock::PgHeldCondition(options_.history_table)};
  all.insert(all.end(), extra.begin(), extra.end());
  return history.ProbePostgres(all);
}

Result<std::optional<LockHolder>> Migrator::LockHolderNow(std::optional<bool> known_held) {
  return MigrationLock::Holder(conn_.get(), url_, options_.history_table, known_held);
}

}  // namespace ferry
