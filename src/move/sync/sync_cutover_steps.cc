// Sync cut-over steps: what ferry cutover does on each side while the
// source tables are locked (sync_cutover.cc runs them in order).
//
// In:     the job's tables; the source session holding the lock
//         transaction; the target session.
// Out:    owned sequences moved past the source's on the target; row
//         counts of both sides; guard triggers on the source tables (in
//         the lock transaction: a rollback removes them too); the cut-over
//         recorded in the job row on the target; UndoCutoverGuard.
// Resume: sequences only ever move forward, so a repeated cut-over after
//         an abort sets them again; everything on the source is in the
//         lock transaction.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "drivers/registry.h"
#include "move/sync/sync_internal.h"

namespace ferry::sync_internal {

Result<std::vector<CutTable>> CutoverTables(const JobRow& row) {
  std::vector<CutTable> out;
  for (const auto& name : row.tables) {
    auto [schema, table] = SplitTableName(name);
    if (schema.empty()) schema = "public";
    CutTable t;
    t.name = name;
    t.schema = schema;
    t.quoted = QuoteIdent(schema) + "." + QuoteIdent(table);
    out.push_back(std::move(t));
  }
  if (out.empty()) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("sync job '{}' lists no tables; nothing to cut over", row.job));
  }
  return out;
}

Result<std::vector<std::string>> OwnedSequences(Connection& src,
                                                const std::vector<CutTable>& tables) {
  std::vector<std::string> out;
  for (const auto& t : tables) {
    // 'a': a serial column's sequence (OWNED BY); 'i': an identity column's.
    FERRY_ASSIGN_OR_RETURN(
        QueryResult r,
        src.Query("SELECT quote_ident(n.nspname) || '.' || quote_ident(s.relname)"
                  " FROM pg_depend d JOIN pg_class s ON s.oid = d.objid"
                  " JOIN pg_namespace n ON n.oid = s.relnamespace"
                  " WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass"
                  " AND d.refobjid = $1::regclass AND s.relkind = 'S' AND d.deptype IN ('a', 'i')"
                  " ORDER BY 1",
                  {t.quoted}));
    for (size_t i = 0; i < r.rows.size(); ++i) out.push_back(r.Text(i, 0));
  }
  return out;
}

Status CheckSequencesOnTarget(Connection& dst, const std::vector<std::string>& sequences) {
  for (const auto& s : sequences) {
    FERRY_ASSIGN_OR_RETURN(QueryResult r,
                           dst.Query("SELECT to_regclass($1) IS NOT NULL", {s}));
    if (r.Text(0, 0) != "t") {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("sequence {} of a synced table is missing on the target: create "
                                "it there (CREATE SEQUENCE {}) and run ferry cutover again; "
                                "nothing was changed",
                                s, s));
    }
  }
  return Status();
}

Result<std::vector<CutoverSequence>> MoveSequences(Connection& src, Connection& dst,
                                                   const std::vector<std::string>& sequences,
                                                   int64_t margin) {
  std::vector<CutoverSequence> out;
  for (const auto& s : sequences) {
    FERRY_ASSIGN_OR_RETURN(QueryResult from,
                           src.Query(fmt::format("SELECT last_value FROM {}", s)));
    CutoverSequence c;
    c.name = s;
    c.source = std::stoll(from.Text(0, 0));
    FERRY_ASSIGN_OR_RETURN(
        QueryResult to,
        dst.Query(fmt::format("SELECT setval($1::regclass, greatest(q.last_value, $2::bigint) + "
                              "$3::bigint) FROM {} q",
                              s),
                  {s, std::to_string(c.source), std::to_string(margin)}));
    c.target = std::stoll(to.Text(0, 0));
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::vector<CutoverTable>> CountRows(Connection& src, Connection& dst,
                                            const std::vector<CutTable>& tables) {
  std::vector<CutoverTable> out;
  for (const auto& t : tables) {
    const std::string sql = "SELECT count(*) FROM " + t.quoted;
    FERRY_ASSIGN_OR_RETURN(QueryResult a, src.Query(sql));
    FERRY_ASSIGN_OR_RETURN(QueryResult b, dst.Query(sql));
    out.push_back({t.name, std::stoll(a.Text(0, 0)), std::stoll(b.Text(0, 0))});
  }
  return out;
}

Result<std::string> GuardTriggerName(const std::string& job) {
  FERRY_ASSIGN_OR_RETURN(std::string slot, SyncSlotName(job));
  // slot is "ferry_sync_" + the safe job name.
  std::string name = "ferry_cutover_guard_" + slot.substr(11);
  if (name.size() > 63) name.resize(63);
  return name;
}

Status InstallGuard(Connection& src, const std::vector<CutTable>& tables, const std::string& job,
                    const std::string& target_redacted) {
  FERRY_ASSIGN_OR_RETURN(std::string trigger, GuardTriggerName(job));
  std::set<std::string> schemas;
  for (const auto& t : tables) {
    if (schemas.insert(t.schema).second) {
      // TG_ARGV[0] carries the message; ERRCODE 25006: read_only_sql_transaction.
      FERRY_RETURN_IF_ERROR(
          src.Exec(fmt::format("CREATE OR REPLACE FUNCTION {}.ferry_cutover_guard()"
                               " RETURNS trigger LANGUAGE plpgsql AS $ferry$ BEGIN"
                               " RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = '25006';"
                               " END $ferry$",
                               QuoteIdent(t.schema)))
              .status());
    }
    std::string message = fmt::format(
        "table {} moved by ferry cutover {} to {}; ferry cutover {} --undo-guard --from URL "
        "removes this guard",
        t.name, job, target_redacted, job);
    FERRY_RETURN_IF_ERROR(
        src.Exec(fmt::format("CREATE TRIGGER {} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE"
                             " ON {} FOR EACH STATEMENT EXECUTE FUNCTION"
                             " {}.ferry_cutover_guard({})",
                             QuoteIdent(trigger), t.quoted, QuoteIdent(t.schema),
                             PgLiteral(message)))
            .status());
  }
  return Status();
}

Status RecordCutover(Connection& dst, const CutoverReport& r) {
  nlohmann::json seqs = nlohmann::json::array();
  for (const auto& s : r.sequences) {
    seqs.push_back({{"name", s.name}, {"source", s.source}, {"target", s.target}});
  }
  nlohmann::json tables = nlohmann::json::array();
  for (const auto& t : r.tables) {
    tables.push_back(
        {{"name", t.name}, {"source_rows", t.source_rows}, {"target_rows", t.target_rows}});
  }
  nlohmann::json doc = {{"pause_ms", r.pause_ms},     {"drain_lsn", r.drain_lsn},
                        {"sequences", seqs},          {"tables", tables},
                        {"verified", r.verified},     {"guard_trigger", r.guard_trigger},
                        {"hook_exit_code", r.hook_exit_code}};
  FERRY_RETURN_IF_ERROR(
      dst.Exec("ALTER TABLE ferry_sync_jobs ADD COLUMN IF NOT EXISTS cutover jsonb").status());
  return dst
      .Query("UPDATE ferry_sync_jobs SET phase = $2, error = NULL, updated_at = now(),"
             " cutover = $3::jsonb || jsonb_build_object('at', now()) WHERE job = $1",
             {r.job, std::string(SyncPhaseName(SyncPhase::kCutOver)), doc.dump()})
      .status();
}

}  // namespace ferry::sync_internal

namespace ferry {

Result<std::vector<std::string>> UndoCutoverGuard(const std::string& from_url,
                                                  const std::string& job) {
  if (from_url.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "--undo-guard needs --from URL: the old primary holding the guard triggers");
  }
  FERRY_ASSIGN_OR_RETURN(std::string trigger, sync_internal::GuardTriggerName(job));
  ConnectOptions co;
  co.application_name = "ferry cutover";
  auto src_or = OpenConnection(from_url, co);
  if (!src_or.ok()) return std::move(src_or).TakeStatus().Prefix("source");
  Connection& src = **src_or;
  FERRY_ASSIGN_OR_RETURN(
      QueryResult r,
      src.Query("SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
                " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = $1 ORDER BY 1",
                {trigger}));
  if (r.empty()) {
    return Status(StatusCode::kNotFound,
                  fmt::format("no guard trigger {} of cutover '{}' on the source {}; nothing "
                              "to undo",
                              trigger, job, src.redacted_url()));
  }
  std::string script = "BEGIN;";
  std::vector<std::string> tables;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    tables.push_back(r.Text(i, 0));
    script += fmt::format(" DROP TRIGGER {} ON {};", QuoteIdent(trigger), r.Text(i, 0));
  }
  // Guard functions no trigger uses any more go too (other jobs may share one).
  script +=
      " DO $ferry$ DECLARE f regprocedure; BEGIN FOR f IN SELECT p.oid::regprocedure"
      " FROM pg_proc p WHERE p.proname = 'ferry_cutover_guard' AND NOT EXISTS"
      " (SELECT 1 FROM pg_trigger t WHERE t.tgfoid = p.oid) LOOP"
      " EXECUTE 'DROP FUNCTION ' || f; END LOOP; END $ferry$; COMMIT";
  auto done = src.Exec(script);
  if (!done.ok()) {
    (void)src.Exec("ROLLBACK");
    return std::move(done).TakeStatus().Prefix("removing the cut-over guard");
  }
  return tables;
}

}  // namespace ferry
