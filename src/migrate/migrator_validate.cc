// Migrator, the checking stage: validate (files parse, checksums, order,
// compatibility, schema drift) and health.
#include <fmt/format.h>

#include "migrate/cql_schema.h"
#include "migrate/migrator.h"
#include "migrate/migrator_internal.h"

namespace ferry {

using namespace migrator_internal;

Result<std::vector<ValidationProblem>> Migrator::Validate() {
  std::vector<ValidationProblem> problems;
  auto files = Scan();
  if (!files.ok()) {
    problems.push_back({"source", options_.dir, files.status().message()});
    return problems;
  }
  for (const Migration& m : files->migrations) {
    auto up = PrepareScript(m, false);
    if (!up.ok()) problems.push_back({"parse", m.up.path, up.status().message()});
    if (m.down) {
      auto down = PrepareScript(m, true);
      if (!down.ok()) problems.push_back({"parse", m.down->path, down.status().message()});
    }
  }
  History history(conn_.get(), options_.history_table);
  FERRY_ASSIGN_OR_RETURN(bool exists, history.Exists());
  std::vector<HistoryRow> rows;
  if (exists) {
    Status s = history.Ensure();
    if (!s.ok()) {
      problems.push_back({"history", options_.history_table, s.message()});
      return problems;
    }
    FERRY_ASSIGN_OR_RETURN(rows, history.Load());
  }
  FERRY_ASSIGN_OR_RETURN(StatusReport report,
                         Compute(std::move(files).value(), std::move(rows), exists));
  for (const PlanEntry& e : report.entries) {
    switch (e.state) {
      case EntryState::kChanged:
        problems.push_back({"checksum", e.script,
                            fmt::format("checksum differs from the applied one (applied {}, file "
                                        "{}): restore the file or run 'ferry repair'",
                                        e.row->checksum, e.migration->checksum)});
        break;
      case EntryState::kMissing:
        problems.push_back({"missing", e.script,
                            fmt::format("version {} is applied but no file has it", e.version)});
        break;
      case EntryState::kOutOfOrder:
        problems.push_back({"order", e.script,
                            fmt::format("pending version {} is older than the applied {}",
                                        e.version, report.current_version)});
        break;
      case EntryState::kFailed:
        problems.push_back({"history", e.script,
                            fmt::format("the last attempt failed: {}", e.row->error_message)});
        break;
      default:
        break;
    }
  }
  AddSchemaDrift(&problems);
  const std::string& min = options_.compat_min_version;
  const std::string& cur = options_.compat_current_version;
  if (!cur.empty() && !report.newest_file_version.empty() &&
      CompareVersionText(report.newest_file_version, cur) > 0) {
    problems.push_back({"compat", options_.dir,
                        fmt::format("newest migration {} is newer than compat.current_version {}",
                                    report.newest_file_version, cur)});
  }
  if (!min.empty() && !cur.empty() && CompareVersionText(min, cur) > 0) {
    problems.push_back({"compat", "ferry.toml",
                        fmt::format("compat.min_version {} is newer than compat.current_version {}",
                                    min, cur)});
  }
  return problems;
}

Result<HealthReport> Migrator::Health() {
  HealthReport h;
  auto add = [&h](std::string name, bool ok, std::string detail) {
    h.checks.push_back({std::move(name), ok, std::move(detail)});
    if (!ok) h.healthy = false;
  };
  auto info = conn_->Info();
  add("connect", info.ok(),
      info.ok() ? fmt::format("{} {}", info->engine, info->version) : info.status().message());
  auto report = CurrentStatus(/*metadata_only=*/true);
  if (!report.ok()) {
    add("history", false, report.status().message());
    return h;
  }
  add("history", true,
      report->history_exists ? fmt::format("{} readable", options_.history_table)
                             : fmt::format("{} not created yet (nothing applied)",
                                           options_.history_table));
  if (report->lock_holder) {
    bool stuck = report->lock_holder->held_ms > options_.lock_wait.count();
    add("lock", !stuck,
        fmt::format("held by {} since {} ({} s){}", report->lock_holder->who,
                    report->lock_holder->since, report->lock_holder->held_ms / 1000,
                    stuck ? "; longer than --lock-wait: is it stuck?" : ""));
  } else {
    add("lock", true, "free");
  }
  add("failed", report->failed == 0,
      report->failed == 0 ? "no failed migrations"
                          : fmt::format("{} failed migration(s): see 'ferry status'",
                                        report->failed));
  bool lock_free = !report->lock_holder.has_value();
  bool dead = report->running > 0 && lock_free;
  add("running", !dead,
      dead ? fmt::format("{} migration(s) marked running but no process holds the lock: the "
                         "runner died; 'ferry up' continues them",
                         report->running)
           : (report->running > 0 ? "a migration is running now" : "none running"));
  const std::string& min = options_.compat_min_version;
  const std::string& cur = options_.compat_current_version;
  const std::string& db = report->current_version;
  if (min.empty() && cur.empty()) {
    add("compatibility", true, "no compat range configured");
  } else if (db.empty()) {
    add("compatibility", min.empty(), fmt::format("database has no schema version; application "
                                                  "needs at least {}",
                                                  min));
  } else {
    bool too_old = !min.empty() && CompareVersionText(db, min) < 0;
    bool too_new = !cur.empty() && CompareVersionText(db, cur) > 0;
    add("compatibility", !too_old && !too_new,
        too_old   ? fmt::format("database is at {}, older than the minimum {}: run 'ferry up'", db,
                                min)
        : too_new ? fmt::format("database is at {}, newer than the application's {}: upgrade "
                                "the application",
                                db, cur)
                  : fmt::format("database at {} within [{}, {}]", db, min.empty() ? "-" : min,
                                cur.empty() ? "-" : cur));
  }
  add("pending", true, fmt::format("{} pending", report->pending));
  std::vector<ValidationProblem> drift;
  AddSchemaDrift(&drift);
  std::string detail;
  for (const ValidationProblem& p : drift) detail += (detail.empty() ? "" : "; ") + p.message;
  add("schema", drift.empty(),
      drift.empty() ? "the live schema holds what the applied migrations made"
                    : fmt::format("schema validation failed: {}", detail));
  return h;
}

void Migrator::AddSchemaDrift(std::vector<ValidationProblem>* problems) {
  if (conn_->traits().grammar() == SqlGrammar::kCql) return AddCqlSchemaDrift(problems);
  if (!conn_->traits().Has(Feature::kSqlTables)) return;  // no schema record (Recorded)
  SchemaRecord record(conn_.get(), options_.history_table);
  auto drift = record.Compare();
  if (!drift.ok()) {
    problems->push_back({"schema", record.table(),
                         fmt::format("cannot compare with the live schema: {}",
                                     drift.status().message())});
    return;
  }
  for (const SchemaDrift& d : *drift) problems->push_back({"schema", d.name, d.message});
}

// CQL keeps no schema record: what the applied up scripts made is read
// from the files and compared with system_schema (migrate/cql_schema.h).
void Migrator::AddCqlSchemaDrift(std::vector<ValidationProblem>* problems) {
  auto report = CurrentStatus(/*metadata_only=*/false);
  if (!report.ok()) return;  // the history problem is reported by the caller
  std::vector<CqlAppliedScript> applied;
  for (const PlanEntry& e : report->entries) {
    // A changed file no longer says what was applied (validate reports its
    // checksum): what it made is not judged.
    if (e.state == EntryState::kApplied && e.migration != nullptr) {
      applied.push_back({e.version, e.migration->up.sql});
    }
  }
  auto drift = CompareCqlSchema(*conn_, ExpectedCqlSchema(applied, url_.database()));
  if (!drift.ok()) {
    problems->push_back({"schema", "system_schema",
                         fmt::format("cannot compare with the live schema: {}",
                                     drift.status().message())});
    return;
  }
  for (const SchemaDrift& d : *drift) problems->push_back({"schema", d.name, d.message});
}

}  // namespace ferry
