#include "migrate/status_memo.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <filesystem>

#include "migrate/scan_cache.h"

namespace ferry {
namespace {

constexpr std::string_view kHeader = "ferry-status-memo v1";

// Tabs and newlines cannot appear in a field, so the line stays one line.
std::string Field(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

std::string StatusMemoKey::Line() const {
  return fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{:016x}\t{}", kHeader, FERRY_VERSION, Field(database),
                     Field(history_table), Field(mode), Field(dir), dir_signature,
                     Field(fingerprint));
}

std::string StatusMemoKey::Path(const std::string& cache_dir) const {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(dir, ec).lexically_normal().string();
  std::string scope = fmt::format("{}\n{}\n{}\n{}", abs, database, history_table, mode);
  return fmt::format("{}/status-{:016x}.v1", cache_dir, XXH3_64bits(scope.data(), scope.size()));
}

std::optional<std::string> LoadStatusMemo(const std::string& cache_dir, const StatusMemoKey& key) {
  if (cache_dir.empty()) return std::nullopt;
  std::optional<std::string> text = ReadCacheFile(key.Path(cache_dir));
  if (!text) return std::nullopt;
  const std::string line = key.Line();
  if (text->size() <= line.size() || text->compare(0, line.size(), line) != 0 ||
      (*text)[line.size()] != '\n') {
    return std::nullopt;
  }
  return text->substr(line.size() + 1);
}

void SaveStatusMemo(const std::string& cache_dir, const StatusMemoKey& key,
                    const std::string& payload) {
  if (cache_dir.empty()) return;
  WriteCacheFile(cache_dir, key.Path(cache_dir), key.Line() + "\n" + payload);
}

}  // namespace ferry
