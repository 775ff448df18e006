// EnsureReady: the start-up entry point of include/ferry/ferry.h.
#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <exception>
#include <optional>
#include <set>
#include <string>

#include "core/config.h"
#include "ferry/ferry.h"
#include "migrate/migrator.h"

namespace ferry {
namespace {

int CompareVersions(const std::string& a, const std::string& b) {
  auto va = Version::Parse(a);
  auto vb = Version::Parse(b);
  if (!va.ok() || !vb.ok()) return a < b ? -1 : (a == b ? 0 : 1);
  auto c = *va <=> *vb;
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// Applied versions newer than every file: what a newer release applied.
std::set<std::string> FutureScripts(const StatusReport& report) {
  std::set<std::string> out;
  for (const PlanEntry& e : report.entries) {
    if (e.state != EntryState::kMissing) continue;
    if (report.newest_file_version.empty() ||
        CompareVersions(e.version, report.newest_file_version) > 0) {
      out.insert(e.script);
    }
  }
  return out;
}

// The value of the first of `names` that is set, with the name it came from.
std::optional<std::pair<std::string, std::string>> FirstSet(
    std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') {
      return std::make_pair(std::string(name), std::string(v));
    }
  }
  return std::nullopt;
}

Result<bool> ParseFlag(const std::string& name, const std::string& value) {
  std::string v;
  for (char c : value) v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  return Status(StatusCode::kInvalidArgument,
                fmt::format("{}={:?}: give true or false", name, value));
}

Result<ReadyReport> EnsureReadyImpl(std::string_view url, std::string_view dir,
                                    const EnsureReadyOptions& options) {
  auto start = std::chrono::steady_clock::now();
  MigratorOptions mo;
  mo.dir = std::string(dir);
  mo.history_table = options.history_table;
  mo.lock_wait = options.timeout;
  mo.compat_min_version = options.min_version;
  mo.compat_current_version = options.current_version;
  mo.allow_future = options.allow_downgrade;
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<Migrator> migrator,
                         Migrator::Open(std::string(url), mo));
  ReadyReport report;
  FERRY_ASSIGN_OR_RETURN(StatusReport before, migrator->CurrentStatus(/*metadata_only=*/true));
  report.version_before = before.current_version;
  if (options.validate) {
    FERRY_ASSIGN_OR_RETURN(std::vector<ValidationProblem> problems, migrator->Validate());
    const std::set<std::string> future = FutureScripts(before);
    for (const auto& p : problems) {
      // Pending out-of-order files and compat notes are decided below.
      if (p.kind == "order" || p.kind == "compat") continue;
      if (options.allow_downgrade && p.kind == "missing" && future.count(p.script) > 0) {
        report.notes.push_back(fmt::format("{}: {} (a newer release applied it; allow_downgrade)",
                                           p.script, p.message));
        continue;
      }
      report.problems.push_back(fmt::format("{}: {}", p.script, p.message));
    }
    if (!report.problems.empty()) {
      return Status(StatusCode::kFailedPrecondition,
                    "migrations are not valid: " + report.problems.front())
          .With("problems", std::to_string(report.problems.size()));
    }
  }
  if (options.auto_migrate) {
    // The schema backup is written only when there is something to apply
    // (not at every start): the migrator that applies is opened with it.
    if (!options.backup_path.empty() && before.pending + before.out_of_order > 0) {
      mo.backup = options.backup_path;
      migrator.reset();
      FERRY_ASSIGN_OR_RETURN(migrator, Migrator::Open(std::string(url), mo));
    }
    FERRY_ASSIGN_OR_RETURN(ApplyResult applied, migrator->Up());
    report.applied = applied.applied;
    report.backup_path = applied.backup_path;
  }
  FERRY_ASSIGN_OR_RETURN(StatusReport after, migrator->CurrentStatus(/*metadata_only=*/true));
  report.version_after = after.current_version;
  report.pending = after.pending + after.out_of_order + after.failed + after.running;
  if (report.pending > 0) {
    report.problems.push_back(fmt::format("{} migration(s) pending", report.pending));
  }
  const std::string& db = after.current_version;
  if (!options.min_version.empty() && (db.empty() || CompareVersions(db, options.min_version) < 0)) {
    report.problems.push_back(fmt::format("schema version {} is older than the minimum supported "
                                          "{}",
                                          db.empty() ? "(none)" : db, options.min_version));
  }
  if (!options.current_version.empty() && !db.empty() &&
      CompareVersions(db, options.current_version) > 0) {
    std::string newer = fmt::format("schema version {} is newer than this application's {}", db,
                                    options.current_version);
    if (options.allow_downgrade) {
      report.notes.push_back(newer + ": running anyway (allow_downgrade)");
    } else {
      report.problems.push_back(newer + ": upgrade the application first, or allow downgrade");
    }
  }
  report.ready = report.problems.empty();
  report.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  return report;
}

}  // namespace

Result<ReadyReport> EnsureReady(std::string_view url, std::string_view migrations_dir,
                                const EnsureReadyOptions& options) {
  try {
    return EnsureReadyImpl(url, migrations_dir, options);
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, fmt::format("unexpected exception: {}", e.what()));
  }
}

std::string_view LibraryVersion() { return FERRY_VERSION; }

Result<EnsureReadyOptions> EnsureReadyOptionsFromEnv(EnsureReadyOptions base) {
  if (auto v = FirstSet({"FERRY_AUTO_MIGRATE", "SCYLLADB_AUTO_MIGRATE"})) {
    FERRY_ASSIGN_OR_RETURN(base.auto_migrate, ParseFlag(v->first, v->second));
  }
  if (auto v = FirstSet({"FERRY_VALIDATE_SCHEMA", "SCYLLADB_VALIDATE_SCHEMA"})) {
    FERRY_ASSIGN_OR_RETURN(base.validate, ParseFlag(v->first, v->second));
  }
  if (auto v = FirstSet({"FERRY_ALLOW_DOWNGRADE", "SCYLLADB_ALLOW_DOWNGRADE"})) {
    FERRY_ASSIGN_OR_RETURN(base.allow_downgrade, ParseFlag(v->first, v->second));
  }
  if (auto v = FirstSet({"FERRY_BACKUP_BEFORE_MIGRATION", "SCYLLADB_BACKUP_BEFORE_MIGRATION"})) {
    base.backup_path = v->second;
  }
  if (auto v = FirstSet({"FERRY_MIGRATION_TIMEOUT", "SCYLLADB_MIGRATION_TIMEOUT"})) {
    auto ms = ParseDurationMs(v->second);
    if (!ms.ok()) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("{}={:?}: give a duration such as 30s or 5m", v->first,
                                v->second));
    }
    base.timeout = std::chrono::milliseconds(*ms);
  }
  return base;
}

}  // namespace ferry
