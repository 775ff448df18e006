// `ferry init` and `ferry new`: files on disk (ferry.toml, the migrations
// directory, the next migration file), flags already parsed.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "cli/context.h"
#include "cli/migrate_commands_internal.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "core/printable.h"
#include "core/url.h"
#include "migrate/migrator.h"
#include "migrate/scan_cache.h"
#include "migrate/status_memo.h"
#include "migrate/validate_files.h"
#include "move/expand.h"

namespace ferry::cli {
namespace {

using nlohmann::json;

void Out(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

// A TOML basic string (JSON's escapes are valid TOML).
std::string TomlString(const std::string& text) {
  return json(text).dump(-1, ' ', false, json::error_handler_t::replace);
}

// The database line of a new ferry.toml: the URL without its secrets
// (Url::ConnectionText), never the text as given.
std::string InitDatabaseLine(const std::string& database) {
  auto parsed = Url::Parse(database);
  if (!parsed.ok()) return "# database = \"\"  # the URL given does not parse; set it here\n";
  std::string line = "database = " + TomlString(parsed->ConnectionText());
  if (parsed->has_password() || !parsed->ssl_password().empty()) {
    line += "  # password left out: put it in ~/.pgpass or PGPASSWORD";
  }
  return line + "\n";
}

}  // namespace

int RunInit(const Context& ctx) {
  std::string dir = ctx.config.Get("dir");
  std::error_code ec;
  bool made_dir = std::filesystem::create_directories(dir, ec);
  if (ec) {
    return ReportError(Status(StatusCode::kPermissionDenied,
                              fmt::format("cannot create {}: {}", dir, ec.message())),
                       ctx.json);
  }
  bool made_config = false;
  if (!std::filesystem::exists("ferry.toml")) {
    std::ofstream f("ferry.toml");
    f << "# ferry settings. Flags and environment (DATABASE_URL, FERRY_*) override these.\n"
      << "# Keep passwords out of this file: use ~/.pgpass or PGPASSWORD.\n"
      << InitDatabaseLine(ctx.config.Get("database"));
    f
      << "dir = \"" << dir << "\"\n"
      << "# history_table = \"ferry_schema_history\"\n"
      << "# lock_wait = \"60s\"\n"
      << "# lock_timeout = \"5s\"\n"
      << "\n# [compat]\n# min_version = \"1.0.0\"\n# current_version = \"1.1.0\"\n";
    made_config = static_cast<bool>(f);
  }
  MigrateArgs none;
  auto options = OptionsFrom(ctx, none);
  if (!options.ok()) return ReportError(options.status(), ctx.json);
  auto migrator = Migrator::Open(ctx.config.Get("database"), *options);
  if (!migrator.ok()) return ReportError(migrator.status(), ctx.json);
  if (Status s = (*migrator)->EnsureHistory(); !s.ok()) return ReportError(s, ctx.json);
  if (ctx.json) {
    PrintJson({{"ok", true},
               {"dir", dir},
               {"created_dir", made_dir},
               {"created_config", made_config},
               {"history_table", options->history_table}});
  } else {
    Out(fmt::format("{} {}\n{} ferry.toml\nhistory table {} ready in {}\nnext: ferry new "
                    "create_users\n",
                    made_dir ? "created" : "exists ", dir, made_config ? "created" : "exists ",
                    options->history_table, (*migrator)->connection()->redacted_url()));
  }
  return kExitOk;
}

int RunNew(const Context& ctx, const MigrateArgs& args) {
  std::string dir = ctx.config.Get("dir");
  MigrationSet existing;
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    auto scanned = ScanDirectory(dir, ScanOptions{.allow_empty = true});
    if (!scanned.ok()) return ReportError(scanned.status(), ctx.json);
    existing = std::move(scanned).value();
  } else {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return ReportError(Status(StatusCode::kPermissionDenied,
                                fmt::format("cannot create {}: {}", dir, ec.message())),
                         ctx.json);
    }
  }
  std::string layout_name = args.layout.empty() ? ctx.config.Get("layout") : args.layout;
  SourceLayout layout;
  if (layout_name == "ferry" || layout_name == "dbmate" || layout_name == "single-file") {
    layout = SourceLayout::kSingleFile;
  } else if (layout_name == "golang" || layout_name == "golang-migrate" ||
             layout_name == "up-down-files") {
    layout = SourceLayout::kUpDownFiles;
  } else if (layout_name == "diesel") {
    layout = SourceLayout::kDieselFolder;
  } else if (layout_name == "flyway") {
    layout = SourceLayout::kFlyway;
  } else {
    return ReportError(Status(StatusCode::kInvalidArgument,
                              fmt::format("unknown layout '{}': use ferry, golang, diesel or flyway",
                                          layout_name)),
                       ctx.json);
  }
  std::string style_name = args.style.empty() ? ctx.config.Get("version_style") : args.style;
  VersionStyle style;
  if (style_name == "timestamp") {
    style = VersionStyle::kTimestamp;
  } else if (style_name == "integer" || style_name == "sequential") {
    style = VersionStyle::kSequential;
  } else {
    return ReportError(Status(StatusCode::kInvalidArgument,
                              fmt::format("unknown version style '{}': use timestamp or integer",
                                          style_name)),
                       ctx.json);
  }
  auto next = NextVersionName(existing, args.name, style, std::chrono::system_clock::now(), layout);
  if (!next.ok()) return ReportError(next.status(), ctx.json);
  json files = json::array();
  for (const NewFile& f : next->files) {
    std::filesystem::path p = std::filesystem::path(dir) / f.path;
    std::filesystem::create_directories(p.parent_path(), ec);
    if (std::filesystem::exists(p)) {
      return ReportError(Status(StatusCode::kAlreadyExists,
                                fmt::format("{} exists already; nothing written", p.string())),
                         ctx.json);
    }
    std::ofstream(p) << f.contents;
    files.push_back(p.string());
    if (!ctx.json) Out(fmt::format("created {}\n", p.string()));
  }
  if (ctx.json) PrintJson({{"ok", true}, {"version", next->version}, {"files", files}});
  return kExitOk;
}

}  // namespace ferry::cli
