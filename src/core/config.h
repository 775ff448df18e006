// Configuration with precedence: flags > environment > ferry.toml > defaults.
//
// Keys (ferry.toml name / environment variable):
//   database        FERRY_DATABASE_URL, then DATABASE_URL   default sqlite:ferry.db
//   dir             FERRY_DIR                               default migrations
//   history_table   FERRY_HISTORY_TABLE                     default ferry_schema_history
//   log_level       FERRY_LOG_LEVEL                         default warn
//   lock_wait       FERRY_LOCK_WAIT                         default 60s
//   schema_agreement_timeout FERRY_SCHEMA_AGREEMENT_TIMEOUT (CQL: wait after each
//                   schema change until every node agrees)  default 60s
//   lock_timeout    FERRY_LOCK_TIMEOUT    (PostgreSQL lock_timeout per migration; "0" turns it off) default 5s
//   statement_timeout FERRY_STATEMENT_TIMEOUT               default ""
//   lock_retries    FERRY_LOCK_RETRIES  (retries after lock_timeout, 55P03) default 3
//   lock_retry_delay FERRY_LOCK_RETRY_DELAY (first back-off, doubled, +-50%) default 1s
//   layout          FERRY_LAYOUT  (file layout for 'new')   default ferry
//   cache_dir       FERRY_CACHE_DIR (scan cache for status; "off" disables)
//                   default $XDG_CACHE_HOME/ferry or ~/.cache/ferry
//   version_style   FERRY_VERSION_STYLE (timestamp|integer) default timestamp
//   compat.min_version      FERRY_COMPAT_MIN_VERSION        default ""
//   compat.current_version  FERRY_COMPAT_CURRENT_VERSION    default ""
//   lint.disable            FERRY_LINT_DISABLE  (rule ids, comma-separated or a list) ""
//   lint.small_table_rows   FERRY_LINT_SMALL_TABLE_ROWS  (below: size-graded findings are notes) 10000
//   lint.large_table_rows   FERRY_LINT_LARGE_TABLE_ROWS  (from here: errors)  1000000
//   lint.enforce            FERRY_LINT_ENFORCE  ('up' refuses error findings) true
//   checkpoint.dir          FERRY_CHECKPOINT_DIR    (docs/checkpoints.md) .ferry/checkpoints
//   checkpoint.keep         FERRY_CHECKPOINT_KEEP   (prune keeps the newest N; 0 = no limit) 0
//   checkpoint.pg_bin       FERRY_CHECKPOINT_PG_BIN (folder of pg_dump, pg_restore, psql) ""
// In ferry.toml, "compat.x" is written as key x inside a [compat] table
// (likewise [lint], [checkpoint]). A list value is stored comma-joined. [[partitions]]
// entries are not settings: docs/partitions.md.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry {

enum class ConfigSource { kDefault, kFile, kEnvironment, kFlag };
std::string_view ConfigSourceName(ConfigSource source);

class Config {
 public:
  struct Setting {
    std::string value;
    ConfigSource source = ConfigSource::kDefault;
    std::string origin;  // "ferry.toml:3", "DATABASE_URL", "--database"
  };

  // Reads the file (if `file_path` is set; a missing explicit file is an
  // error, a missing implicit ./ferry.toml is not), then the environment
  // through `getenv`, then `flags` (key -> value, only those given).
  static Result<Config> Load(const std::optional<std::string>& file_path, bool file_explicit,
                             const std::function<const char*(const char*)>& getenv,
                             const std::map<std::string, std::string>& flags);

  const std::string& Get(std::string_view key) const;
  const Setting& GetSetting(std::string_view key) const;
  void Set(std::string key, std::string value, ConfigSource source, std::string origin);

  // Every known key, in a stable order.
  static const std::vector<std::string>& Keys();

  // The settings file that was read, or "" when none was (its [[partitions]]
  // entries are read by ops/partition/partition_spec.h).
  const std::string& file_path() const { return file_path_; }

 private:
  std::string file_path_;
  std::map<std::string, Setting, std::less<>> settings_;
};

// Parses "500ms", "5s", "2min", "1h" or a bare number of milliseconds.
Result<int64_t> ParseDurationMs(std::string_view text);

}  // namespace ferry
