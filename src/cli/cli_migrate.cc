// The migration commands: init, new, up, down, redo, goto, status, history,
// validate, plan, baseline, repair, report, complete, abort, health. They
// share one MigrateArgs (most flags are common) and one runner,
// RunMigrateCommand, which picks the library call by the command's name.
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command_table.h"
#include "cli/context.h"

namespace ferry::cli {

namespace {

// Adds one migration subcommand with its examples when the command line may
// name it; nullptr when not.
using AddOne = std::function<CLI::App*(const char* name, const char* help, const char* examples)>;

// init, new, up, down, redo, goto: the commands that change the schema.
void AddApplyCommands(const AddOne& command, MigrateArgs& margs) {
  command("init", "create the migrations directory, ferry.toml and the history table",
          "  ferry init\n  ferry init --database postgres://app@127.0.0.1/app --dir db/migrations");
  if (CLI::App* new_cmd = command("new", "create the next migration file(s)",
                                  "  ferry new create_users\n  ferry new add_index --layout golang\n"
                                  "  ferry new backfill --style integer")) {
    new_cmd->add_option("name", margs.name, "what the migration does (letters, digits, _)")->required();
    new_cmd->add_option("--layout", margs.layout, "ferry (default), golang, diesel or flyway");
    new_cmd->add_option("--style", margs.style, "timestamp (default) or integer versions");
  }
  if (CLI::App* up = command("up", "apply pending migrations, each in its own transaction",
                             "  ferry up\n  ferry up --to 20260101120000 --dry-run\n"
                             "  DATABASE_URL=postgres://app@db/app ferry up --json\n"
                             "  ferry up --checkpoint --auto-rollback   # restore it if one fails")) {
    up->alias("migrate");
    up->add_option("--to", margs.target, "stop after this version");
    up->add_flag("--dry-run", margs.dry_run, "list what would run; change nothing");
    up->add_flag("--single-transaction", margs.single_transaction,
                 "all pending migrations in one transaction (all or nothing)");
    up->add_flag("--allow-future", margs.allow_future,
                 "run even if the database has versions newer than any file");
    up->add_flag("--out-of-order", margs.out_of_order,
                 "apply pending versions older than the newest applied one");
    up->add_option("--backup", margs.backup,
                   "first write the schema as CQL to this file (or a new file in this "
                   "directory); cql:// only");
    up->add_flag("--allow-unsafe", margs.allow_unsafe,
                 "apply despite error-level lint findings (recorded in the history note)");
    up->add_flag("--checkpoint", margs.checkpoint,
                 "first take a checkpoint of the database (docs/checkpoints.md)");
    up->add_flag("--auto-rollback", margs.auto_rollback,
                 "on failure restore that checkpoint, or without one run the downs of this run");
    up->add_option("--dir-checkpoints", margs.checkpoint_dir, "checkpoint folder")->option_text("DIR");
    up->add_option("--pg-bin", margs.pg_bin, "folder of pg_dump, pg_restore, psql")->option_text("DIR");
  }
  if (CLI::App* down = command("down", "roll back applied migrations with their down sections",
                               "  ferry down             # the newest one\n  ferry down --steps 3\n"
                               "  ferry down --to 1.0.0  # everything newer than 1.0.0")) {
    down->alias("rollback");
    down->add_option("--steps", margs.steps, "how many to roll back (default 1)")
        ->each([&](const std::string&) { margs.steps_given = true; });
    down->add_option("--to", margs.target, "roll back everything newer than this version");
    down->add_flag("--dry-run", margs.dry_run, "list what would be rolled back; change nothing");
  }
  if (CLI::App* redo = command("redo", "roll back the newest migrations, then apply them again",
                               "  ferry redo\n  ferry redo --steps 2")) {
    redo->add_option("--steps", margs.steps, "how many (default 1)");
  }
  if (CLI::App* goto_cmd = command("goto", "apply or roll back until this is the newest version",
                                   "  ferry goto 1.1.0")) {
    goto_cmd->add_option("version", margs.target, "target version")->required();
    goto_cmd->add_flag("--dry-run", margs.dry_run, "say what it would apply or roll back");
  }
}

// status, history, validate, plan, baseline, repair, report.
void AddInspectCommands(const AddOne& command, MigrateArgs& margs) {
  if (CLI::App* status = command("status", "show applied, pending, changed and missing migrations",
                                 "  ferry status\n  ferry status --exit-code   # 3 when pending or drift\n"
                                 "  ferry status --json")) {
    status->add_flag("--all", margs.all, "list every applied migration (default: the newest 10)");
    status->add_flag("--exit-code", margs.exit_code,
                     "exit 3 when migrations are pending, changed, missing or failed");
  }
  if (CLI::App* history = command("history", "list every apply, failure and rollback",
                                  "  ferry history\n  ferry history --limit 10 --json")) {
    history->add_option("--limit", margs.limit, "only the newest N rows");
  }
  if (CLI::App* validate = command(
          "validate", "check that files parse, applied checksums match and the schema is whole",
          "  ferry validate   # exit 3 when problems are found\n"
          "  ferry validate --engine postgres   # no database: the files by PostgreSQL's rules")) {
    validate->add_option("--engine", margs.engine,
                         "without a database: judge the files as postgres or sqlite (default: "
                         "engine in ferry.toml, else sqlite)")
        ->check(CLI::IsMember({"postgres", "sqlite"}));
    validate->add_flag("--exit-code", margs.exit_code,
                       "exit 3 on any problem, schema drift included (always on for validate)");
  }
  if (CLI::App* plan = command("plan", "print the exact SQL that up (or down) would run",
                               "  ferry plan\n  ferry plan --to 1.1.0\n  ferry plan --down --steps 2")) {
    plan->add_flag("--down", margs.down, "plan a rollback instead");
    plan->add_option("--steps", margs.steps, "with --down: how many (default 1)")
        ->each([&](const std::string&) { margs.steps_given = true; });
    plan->add_option("--to", margs.target, "up to (or down to) this version");
  }
  if (CLI::App* baseline = command("baseline", "mark an existing database as being at a version",
                                   "  ferry baseline 1.0.0 --description \"schema before ferry\"")) {
    baseline->add_option("version", margs.target, "the version the database is at")->required();
    baseline->add_option("--description", margs.description, "recorded in history");
  }
  if (CLI::App* repair = command("repair", "accept changed checksums and clear failed attempts",
                                 "  ferry repair --reason \"whitespace-only edit in 3_users.sql\"")) {
    repair->add_option("--reason", margs.reason, "why (recorded with your name)")->required();
  }
  if (CLI::App* report = command("report", "status, history and health in one document",
                                 "  ferry report --format json > migration-report.json\n"
                                 "  ferry report summary   # the same as --format summary")) {
    report->add_option("format", margs.format_word, "json or summary (the same as --format)");
    report->add_option("--format", margs.format, "json or summary (default)");
  }
}

// complete, abort (expand/contract) and health.
void AddOnlineCommands(const AddOne& command, MigrateArgs& margs) {
  if (CLI::App* complete = command(
          "complete", "contract phase of expand changes: drop old columns and triggers, rename, NOT NULL",
          "  ferry status                 # lists changes 'expanded, awaiting complete'\n"
          "  ferry complete               # every change awaiting complete\n"
          "  ferry complete 20260101120000 --dry-run   # print the statements only\n"
          "Run it once no old application version is left. NOT NULL is added as CHECK ... NOT VALID,\n"
          "VALIDATE (writers continue), then SET NOT NULL; the rest is one short transaction\n"
          "under lock_timeout with retries. Guide: docs/online-changes.md.")) {
    complete->add_option("version", margs.target, "only this migration's change");
    complete->add_flag("--dry-run", margs.dry_run, "print the statements; change nothing");
  }
  if (CLI::App* abort_cmd = command(
          "abort", "undo the expand phase of the newest migration (drop triggers and new columns)",
          "  ferry abort                  # the newest migration, when its change is still open\n"
          "  ferry abort 20260101120000\n"
          "Writes made through the new columns during the window are already in the old ones\n"
          "(the trigger's down expressions); the migration is rolled back like 'ferry down'.\n"
          "Refused, before anything changes, when a replaced column has no down expression.")) {
    abort_cmd->add_option("version", margs.target, "the migration (default: the newest applied)");
    abort_cmd->add_flag("--discard-new-writes", margs.discard_new_writes,
                        "drop new columns even without a down expression (their writes are lost)");
  }
  if (CLI::App* health = command(
          "health", "check connection, lock, failed or dead migrations, compatibility, schema",
          "  ferry health   # exit 0 healthy, 9 unhealthy (schema drift included)")) {
    health->add_flag("--exit-code", margs.exit_code,
                     "exit 9 when unhealthy, schema drift included (always on for health)");
  }
}

}  // namespace

Runner AddMigrateCommands(CLI::App& app, const Want& want) {
  auto args = std::make_shared<MigrateArgs>();
  std::vector<CLI::App*> migrate_cmds;
  AddOne command = [&](const char* name, const char* help, const char* examples) -> CLI::App* {
    if (!want(name)) return nullptr;
    CLI::App* c = app.add_subcommand(name, help);
    c->footer(std::string("Examples:\n") + examples);
    migrate_cmds.push_back(c);
    return c;
  };
  AddApplyCommands(command, *args);
  AddInspectCommands(command, *args);
  AddOnlineCommands(command, *args);
  if (migrate_cmds.empty()) return nullptr;
  return [args, migrate_cmds](const Context& ctx) -> std::optional<int> {
    for (CLI::App* c : migrate_cmds) {
      if (c->parsed()) return RunMigrateCommand(ctx, c->get_name(), *args);
    }
    return std::nullopt;
  };
}

}  // namespace ferry::cli
