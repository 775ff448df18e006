#include "core/config.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <toml++/toml.h>

#include "core/toml_guard.h"

namespace ferry {
namespace {

struct KeyInfo {
  const char* key;
  const char* default_value;
  std::vector<const char*> env;  // first set one wins
};

const std::vector<KeyInfo>& KeyTable() {
  static const std::vector<KeyInfo> kKeys = {
      {"database", "sqlite:ferry.db", {"FERRY_DATABASE_URL", "DATABASE_URL"}},
      {"dir", "migrations", {"FERRY_DIR"}},
      {"history_table", "ferry_schema_history", {"FERRY_HISTORY_TABLE"}},
      {"log_level", "warn", {"FERRY_LOG_LEVEL"}},
      {"lock_wait", "60s", {"FERRY_LOCK_WAIT"}},
      {"schema_agreement_timeout", "60s", {"FERRY_SCHEMA_AGREEMENT_TIMEOUT"}},
      {"lock_timeout", "5s", {"FERRY_LOCK_TIMEOUT"}},
      {"statement_timeout", "", {"FERRY_STATEMENT_TIMEOUT"}},
      {"lock_retries", "3", {"FERRY_LOCK_RETRIES"}},
      {"lock_retry_delay", "1s", {"FERRY_LOCK_RETRY_DELAY"}},
      {"layout", "ferry", {"FERRY_LAYOUT"}},
      {"cache_dir", "", {"FERRY_CACHE_DIR"}},
      {"version_style", "timestamp", {"FERRY_VERSION_STYLE"}},
      {"compat.min_version", "", {"FERRY_COMPAT_MIN_VERSION"}},
      {"compat.current_version", "", {"FERRY_COMPAT_CURRENT_VERSION"}},
      {"lint.disable", "", {"FERRY_LINT_DISABLE"}},
      {"lint.small_table_rows", "10000", {"FERRY_LINT_SMALL_TABLE_ROWS"}},
      {"lint.large_table_rows", "1000000", {"FERRY_LINT_LARGE_TABLE_ROWS"}},
      {"lint.enforce", "true", {"FERRY_LINT_ENFORCE"}},
      {"migrations.unknown_files", "error", {"FERRY_UNKNOWN_FILES"}},
      {"engine", "", {"FERRY_ENGINE"}},
      {"checkpoint.dir", ".ferry/checkpoints", {"FERRY_CHECKPOINT_DIR"}},
      {"checkpoint.keep", "0", {"FERRY_CHECKPOINT_KEEP"}},
      {"checkpoint.pg_bin", "", {"FERRY_CHECKPOINT_PG_BIN"}},
  };
  return kKeys;
}

std::string NodeToString(const toml::node& node) {
  if (auto s = node.value<std::string>()) return *s;
  if (auto i = node.value<int64_t>()) return std::to_string(*i);
  if (auto b = node.value<bool>()) return *b ? "true" : "false";
  if (auto d = node.value<double>()) return fmt::format("{}", *d);
  return "";
}

bool KnownKey(std::string_view key) {
  for (const auto& k : KeyTable()) {
    if (key == k.key) return true;
  }
  return false;
}

}  // namespace

std::string_view ConfigSourceName(ConfigSource source) {
  switch (source) {
    case ConfigSource::kDefault: return "default";
    case ConfigSource::kFile: return "file";
    case ConfigSource::kEnvironment: return "environment";
    case ConfigSource::kFlag: return "flag";
  }
  return "default";
}

const std::vector<std::string>& Config::Keys() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> out;
    for (const auto& k : KeyTable()) out.emplace_back(k.key);
    return out;
  }();
  return kNames;
}

const std::string& Config::Get(std::string_view key) const { return GetSetting(key).value; }

const Config::Setting& Config::GetSetting(std::string_view key) const {
  static const Setting kEmpty;
  auto it = settings_.find(key);
  return it == settings_.end() ? kEmpty : it->second;
}

void Config::Set(std::string key, std::string value, ConfigSource source, std::string origin) {
  settings_[std::move(key)] = Setting{std::move(value), source, std::move(origin)};
}

Result<Config> Config::Load(const std::optional<std::string>& file_path, bool file_explicit,
                            const std::function<const char*(const char*)>& getenv,
                            const std::map<std::string, std::string>& flags) {
  Config config;
  for (const auto& k : KeyTable()) config.Set(k.key, k.default_value, ConfigSource::kDefault, "");

  if (file_path) {
    std::error_code ec;
    if (!std::filesystem::exists(*file_path, ec)) {
      if (file_explicit) {
        return Status(StatusCode::kNotFound,
                      fmt::format("config file '{}' does not exist", *file_path));
      }
    } else {
      // Debian's toml++ is built with exceptions: they stop here.
      std::ifstream in(*file_path, std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) {
        return Status(StatusCode::kPermissionDenied,
                      fmt::format("config file '{}' cannot be read", *file_path));
      }
      if (TomlUnsafe bad = TomlUnsafeSpot(text); bad.line > 0) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("{}:{}: {}", *file_path, bad.line, bad.reason));
      }
      toml::table table;
      try {
        table = toml::parse(text, *file_path);
      } catch (const toml::parse_error& err) {
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("{}:{}:{}: {}", *file_path, err.source().begin.line,
                                  err.source().begin.column, err.description()));
      }
      std::vector<std::string> problems;
      auto take = [&](const std::string& key, const toml::node& node) {
        std::string line = fmt::format("{}:{}", *file_path, node.source().begin.line);
        if (!KnownKey(key)) {
          problems.push_back(fmt::format("{}: unknown setting '{}'", line, key));
          return;
        }
        if (const toml::array* list = node.as_array()) {
          // A list of plain values (lint.disable = ["a", "b"]) becomes "a,b".
          std::string joined;
          for (const toml::node& item : *list) {
            if (!item.is_value()) {
              problems.push_back(fmt::format("{}: '{}' must list strings or numbers", line, key));
              return;
            }
            joined += (joined.empty() ? "" : ",") + NodeToString(item);
          }
          config.Set(key, joined, ConfigSource::kFile, line);
          return;
        }
        if (!node.is_value()) {
          problems.push_back(fmt::format("{}: '{}' must be a string or number", line, key));
          return;
        }
        config.Set(key, NodeToString(node), ConfigSource::kFile, line);
      };
      config.file_path_ = *file_path;
      for (const auto& [k, node] : table) {
        std::string key(k.str());
        // [[partitions]] entries are read by ops/partition/partition_spec.h.
        if (key == "partitions") {
          if (!node.is_array_of_tables()) {
            problems.push_back(fmt::format("{}:{}: write each partitioned table as a "
                                           "[[partitions]] entry (double brackets): "
                                           "docs/partitions.md",
                                           *file_path, node.source().begin.line));
          }
          continue;
        }
        if (const toml::table* sub = node.as_table()) {
          for (const auto& [k2, node2] : *sub) {
            // [[copy.map]] entries are read by move/cql_map.h (ferry copy to CQL).
            if (key == "copy" && k2.str() == "map") continue;
            take(key + "." + std::string(k2.str()), node2);
          }
        } else {
          take(key, node);
        }
      }
      if (!problems.empty()) {
        std::string known;
        for (const auto& name : Keys()) known += (known.empty() ? "" : ", ") + name;
        std::string msg;
        for (const auto& p : problems) msg += p + "\n";
        msg += "known settings: " + known;
        return Status(StatusCode::kInvalidArgument, msg);
      }
    }
  }

  for (const auto& k : KeyTable()) {
    for (const char* var : k.env) {
      const char* v = getenv(var);
      if (v != nullptr && *v != '\0') {
        config.Set(k.key, v, ConfigSource::kEnvironment, var);
        break;
      }
    }
  }

  for (const auto& [key, value] : flags) {
    if (!KnownKey(key)) {
      return Status(StatusCode::kInternal, fmt::format("flag for unknown setting '{}'", key));
    }
    config.Set(key, value, ConfigSource::kFlag, "--" + key);
  }
  return config;
}

Result<int64_t> ParseDurationMs(std::string_view text) {
  std::string_view t = text;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  double number = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), number);
  if (ec != std::errc() || number < 0) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("'{}' is not a duration: write e.g. 500ms, 5s, 2min, 1h", text));
  }
  std::string_view unit(ptr, static_cast<size_t>(t.data() + t.size() - ptr));
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  double factor = 0;
  if (unit.empty() || unit == "ms") factor = 1;
  else if (unit == "s" || unit == "sec") factor = 1000;
  else if (unit == "m" || unit == "min") factor = 60'000;
  else if (unit == "h") factor = 3'600'000;
  else {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("'{}': unknown unit '{}': use ms, s, min or h", text, unit));
  }
  // Anything over a year is a typo, and a cast of a huge value (or of "inf"
  // or "nan", which from_chars reads) to an integer is undefined behaviour
  // (found by fuzz_config).
  double ms = number * factor;
  if (!std::isfinite(ms) || ms > 366.0 * 24 * 3'600'000) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("'{}' is not a duration of at most a year: write e.g. 500ms, 5s, "
                              "2min, 1h",
                              text));
  }
  return static_cast<int64_t>(ms);
}

}  // namespace ferry
