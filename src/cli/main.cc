// The ferry program: parses the command line, loads configuration, calls the
// library and renders text or --json. The only file that includes CLI11.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/log.h"
#include "drivers/registry.h"

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
  status     ferry status --exit-code        applied, pending, changed, missing, lock holder
  history    ferry history --limit 20        every apply, failure and rollback with who and when
  validate   ferry validate                  files parse, checksums match, order, compatibility
  plan       ferry plan                      the exact SQL 'up' would run (--down for 'down')
  lint       ferry lint --format sarif       lock, rewrite and breakage risks in migrations
  baseline   ferry baseline 1.0.0            mark an existing database as being at a version
  repair     ferry repair --reason "..."     accept changed checksums, clear failed attempts
  report     ferry report --format json      status, history and health in one document
  health     ferry health                    connection, lock, failures, compatibility
  doctor     ferry doctor postgres://app@db.internal/app
             connect and list the capabilities ferry relies on
  version    ferry version

Typical session:
  ferry init && ferry new create_users && $EDITOR migrations/*create_users.sql
  ferry plan && ferry up && ferry status

Global flags go before or after the command. Settings come from flags, then
the environment (DATABASE_URL, FERRY_*), then ./ferry.toml, then defaults.
Run 'ferry COMMAND --help' for a command's flags. Exit codes: docs/exit-codes.md.
)";

struct GlobalFlags {
  std::string database;
  std::string dir;
  std::string config_path;
  std::string log_level;
  bool json = false;
  bool quiet = false;
  int verbose = 0;
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
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"ferry: change production databases safely", "ferry"};
  app.footer(kOverview);
  app.set_help_all_flag("--help-all", "help for every command");
  app.require_subcommand(0, 1);
  app.fallthrough();  // global flags also after the command
  GlobalFlags g;
  AddGlobalFlags(app, g);
  std::string history_table;
  std::string lock_wait;
  bool show_version = false;
  app.add_flag("-V,--version", show_version, "print the version and exit");

  CLI::App* version_cmd = app.add_subcommand("version", "print the version");
  version_cmd->footer("Example:\n  ferry version --json");

  std::string doctor_url;
  CLI::App* doctor = app.add_subcommand(
      "doctor", "connect, print engine and version, and check the capabilities ferry relies on");
  doctor->add_option("url", doctor_url, "database URL (default: --database or DATABASE_URL)");
  doctor->footer(
      "Examples:\n"
      "  ferry doctor                                  # the configured database (./ferry.db)\n"
      "  ferry doctor postgres://app@127.0.0.1:5432/app\n"
      "  ferry doctor sqlite:data/app.db --json\n"
      "Exit 0 when connected (missing capabilities are listed with hints);\n"
      "5 unreachable, 6 authentication, 7 missing database, 8 bad URL.");

  std::vector<std::string> lint_paths;
  std::string lint_format;
  CLI::App* lint = app.add_subcommand(
      "lint", "check migrations for locks, rewrites, data loss and application breakage");
  lint->add_option("paths", lint_paths, "migration directories or files (default: --dir)");
  lint->add_option("--format", lint_format, "text (default), json or sarif");
  lint->footer(
      "Examples:\n"
      "  ferry lint                                   # the migrations directory\n"
      "  ferry lint migrations/20260101_add_index.sql --format json\n"
      "  ferry lint --format sarif > ferry-lint.sarif  # for code scanning\n"
      "  ferry lint --database postgres://app@db/app  # live table sizes; pending files only\n"
      "Ignore a finding with '-- ferry:lint-ignore RULE reason' above the statement, or\n"
      "'-- ferry:lint-ignore-file RULE reason'; turn rules off with [lint] disable in\n"
      "ferry.toml. Rules: docs/lint.md.\n"
      "Exit 0 when no error-level finding remains, 11 otherwise, 8 for unreadable files.");

  MigrateArgs margs;
  std::vector<CLI::App*> migrate_cmds;
  auto command = [&](const char* name, const char* help, const char* examples) {
    CLI::App* c = app.add_subcommand(name, help);
    c->footer(std::string("Examples:\n") + examples);
    migrate_cmds.push_back(c);
    return c;
  };
  command("init", "create the migrations directory, ferry.toml and the history table",
          "  ferry init\n  ferry init --database postgres://app@127.0.0.1/app --dir db/migrations");
  CLI::App* new_cmd = command("new", "create the next migration file(s)",
                              "  ferry new create_users\n  ferry new add_index --layout golang\n"
                              "  ferry new backfill --style integer");
  new_cmd->add_option("name", margs.name, "what the migration does (letters, digits, _)")->required();
  new_cmd->add_option("--layout", margs.layout, "ferry (default), golang, diesel or flyway");
  new_cmd->add_option("--style", margs.style, "timestamp (default) or integer versions");
  CLI::App* up = command("up", "apply pending migrations, each in its own transaction",
                         "  ferry up\n  ferry up --to 20260101120000 --dry-run\n"
                         "  DATABASE_URL=postgres://app@db/app ferry up --json");
  up->alias("migrate");
  up->add_option("--to", margs.target, "stop after this version");
  up->add_flag("--dry-run", margs.dry_run, "list what would run; change nothing");
  up->add_flag("--single-transaction", margs.single_transaction,
               "all pending migrations in one transaction (all or nothing)");
  up->add_flag("--allow-future", margs.allow_future,
               "run even if the database has versions newer than any file");
  up->add_flag("--out-of-order", margs.out_of_order,
               "apply pending versions older than the newest applied one");
  up->add_flag("--allow-unsafe", margs.allow_unsafe,
               "apply despite error-level lint findings (recorded in the history note)");
  CLI::App* down = command("down", "roll back applied migrations with their down sections",
                           "  ferry down             # the newest one\n  ferry down --steps 3\n"
                           "  ferry down --to 1.0.0  # everything newer than 1.0.0");
  down->alias("rollback");
  down->add_option("--steps", margs.steps, "how many to roll back (default 1)")
      ->each([&](const std::string&) { margs.steps_given = true; });
  down->add_option("--to", margs.target, "roll back everything newer than this version");
  down->add_flag("--dry-run", margs.dry_run, "list what would be rolled back; change nothing");
  CLI::App* redo = command("redo", "roll back the newest migrations, then apply them again",
                           "  ferry redo\n  ferry redo --steps 2");
  redo->add_option("--steps", margs.steps, "how many (default 1)");
  CLI::App* goto_cmd = command("goto", "apply or roll back until this is the newest version",
                               "  ferry goto 1.1.0");
  goto_cmd->add_option("version", margs.target, "target version")->required();
  CLI::App* status = command("status", "show applied, pending, changed and missing migrations",
                             "  ferry status\n  ferry status --exit-code   # 3 when pending or drift\n"
                             "  ferry status --json");
  status->add_flag("--all", margs.all, "list every applied migration (default: the newest 10)");
  status->add_flag("--exit-code", margs.exit_code,
                   "exit 3 when migrations are pending, changed, missing or failed");
  CLI::App* history = command("history", "list every apply, failure and rollback",
                              "  ferry history\n  ferry history --limit 10 --json");
  history->add_option("--limit", margs.limit, "only the newest N rows");
  command("validate", "check that files parse and applied checksums match",
          "  ferry validate   # exit 3 when problems are found");
  CLI::App* plan = command("plan", "print the exact SQL that up (or down) would run",
                           "  ferry plan\n  ferry plan --to 1.1.0\n  ferry plan --down --steps 2");
  plan->add_flag("--down", margs.down, "plan a rollback instead");
  plan->add_option("--steps", margs.steps, "with --down: how many (default 1)")
      ->each([&](const std::string&) { margs.steps_given = true; });
  plan->add_option("--to", margs.target, "up to (or down to) this version");
  CLI::App* baseline = command("baseline", "mark an existing database as being at a version",
                               "  ferry baseline 1.0.0 --description \"schema before ferry\"");
  baseline->add_option("version", margs.target, "the version the database is at")->required();
  baseline->add_option("--description", margs.description, "recorded in history");
  CLI::App* repair = command("repair", "accept changed checksums and clear failed attempts",
                             "  ferry repair --reason \"whitespace-only edit in 3_users.sql\"");
  repair->add_option("--reason", margs.reason, "why (recorded with your name)")->required();
  CLI::App* report = command("report", "status, history and health in one document",
                             "  ferry report --format json > migration-report.json\n"
                             "  ferry report --format summary");
  report->add_option("--format", margs.format, "json or summary (default)");
  command("health", "check connection, lock, failed or dead migrations, compatibility",
          "  ferry health   # exit 0 healthy, 9 unhealthy");
  app.add_option("--history-table", history_table, "history table name (default ferry_schema_history)")
      ->option_text("NAME");
  app.add_option("--lock-wait", lock_wait, "how long to wait for the migration lock (default 60s)")
      ->option_text("DURATION");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
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

  Context ctx{std::move(*config), g.json, g.quiet};
  if (lint->parsed()) return RunLint(ctx, lint_paths, lint_format);
  if (doctor->parsed()) {
    return RunDoctor(ctx, doctor_url.empty() ? ctx.config.Get("database") : doctor_url);
  }
  for (CLI::App* c : migrate_cmds) {
    if (c->parsed()) return RunMigrateCommand(ctx, c->get_name(), margs);
  }
  return ReportError(Status(StatusCode::kInternal, "command parsed but not dispatched"), g.json);
}

}  // namespace ferry::cli

int main(int argc, char** argv) {
  try {
    return ferry::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ferry: internal error: %s (please report this)\n", e.what());
    return ferry::cli::kExitInternal;
  }
}
