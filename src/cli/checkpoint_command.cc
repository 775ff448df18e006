// ferry checkpoint ... and `ferry up --checkpoint --auto-rollback`: options
// from flags and ferry.toml's [checkpoint], one library call, text or --json.
#include "cli/checkpoint_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/printable.h"
#include "migrate/migrator.h"
#include "ops/checkpoint/checkpoint.h"
#include "ops/checkpoint/up_checkpoint.h"

namespace ferry::cli {
namespace {

using nlohmann::json;

void Out(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }
void Err(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stderr); }

CheckpointOptions OptionsFrom(const Context& ctx, const std::string& dir,
                              const std::string& pg_bin) {
  CheckpointOptions o;
  o.url = ctx.config.Get("database");
  o.dir = dir.empty() ? ctx.config.Get("checkpoint.dir") : dir;
  o.pg_bin = pg_bin.empty() ? ctx.config.Get("checkpoint.pg_bin") : pg_bin;
  o.history_table = ctx.config.Get("history_table");
  return o;
}

std::string Size(int64_t bytes) {
  if (bytes < 10 * 1024) return fmt::format("{} B", bytes);
  if (bytes < 10 * 1024 * 1024) return fmt::format("{} KiB", bytes / 1024);
  return fmt::format("{} MiB", bytes / (1024 * 1024));
}

std::string ScopeText(const CheckpointManifest& m) {
  if (m.scope == CheckpointScope::kSchemas) return "schemas " + fmt::format("{}", fmt::join(m.schemas, ","));
  if (m.scope == CheckpointScope::kTables) return "tables " + fmt::format("{}", fmt::join(m.tables, ","));
  return "database";
}

json ManifestJson(const CheckpointManifest& m) {
  return json::parse(ManifestToJson(m));
}

int Create(const Context& ctx, const CheckpointArgs& a, CheckpointOptions o) {
  o.schemas = a.schemas;
  o.tables = a.tables;
  o.note = "ferry checkpoint create";
  Result<CheckpointManifest> m = CreateCheckpoint(o, a.name);
  if (!m.ok()) return ReportError(m.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true}, {"checkpoint", ManifestJson(*m)}, {"dir", o.dir}});
  } else {
    Out(fmt::format("checkpoint {} taken: {} of {} in {} ms with {} ({}/{})\n", m->name,
                    ScopeText(*m), Size(m->size_bytes), m->duration_ms, Printable(m->tool), o.dir,
                    m->name));
  }
  return kExitOk;
}

int List(const Context& ctx, const CheckpointOptions& o) {
  Result<std::vector<CheckpointManifest>> all = ListCheckpoints(o.dir);
  if (!all.ok()) return ReportError(all.status(), ctx.json);
  if (ctx.json) {
    json list = json::array();
    for (const CheckpointManifest& m : *all) list.push_back(ManifestJson(m));
    PrintJson({{"ok", true}, {"dir", o.dir}, {"checkpoints", list}});
    return kExitOk;
  }
  if (all->empty()) {
    Out(fmt::format("no checkpoints in {}\n", o.dir));
    return kExitOk;
  }
  Out(fmt::format("{:<36} {:<8} {:<24} {:>10} {:>9}  {:<12} {}\n", "NAME", "ENGINE", "CREATED",
                  "SIZE", "TIME", "VERSION", "SCOPE"));
  for (const CheckpointManifest& m : *all) {
    Out(fmt::format("{:<36} {:<8} {:<24} {:>10} {:>7}ms  {:<12} {}\n", m.name, m.engine,
                    m.created_at, Size(m.size_bytes), m.duration_ms,
                    m.migration_version.empty() ? "-" : Printable(m.migration_version),
                    Printable(ScopeText(m))));
  }
  return kExitOk;
}

int Restore(const Context& ctx, const CheckpointArgs& a, CheckpointOptions o) {
  o.dry_run = a.dry_run;
  Result<RestoreReport> r = RestoreCheckpoint(o, a.name);
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true},
               {"dry_run", r->dry_run},
               {"checkpoint", ManifestJson(r->checkpoint)},
               {"drops", r->drops},
               {"restores", r->restores},
               {"duration_ms", r->duration_ms}});
    return kExitOk;
  }
  const std::string verb = r->dry_run ? "would drop" : "dropped";
  Out(fmt::format("{}{} {} object(s) in scope first:\n", r->dry_run ? "dry run: " : "",
                  verb, r->drops.size()));
  for (const std::string& d : r->drops) Out("  - " + Printable(d) + "\n");
  Out(fmt::format("{} {} item(s) from checkpoint {} ({}, taken {}, version {}):\n",
                  r->dry_run ? "would restore" : "restored", r->restores.size(), r->checkpoint.name,
                  ScopeText(r->checkpoint), r->checkpoint.created_at,
                  r->checkpoint.migration_version.empty() ? "none"
                                                          : r->checkpoint.migration_version));
  for (const std::string& s : r->restores) Out("  + " + Printable(s) + "\n");
  if (r->dry_run) {
    Out("nothing was changed\n");
  } else {
    Out(fmt::format("restored in {} ms, in one transaction\n", r->duration_ms));
  }
  return kExitOk;
}

int Prune(const Context& ctx, const CheckpointArgs& a, const CheckpointOptions& o) {
  int keep = a.keep;
  if (keep == 0) keep = std::atoi(ctx.config.Get("checkpoint.keep").c_str());
  Result<std::vector<std::string>> deleted = PruneCheckpoints(o.dir, keep);
  if (!deleted.ok()) return ReportError(deleted.status(), ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true}, {"keep", keep}, {"deleted", *deleted}});
  } else if (deleted->empty()) {
    Out(fmt::format("nothing to prune: at most {} checkpoint(s) in {}\n", keep, o.dir));
  } else {
    Out(fmt::format("pruned {} checkpoint(s), kept the newest {}: {}\n", deleted->size(), keep,
                    fmt::join(*deleted, ", ")));
  }
  return kExitOk;
}

}  // namespace

int RunCheckpointCommand(const Context& ctx, const CheckpointArgs& a) {
  CheckpointOptions o = OptionsFrom(ctx, a.dir, a.pg_bin);
  if (a.action == "create") return Create(ctx, a, o);
  if (a.action == "list") return List(ctx, o);
  if (a.action == "restore") return Restore(ctx, a, o);
  if (a.action == "prune") return Prune(ctx, a, o);
  if (a.action == "delete") {
    if (Status s = DeleteCheckpoint(o.dir, a.name); !s.ok()) return ReportError(s, ctx.json);
    if (ctx.json) {
      PrintJson({{"ok", true}, {"deleted", a.name}});
    } else {
      Out(fmt::format("checkpoint {} deleted\n", a.name));
    }
    return kExitOk;
  }
  return ReportError(Status(StatusCode::kInternal, "unknown checkpoint action " + a.action),
                     ctx.json);
}

int RunGuardedUp(const Context& ctx, const MigrateArgs& args, Migrator& m) {
  GuardedUpOptions o;
  o.checkpoint = args.checkpoint;
  o.auto_rollback = args.auto_rollback;
  o.checkpoint_options = OptionsFrom(ctx, args.checkpoint_dir, args.pg_bin);
  Result<GuardedUpResult> r = UpWithCheckpoint(m, args.target, o);
  if (!r.ok()) return ReportError(r.status(), ctx.json);
  json rollback = nullptr;
  if (r->rollback_attempted || !r->failure.ok()) {
    rollback = {{"attempted", r->rollback_attempted},
                {"method", std::string(ToText(r->rollback))},
                {"ok", r->rollback_status.ok()},
                {"note", r->rollback_note},
                {"reason", r->failure.ok() ? "" : r->failure.ToString()},
                {"rolled_back", r->rolled_back},
                {"duration_ms", r->rollback_ms}};
    if (!r->rollback_status.ok()) rollback["error"] = StatusJson(r->rollback_status);
  }
  json checkpoint = r->checkpoint ? ManifestJson(*r->checkpoint) : json(nullptr);
  if (r->applied) {
    const ApplyResult& a = *r->applied;
    if (ctx.json) {
      PrintJson({{"ok", true},
                 {"dry_run", a.dry_run},
                 {"applied", a.applied},
                 {"duration_ms", a.duration_ms},
                 {"current_version", a.current_version},
                 {"checkpoint", checkpoint}});
    } else {
      if (r->checkpoint) Out(fmt::format("checkpoint {} taken first\n", r->checkpoint->name));
      Out(a.applied.empty() ? "nothing to apply\n"
                            : fmt::format("{}applied {} migration(s) in {} ms; now at {}\n",
                                          a.dry_run ? "dry run: would have " : "",
                                          a.applied.size(), a.duration_ms,
                                          a.current_version.empty() ? "no version"
                                                                    : a.current_version));
    }
    return kExitOk;
  }
  if (ctx.json) {
    PrintJson({{"ok", false},
               {"error", StatusJson(r->failure)},
               {"checkpoint", checkpoint},
               {"auto_rollback", rollback}});
  } else {
    ReportError(r->failure, false);
    if (r->rollback_attempted) {
      Err(fmt::format("auto-rollback ({}): {}{} in {} ms; reason: the migration failed\n",
                      ToText(r->rollback), r->rollback_note,
                      r->rollback_status.ok() ? "" : " FAILED: " + r->rollback_status.ToString(),
                      r->rollback_ms));
    } else if (args.auto_rollback) {
      Err(fmt::format("auto-rollback: {}\n", r->rollback_note));
    }
    if (r->checkpoint && !r->rollback_attempted) {
      Err(fmt::format("checkpoint {} was taken before; 'ferry checkpoint restore {}' goes back\n",
                      r->checkpoint->name, r->checkpoint->name));
    }
  }
  return ExitCodeFor(r->failure);
}

}  // namespace ferry::cli
