// Calls ferry::EnsureReady at start-up, as an application would.
//
//   ensure_ready DATABASE_URL MIGRATIONS_DIR [--check-only] [--min V] [--current V]
//                [--allow-downgrade] [--backup PATH]
//
// The environment may set FERRY_AUTO_MIGRATE, FERRY_MIGRATION_TIMEOUT,
// FERRY_VALIDATE_SCHEMA, FERRY_ALLOW_DOWNGRADE and FERRY_BACKUP_BEFORE_MIGRATION
// (or seed 003's SCYLLADB_* names); flags win.
//
// Exit 0 when the schema is ready, 1 when it is not, 2 on an error.
#include <ferry/ferry.h>

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DATABASE_URL MIGRATIONS_DIR [--check-only] [--min V] [--current V]\n",
                 argv[0]);
    return 2;
  }
  ferry::EnsureReadyOptions defaults;
  defaults.timeout = std::chrono::seconds(30);
  // FERRY_AUTO_MIGRATE / SCYLLADB_AUTO_MIGRATE and the like (seed 003).
  ferry::Result<ferry::EnsureReadyOptions> from_env = ferry::EnsureReadyOptionsFromEnv(defaults);
  if (!from_env.ok()) {
    std::fprintf(stderr, "bad environment: %s\n", from_env.status().ToString().c_str());
    return 2;
  }
  ferry::EnsureReadyOptions options = *from_env;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--check-only") == 0) {
      options.auto_migrate = false;
    } else if (std::strcmp(argv[i], "--min") == 0 && i + 1 < argc) {
      options.min_version = argv[++i];
    } else if (std::strcmp(argv[i], "--current") == 0 && i + 1 < argc) {
      options.current_version = argv[++i];
    } else if (std::strcmp(argv[i], "--allow-downgrade") == 0) {
      options.allow_downgrade = true;
    } else if (std::strcmp(argv[i], "--backup") == 0 && i + 1 < argc) {
      options.backup_path = argv[++i];
    }
  }
  ferry::Result<ferry::ReadyReport> report = ferry::EnsureReady(argv[1], argv[2], options);
  if (!report.ok()) {
    std::fprintf(stderr, "schema not ready: %s\n", report.status().ToString().c_str());
    return 2;
  }
  std::printf("ferry %s: schema %s -> %s, applied %zu, pending %d, %s\n",
              std::string(ferry::LibraryVersion()).c_str(),
              report->version_before.empty() ? "(none)" : report->version_before.c_str(),
              report->version_after.empty() ? "(none)" : report->version_after.c_str(),
              report->applied.size(), report->pending, report->ready ? "ready" : "NOT READY");
  for (const std::string& problem : report->problems) std::printf("  %s\n", problem.c_str());
  for (const std::string& note : report->notes) std::printf("  note: %s\n", note.c_str());
  if (!report->backup_path.empty()) std::printf("  schema backup: %s\n", report->backup_path.c_str());
  return report->ready ? 0 : 1;
}
