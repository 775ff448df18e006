// ferry complete / ferry abort, and the expand lines of ferry status
// (docs/online-changes.md).
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/url.h"
#include "drivers/registry.h"
#include "migrate/schema_record.h"
#include "migrate/migrator.h"
#include "move/expand.h"
#include "observe/event.h"

namespace ferry::cli {
namespace {

using nlohmann::json;

std::string PhaseText(const ExpandState& st) {
  if (st.phase == "expanding") return "expanding: backfill not finished ('ferry up' continues it)";
  if (st.phase == "expanded") return "expanded, awaiting 'ferry complete' (or 'ferry abort')";
  return st.phase;
}

}  // namespace

std::string ExpandStatusText(Connection& conn, std::optional<bool> table_exists) {
  auto states = ListExpandStates(conn, table_exists);
  if (!states.ok()) return fmt::format("expand    cannot read: {}\n", states.status().message());
  std::string out;
  for (const ExpandState& st : *states) {
    if (st.phase != "expanding" && st.phase != "expanded") continue;
    if (out.empty()) out = "\nexpand/contract changes:\n";
    out += fmt::format("  {} {}  {}\n      {} (since {})\n", st.version, st.table, st.summary,
                       PhaseText(st), st.started_at);
  }
  return out;
}

json ExpandStatusJson(Connection& conn) {
  json list = json::array();
  auto states = ListExpandStates(conn);
  if (!states.ok()) return list;
  for (const ExpandState& st : *states) {
    list.push_back({{"version", st.version},
                    {"table", st.table},
                    {"script", st.script},
                    {"phase", st.phase},
                    {"summary", st.summary},
                    {"started_at", st.started_at},
                    {"updated_at", st.updated_at}});
  }
  return list;
}

int RunComplete(const Context& ctx, const MigrateArgs& args) {
  CompleteOptions o;
  o.url = ctx.config.Get("database");
  o.history_table = ctx.config.Get("history_table");
  auto wait = ParseDurationMs(ctx.config.Get("lock_wait"));
  if (!wait.ok()) return ReportError(wait.status(), ctx.json);
  o.lock_wait = std::chrono::milliseconds(*wait);
  if (!ctx.config.Get("lock_timeout").empty() && ctx.config.Get("lock_timeout") != "0") {
    o.lock_timeout = ctx.config.Get("lock_timeout");
  }
  o.version = args.target;
  o.dry_run = args.dry_run;
  ScopedSubscription printer(*ctx.bus, [&ctx](const Event& e) {
    if (e.kind != EventKind::kExpand) return;
    if (ctx.json) {
      PrintJson({{"event", e.type}, {"message", e.message}});
    } else if (!ctx.quiet) {
      std::fprintf(stderr, "   %s\n", e.message.c_str());
    }
  });
  // The contract phase drops and renames columns outside up/down: the schema
  // record (migrate/schema_record.h) learns it here, or validate would call
  // the dropped columns missing.
  std::unique_ptr<Connection> record_conn;
  std::unique_ptr<SchemaRecord> record;
  if (!o.dry_run) {
    auto url = Url::Parse(o.url);
    if (url.ok() && url->scheme() == "postgres") {
      auto conn = OpenConnection(*url);
      if (conn.ok()) {
        record_conn = std::move(conn).value();
        record = std::make_unique<SchemaRecord>(record_conn.get(), o.history_table);
        if (Status s = record->Before(true); !s.ok()) return ReportError(s, ctx.json);
      }
    }
  }
  auto r = CompleteExpand(o, ctx.bus);
  if (record) {
    std::vector<SchemaRecord::RunScript> done;
    if (r.ok()) {
      for (const ExpandState& st : r->completed) done.push_back({st.version, st.summary});
    }
    if (Status s = record->After(done); !s.ok()) {
      std::fprintf(stderr, "ferry: warning: could not record the schema change: %s\n",
                   s.ToString().c_str());
    }
  }
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  if (ctx.json) {
    json done = json::array();
    for (const ExpandState& st : r->completed) {
      done.push_back({{"version", st.version}, {"table", st.table}, {"summary", st.summary}});
    }
    PrintJson({{"ok", true}, {"dry_run", o.dry_run}, {"completed", done},
               {"statements", r->statements}});
    return kExitOk;
  }
  std::string out;
  if (o.dry_run) {
    out += "dry run: would run\n";
    for (const std::string& s : r->statements) out += "  " + s + ";\n";
  }
  for (const ExpandState& st : r->completed) {
    out += fmt::format("{} {} {}: {}\n", o.dry_run ? "would complete" : "completed", st.version,
                       st.table, st.summary);
  }
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

}  // namespace ferry::cli
