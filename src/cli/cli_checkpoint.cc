// `ferry checkpoint create|list|restore|delete|prune`: flags and the runner
// (checkpoint_command.cc holds RunCheckpointCommand).
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>

#include "cli/checkpoint_command.h"
#include "cli/command_table.h"
#include "cli/context.h"

namespace ferry::cli {
namespace {

// ferry checkpoint create|list|restore|delete|prune (checkpoint_command.h).
CLI::App* AddCheckpointCommand(CLI::App& app, CheckpointArgs& a) {
  CLI::App* cmd = app.add_subcommand(
      "checkpoint", "restorable points of a database: pg_dump -Fc or SQLite backup (docs/checkpoints.md)");
  cmd->require_subcommand(1);
  cmd->footer("Examples:\n"
              "  ferry checkpoint create before-split && ferry checkpoint list\n"
              "  ferry checkpoint restore before-split --dry-run\n"
              "  ferry checkpoint prune --keep 5\n"
              "  ferry up --checkpoint --auto-rollback\n"
              "PostgreSQL (pg_dump -Fc, restored in one psql transaction) and SQLite (online\n"
              "backup). Guide: docs/checkpoints.md.");
  auto sub = [&](const char* name, const char* help, const char* examples) {
    CLI::App* c = cmd->add_subcommand(name, help);
    c->footer(std::string("Examples:\n") + examples);
    c->add_option("--dir-checkpoints", a.dir, "checkpoint folder (default [checkpoint] dir, "
                  ".ferry/checkpoints)")->option_text("DIR");
    c->parse_complete_callback([&a, name] { a.action = name; });
    return c;
  };
  CLI::App* create = sub("create", "take a checkpoint: the whole database, or some schemas or tables",
                         "  ferry checkpoint create before-orders-split\n"
                         "  ferry checkpoint create nightly --schema billing --json\n"
                         "  ferry checkpoint create t1 --table public.orders --pg-bin /usr/lib/postgresql/16/bin\n"
                         "Size and time are printed. PostgreSQL: pg_dump -Fc (as new as the server);\n"
                         "SQLite: the online backup API. The password reaches pg_dump in its environment.");
  create->add_option("name", a.name, "checkpoint name (letters, digits, . _ -)")->required();
  create->add_option("--schema", a.schemas, "only this schema (repeat for more)")->option_text("S");
  create->add_option("--table", a.tables, "only this table, schema.table (repeat)")->option_text("T");
  CLI::App* restore = sub("restore", "restore a checkpoint in one transaction (nothing changes on failure)",
                          "  ferry checkpoint restore before-orders-split --dry-run\n"
                          "  ferry checkpoint restore before-orders-split\n"
                          "Objects in the checkpoint's scope made since are dropped first; --dry-run lists\n"
                          "what would be dropped and restored and changes nothing.");
  restore->add_option("name", a.name, "checkpoint name")->required();
  restore->add_flag("--dry-run", a.dry_run, "list what would be dropped and restored; change nothing");
  for (CLI::App* c : {create, restore}) {
    c->add_option("--pg-bin", a.pg_bin, "folder of pg_dump, pg_restore and psql (default "
                  "[checkpoint] pg_bin, then PATH)")->option_text("DIR");
  }
  sub("list", "list checkpoints: name, engine, created, size, time, version, scope",
      "  ferry checkpoint list\n  ferry checkpoint list --json");
  sub("delete", "delete one checkpoint", "  ferry checkpoint delete before-orders-split")
      ->add_option("name", a.name, "checkpoint name")->required();
  sub("prune", "keep the newest N checkpoints, delete the rest",
      "  ferry checkpoint prune --keep 5\n  ferry checkpoint prune   # [checkpoint] keep from ferry.toml")
      ->add_option("--keep", a.keep, "how many to keep (default [checkpoint] keep)")->option_text("N");
  return cmd;
}

}  // namespace

Runner AddCheckpointFamily(CLI::App& app, const Want& want) {
  if (!want("checkpoint")) return nullptr;
  auto args = std::make_shared<CheckpointArgs>();
  CLI::App* cmd = AddCheckpointCommand(app, *args);
  return [args, cmd](const Context& ctx) -> std::optional<int> {
    if (!cmd->parsed()) return std::nullopt;
    return RunCheckpointCommand(ctx, *args);
  };
}

}  // namespace ferry::cli
