// ferry lint: collects migrations from directories and files, optionally
// reads live table sizes and the pending set from --database, lints, renders
// text, JSON or SARIF.
#include <fmt/format.h>

#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "core/config.h"
#include "drivers/registry.h"
#include "migrate/lint.h"
#include "migrate/migrator.h"

namespace ferry::cli {
namespace {

namespace fs = std::filesystem;

void Out(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }
void Err(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stderr); }

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

bool SamePath(const std::string& a, const std::string& b) {
  std::error_code ec;
  bool same = fs::equivalent(a, b, ec);
  return !ec && same;
}

// A .sql file read on its own (not part of a scannable directory): the text
// between `-- ferry:up` / `-- migrate:up` and the down marker, or all of it.
Result<Migration> ReadLooseFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(StatusCode::kNotFound, fmt::format("{}: cannot read the file", path));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = CanonicalScriptText(buffer.str());
  Migration m;
  m.script = fs::path(path).filename().string();
  m.description = m.script;
  m.up.path = path;
  size_t begin = 0;
  size_t end = text.size();
  int first_line = 1;
  size_t pos = 0;
  int line = 1;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string l = Trim(std::string_view(text).substr(pos, eol - pos));
    auto marker = [&](std::string_view name) {
      for (std::string_view prefix : {"-- ferry:", "-- migrate:", "--ferry:", "--migrate:"}) {
        std::string want = std::string(prefix) + std::string(name);
        if (l.rfind(want, 0) == 0 && (l.size() == want.size() || l[want.size()] == ' ')) {
          return true;
        }
      }
      return false;
    };
    if (marker("up")) {
      begin = eol + 1 > text.size() ? text.size() : eol + 1;
      first_line = line + 1;
    } else if (marker("down") && pos >= begin) {
      end = pos;
      break;
    }
    pos = eol + 1;
    ++line;
  }
  m.up.sql = text.substr(begin, end - begin);
  m.up.first_line = first_line;
  return m;
}

}  // namespace

Result<LintOptions> LintOptionsFromConfig(const Config& config) {
  LintOptions o;
  std::string_view list = config.Get("lint.disable");
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string id = Trim(list.substr(0, comma));
    if (!id.empty()) {
      if (FindLintRule(id) == nullptr) {
        const Config::Setting& s = config.GetSetting("lint.disable");
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("{}: lint.disable names '{}', which is not a lint rule (see "
                                  "docs/lint.md)",
                                  s.origin.empty() ? "lint.disable" : s.origin, id));
      }
      o.disabled.insert(id);
    }
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  for (const auto& [key, target] :
       {std::pair<const char*, int64_t*>{"lint.small_table_rows", &o.small_table_rows},
        std::pair<const char*, int64_t*>{"lint.large_table_rows", &o.large_table_rows}}) {
    const std::string& v = config.Get(key);
    char* end = nullptr;
    long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || end == nullptr || *end != '\0' || n < 0) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("{} must be a row count (found '{}')", key, v));
    }
    *target = n;
  }
  o.default_lock_timeout = !config.Get("lock_timeout").empty() && config.Get("lock_timeout") != "0";
  return o;
}

int RunLint(const Context& ctx, const std::vector<std::string>& paths_in,
            const std::string& format_in) {
  std::string format = format_in.empty() ? (ctx.json ? "json" : "text") : format_in;
  if (format != "text" && format != "json" && format != "sarif") {
    return ReportError(Status(StatusCode::kInvalidArgument,
                              fmt::format("unknown --format '{}': use text, json or sarif", format)),
                       ctx.json);
  }
  auto options = LintOptionsFromConfig(ctx.config);
  if (!options.ok()) return ReportError(options.status(), ctx.json);
  const std::string dir = ctx.config.Get("dir");
  std::vector<std::string> paths = paths_in.empty() ? std::vector<std::string>{dir} : paths_in;

  // --database given explicitly: live sizes, server version, pending set.
  std::unique_ptr<Migrator> migrator;
  if (ctx.config.GetSetting("database").source == ConfigSource::kFlag) {
    MigratorOptions mo;
    mo.dir = dir;
    mo.history_table = ctx.config.Get("history_table");
    mo.ignore_unknown_files = ctx.config.Get("migrations.unknown_files") == "ignore";
    auto opened = Migrator::Open(ctx.config.Get("database"), mo);
    if (!opened.ok()) return ReportError(opened.status(), ctx.json);
    migrator = std::move(opened).value();
    Status facts = ReadDatabaseFacts(*migrator->connection(), &*options);
    if (!facts.ok()) return ReportError(facts, ctx.json);
  }

  std::deque<MigrationSet> sets;
  std::deque<Migration> loose;
  std::vector<const Migration*> order;
  std::vector<Status> problems;
  bool carry = false;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      auto scanned = ScanDirectory(
          path, ScanOptions{.ignore_unknown_files =
                                ctx.config.Get("migrations.unknown_files") == "ignore"});
      if (!scanned.ok()) {
        problems.push_back(scanned.status());
        continue;
      }
      sets.push_back(std::move(scanned).value());
      const MigrationSet& set = sets.back();
      if (migrator && SamePath(path, dir)) {
        // Only what `up` would apply; earlier pending files make tables new.
        auto status = migrator->CurrentStatus();
        if (!status.ok()) return ReportError(status.status(), ctx.json);
        for (const PlanEntry& e : status->entries) {
          if (e.migration == nullptr) continue;
          if (e.state == EntryState::kPending || e.state == EntryState::kFailed ||
              e.state == EntryState::kRunning || e.state == EntryState::kOutOfOrder) {
            for (const Migration& m : set.migrations) {
              if (m.up.path == e.migration->up.path) order.push_back(&m);
            }
          }
        }
        carry = true;
      } else {
        for (const Migration& m : set.migrations) order.push_back(&m);
      }
      continue;
    }
    if (!fs::exists(path, ec)) {
      problems.push_back(Status(StatusCode::kNotFound, fmt::format("{}: no such file or directory",
                                                                   path)));
      continue;
    }
    // A file: as its directory's scanner reads it when that works, else alone.
    const Migration* found = nullptr;
    fs::path parent = fs::path(path).parent_path();
    auto scanned = ScanDirectory(parent.empty() ? "." : parent.string(),
                                 ScanOptions{.allow_empty = true, .ignore_unknown_files = true});
    if (scanned.ok()) {
      sets.push_back(std::move(scanned).value());
      for (const Migration& m : sets.back().migrations) {
        if (SamePath(m.up.path, path)) found = &m;
      }
    }
    if (found == nullptr) {
      auto m = ReadLooseFile(path);
      if (!m.ok()) {
        problems.push_back(m.status());
        continue;
      }
      loose.push_back(std::move(m).value());
      found = &loose.back();
    }
    order.push_back(found);
  }
  options->carry_across_files = carry && paths.size() == 1;
  options->empty_tables_are_new = options->carry_across_files;  // as `up` judges them

  auto report = LintMigrations(order, *options);
  if (!report.ok()) return ReportError(report.status(), ctx.json);
  if (format == "json") {
    Out(LintReportJson(*report));
  } else if (format == "sarif") {
    Out(LintReportSarif(*report));
  } else {
    Out(LintReportText(*report));
  }
  for (const Status& p : problems) {
    Err(fmt::format("ferry: error: {}\n", p.message()));
  }
  if (!problems.empty()) return ExitCodeFor(problems.front());
  return report->has_errors() ? kExitUnsafe : kExitOk;
}

}  // namespace ferry::cli
