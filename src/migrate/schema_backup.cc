#include "migrate/schema_backup.h"

#include <fmt/format.h>

#include <ctime>
#include <filesystem>
#include <fstream>

namespace ferry {

Result<std::string> BackupBeforeUp(Connection& conn, const std::string& scope,
                                   const MigratorOptions& options) {
  if (options.backup.empty() || options.dry_run) return std::string();
  FERRY_ASSIGN_OR_RETURN(std::string text, conn.traits().DescribeSchema(conn, scope));
  std::string path = options.backup;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    path = fmt::format("{}/{}-{}.cql", path, scope, stamp);
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("could not write the schema backup {}; nothing was migrated. "
                                "Check the path and its permissions",
                                tmp));
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("could not write the schema backup {}: {}; nothing was migrated",
                              path, ec.message()));
  }
  return path;
}

}  // namespace ferry
