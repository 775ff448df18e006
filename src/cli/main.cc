// The ferry program: parses the command line, loads configuration, calls the
// library and renders text or --json. The only file that includes CLI11.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/log.h"
#include "drivers/registry.h"

namespace ferry::cli {
namespace {

constexpr const char* kOverview = R"(ferry changes production databases safely: versioned schema migrations
with history, checksums, locks and rollback; verification; and the operations
around them. PostgreSQL first, SQLite embedded (the default: ./ferry.db).

Commands, each with an example:
  doctor     ferry doctor postgres://app@db.internal/app
             connect and list the capabilities ferry relies on
  version    ferry version

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
  if (doctor->parsed()) {
    return RunDoctor(ctx, doctor_url.empty() ? ctx.config.Get("database") : doctor_url);
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
