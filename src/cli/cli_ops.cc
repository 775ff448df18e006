// The commands that watch and keep a database: doctor, lint, serve,
// recommend, partition status|maintain. Each registers its flags and returns
// the runner that calls one library-facing function (cli/command_table.h).
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command_table.h"
#include "cli/context.h"
#include "cli/partition_command.h"
#include "cli/partition_convert_command.h"
#include "cli/recommend_command.h"
#include "cli/serve_command.h"

namespace ferry::cli {

Runner AddDoctorCommand(CLI::App& app, const Want& want) {
  if (!want("doctor")) return nullptr;
  auto doctor_url = std::make_shared<std::string>();
  CLI::App* doctor = app.add_subcommand(
      "doctor", "connect, print engine and version, and check the capabilities ferry relies on");
  doctor->add_option("url", *doctor_url, "database URL (default: --database or DATABASE_URL)");
  doctor->footer(
      "Examples:\n"
      "  ferry doctor                                  # the configured database (./ferry.db)\n"
      "  ferry doctor postgres://app@127.0.0.1:5432/app\n"
      "  ferry doctor sqlite:data/app.db --json\n"
      "Exit 0 when connected (missing capabilities are listed with hints);\n"
      "5 unreachable, 6 authentication, 7 missing database, 8 bad URL.");
  return [doctor_url, doctor](const Context& ctx) -> std::optional<int> {
    if (!doctor->parsed()) return std::nullopt;
    return RunDoctor(ctx, doctor_url->empty() ? ctx.config.Get("database") : *doctor_url);
  };
}

Runner AddLintCommand(CLI::App& app, const Want& want) {
  if (!want("lint")) return nullptr;
  struct LintArgs {
    std::vector<std::string> paths;
    std::string format;
  };
  auto args = std::make_shared<LintArgs>();
  std::vector<std::string>& lint_paths = args->paths;
  std::string& lint_format = args->format;
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
  return [args, lint](const Context& ctx) -> std::optional<int> {
    if (!lint->parsed()) return std::nullopt;
    return RunLint(ctx, args->paths, args->format);
  };
}

Runner AddServeCommand(CLI::App& app, const Want& want) {
  if (!want("serve")) return nullptr;
  auto args = std::make_shared<ServeArgs>();
  ServeArgs& sargs = *args;
  CLI::App* serve = app.add_subcommand(
      "serve", "read-only HTTP service: dashboard, /metrics, /healthz, /readyz, /api/*");
  serve->add_option("--listen", sargs.listen, "address to listen on (default 127.0.0.1:9187)")
      ->option_text("HOST:PORT");
  serve->add_option("-d,--database", sargs.databases,
                    "database to watch (repeatable; default: DATABASE_URL)")
      ->option_text("URL");
  serve->add_option("--token", sargs.token,
                    "bearer token every path but /healthz requires (needed beyond loopback)")
      ->envname("FERRY_SERVE_TOKEN")
      ->option_text("TOKEN");
  serve->add_option("--ready-timeout", sargs.connect_bound,
                    "/readyz: a database must answer within this (default 2s)")
      ->option_text("DURATION");
  serve->footer(
      "Examples:\n"
      "  ferry serve --database postgres://app@db/app          # http://127.0.0.1:9187/\n"
      "  ferry serve --listen 0.0.0.0:9187 --token $TOKEN -d $DB1 -d sqlite:app.db\n"
      "Endpoints: / (dashboard), /healthz, /readyz, /metrics, /api/status, /api/history,\n"
      "/api/jobs, /api/lint (docs/openapi.yaml). Nothing is written to any database.\n"
      "Guide: docs/observability.md.");
  return [args, serve](const Context& ctx) -> std::optional<int> {
    if (!serve->parsed()) return std::nullopt;
    return RunServeCommand(ctx, *args);
  };
}

Runner AddRecommendCommand(CLI::App& app, const Want& want) {
  if (!want("recommend")) return nullptr;
  auto args = std::make_shared<RecommendArgs>();
  RecommendArgs& recargs = *args;
  CLI::App* recommend = app.add_subcommand(
      "recommend", "analyse a PostgreSQL database: ranked recommendations with the SQL to act");
  recommend->alias("recommendations");
  recommend->add_option("--int4-warn", recargs.int4_warn_ratio,
                        "flag int4 keys past this share of 2^31 (default 0.5)")
      ->option_text("RATIO");
  recommend->add_option("--matrix-size-gib", recargs.matrix_database_gib,
                        "decision matrix: database size threshold (default 500 GiB)")
      ->option_text("GIB");
  recommend->add_option("--matrix-commits", recargs.matrix_commits_per_second,
                        "decision matrix: commits per second threshold (default 10000)")
      ->option_text("N");
  recommend->add_option("--matrix-latency-ms", recargs.matrix_mean_statement_ms,
                        "decision matrix: mean statement time threshold (default 100 ms)")
      ->option_text("MS");
  recommend->footer(
      "Examples:\n"
      "  ferry recommend --database postgres://app@db/app\n"
      "  ferry recommendations --json | jq '.recommendations[] | select(.priority == \"critical\")'\n"
      "Checks int4 keys near exhaustion, tables without a primary key, unused and duplicate\n"
      "indexes, bloat, long transactions, partition candidates, failed or slow migrations,\n"
      "slow statements (pg_stat_statements) and seed 000's decision matrix. Read-only.");
  return [args, recommend](const Context& ctx) -> std::optional<int> {
    if (!recommend->parsed()) return std::nullopt;
    return RunRecommendCommand(ctx, *args);
  };
}

Runner AddPartitionCommands(CLI::App& app, const Want& want) {
  if (!want("partition")) return nullptr;
  auto args = std::make_shared<PartitionArgs>();
  PartitionArgs& pargs = *args;
  CLI::App* partition_status = nullptr;
  CLI::App* partition_maintain = nullptr;
  CLI::App* part = app.add_subcommand(
      "partition", "keep the RANGE partitions declared in ferry.toml (docs/partitions.md)");
  part->require_subcommand(1);
  partition_status = part->add_subcommand(
      "status", "partitions with bounds, rows and size; gaps, default rows, missing, expired");
  partition_status->add_option("table", pargs.table, "only this declared table (schema.table)");
  partition_status->add_option("--now", pargs.now, "judge as if it were this date (UTC)")
      ->option_text("DATE");
  partition_status->footer(
      "Examples:\n"
      "  ferry partition status\n"
      "  ferry partition status public.messages --json\n"
      "Read-only. Tables and rules come from [[partitions]] in ferry.toml.");
  partition_maintain = part->add_subcommand(
      "maintain", "premake and attach future partitions, prune those past retention");
  partition_maintain->add_option("table", pargs.table, "only this declared table (schema.table)");
  partition_maintain->add_flag("--dry-run", pargs.dry_run, "print the exact SQL; change nothing");
  partition_maintain->add_flag("--force", pargs.force,
                               "allow a retention that detaches every partition");
  partition_maintain->add_option("--now", pargs.now, "plan as if it were this date (UTC)")
      ->option_text("DATE");
  partition_maintain->footer(
      "Examples:\n"
      "  ferry partition maintain --dry-run\n"
      "  ferry partition maintain public.messages\n"
      "Idempotent; runs under ferry's migration lock (others wait), every DDL under\n"
      "lock_timeout with lock_retries; each action is recorded in 'ferry history'.\n"
      "Exit 0 done, 4 lock not obtained, 8 bad declaration, 9 retention refused or\n"
      "archive schema missing. Guide: docs/partitions.md.");
  auto conv_args = std::make_shared<PartitionConvertArgs>();
  PartitionConvertApps conv = AddPartitionConvertCommands(part, conv_args.get());
  return [args, partition_status, partition_maintain, conv_args,
          conv](const Context& ctx) -> std::optional<int> {
    if (partition_status->parsed()) return RunPartitionStatus(ctx, *args);
    if (partition_maintain->parsed()) return RunPartitionMaintain(ctx, *args);
    if (int rc = RunPartitionConvert(ctx, conv, *conv_args); rc >= 0) return rc;
    return std::nullopt;
  };
}

}  // namespace ferry::cli
