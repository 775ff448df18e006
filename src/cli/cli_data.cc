// The commands that move and compare data: backfill, verify, copy. Each
// registers its flags and returns the runner that calls one library-facing
// function (cli/command_table.h).
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command_table.h"
#include "cli/context.h"
#include "cli/copy_command.h"
#include "cli/verify_command.h"

namespace ferry::cli {
namespace {

// The flags `copy` and `verify` share: two databases, and which rows of
// which tables. The help of --from, --to and --where says what each command
// does with them.
struct TableSelection {
  std::string* from;
  std::string* to;
  std::vector<std::string>* tables;
  bool* all;
  std::string* where;
};
void AddTableSelection(CLI::App* cmd, const TableSelection& s, const std::string& from_help,
                       const std::string& to_help, const std::string& where_help) {
  cmd->add_option("--from", *s.from, from_help)->option_text("URL");
  cmd->add_option("--to", *s.to, to_help)->option_text("URL");
  cmd->add_option("--table", *s.tables, "table to " + cmd->get_name() +
                                           " (repeatable; schema.table)")
      ->option_text("T");
  cmd->add_flag("--all", *s.all, "every user table of the source");
  cmd->add_option("--where", *s.where, where_help)->option_text("SQL");
}

}  // namespace

Runner AddBackfillCommand(CLI::App& app, const Want& want) {
  if (!want("backfill")) return nullptr;
  auto args = std::make_shared<BackfillArgs>();
  BackfillArgs& bargs = *args;
  CLI::App* backfill = app.add_subcommand(
      "backfill", "update a table's rows in small primary-key batches (resumable, online)");
  backfill->add_option("--table", bargs.table, "table to update (schema.table)")->required();
  backfill->add_option("--set", bargs.set, "assignments: \"b = a * 2, c = lower(d)\"")->required();
  backfill->add_option("--where", bargs.where,
                       "rows still to do, e.g. \"b IS NULL\"; after the run none may match");
  backfill->add_option("--done-check", bargs.done_check,
                       "integrity condition for 'not done' rows (default: --where)");
  backfill->add_option("--check", bargs.check, "SELECT that must return no rows at the end");
  backfill->add_option("--batch-rows", bargs.batch_rows, "rows per batch at the start (default 10000)");
  backfill->add_option("--max-batch-ms", bargs.max_batch,
                       "ceiling per batch; batches adapt to about half of it (default 200ms)");
  backfill->add_flag("--fixed-batch", bargs.fixed_batch, "keep --batch-rows, do not adapt");
  backfill->add_option("--sleep", bargs.sleep, "pause after each batch (default 0)");
  backfill->add_option("--workers", bargs.workers, "parallel workers on disjoint key ranges (default 1)");
  backfill->add_option("--by", bargs.by,
                       "walk the table by key ranges or heap page ranges: auto|key|ctid (default "
                       "auto: ctid for one worker on PostgreSQL 14+ with --where)")
      ->check(CLI::IsMember({"auto", "key", "ctid"}));
  backfill->add_option("--lock-timeout", bargs.lock_timeout, "per batch (default 2s)");
  backfill->add_option("--statement-timeout", bargs.statement_timeout, "per batch (default 30s)");
  backfill->add_option("--max-lag", bargs.max_lag,
                       "pause while a replica's replay lag exceeds this (default 10s; 0 = off)");
  backfill->add_option("--job-id", bargs.job_id, "job name in ferry_jobs (default: from table/set/where)");
  backfill->add_flag("--resume", bargs.resume, "require an unfinished job to resume");
  backfill->add_flag("--restart", bargs.restart, "discard an unfinished job's checkpoint");
  backfill->add_flag("--dry-run", bargs.dry_run, "validate and print the batch statement; change nothing");
  backfill->footer(
      "Examples:\n"
      "  ferry backfill --table users --set \"email_verified_v2 = email_verified\" \\\n"
      "      --where \"email_verified_v2 IS NULL\"\n"
      "  ferry backfill --table orders --set \"total_cents = round(total * 100)\" \\\n"
      "      --where \"total_cents IS NULL\" --workers 2 --max-batch-ms 100 --json\n"
      "  ferry backfill ... --check \"SELECT id FROM users WHERE email_verified IS DISTINCT FROM email_verified_v2\"\n"
      "Each batch is one short transaction over the next primary-key window; the last key\n"
      "is checkpointed in ferry_jobs, so after a crash or Ctrl-C the same command resumes.\n"
      "Exit 0 done and checked, 10 integrity check failed, 8 bad expression, 7 missing\n"
      "table or column, 9 no primary key or job conflict. Guide: docs/backfill.md.");
  return [args, backfill](const Context& ctx) -> std::optional<int> {
    if (!backfill->parsed()) return std::nullopt;
    return RunBackfillCommand(ctx, *args);
  };
}

Runner AddVerifyCommand(CLI::App& app, const Want& want) {
  if (!want("verify")) return nullptr;
  auto args = std::make_shared<VerifyArgs>();
  VerifyArgs& vargs = *args;
  CLI::App* verify = app.add_subcommand(
      "verify", "compare tables in two databases by primary key: missing, extra, changed rows");
  AddTableSelection(verify, {&vargs.from, &vargs.to, &vargs.tables, &vargs.all, &vargs.where},
                    "source (reference) database URL (default: --database)",
                    "target database URL, checked against the source",
                    "SQL condition limiting the rows on both sides");
  verify->add_option("--job", vargs.job, "verify a copy job: start from its chunk ranges")
      ->option_text("JOB");
  verify->add_option("--max-report", vargs.max_report,
                     "list at most N differing rows (default 100; counts stay complete)")
      ->option_text("N");
  verify->add_option("--workers", vargs.workers, "connections per database (default 2)")
      ->option_text("N");
  verify->add_flag("--hash-in-db,!--no-hash-in-db", vargs.hash_in_db,
                   "hash rows inside the databases (default); --no-hash-in-db reads every row");
  verify->add_option("--leaf-rows", vargs.leaf_rows,
                     "ranges of at most N rows are compared row by row (default 256)")
      ->option_text("N");
  verify->add_option("--sample", vargs.sample_percent,
                     "with a CQL side: check PERCENT of the rows, each looked up by key")
      ->option_text("PERCENT");
  verify->footer(
      "Examples:\n"
      "  ferry verify --from postgres://app@db1/app --to postgres://app@db2/app --table users\n"
      "  ferry verify --from postgres://app@db1/app --to sqlite:export.db --all --json\n"
      "  ferry verify --from $SRC --to $DST --table orders --where \"created_at >= '2026-01-01'\"\n"
      "  ferry verify --from $SRC --to $DST --job copy-20260101   # ranges of a finished copy\n"
      "  ferry verify --from postgres://app@db1/chat --to cql://u:p@scylla1/chat --table messages\n"
      "  ferry verify --from $PG --to $CQL --table messages --sample 1   # during dual writes\n"
      "Each database computes a count and a hash per primary-key range; only ranges that\n"
      "differ are cut smaller, and only the last small ranges' rows travel. PostgreSQL and\n"
      "SQLite values compare by canonical text (docs/verify.md). With a CQL side (cql://)\n"
      "both tables are streamed (CQL by token ranges) and compared by key through bucket\n"
      "files, memory bounded; values compare under the CQL column's type.\n"
      "Exit 0 identical, 10 differences found, 7 missing table, 8 columns or keys differ,\n"
      "9 no primary key.");
  return [args, verify](const Context& ctx) -> std::optional<int> {
    if (!verify->parsed()) return std::nullopt;
    return RunVerify(ctx, *args);
  };
}

Runner AddCopyCommand(CLI::App& app, const Want& want) {
  if (!want("copy")) return nullptr;
  auto args = std::make_shared<CopyArgs>();
  CopyArgs& cargs = *args;
  CLI::App* copy = app.add_subcommand(
      "copy", "copy tables between databases in resumable chunks (PostgreSQL, SQLite, to CQL)");
  AddTableSelection(copy, {&cargs.from, &cargs.to, &cargs.tables, &cargs.all, &cargs.where},
                    "source database URL (default: --database)",
                    "target database URL (holds the job's progress)",
                    "SQL condition on the source rows, e.g. a date range");
  copy->add_option("--workers", cargs.workers, "parallel chunk workers (default 2)")
      ->option_text("N");
  copy->add_option("--batch-rows", cargs.batch_rows, "rows per chunk (default 250000)")
      ->option_text("N");
  copy->add_option("--split", cargs.split,
                   "how tables are cut into chunks: auto (default: primary-key ranges, exact on "
                   "resume), key, or pages (PostgreSQL source: ctid page ranges, sequential "
                   "reads; see docs/copy.md)")
      ->option_text("auto|key|pages");
  copy->add_flag("--dry-run", cargs.dry_run,
                 "print the plan (tables, row estimates, chunks, DDL); change nothing");
  copy->add_flag("--create-tables", cargs.create_tables,
                 "create missing target tables from the source's columns (docs/copy.md)");
  copy->add_flag("--truncate", cargs.truncate, "empty non-empty target tables first");
  copy->add_flag("--append", cargs.append, "add to non-empty target tables");
  copy->add_flag("--restart", cargs.restart,
                 "start the job over: empty the tables it copied and forget its progress");
  copy->add_option("--job", cargs.job, "job name in ferry_jobs (default: from the tables)")
      ->option_text("NAME");
  copy->add_option("--lock-timeout", cargs.lock_timeout,
                   "longest wait for a target table's lock before TRUNCATE/CREATE (default 10s)")
      ->option_text("DURATION");
  copy->add_option("--status", cargs.status, "print a job's progress from --to's control tables")
      ->option_text("JOB");
  copy->add_option("--map", cargs.map,
                   "CQL target: [[copy.map]] entries (keyspace.table, partition key, clustering, "
                   "renamed/derived columns, ttl, write_timestamp; default: ferry.toml's)")
      ->option_text("FILE");
  copy->add_option("--control", cargs.control,
                   "CQL target: database holding the job's chunks and leases (PostgreSQL or "
                   "SQLite; default sqlite:.ferry/copy-control.db)")
      ->option_text("URL");
  copy->add_option("--max-rate", cargs.max_rate, "CQL target or source: at most this many rows per second")
      ->option_text("ROWS");
  copy->add_option("--in-flight", cargs.in_flight,
                   "CQL target: writes in flight per worker (default 128)")
      ->option_text("N");
  copy->add_flag("--allow-lossy", cargs.allow_lossy,
                 "CQL target: cut what CQL cannot hold (microseconds, netmasks, time zones "
                 "of time) instead of refusing the row");
  copy->footer(
      "Examples:\n"
      "  ferry copy --from postgres://app@db1/app --to postgres://app@db2/app --table messages\n"
      "  ferry copy --from $SRC --to $DST --all --create-tables --workers 4 --dry-run\n"
      "  ferry copy --from $SRC --to sqlite:archive.db --table messages --create-tables \\\n"
      "      --where \"created_at >= '2026-01-01' AND created_at < '2026-02-01'\" --json\n"
      "  ferry copy --to $DST --status copy:messages   # from any machine\n"
      "  ferry copy --from $SRC --to cql://cass:9042/chat --table messages --map chat.toml \\\n"
      "      --create-tables --workers 4 --max-rate 50000   # to Cassandra/ScyllaDB\n"
      "  ferry copy --from cql://cass:9042/chat --to $PG --table messages --create-tables \\\n"
      "      --workers 4   # back from CQL: token ranges, COPY into PostgreSQL\n"
      "Each table is cut into primary-key ranges (ctid page ranges without a key); workers\n"
      "lease chunks from ferry_jobs/ferry_chunks on the target and commit each chunk's rows\n"
      "with its 'done' mark, so after kill -9 the same command resumes without duplicates.\n"
      "Exit 0 copied, 9 chunks failed or target not empty, 7 missing table, 8 bad input\n"
      "(columns, types, --where). To a CQL target rows are upserted with prepared INSERTs\n"
      "(many in flight, token-aware), the job lives on --control, and a mapping declares\n"
      "keys, derived columns (bucket = \"day(created_at)\"), TTL and USING TIMESTAMP.\n"
      "Guide, mapping format and type mapping: docs/copy.md.");
  return [args, copy](const Context& ctx) -> std::optional<int> {
    if (!copy->parsed()) return std::nullopt;
    return RunCopyCommand(ctx, *args);
  };
}

}  // namespace ferry::cli
