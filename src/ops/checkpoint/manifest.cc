// Checkpoint manifests: manifest.json of one checkpoint folder, written
// atomically (temporary file, then rename), and the store's listing,
// deletion and retention.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ops/checkpoint/checkpoint.h"
#include "ops/checkpoint/checkpoint_internal.h"

namespace ferry {

namespace fs = std::filesystem;
using nlohmann::json;

std::string_view ToText(CheckpointScope scope) {
  switch (scope) {
    case CheckpointScope::kDatabase:
      return "database";
    case CheckpointScope::kSchemas:
      return "schemas";
    case CheckpointScope::kTables:
      return "tables";
  }
  return "database";
}

Result<CheckpointScope> CheckpointScopeFromText(std::string_view text) {
  for (CheckpointScope s :
       {CheckpointScope::kDatabase, CheckpointScope::kSchemas, CheckpointScope::kTables}) {
    if (ToText(s) == text) return s;
  }
  return Status(StatusCode::kInvalidArgument,
                fmt::format("unknown checkpoint scope '{}' (database, schemas or tables)", text));
}

Status CheckCheckpointName(std::string_view name) {
  const bool chars_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
  if (name.empty() || name.size() > 100 || !chars_ok || name[0] == '.' || name[0] == '-') {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("checkpoint name '{}' is not usable: use 1-100 letters, digits, "
                              "'.', '_' or '-', not starting with '.' or '-' (it names a folder)",
                              std::string(name.substr(0, 120))));
  }
  return Status();
}

std::string ManifestToJson(const CheckpointManifest& m) {
  json j = {{"format_version", m.format_version},
            {"name", m.name},
            {"engine", m.engine},
            {"database", m.database},
            {"created_at", m.created_at},
            {"size_bytes", m.size_bytes},
            {"duration_ms", m.duration_ms},
            {"scope", ToText(m.scope)},
            {"schemas", m.schemas},
            {"tables", m.tables},
            {"migration_version", m.migration_version},
            {"dump_file", m.dump_file},
            {"tool", m.tool},
            {"server_version", m.server_version},
            {"note", m.note}};
  return j.dump(2) + "\n";
}

namespace {

Status FieldError(std::string_view field, std::string_view want) {
  return Status(StatusCode::kInvalidArgument,
                fmt::format("checkpoint manifest: field '{}' is missing or not {}", field, want));
}

Status ReadText(const json& j, const char* key, std::string* out, bool required) {
  auto it = j.find(key);
  if (it == j.end() && !required) return Status();
  if (it == j.end() || !it->is_string()) return FieldError(key, "text");
  *out = it->get<std::string>();
  return Status();
}

Status ReadInt(const json& j, const char* key, int64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return FieldError(key, "an integer");
  *out = it->get<int64_t>();
  return Status();
}

Status ReadList(const json& j, const char* key, std::vector<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end()) return Status();
  if (!it->is_array()) return FieldError(key, "a list of text");
  for (const json& item : *it) {
    if (!item.is_string()) return FieldError(key, "a list of text");
    out->push_back(item.get<std::string>());
  }
  return Status();
}

}  // namespace

Result<CheckpointManifest> ParseManifest(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status(StatusCode::kInvalidArgument, "checkpoint manifest is not a JSON object");
  }
  CheckpointManifest m;
  int64_t format = 0;
  FERRY_RETURN_IF_ERROR(ReadInt(j, "format_version", &format));
  if (format < 1 || format > kCheckpointFormatVersion) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("checkpoint manifest format {} is not one this ferry reads (1 to "
                              "{}); use a newer ferry",
                              format, kCheckpointFormatVersion));
  }
  m.format_version = static_cast<int>(format);
  FERRY_RETURN_IF_ERROR(ReadText(j, "name", &m.name, true));
  FERRY_RETURN_IF_ERROR(CheckCheckpointName(m.name));
  FERRY_RETURN_IF_ERROR(ReadText(j, "engine", &m.engine, true));
  FERRY_RETURN_IF_ERROR(ReadText(j, "database", &m.database, false));
  FERRY_RETURN_IF_ERROR(ReadText(j, "created_at", &m.created_at, true));
  FERRY_RETURN_IF_ERROR(ReadInt(j, "size_bytes", &m.size_bytes));
  FERRY_RETURN_IF_ERROR(ReadInt(j, "duration_ms", &m.duration_ms));
  std::string scope;
  FERRY_RETURN_IF_ERROR(ReadText(j, "scope", &scope, true));
  FERRY_ASSIGN_OR_RETURN(m.scope, CheckpointScopeFromText(scope));
  FERRY_RETURN_IF_ERROR(ReadList(j, "schemas", &m.schemas));
  FERRY_RETURN_IF_ERROR(ReadList(j, "tables", &m.tables));
  FERRY_RETURN_IF_ERROR(ReadText(j, "migration_version", &m.migration_version, false));
  FERRY_RETURN_IF_ERROR(ReadText(j, "dump_file", &m.dump_file, true));
  if (m.dump_file.empty() || m.dump_file.find('/') != std::string::npos ||
      m.dump_file[0] == '.') {
    return FieldError("dump_file", "a plain file name inside the checkpoint folder");
  }
  FERRY_RETURN_IF_ERROR(ReadText(j, "tool", &m.tool, false));
  FERRY_RETURN_IF_ERROR(ReadText(j, "server_version", &m.server_version, false));
  FERRY_RETURN_IF_ERROR(ReadText(j, "note", &m.note, false));
  return m;
}

namespace checkpoint {

std::string FolderOf(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

Status WriteManifest(const std::string& folder, const CheckpointManifest& m) {
  const std::string path = (fs::path(folder) / kManifestFile).string();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << ManifestToJson(m);
    out.flush();
    if (!out) {
      return Status(StatusCode::kFailedPrecondition,
                    fmt::format("could not write {}; check the folder and its free space", tmp));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("could not rename {} to {}: {}", tmp, path, ec.message()));
  }
  return Status();
}

namespace {
std::string FormatNow(const char* format) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[40];
  std::strftime(text, sizeof text, format, &tm);
  return text;
}
}  // namespace

namespace {
// Milliseconds, so checkpoints taken in the same second still differ and
// sort by age.
int Millis() {
  auto now = std::chrono::system_clock::now();
  return static_cast<int>(
      (std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000)
          .count());
}
}  // namespace

std::string IsoNow() { return fmt::format("{}.{:03d}Z", FormatNow("%Y-%m-%dT%H:%M:%S"), Millis()); }
std::string CompactNow() { return fmt::format("{}{:03d}Z", FormatNow("%Y%m%dT%H%M%S"), Millis()); }

}  // namespace checkpoint

Result<CheckpointManifest> ReadCheckpoint(const std::string& dir, const std::string& name) {
  FERRY_RETURN_IF_ERROR(CheckCheckpointName(name));
  const fs::path path = fs::path(checkpoint::FolderOf(dir, name)) / checkpoint::kManifestFile;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(StatusCode::kNotFound,
                  fmt::format("no checkpoint '{}' in {} ('ferry checkpoint list' shows them)",
                              name, dir));
  }
  std::stringstream text;
  text << in.rdbuf();
  Result<CheckpointManifest> m = ParseManifest(text.str());
  if (!m.ok()) return std::move(m).TakeStatus().Prefix(path.string());
  if (m->name != name) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} names checkpoint '{}', not '{}' (the folder was renamed?)",
                              path.string(), m->name, name));
  }
  return m;
}

Result<std::vector<CheckpointManifest>> ListCheckpoints(const std::string& dir) {
  std::vector<CheckpointManifest> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_directory()) continue;
    const std::string name = e.path().filename().string();
    if (!CheckCheckpointName(name).ok()) continue;  // ours are all valid names
    if (!fs::exists(e.path() / checkpoint::kManifestFile)) continue;  // being written
    FERRY_ASSIGN_OR_RETURN(CheckpointManifest m, ReadCheckpoint(dir, name));
    out.push_back(std::move(m));
  }
  if (ec) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("cannot list {}: {}", dir, ec.message()));
  }
  std::sort(out.begin(), out.end(), [](const CheckpointManifest& a, const CheckpointManifest& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.name < b.name;
  });
  return out;
}

Status DeleteCheckpoint(const std::string& dir, const std::string& name) {
  FERRY_RETURN_IF_ERROR(ReadCheckpoint(dir, name).status());
  std::error_code ec;
  fs::remove_all(checkpoint::FolderOf(dir, name), ec);
  if (ec) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("could not delete checkpoint '{}': {}", name, ec.message()));
  }
  return Status();
}

Result<std::vector<std::string>> PruneCheckpoints(const std::string& dir, int keep) {
  if (keep < 1) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("prune needs --keep N (or [checkpoint] keep) of at least 1; got {}",
                              keep));
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<CheckpointManifest> all, ListCheckpoints(dir));
  std::vector<std::string> deleted;
  const size_t excess = all.size() > static_cast<size_t>(keep) ? all.size() - keep : 0;
  for (size_t i = 0; i < excess; ++i) {
    FERRY_RETURN_IF_ERROR(DeleteCheckpoint(dir, all[i].name));
    deleted.push_back(all[i].name);
  }
  return deleted;
}

}  // namespace ferry
