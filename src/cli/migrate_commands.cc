// The migration commands: flags already parsed -> Migrator -> text or JSON.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/checkpoint_command.h"
#include "cli/context.h"
#include "cli/ddl_progress_json.h"
#include "cli/migrate_commands_internal.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/printable.h"
#include "core/url.h"
#include "migrate/migrator.h"
#include "migrate/scan_cache.h"
#include "migrate/status_memo.h"
#include "migrate/validate_files.h"
#include "observe/ddl_progress.h"
#include "move/expand.h"

namespace ferry::cli {
namespace {

using nlohmann::json;

void Out(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }
void Err(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stderr); }

}  // namespace

Result<MigratorOptions> OptionsFrom(const Context& ctx, const MigrateArgs& args) {
  MigratorOptions o;
  const Config& c = ctx.config;
  o.dir = c.Get("dir");
  o.history_table = c.Get("history_table");
  FERRY_ASSIGN_OR_RETURN(int64_t wait, ParseDurationMs(c.Get("lock_wait")));
  o.lock_wait = std::chrono::milliseconds(wait);
  FERRY_ASSIGN_OR_RETURN(int64_t agreement, ParseDurationMs(c.Get("schema_agreement_timeout")));
  o.schema_agreement_timeout = std::chrono::milliseconds(agreement);
  o.lock_timeout = c.Get("lock_timeout");
  o.statement_timeout = c.Get("statement_timeout");
  o.compat_min_version = c.Get("compat.min_version");
  o.compat_current_version = c.Get("compat.current_version");
  const std::string& unknown = c.Get("migrations.unknown_files");
  if (unknown != "ignore" && unknown != "error") {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("[migrations] unknown_files must be \"ignore\" or \"error\" "
                              "(found '{}')",
                              unknown));
  }
  o.ignore_unknown_files = unknown == "ignore";
  o.scan_cache_dir = c.Get("cache_dir");
  if (o.scan_cache_dir == "off") {
    o.scan_cache_dir.clear();
  } else if (o.scan_cache_dir.empty()) {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    if (xdg != nullptr && *xdg != '\0') {
      o.scan_cache_dir = std::string(xdg) + "/ferry";
    } else if (home != nullptr && *home != '\0') {
      o.scan_cache_dir = std::string(home) + "/.cache/ferry";
    }
  }
  o.dry_run = args.dry_run;
  o.online = MakeOnlineSteps({.discard_new_writes = args.discard_new_writes});
  o.single_transaction = args.single_transaction;
  o.allow_future = args.allow_future;
  o.out_of_order = args.out_of_order;
  int retries = std::atoi(c.Get("lock_retries").c_str());
  if (retries < 0 || c.Get("lock_retries").find_first_not_of("0123456789") != std::string::npos) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("lock_retries must be a count (found '{}')", c.Get("lock_retries")));
  }
  o.lock_retries = retries;
  FERRY_ASSIGN_OR_RETURN(int64_t retry_delay, ParseDurationMs(c.Get("lock_retry_delay")));
  o.lock_retry_delay = std::chrono::milliseconds(retry_delay);
  o.lint = c.Get("lint.enforce") != "false";
  o.allow_unsafe = args.allow_unsafe;
  o.backup = args.backup;
  FERRY_ASSIGN_OR_RETURN(o.lint_options, LintOptionsFromConfig(c));
  return o;
}

namespace {

json EventJson(const std::string& type, const MigrationStep& e, int64_t duration_ms) {
  json j = {{"event", type}, {"version", e.version}, {"script", e.script}};
  if (!e.description.empty()) j["description"] = e.description;
  if (e.statement) j["statement"] = e.statement;
  if (e.statements) j["statements"] = e.statements;
  if (type == "migration_done" || type == "undo_done" || type == "migration_failed") {
    j["duration_ms"] = duration_ms;
  }
  if (type == "migration_done" || type == "undo_done") j["rows_affected"] = e.rows_affected;
  if (!e.message.empty()) j["message"] = e.message;
  return j;
}

// The text or JSON progress of migration commands: a consumer of the bus
// for the events the migrator publishes (its own steps, lint findings and
// the online steps it runs; a backfill's batches are not printed).
EventBus::Consumer MakeProgressPrinter(const Context& ctx) {
  auto printed = [](const Event& event) {
    return event.migration.has_value() && event.kind != EventKind::kBackfill;
  };
  if (ctx.json) {
    return [printed](const Event& event) {
      if (!printed(event)) return;
      json j = EventJson(event.type, *event.migration, event.duration_ms);
      if (auto progress = DdlProgressOf(event)) j["progress"] = DdlProgressJson(*progress);
      PrintJson(j);
    };
  }
  if (ctx.quiet) return [](const Event&) {};
  auto throttle = std::make_shared<DdlProgressThrottle>();
  return [printed, throttle](const Event& event) {
    if (!printed(event)) return;
    const MigrationStep& e = *event.migration;
    if (auto progress = DdlProgressOf(event)) {  // throttled: a line per phase, one per 2 s
      if (throttle->Due(*progress, DdlProgressThrottle::Clock::now())) {
        Err(fmt::format("ferry: {}: {}\n", Printable(e.script), Printable(e.message)));
      }
      return;
    }
    const std::string& type = event.type;
    const int64_t duration_ms = event.duration_ms;
    std::string label = Printable(e.version.empty() ? e.script : e.version);
    if (type == "migration_started") {
      Err(fmt::format("-> {} {}{}\n", label, Printable(e.description),
                      e.message.empty() ? "" : " (no transaction: " + e.message + ")"));
    } else if (type == "migration_done") {
      Err(fmt::format("   done in {} ms, {} statement{}, {} row{} affected\n", duration_ms,
                      e.statements, e.statements == 1 ? "" : "s", e.rows_affected,
                      e.rows_affected == 1 ? "" : "s"));
    } else if (type == "statement_done") {
      Err(fmt::format("   statement {}/{} done\n", e.statement, e.statements));
    } else if (type == "migration_failed" || type == "undo_failed") {
      Err(fmt::format("   FAILED after {} ms\n", duration_ms));
    } else if (type == "undo_started") {
      Err(fmt::format("<- {} {} (down)\n", label, Printable(e.description)));
    } else if (type == "undo_done") {
      Err(fmt::format("   rolled back in {} ms\n", duration_ms));
    } else if (type == "notice") {
      Err(fmt::format("   {}\n", PrintableLines(e.message)));  // "NOTICE: 40% of users done"
    } else if (!e.message.empty()) {
      Err(fmt::format("   {}\n", e.message));
    }
  };
}

json EntryJson(const PlanEntry& e) {
  json j = {{"state", std::string(EntryStateName(e.state))},
            {"version", e.version},
            {"description", e.description},
            {"script", e.script},
            {"kind", e.kind}};
  if (e.migration) {
    j["checksum"] = e.migration->checksum;
    j["rollback_available"] = e.migration->down.has_value();
  }
  if (e.row) {
    j["applied_at"] = e.row->completed_at;
    j["applied_by"] = e.row->applied_by;
    j["duration_ms"] = e.row->duration_ms;
    if (e.migration == nullptr) j["checksum"] = e.row->checksum;
    if (e.state == EntryState::kChanged) j["applied_checksum"] = e.row->checksum;
    if (!e.row->error_message.empty()) j["error"] = e.row->error_message;
    if (e.row->execution == Execution::kNoTransaction || e.row->execution == Execution::kOwnTransactions) {
      j["statements_done"] = e.row->statements_done;
    }
  }
  return j;
}

json StatusJsonOf(const StatusReport& r) {
  json entries = json::array();
  for (const auto& e : r.entries) entries.push_back(EntryJson(e));
  json lock = nullptr;
  if (r.lock_holder) {
    lock = {{"pid", r.lock_holder->pid},
            {"who", r.lock_holder->who},
            {"since", r.lock_holder->since},
            {"held_ms", r.lock_holder->held_ms}};
  }
  return {{"database", r.database},
          {"current_version", r.current_version},
          {"newest_file_version", r.newest_file_version},
          {"history_exists", r.history_exists},
          {"applied", r.applied},
          {"pending", r.pending},
          {"changed", r.changed},
          {"missing", r.missing},
          {"failed", r.failed},
          {"running", r.running},
          {"out_of_order", r.out_of_order},
          {"future_database", r.future_database},
          {"lock", lock},
          {"migrations", entries},
          {"ignored_files", r.files ? r.files->ignored : std::vector<std::string>()}};
}

// Applied migrations listed by `status` without --all: the newest ones.
constexpr int kAppliedShown = 10;

// Status text in three parts: the memo (migrate/status_memo.h) keeps the
// first and last, the lock line is read live.
struct StatusTextParts {
  std::string head;  // database, version and counts
  std::string body;  // the table of migrations, warnings
};

std::string LockLine(const std::optional<LockHolder>& holder) {
  if (holder) return fmt::format("lock      held by {} since {}\n", holder->who, holder->since);
  return "lock      free\n";
}

StatusTextParts StatusTextOf(const StatusReport& r, bool all) {
  StatusTextParts parts;
  std::string& out = parts.head;
  out = fmt::format("database  {}\n", r.database);
  out += fmt::format("version   {} ({} applied, {} pending", r.current_version.empty() ? "none"
                                                                                     : r.current_version,
                     r.applied, r.pending);
  if (r.changed) out += fmt::format(", {} changed", r.changed);
  if (r.missing) out += fmt::format(", {} missing", r.missing);
  if (r.failed) out += fmt::format(", {} failed", r.failed);
  if (r.running) out += fmt::format(", {} running", r.running);
  if (r.out_of_order) out += fmt::format(", {} out of order", r.out_of_order);
  out += ")\n";
  std::string& body = parts.body;
  if (r.entries.empty() && (!r.files || r.files->ignored.empty())) {
    body = "no migrations yet: create one with 'ferry new NAME'\n";
    return parts;
  }
  size_t vw = 7;
  for (const auto& e : r.entries) vw = std::max(vw, e.version.size());
  body += fmt::format("\n  {:<15} {:<{}}  {:<24}  {}\n", "STATE", "VERSION", vw, "APPLIED AT", "SCRIPT");
  // Without --all, plain applied rows older than the newest few are folded.
  int applied_total = 0;
  for (const auto& e : r.entries) applied_total += e.state == EntryState::kApplied ? 1 : 0;
  int skip = all ? 0 : std::max(0, applied_total - kAppliedShown);
  if (skip > 0) {
    body += fmt::format("  ({} older applied migration{} not shown: ferry status --all)\n", skip,
                       skip == 1 ? "" : "s");
  }
  for (const auto& e : r.entries) {
    if (skip > 0 && e.state == EntryState::kApplied) {
      --skip;
      continue;
    }
    std::string when = e.row && (e.state == EntryState::kApplied || e.state == EntryState::kChanged ||
                                 e.state == EntryState::kMissing || e.state == EntryState::kBaseline)
                           ? e.row->completed_at
                           : "";
    body += fmt::format("  {:<15} {:<{}}  {:<24}  {}\n", EntryStateName(e.state),
                        Printable(e.version), vw, when, Printable(e.script));
    if (e.state == EntryState::kFailed && e.row) {
      body += fmt::format("      error: {}\n", Printable(e.row->error_message));
    }
    if (e.state == EntryState::kChanged && e.row) {
      body += "      file changed after it was applied: restore it or run 'ferry repair'\n";
    }
  }
  if (r.files && !r.files->ignored.empty()) {
    body += fmt::format("\nignored   {} .sql file{} fitting no migration layout "
                        "(unknown_files = \"ignore\"): {}\n",
                        r.files->ignored.size(), r.files->ignored.size() == 1 ? "" : "s",
                        fmt::join(r.files->ignored, ", "));
  }
  if (r.future_database) {
    body += fmt::format("\ndatabase is at {}, newer than the newest migration file {}: upgrade the "
                       "application\n",
                       r.current_version, r.newest_file_version);
  }
  return parts;
}

std::string StatusText(const StatusReport& r, bool all = true) {
  StatusTextParts parts = StatusTextOf(r, all);
  return parts.head + LockLine(r.lock_holder) + parts.body;
}

std::string PlanText(const std::vector<PlannedStep>& steps) {
  if (steps.empty()) return "-- nothing to do\n";
  std::string out;
  for (const auto& s : steps) {
    out += fmt::format("-- {} {} ({}, {})\n", s.direction,
                       Printable(s.version.empty() ? s.script : s.version), Printable(s.script),
                       s.execution);
    bool tx = s.execution == Execution::kTransaction;
    if (tx) out += "BEGIN;\n";
    for (size_t i = 0; i < s.statements.size(); ++i) {
      out += fmt::format("-- line {}\n{};\n", s.lines[i], s.statements[i]);
    }
    out += "-- + history row in the history table\n";
    if (tx) out += "COMMIT;\n";
    out += "\n";
  }
  return out;
}

json PlanJson(const std::vector<PlannedStep>& steps) {
  json arr = json::array();
  for (const auto& s : steps) {
    json stmts = json::array();
    for (size_t i = 0; i < s.statements.size(); ++i) {
      stmts.push_back({{"line", s.lines[i]}, {"sql", s.statements[i]}});
    }
    arr.push_back({{"version", s.version},
                   {"script", s.script},
                   {"direction", s.direction},
                   {"execution", s.execution},
                   {"statements", stmts}});
  }
  return arr;
}

json ChecksJson(const HealthReport& h) {
  json checks = json::array();
  for (const auto& c : h.checks) {
    checks.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
  }
  return checks;
}

json HistoryRowJson(const HistoryRow& r) {
  return {{"id", r.id},
          {"version", r.version},
          {"description", r.description},
          {"script", r.script},
          {"kind", r.kind},
          {"checksum", r.checksum},
          {"status", r.status},
          {"started_at", r.started_at},
          {"completed_at", r.completed_at},
          {"duration_ms", r.duration_ms},
          {"rows_affected", r.rows_affected},
          {"error_message", r.error_message},
          {"applied_by", r.applied_by},
          {"rollback_available", r.rollback_available},
          {"statements_done", r.statements_done},
          {"execution", r.execution},
          {"note", r.note},
          {"attempts", r.attempts}};
}

int ApplyOutput(const Context& ctx, const char* verb, const Result<ApplyResult>& r) {
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  const std::string& version = r->current_version;
  if (!r->dry_run) {
    ctx.bus->Publish(SchemaVersionEvent(DatabaseLabel(ctx.config.Get("database")),
                                        version.empty() ? "none" : version));
  }
  if (ctx.json) {
    PrintJson({{"ok", true},
               {"dry_run", r->dry_run},
               {"applied", r->applied},
               {"rolled_back", r->rolled_back},
               {"duration_ms", r->duration_ms},
               {"current_version", version},
               {"backup", r->backup_path}});
    return kExitOk;
  }
  if (!r->backup_path.empty()) Out(fmt::format("schema backed up to {}\n", r->backup_path));
  // goto moves either way: what it did is whichever list is not empty.
  const bool down = std::string(verb) == "rolled back" ||
                    (std::string(verb) == "moved through" && !r->rolled_back.empty());
  const auto& list = down ? r->rolled_back : r->applied;
  if (r->dry_run) {
    Out(list.empty() ? "dry run: nothing to do\n"
                     : fmt::format("dry run: would {} {} migration{}: {}\n",
                                   down ? "roll back" : "apply",
                                   list.size(), list.size() == 1 ? "" : "s",
                                   fmt::join(list, ", ")));
    return kExitOk;
  }
  if (std::string(verb) == "redone") {
    Out(fmt::format("rolled back {} and applied {} migration(s) in {} ms; now at {}\n",
                    r->rolled_back.size(), r->applied.size(), r->duration_ms,
                    version.empty() ? "no version" : version));
    return kExitOk;
  }
  if (std::string(verb) == "moved through" && !r->rolled_back.empty()) {
    // goto to a lower version rolls back; say so, newest first.
    Out(fmt::format("rolled back {} migration{} ({}) in {} ms; database is at {}\n",
                    r->rolled_back.size(), r->rolled_back.size() == 1 ? "" : "s",
                    fmt::join(r->rolled_back, ", "), r->duration_ms,
                    version.empty() ? "no version" : version));
  } else if (list.empty()) {
    Out(fmt::format("nothing to do; database is at {}\n", version.empty() ? "no version" : version));
  } else {
    Out(fmt::format("{} {} migration{} in {} ms; database is at {}\n",
                    std::string(verb) == "moved through" ? "applied" : verb, list.size(),
                    list.size() == 1 ? "" : "s", r->duration_ms,
                    version.empty() ? "no version" : version));
  }
  return kExitOk;
}

bool NeedsAttention(const StatusReport& r) {
  return r.pending > 0 || r.has_drift() || r.failed > 0 || r.out_of_order > 0 || r.running > 0;
}

// `ferry status`. On PostgreSQL, text output comes from the status memo
// (migrate/status_memo.h) when neither the files nor the history changed:
// one query, whatever the history's length. Payload: "<attention 0|1>\n",
// the head, a NUL, the body.
int RunStatus(const Context& ctx, const MigrateArgs& args, Migrator& m,
              std::future<std::optional<uint64_t>> signature_future) {
  Connection& conn = *m.connection();
  const MigratorOptions& o = m.options();
  std::optional<uint64_t> signature;
  if (signature_future.valid()) signature = signature_future.get();
  if (ctx.json) {
    Migrator::StatusInputs inputs;
    inputs.dir_signature = signature;
    auto r = m.CurrentStatus(inputs);
    if (!r.ok()) return ReportError(r.status(), ctx.json);
    json j = StatusJsonOf(*r);
    j["expand"] = ExpandStatusJson(conn);
    j["ok"] = true;
    PrintJson(j);
    return args.exit_code && NeedsAttention(*r) ? kExitPending : kExitOk;
  }
  Migrator::MemoRequest request;
  request.mode = std::string(args.all ? "text-all" : "text") +
                 (o.ignore_unknown_files ? "-ignore-unknown" : "");
  request.dir_signature = signature;
  request.extra = {ExpandStateTableExistsSql()};
  auto v = m.StatusThroughMemo(request, [&](const StatusReport& r) {
    StatusTextParts parts = StatusTextOf(r, args.all);
    return Migrator::StatusText{parts.head, parts.body, NeedsAttention(r)};
  });
  if (!v.ok()) return ReportError(v.status(), ctx.json);
  std::optional<bool> expand_table;
  if (!v->extra.empty()) expand_table = v->extra.at(0);
  Out(v->text.head + LockLine(v->lock_holder) + v->text.body +
      ExpandStatusText(conn, expand_table));
  return args.exit_code && v->text.attention ? kExitPending : kExitOk;
}

// `validate` with no database to read: none configured (the default
// sqlite:ferry.db would be created by opening it). Then the files alone are
// judged, by the engine from --engine, ferry.toml / FERRY_ENGINE, or SQLite
// (the default database), and the output says which.
struct OfflineEngine {
  std::string engine;
  std::string from;    // "--engine", "ferry.toml:3", ...
  std::string reason;  // why there is no database
};

std::optional<OfflineEngine> OfflineValidation(const Context& ctx, const MigrateArgs& args) {
  const Config::Setting& db = ctx.config.GetSetting("database");
  // A database that was named (flag, environment, ferry.toml) is opened: a
  // mistyped SQLite path is then an error naming it, not a silent offline check.
  if (db.source != ConfigSource::kDefault && !db.value.empty()) return std::nullopt;
  OfflineEngine out;
  out.reason = "no database given (--database, DATABASE_URL or database in ferry.toml)";
  const Config::Setting& configured = ctx.config.GetSetting("engine");
  if (!args.engine.empty()) {
    out.engine = args.engine;
    out.from = "--engine";
  } else if (!configured.value.empty()) {
    out.engine = configured.value;
    out.from = configured.origin.empty() ? std::string(ConfigSourceName(configured.source))
                                         : configured.origin;
  } else {
    out.engine = "sqlite";
    out.from = "the default database; for PostgreSQL files set engine = \"postgres\" in "
               "ferry.toml or pass --engine postgres";
  }
  return out;
}

int RunValidateOffline(const Context& ctx, const MigratorOptions& options,
                       const OfflineEngine& offline) {
  auto problems = ValidateFiles(options, offline.engine);
  if (!problems.ok()) {
    return ReportError(Status(problems.status()).Prefix("engine from " + offline.from), ctx.json);
  }
  if (ctx.json) {
    json arr = json::array();
    for (const auto& p : *problems) {
      arr.push_back({{"kind", p.kind}, {"script", p.script}, {"message", p.message}});
    }
    PrintJson({{"ok", problems->empty()},
               {"engine", offline.engine},
               {"engine_from", offline.from},
               {"database", nullptr},
               {"no_database", offline.reason},
               {"problems", arr}});
    return problems->empty() ? kExitOk : kExitPending;
  }
  Out(fmt::format("engine    {} (from {})\n", offline.engine, offline.from));
  Out(fmt::format("database  none: {}; checked the files only (applied checksums, history and "
                  "the live schema need a database)\n",
                  offline.reason));
  if (problems->empty()) {
    Out(fmt::format("valid: every file parses as {} SQL\n", offline.engine));
  } else {
    for (const auto& p : *problems) Out(fmt::format("{}: {}: {}\n", p.script, p.kind, p.message));
    Out(fmt::format("{} problem{}\n", problems->size(), problems->size() == 1 ? "" : "s"));
  }
  return problems->empty() ? kExitOk : kExitPending;
}

// `ferry history`: the history rows (the newest --limit).
int RunHistory(const Context& ctx, const MigrateArgs& args, Migrator& m) {
  auto rows = m.ListHistory();
  if (!rows.ok()) return ReportError(rows.status(), ctx.json);
  size_t begin = 0;
  if (args.limit > 0 && rows->size() > static_cast<size_t>(args.limit)) {
    begin = rows->size() - static_cast<size_t>(args.limit);
  }
  if (ctx.json) {
    json arr = json::array();
    for (size_t i = begin; i < rows->size(); ++i) arr.push_back(HistoryRowJson((*rows)[i]));
    PrintJson({{"ok", true}, {"history", arr}});
    return kExitOk;
  }
  if (rows->empty()) {
    Out("no history yet: nothing has been applied\n");
    return kExitOk;
  }
  std::string out = fmt::format("  {:>4}  {:<16} {:<11} {:<12} {:>8}  {:<24}  {:<22}  {}\n", "ID",
                                "VERSION", "KIND", "STATUS", "MS", "COMPLETED AT", "BY", "SCRIPT");
  for (size_t i = begin; i < rows->size(); ++i) {
    const HistoryRow& r = (*rows)[i];
    out += fmt::format("  {:>4}  {:<16} {:<11} {:<12} {:>8}  {:<24}  {:<22}  {}\n", r.id,
                       r.version, r.kind, r.status, r.duration_ms, r.completed_at, r.applied_by,
                       r.script);
    if (!r.error_message.empty()) out += fmt::format("        error: {}\n", r.error_message);
    if (!r.note.empty()) out += fmt::format("        note: {}\n", r.note);
  }
  Out(out);
  return kExitOk;
}

// `ferry validate` with a database.
int RunValidate(const Context& ctx, Migrator& m) {
  auto problems = m.Validate();
  if (!problems.ok()) return ReportError(problems.status(), ctx.json);
  if (ctx.json) {
    json arr = json::array();
    for (const auto& p : *problems) {
      arr.push_back({{"kind", p.kind}, {"script", p.script}, {"message", p.message}});
    }
    PrintJson({{"ok", problems->empty()}, {"problems", arr}});
  } else if (problems->empty()) {
    // Engines without SQL tables keep no schema record (docs/cql.md).
    Out(m.connection()->traits().Has(Feature::kSqlTables)
            ? "valid: every file parses, applied checksums match, order and compatibility are "
              "fine, and the live schema holds what the migrations made\n"
            : "valid: every file parses, applied checksums match, order and compatibility are "
              "fine (no schema drift check on this engine)\n");
  } else {
    for (const auto& p : *problems) {
      Out(p.kind == "schema" ? fmt::format("schema validation failed: {}\n", PrintableLines(p.message))
                             : fmt::format("{}: {}: {}\n", Printable(p.script), p.kind, PrintableLines(p.message)));
    }
    Out(fmt::format("{} problem{}\n", problems->size(), problems->size() == 1 ? "" : "s"));
  }
  return problems->empty() ? kExitOk : kExitPending;
}

// `ferry plan`: the exact statements up (or --down) would run.
int RunPlan(const Context& ctx, const MigrateArgs& args, Migrator& m) {
  int steps = args.target.empty() || args.steps_given ? args.steps : 0;
  auto plan = args.down ? m.PlanDown(steps, args.target) : m.PlanUp(args.target);
  if (!plan.ok()) return ReportError(plan.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true}, {"steps", PlanJson(*plan)}});
  } else {
    Out(PlanText(*plan));
  }
  return kExitOk;
}

// `ferry baseline`.
int RunBaseline(const Context& ctx, const MigrateArgs& args, Migrator& m) {
  Status s = m.Baseline(args.target, args.description);
  if (!s.ok()) return ReportError(s, ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true}, {"baseline", args.target}});
  } else {
    Out(fmt::format("baseline {} recorded: migrations up to {} count as applied\n", args.target,
                    args.target));
  }
  return kExitOk;
}

// `ferry repair`.
int RunRepair(const Context& ctx, const MigrateArgs& args, Migrator& m) {
  auto changed = m.Repair(args.reason);
  if (!changed.ok()) return ReportError(changed.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true}, {"changes", *changed}});
  } else if (changed->empty()) {
    Out("nothing to repair\n");
  } else {
    for (const auto& c : *changed) Out(c + "\n");
  }
  return kExitOk;
}

// `ferry health`: every check, and the exit code it sets.
int RunHealth(const Context& ctx, Migrator& m) {
  auto h = m.Health();
  if (!h.ok()) return ReportError(h.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", h->healthy}, {"healthy", h->healthy}, {"checks", ChecksJson(*h)}});
  } else {
    for (const auto& c : h->checks) {
      Out(fmt::format("  {:<8} {:<14} {}\n", c.ok ? "ok" : "FAIL", c.name, c.detail));
    }
    Out(h->healthy ? "healthy\n" : "unhealthy\n");
  }
  return h->healthy ? kExitOk : kExitNeedsHuman;
}

// `ferry report`: status, history and health as JSON or a summary.
int RunReport(const Context& ctx, const MigrateArgs& args, Migrator& m) {
  auto status = m.CurrentStatus(/*metadata_only=*/true);
  if (!status.ok()) return ReportError(status.status(), ctx.json);
  auto rows = m.ListHistory();
  if (!rows.ok()) return ReportError(rows.status(), ctx.json);
  auto health = m.Health();
  if (!health.ok()) return ReportError(health.status(), ctx.json);
  if (!args.format.empty() && !args.format_word.empty() && args.format != args.format_word) {
    return ReportError(Status(StatusCode::kInvalidArgument,
                              fmt::format("report {} --format {}: give the format once",
                                          args.format_word, args.format)),
                       ctx.json);
  }
  std::string format = !args.format.empty()        ? args.format
                       : !args.format_word.empty() ? args.format_word
                       : ctx.json                  ? "json"
                                                   : "summary";
  if (format == "json") {
    json hist = json::array();
    for (const auto& r : *rows) hist.push_back(HistoryRowJson(r));
    json checks = ChecksJson(*health);
    json j = {{"ok", true},
              {"ferry_version", FERRY_VERSION},
              {"generated_at", History::Now()},
              {"status", StatusJsonOf(*status)},
              {"history", hist},
              {"health", {{"healthy", health->healthy}, {"checks", checks}}}};
    PrintJson(j);
    return kExitOk;
  }
  if (format != "summary") {
    return ReportError(Status(StatusCode::kInvalidArgument,
                              "unknown report format '" + format +
                                  "': use 'ferry report json' or 'ferry report summary'"),
                       ctx.json);
  }
  int64_t total_ms = 0;
  int failures = 0;
  for (const auto& r : *rows) {
    total_ms += r.duration_ms;
    failures += r.status == HistoryStatus::kFailed ? 1 : 0;
  }
  std::string out = "ferry migration report\n";
  out += StatusText(*status);
  out += fmt::format("\nhistory: {} rows, {} ms spent applying, {} failed attempt(s) on record\n",
                     rows->size(), total_ms, failures);
  out += fmt::format("health: {}\n", health->healthy ? "healthy" : "UNHEALTHY");
  for (const auto& c : health->checks) {
    if (!c.ok) out += fmt::format("  {}: {}\n", c.name, c.detail);
  }
  Out(out);
  return kExitOk;
}

}  // namespace

int RunMigrateCommand(const Context& ctx, const std::string& command, const MigrateArgs& args) {
  if (command == "init") return RunInit(ctx);
  if (command == "new") return RunNew(ctx, args);
  if (command == "complete") return RunComplete(ctx, args);

  auto options = OptionsFrom(ctx, args);
  if (!options.ok()) return ReportError(options.status(), ctx.json);
  // status: the directory is listed while the connection is made (the
  // server starting a backend is most of a status run).
  std::future<std::optional<uint64_t>> signature;
  if (command == "status" && !options->scan_cache_dir.empty()) {
    signature = std::async(std::launch::async,
                           [dir = options->dir, cache = options->scan_cache_dir] {
                             return DirectorySignature(dir, SignatureOptions{cache});
                           });
  }
  if (command == "validate") {
    if (std::optional<OfflineEngine> offline = OfflineValidation(ctx, args)) {
      return RunValidateOffline(ctx, *options, *offline);
    }
  }
  options->short_session = command == "status" || command == "history" ||
                           command == "validate" || command == "report" || command == "health";
  // These only read: a mistyped SQLite path is an error, never a new file.
  options->read_only = command == "status" || command == "history" || command == "validate";
  auto opened = Migrator::Open(ctx.config.Get("database"), *options);
  if (!opened.ok()) return ReportError(opened.status(), ctx.json);
  Migrator& m = **opened;
  ScopedSubscription printer(*ctx.bus, MakeProgressPrinter(ctx));
  m.SetEventBus(ctx.bus);

  if (command == "up" && (args.checkpoint || args.auto_rollback)) return RunGuardedUp(ctx, args, m);
  if (command == "up") return ApplyOutput(ctx, "applied", m.Up(args.target));
  if (command == "down") {
    int steps = args.target.empty() || args.steps_given ? args.steps : 0;
    if (!args.target.empty() && args.steps_given) {
      return ReportError(Status(StatusCode::kInvalidArgument, "give --steps or --to, not both"),
                         ctx.json);
    }
    return ApplyOutput(ctx, "rolled back", m.Down(steps, args.target));
  }
  if (command == "redo") return ApplyOutput(ctx, "redone", m.Redo(args.steps));
  if (command == "goto") return ApplyOutput(ctx, "moved through", m.Goto(args.target));
  if (command == "abort") return ApplyOutput(ctx, "rolled back", AbortExpand(m, args.target));

  if (command == "status") return RunStatus(ctx, args, m, std::move(signature));
  if (command == "history") return RunHistory(ctx, args, m);
  if (command == "validate") return RunValidate(ctx, m);
  if (command == "plan") return RunPlan(ctx, args, m);
  if (command == "baseline") return RunBaseline(ctx, args, m);
  if (command == "repair") return RunRepair(ctx, args, m);
  if (command == "health") return RunHealth(ctx, m);
  if (command == "report") return RunReport(ctx, args, m);
  return ReportError(Status(StatusCode::kInternal, "unknown migrate command " + command), ctx.json);
}

}  // namespace ferry::cli

