// The ferry program: parses the command line, loads configuration, calls the
// library and renders text or --json. The only file that includes CLI11.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/argv_secrets.h"
#include "cli/command_table.h"
#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "cli/run_metrics.h"
#include "core/config.h"
#include "core/log.h"
#include "drivers/registry.h"
#include "observe/event.h"

namespace ferry::cli {
namespace {

constexpr const char* kOverview = R"(ferry changes production databases safely: versioned schema migrations
with history, checksums, locks and rollback, and a linter for changes that
lock or rewrite tables. PostgreSQL first, SQLite embedded (the default:
./ferry.db).

Commands, each with an example:
  init       ferry init                      create ./migrations, ferry.toml, history table
  new        ferry new add_users_email       create the next migration file
  up         ferry up --to 20260101120000    apply pending migrations (alias: migrate)
  down       ferry down --steps 1            roll back the newest migration (alias: rollback)
  redo       ferry redo                      roll back the newest, then apply it again
  goto       ferry goto 1.1.0                move up or down to exactly this version
  complete   ferry complete                  finish expand changes: drop old columns, rename
  abort      ferry abort                     undo an open expand change (no write is lost)
  status     ferry status --exit-code        applied, pending, changed, missing, lock holder
  history    ferry history --limit 20        every apply, failure and rollback with who and when
  validate   ferry validate                  files parse, checksums match, order, compatibility
  plan       ferry plan                      the exact SQL 'up' would run (--down for 'down')
  lint       ferry lint --format sarif       lock, rewrite and breakage risks in migrations
  backfill   ferry backfill --table users --set "b = a" --where "b IS NULL"
             update rows in small resumable primary-key batches
  copy       ferry copy --from postgres://db1/app --to postgres://db2/app --table users
             copy tables in resumable chunks (PostgreSQL, SQLite), with progress
  verify     ferry verify --from postgres://db1/app --to sqlite:copy.db --table users
             compare two tables row by row (hashes in each database, then bisection)
  baseline   ferry baseline 1.0.0            mark an existing database as being at a version
  repair     ferry repair --reason "..."     accept changed checksums, clear failed attempts
  report     ferry report --format json      status, history and health in one document
  health     ferry health                    connection, lock, failures, compatibility
  doctor     ferry doctor postgres://app@db.internal/app
             connect and list the capabilities ferry relies on
  redis      ferry redis copy --from redis://old:6379 --to redis+cluster://n1:7000,n2:7000
             copy or verify Redis keys (standalone or cluster) with exact TTLs, resumable
  recommend  ferry recommend --json          ranked advice with SQL: keys, indexes, bloat, history
  partition  ferry partition maintain --dry-run
             keep the RANGE partitions declared in ferry.toml: premake, attach, prune
  checkpoint ferry checkpoint create before-x   restorable point (pg_dump / SQLite backup)
  serve      ferry serve --database postgres://app@db/app
             dashboard, /metrics, /healthz, /readyz and /api/* on 127.0.0.1:9187
  version    ferry version

Typical session:
  ferry init && ferry new create_users && $EDITOR migrations/*create_users.sql
  ferry plan && ferry up && ferry status

Global flags go before or after the command. Settings come from flags, then
the environment (DATABASE_URL, FERRY_*), then ./ferry.toml, then defaults.
Run 'ferry COMMAND --help' for a command's flags. Exit codes: docs/exit-codes.md.
)";

}  // namespace

const std::vector<CommandFamily>& CommandTable() {
  static const std::vector<CommandFamily> table = {
      {{"doctor"}, AddDoctorCommand},
      {{"lint"}, AddLintCommand},
      {{"backfill"}, AddBackfillCommand},
      {{"verify"}, AddVerifyCommand},
      {{"copy"}, AddCopyCommand},
      {{"redis"}, AddRedisFamily},
      {{"serve"}, AddServeCommand},
      {{"recommend"}, AddRecommendCommand},
      {{"partition"}, AddPartitionCommands},
      {{"checkpoint"}, AddCheckpointFamily},
      {{"sync"}, AddSyncFamily},
      {{"cutover"}, AddCutoverCommand},
      {{"init", "new", "up", "down", "redo", "goto", "status", "history", "validate", "plan",
        "baseline", "repair", "report", "complete", "abort", "health"},
       AddMigrateCommands},
  };
  return table;
}

namespace {

struct GlobalFlags {
  std::string database;
  std::string dir;
  std::string config_path;
  std::string log_level;
  bool json = false;
  bool quiet = false;
  int verbose = 0;
  std::string metrics_file;
  std::string pushgateway;
};

void AddGlobalFlags(CLI::App& app, GlobalFlags& g) {
  app.add_option("-d,--database", g.database,
                 "database URL: postgres://user@host/db, sqlite:file.db (default sqlite:ferry.db)")
      ->envname("")
      ->option_text("URL");
  app.add_option("--dir", g.dir, "migrations directory (default ./migrations)")
      ->option_text("PATH");
  app.add_option("--config", g.config_path, "settings file (default ./ferry.toml if present)")
      ->option_text("FILE");
  app.add_option("--log-level", g.log_level, "debug, info, warn (default), error, off")
      ->option_text("LEVEL");
  app.add_flag("--json", g.json, "machine-readable JSON on stdout");
  app.add_flag("-q,--quiet", g.quiet, "results only, no progress");
  app.add_flag("-v,--verbose", g.verbose, "more logging (-v info, -vv debug)");
  app.add_option("--metrics-file", g.metrics_file,
                 "write Prometheus metrics of this run here at the end (node_exporter textfile)")
      ->option_text("PATH");
  app.add_option("--pushgateway", g.pushgateway,
                 "push Prometheus metrics of this run to this Pushgateway (http://host:9091)")
      ->option_text("URL");
}

// The command named on the command line when it can be told without parsing:
// the first word that is neither an option nor a global option's value.
// Registering only that command spares a short run (`ferry status`) building
// every command's options; "" registers all (no command, help, unknown words).
std::string CommandNamed(int argc, char** argv) {
  static constexpr std::string_view kValueFlags[] = {
      "-d", "--database", "--dir", "--config", "--log-level", "--history-table", "--lock-wait",
      "--schema-agreement-timeout",
      "--metrics-file", "--pushgateway"};
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") return "";
    if (arg.size() > 1 && arg[0] == '-') {
      if (std::find(std::begin(kValueFlags), std::end(kValueFlags), arg) != std::end(kValueFlags)) {
        ++i;  // its value
      }
      continue;
    }
    if (arg == "migrate") return "up";
    if (arg == "rollback") return "down";
    if (arg == "recommendations") return "recommend";
    if (arg == "version") return "version";
    for (const CommandFamily& family : CommandTable()) {
      for (std::string_view word : family.words) {
        if (arg == word) return std::string(arg);
      }
    }
    return "";
  }
  return "";
}

// `only`: register just this command (CommandNamed); a usage error then sets
// *retry, and Main parses again with every command, so that errors, help and
// any command line the scan above misreads behave exactly as without it.
int Run(int argc, char** argv, const std::string& only, bool* retry) {
  auto want = [&only](std::string_view name) { return only.empty() || only == name; };
  CLI::App app{"ferry: change production databases safely", "ferry"};
  app.footer(kOverview);
  app.set_help_all_flag("--help-all", "help for every command");
  app.require_subcommand(0, 1);
  app.fallthrough();  // global flags also after the command
  GlobalFlags g;
  AddGlobalFlags(app, g);
  std::string history_table;
  std::string lock_wait;
  std::string schema_agreement_timeout;
  bool show_version = false;
  app.add_flag("-V,--version", show_version, "print the version and exit");

  CLI::App* version_cmd = app.add_subcommand("version", "print the version");
  version_cmd->footer("Example:\n  ferry version --json");

  std::vector<Runner> runners;
  for (const CommandFamily& family : CommandTable()) {
    bool wanted = false;
    for (std::string_view word : family.words) wanted = wanted || want(word);
    if (!wanted) continue;
    if (Runner r = family.add(app, want)) runners.push_back(std::move(r));
  }
  app.add_option("--history-table", history_table, "history table name (default ferry_schema_history)")
      ->option_text("NAME");
  app.add_option("--lock-wait", lock_wait, "how long to wait for the migration lock (default 60s)")
      ->option_text("DURATION");
  app.add_option("--schema-agreement-timeout", schema_agreement_timeout,
                 "CQL: how long to wait after each schema change until every node agrees "
                 "(default 60s)")
      ->option_text("DURATION");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (!only.empty()) {
      *retry = true;
      return kExitUsage;
    }
    std::fprintf(stderr, "ferry: usage error: %s\nRun 'ferry --help' for the commands.\n",
                 e.what());
    return kExitUsage;
  }

  if (show_version || version_cmd->parsed()) {
    if (g.json) {
      std::printf("{\"version\":\"%s\"}\n", FERRY_VERSION);
    } else {
      std::printf("ferry %s\n", FERRY_VERSION);
    }
    return kExitOk;
  }
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stdout);
    return kExitUsage;
  }

  std::map<std::string, std::string> flags;
  if (!g.database.empty()) flags["database"] = g.database;
  if (!g.dir.empty()) flags["dir"] = g.dir;
  if (!g.log_level.empty()) flags["log_level"] = g.log_level;
  if (!history_table.empty()) flags["history_table"] = history_table;
  if (!lock_wait.empty()) flags["lock_wait"] = lock_wait;
  if (!schema_agreement_timeout.empty()) {
    flags["schema_agreement_timeout"] = schema_agreement_timeout;
  }
  std::optional<std::string> config_path;
  bool explicit_config = !g.config_path.empty();
  if (explicit_config) {
    config_path = g.config_path;
  } else if (const char* env = std::getenv("FERRY_CONFIG"); env != nullptr && *env != '\0') {
    config_path = env;
    explicit_config = true;
  } else {
    config_path = "ferry.toml";
  }
  auto config = Config::Load(config_path, explicit_config, &std::getenv, flags);
  if (!config.ok()) return ReportError(config.status(), g.json);

  LogLevel level = LogLevel::kWarn;
  if (!ParseLogLevel(config->Get("log_level"), &level)) {
    return ReportError(Status(StatusCode::kInvalidArgument,
                              "log level '" + config->Get("log_level") +
                                  "' is unknown: use debug, info, warn, error or off"),
                       g.json);
  }
  if (g.verbose == 1) level = LogLevel::kInfo;
  if (g.verbose >= 2) level = LogLevel::kDebug;
  SetLogLevel(level);

  EventBus bus;
  RunMetrics metrics;
  if (Status s = metrics.Start(g.metrics_file, g.pushgateway, bus); !s.ok()) {
    return ReportError(s, g.json);
  }
  Context ctx{std::move(*config), g.json, g.quiet, &bus};
  auto dispatch = [&]() -> int {
    for (const Runner& r : runners) {
      if (std::optional<int> code = r(ctx)) return *code;
    }
    return ReportError(Status(StatusCode::kInternal, "command parsed but not dispatched"), g.json);
  };
  return metrics.Finish(app.get_subcommands()[0]->get_name(), dispatch());
}

}  // namespace

int Main(int argc, char** argv) {
  OutputBatcher batch_output;
  bool retry = false;
  int code = Run(argc, argv, CommandNamed(argc, argv), &retry);
  if (retry) code = Run(argc, argv, "", &retry);
  return code;
}

}  // namespace ferry::cli

int main(int argc, char** argv) {
  try {
    // First of all: no password stays visible to `ps` (cli/argv_secrets.h).
    std::vector<std::string> args = ferry::cli::TakeArgsHidingSecrets(argc, argv);
    std::vector<char*> copies;
    for (std::string& a : args) copies.push_back(a.data());
    copies.push_back(nullptr);
    return ferry::cli::Main(argc, copies.data());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ferry: internal error: %s (please report this)\n", e.what());
    return ferry::cli::kExitInternal;
  }
}
