// Migration sources, the scanning stage: a directory in any layout (ferry,
// dbmate, golang-migrate, diesel, Flyway) -> its migrations, checksums and
// problems; the public helpers of source.h. Sections: source_sections.cc.
#include "migrate/source.h"

#include "migrate/scan_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <utility>

#include "core/hash.h"
#include "core/printable.h"
#include "migrate/source_internal.h"
#include "migrate/sql_split.h"

namespace ferry {
namespace {

using namespace source_internal;

namespace fs = std::filesystem;

constexpr std::string_view kLayoutHelp =
    "name migrations VERSION_name.sql (ferry, dbmate), VERSION_name.up.sql + "
    "VERSION_name.down.sql (golang-migrate), VERSION_name/up.sql (diesel) or "
    "V1__name.sql, U1__name.sql, R__name.sql (Flyway); CQL scripts may end in .cql instead";

bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  std::string_view tail = s.substr(s.size() - suffix.size());
  for (size_t i = 0; i < tail.size(); ++i) {
    if (AsciiLower(tail[i]) != AsciiLower(suffix[i])) return false;
  }
  return true;
}

// "create_users" -> "create users".
std::string Describe(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', ' ');
  return std::string(TrimBlanks(out));
}

std::string Join(const std::string& dir, std::string_view name) {
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out = dir;
  if (!out.empty() && out.back() != '/') out += '/';
  out += name;
  return out;
}

// Offset of the first byte that does not start or continue a well-formed
// UTF-8 sequence (no overlongs, surrogates or values above U+10FFFF).
std::optional<size_t> FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    for (size_t k = 1; k < len; ++k) {
      if (i + k >= s.size()) return i;
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      unsigned char min = k == 1 ? lo : 0x80;
      unsigned char max = k == 1 ? hi : 0xBF;
      if (cc < min || cc > max) return i;
    }
    i += len;
  }
  return std::nullopt;
}

// Drops a UTF-8 BOM and turns CRLF and CR into LF.
// Stable sort that moves each element once: sorting indices is cheaper than
// shuffling large Migration objects, and input that is already in order
// (directory listings usually are) costs one pass.
template <typename T, typename Less>
void SortBy(std::vector<T>* items, Less less) {
  if (std::is_sorted(items->begin(), items->end(), less)) return;
  std::vector<size_t> order(items->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return less((*items)[a], (*items)[b]); });
  std::vector<T> sorted;
  sorted.reserve(items->size());
  for (size_t i : order) sorted.push_back(std::move((*items)[i]));
  *items = std::move(sorted);
}

std::string NormalizeText(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (text.find('\r') == std::string_view::npos) return std::string(text);  // the common case
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

// ---- reading ---------------------------------------------------------------

// The bytes of `path`, or an error message.
std::optional<std::string> ReadFileBytes(const std::string& path, std::string* data) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return std::string(std::strerror(errno));
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) data->append(buf, n);
  int error = std::ferror(f) != 0 ? errno : 0;
  std::fclose(f);
  if (error != 0) return std::string(std::strerror(error));
  return std::nullopt;
}

// "0042_add" -> version 0042, description "add". False on a bad version.
bool ParseVersionAndName(std::string_view base, Version* version, std::string* description,
                         std::string* error) {
  size_t sep = base.find('_');
  std::string_view version_text = base.substr(0, sep);
  Result<Version> v = Version::Parse(version_text);
  if (!v.ok()) {
    *error = v.status().message();
    return false;
  }
  *version = std::move(v).value();
  *description = sep == std::string_view::npos ? "" : Describe(base.substr(sep + 1));
  return true;
}

// A golang-migrate .down.sql or Flyway U file waiting for its up script.
struct PendingDown {
  SourceLayout layout;
  Version version;
  std::string description;
  Script script;
};

class Scanner {
 public:
  Scanner(std::string dir, ScanOptions options) : dir_(std::move(dir)), options_(options) {}

  Result<MigrationSet> Run() {
    std::error_code ec;
    fs::file_status st = fs::status(dir_, ec);
    if (ec == std::errc::permission_denied) {
      return Status(StatusCode::kPermissionDenied,
                    fmt::format("cannot read migrations directory '{}': {}", dir_, ec.message()))
          .With("dir", dir_);
    }
    if (!fs::exists(st)) {
      return Status(StatusCode::kNotFound,
                    fmt::format("migrations directory '{}' does not exist: run 'ferry init' or "
                                "pass --dir",
                                dir_))
          .With("dir", dir_);
    }
    if (!fs::is_directory(st)) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("'{}' is not a directory: pass the migrations directory with "
                                "--dir",
                                dir_))
          .With("dir", dir_);
    }
    std::vector<std::string> names;
    fs::directory_iterator it(dir_, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) {
      return Status(ec == std::errc::permission_denied ? StatusCode::kPermissionDenied
                                                       : StatusCode::kUnknown,
                    fmt::format("cannot list migrations directory '{}': {}", dir_, ec.message()))
          .With("dir", dir_);
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) ScanEntry(name);
    return Finish();
  }

 private:
  void ScanEntry(const std::string& name) {
    if (name.empty() || name[0] == '.') return;
    std::string path = Join(dir_, name);
    std::error_code ec;
    fs::file_status st = fs::status(path, ec);
    // .cql: the same layouts holding CQL (docs/cql.md).
    const bool sql = EndsWithIgnoreCase(name, ".sql") || EndsWithIgnoreCase(name, ".cql");
    if (ec) {
      if (sql) problems_.Add(path, fmt::format("cannot read: {}", ec.message()));
      return;
    }
    if (fs::is_directory(st)) {
      ScanFolder(name);
    } else if (sql && !fs::is_regular_file(st)) {
      problems_.Add(path, "is not a regular file: replace it with the migration file");
    } else if (sql) {
      ScanFile(name);
    }
  }

  // Reads a file as normalized UTF-8 text; false after adding a problem.
  bool Load(const std::string& path, std::string* text) {
    std::string bytes;
    if (auto error = ReadFileBytes(path, &bytes)) {
      problems_.Add(path, fmt::format("cannot read: {}; check its permissions", *error));
      return false;
    }
    if (auto bad = FindInvalidUtf8(bytes)) {
      problems_.Add(path,
                    fmt::format("is not valid UTF-8 (byte offset {}): save it as UTF-8", *bad));
      return false;
    }
    if (size_t nul = bytes.find('\0'); nul != std::string::npos) {
      problems_.Add(path, fmt::format("contains a NUL byte (byte offset {}): remove it", nul));
      return false;
    }
    *text = NormalizeText(bytes);
    return true;
  }

  // Loads a file that is one script (every layout but sectioned files).
  std::optional<Script> LoadWholeFile(const std::string& path) {
    std::string text;
    if (!Load(path, &text)) return std::nullopt;
    ScriptParts parts;
    if (!SplitSections(text, path, /*markers_allowed=*/false, &parts, &problems_)) {
      return std::nullopt;
    }
    return std::move(parts.up);
  }

  void CheckNotEmpty(const Script& up, bool sectioned) {
    if (options_.allow_empty || HasSqlTokens(up.sql) || !up.online.empty()) return;
    if (sectioned) {
      problems_.AddAt(up.path, up.first_line - 1,
                      "the up section is empty: write the SQL or delete the file");
    } else {
      problems_.Add(up.path, "is empty: write the SQL or delete the file");
    }
  }

  void AddMigration(Version version, std::string description, MigrationKind kind,
                    SourceLayout layout, std::string script_name, Script up,
                    std::optional<Script> down, std::optional<Script> verify = std::nullopt) {
    Migration m;
    m.version = std::move(version);
    m.description = std::move(description);
    m.kind = kind;
    m.layout = layout;
    m.script = std::move(script_name);
    m.checksum = ChecksumV1(up.sql);
    m.up = std::move(up);
    if (down && HasSqlTokens(down->sql)) m.down = std::move(down);
    if (verify && HasSqlTokens(verify->sql)) m.verify = std::move(verify);
    migrations_.push_back(std::move(m));
  }

  void ScanFile(const std::string& name) {
    const std::string path = Join(dir_, name);
    const std::string_view stem = std::string_view(name).substr(0, name.size() - 4);
    const size_t flyway_sep = stem.find("__");
    if (!stem.empty() && (stem[0] == 'V' || stem[0] == 'U' || stem[0] == 'R') &&
        flyway_sep != std::string_view::npos) {
      ScanFlyway(name, stem, flyway_sep);
      return;
    }
    if (stem.empty() || !IsDigit(stem[0])) {
      if (options_.ignore_unknown_files) {
        ignored_.push_back(name);
        return;
      }
      problems_.Add(path, fmt::format("fits no migration layout: {}; rename it, move it out of "
                                      "the directory, or set unknown_files = \"ignore\" under "
                                      "[migrations] in ferry.toml to list such files as ignored",
                                      kLayoutHelp));
      return;
    }
    const bool up_file = EndsWithIgnoreCase(stem, ".up");
    const bool down_file = EndsWithIgnoreCase(stem, ".down");
    const bool verify_file = EndsWithIgnoreCase(stem, ".verify");
    std::string_view base = stem;
    if (up_file) base.remove_suffix(3);
    if (down_file) base.remove_suffix(5);
    if (verify_file) base.remove_suffix(7);
    Version version;
    std::string description;
    std::string error;
    if (!ParseVersionAndName(base, &version, &description, &error)) {
      problems_.Add(path, fmt::format("cannot parse the file name: {}; rename the file", error));
      return;
    }
    if (verify_file) {
      if (std::optional<Script> script = LoadWholeFile(path)) {
        verifies_.push_back({SourceLayout::kUpDownFiles, std::move(version),
                             std::move(description), std::move(*script)});
      }
      return;
    }
    if (up_file || down_file) {
      std::optional<Script> script = LoadWholeFile(path);
      if (!script) {
        if (up_file) unloaded_.push_back(std::move(version));
        return;
      }
      if (down_file) {
        downs_.push_back({SourceLayout::kUpDownFiles, std::move(version), std::move(description),
                          std::move(*script)});
        return;
      }
      CheckNotEmpty(*script, false);
      AddMigration(std::move(version), std::move(description), MigrationKind::kVersioned,
                   SourceLayout::kUpDownFiles, name, std::move(*script), std::nullopt);
      return;
    }
    std::string text;
    ScriptParts parts;
    if (!Load(path, &text) ||
        !SplitSections(text, path, /*markers_allowed=*/true, &parts, &problems_)) {
      unloaded_.push_back(std::move(version));
      return;
    }
    CheckNotEmpty(parts.up, parts.sectioned);
    AddMigration(std::move(version), std::move(description), MigrationKind::kVersioned,
                 SourceLayout::kSingleFile, name, std::move(parts.up), std::move(parts.down),
                 std::move(parts.verify));
  }

  void ScanFlyway(const std::string& name, std::string_view stem, size_t sep) {
    const std::string path = Join(dir_, name);
    const char prefix = stem[0];
    std::string_view version_text = stem.substr(1, sep - 1);
    std::string description = Describe(stem.substr(sep + 2));
    if (prefix == 'R') {
      if (!version_text.empty()) {
        problems_.Add(path,
                      "repeatable migrations are named R__name.sql, without a version: "
                      "rename the file");
        return;
      }
      std::optional<Script> script = LoadWholeFile(path);
      if (!script) return;
      CheckNotEmpty(*script, false);
      AddMigration(Version(), std::move(description), MigrationKind::kRepeatable,
                   SourceLayout::kFlyway, name, std::move(*script), std::nullopt);
      return;
    }
    Result<Version> version = Version::Parse(version_text);
    if (!version.ok()) {
      problems_.Add(path, fmt::format("cannot parse the Flyway file name: {}; rename the file",
                                      version.status().message()));
      return;
    }
    std::optional<Script> script = LoadWholeFile(path);
    if (!script) {
      if (prefix == 'V') unloaded_.push_back(std::move(version).value());
      return;
    }
    if (prefix == 'U') {
      downs_.push_back({SourceLayout::kFlyway, std::move(version).value(), std::move(description),
                        std::move(*script)});
      return;
    }
    CheckNotEmpty(*script, false);
    AddMigration(std::move(version).value(), std::move(description), MigrationKind::kVersioned,
                 SourceLayout::kFlyway, name, std::move(*script), std::nullopt);
  }

  void ScanFolder(const std::string& name) {
    const std::string folder = Join(dir_, name);
    std::error_code ec;
    // up.sql, or up.cql in a folder of CQL scripts.
    const std::string ext = !fs::exists(Join(folder, "up.sql"), ec) &&
                                    !fs::exists(Join(folder, "down.sql"), ec) &&
                                    (fs::exists(Join(folder, "up.cql"), ec) ||
                                     fs::exists(Join(folder, "down.cql"), ec))
                                ? ".cql"
                                : ".sql";
    const std::string up_path = Join(folder, "up" + ext);
    const std::string down_path = Join(folder, "down" + ext);
    const std::string verify_path = Join(folder, "verify" + ext);
    const bool has_up = fs::exists(up_path, ec);
    const bool has_down = fs::exists(down_path, ec);
    if (!has_up && !has_down) return;  // not a migration folder
    Version version;
    std::string description;
    std::string error;
    if (!ParseVersionAndName(name, &version, &description, &error)) {
      problems_.Add(folder + "/",
                    fmt::format("cannot parse the folder name: {}; rename the folder", error));
      return;
    }
    if (!has_up) {
      problems_.Add(down_path,
                    "down.sql without up.sql: add up.sql with the forward SQL, or "
                    "delete the folder");
      return;
    }
    std::optional<Script> up = LoadWholeFile(up_path);
    std::optional<Script> down;
    if (has_down) {
      down = LoadWholeFile(down_path);
      if (!down) return;
    }
    if (!up) return;
    std::optional<Script> verify;
    if (fs::exists(verify_path, ec)) {
      verify = LoadWholeFile(verify_path);
      if (!verify) return;
    }
    if (DieselRunsOutsideTransaction(folder)) {
      up->directives.no_transaction = true;
      if (down) down->directives.no_transaction = true;
    }
    CheckNotEmpty(*up, false);
    AddMigration(std::move(version), std::move(description), MigrationKind::kVersioned,
                 SourceLayout::kDieselFolder, name + "/up" + ext, std::move(*up), std::move(down),
                 std::move(verify));
  }

  // diesel's metadata.toml: `run_in_transaction = false`.
  static bool DieselRunsOutsideTransaction(const std::string& folder) {
    std::string bytes;
    if (ReadFileBytes(Join(folder, "metadata.toml"), &bytes)) return false;
    for (const Line& line : SplitLines(bytes)) {
      std::string compact;
      for (char c : std::string_view(bytes).substr(line.begin, line.end - line.begin)) {
        if (c == '#') break;
        if (!IsSpace(c)) compact += c;
      }
      if (compact == "run_in_transaction=false") return true;
    }
    return false;
  }

  Result<MigrationSet> Finish() {
    std::vector<Migration> versioned;
    std::vector<Migration> repeatable;
    for (Migration& m : migrations_) {
      (m.kind == MigrationKind::kVersioned ? versioned : repeatable).push_back(std::move(m));
    }
    SortBy(&versioned, [](const Migration& a, const Migration& b) {
      auto c = a.version <=> b.version;
      return c != 0 ? c < 0 : a.script < b.script;
    });
    for (size_t i = 0; i < versioned.size();) {
      size_t j = i + 1;
      while (j < versioned.size() && versioned[j].version == versioned[i].version) ++j;
      if (j - i > 1) {
        std::string others;
        for (size_t k = i + 1; k < j; ++k) {
          others += (k > i + 1 ? ", " : "") + versioned[k].up.path;
        }
        problems_.Add(versioned[i].up.path,
                      fmt::format("duplicate version {}: also {}; give each migration its own "
                                  "version",
                                  versioned[i].version.text(), others));
      }
      i = j;
    }
    AttachDowns(&versioned);
    AttachVerifies(&versioned);

    std::stable_sort(repeatable.begin(), repeatable.end(),
                     [](const Migration& a, const Migration& b) {
                       return a.description != b.description ? a.description < b.description
                                                             : a.script < b.script;
                     });
    for (size_t i = 1; i < repeatable.size(); ++i) {
      if (repeatable[i].description == repeatable[i - 1].description) {
        problems_.Add(repeatable[i - 1].up.path,
                      fmt::format("duplicate repeatable migration '{}': also {}; rename one",
                                  repeatable[i].description, repeatable[i].up.path));
      }
    }

    if (!problems_.empty()) return problems_.ToStatus(dir_);
    MigrationSet set;
    set.dir = dir_;
    set.migrations = std::move(versioned);
    for (Migration& m : repeatable) set.migrations.push_back(std::move(m));
    set.ignored = std::move(ignored_);  // names arrive sorted
    return set;
  }

  // golang-migrate VERSION_name.verify.sql files join their up script.
  void AttachVerifies(std::vector<Migration>* versioned) {
    for (PendingDown& v : verifies_) {
      auto it =
          std::lower_bound(versioned->begin(), versioned->end(), v.version,
                           [](const Migration& m, const Version& x) { return m.version < x; });
      if (it == versioned->end() || it->version != v.version ||
          it->layout != SourceLayout::kUpDownFiles || it->description != v.description) {
        problems_.Add(v.script.path,
                      fmt::format("verify script without a matching {}_....up.sql: give it the "
                                  "up script's name, or delete it",
                                  v.version.text()));
        continue;
      }
      if (it->verify) {
        problems_.Add(v.script.path, "a second verify script for this version: keep one");
        continue;
      }
      if (HasSqlTokens(v.script.sql)) it->verify = std::move(v.script);
    }
  }

  void AttachDowns(std::vector<Migration>* versioned) {
    std::stable_sort(downs_.begin(), downs_.end(), [](const PendingDown& a, const PendingDown& b) {
      auto c = a.version <=> b.version;
      return c != 0 ? c < 0 : a.script.path < b.script.path;
    });
    std::vector<const PendingDown*> attached(versioned->size(), nullptr);
    for (PendingDown& down : downs_) {
      const bool golang = down.layout == SourceLayout::kUpDownFiles;
      auto it =
          std::lower_bound(versioned->begin(), versioned->end(), down.version,
                           [](const Migration& m, const Version& v) { return m.version < v; });
      if (it == versioned->end() || it->version != down.version) {
        // An up script that failed to load has its own problem reported.
        if (std::find(unloaded_.begin(), unloaded_.end(), down.version) != unloaded_.end()) {
          continue;
        }
        problems_.Add(down.script.path,
                      golang ? fmt::format("down script without an up script: add {}_....up.sql "
                                           "with the forward SQL, or delete this file",
                                           down.version.text())
                             : fmt::format("Flyway undo script without V{}__....sql: add the "
                                           "versioned script, or delete this file",
                                           down.version.text()));
        continue;
      }
      size_t index = static_cast<size_t>(it - versioned->begin());
      if (it->layout != down.layout) {
        problems_.Add(down.script.path,
                      fmt::format("down script for version {}, whose up script {} is not {}: "
                                  "pair .down.sql with .up.sql and U with V files (a single-file "
                                  "migration keeps its down in a '-- ferry:down' section)",
                                  down.version.text(), it->up.path,
                                  golang ? "a .up.sql file" : "a Flyway V file"));
        continue;
      }
      if (attached[index] != nullptr) {
        problems_.Add(attached[index]->script.path,
                      fmt::format("duplicate down script for version {}: also {}; keep one",
                                  down.version.text(), down.script.path));
        continue;
      }
      attached[index] = &down;
      if (golang && down.description != it->description) {
        problems_.Add(down.script.path,
                      fmt::format("does not match its up script {}: give both files the same "
                                  "name",
                                  it->up.path));
        continue;
      }
      if (HasSqlTokens(down.script.sql)) it->down = std::move(down.script);
    }
  }

  std::string dir_;
  ScanOptions options_;
  Problems problems_;
  std::vector<Migration> migrations_;
  std::vector<PendingDown> downs_;
  std::vector<PendingDown> verifies_;  // golang-migrate .verify.sql files
  std::vector<Version> unloaded_;  // versions whose up script had problems
  std::vector<std::string> ignored_;  // .sql files fitting no layout (ignore_unknown_files)
};

// ---- ferry new -------------------------------------------------------------

// Adds one to a decimal digit string, keeping its width when it fits.
std::string IncrementDecimal(std::string digits) {
  for (size_t i = digits.size(); i-- > 0;) {
    if (digits[i] != '9') {
      ++digits[i];
      return digits;
    }
    digits[i] = '0';
  }
  return "1" + digits;
}

Result<std::string> NormalizeNewName(std::string_view name) {
  std::string out;
  for (char c : TrimBlanks(name)) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c)) {
      out += c;
    } else if (c == '_' || c == '-' || c == ' ') {
      if (!out.empty() && out.back() != '_') out += '_';
    } else {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("migration name '{}' may use only letters, digits, '_', '-' and "
                                "spaces",
                                name));
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  if (out.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "a migration needs a name, e.g. 'ferry new add_users_table'");
  }
  return out;
}

std::string DashedTimestamp(std::string_view digits14) {
  return fmt::format("{}-{}-{}-{}", digits14.substr(0, 4), digits14.substr(4, 2),
                     digits14.substr(6, 2), digits14.substr(8, 6));
}

}  // namespace

std::string_view MigrationKindName(MigrationKind kind) {
  switch (kind) {
    case MigrationKind::kVersioned:
      return "versioned";
    case MigrationKind::kRepeatable:
      return "repeatable";
  }
  return "versioned";
}

std::string HowToAddDown(const Migration& m) {
  const std::string& up = m.script;
  switch (m.layout) {
    case SourceLayout::kUpDownFiles: {
      size_t dot = up.size() >= 7 ? up.size() - 7 : 0;  // ".up.sql", any case
      return fmt::format("write {}.down.sql beside it", up.substr(0, dot));
    }
    case SourceLayout::kFlyway:
      return fmt::format("write its undo file {} beside it", "U" + up.substr(1));
    case SourceLayout::kDieselFolder: {
      size_t slash = up.rfind('/');
      return fmt::format("write {}/down.sql", slash == std::string::npos ? up : up.substr(0, slash));
    }
    case SourceLayout::kSingleFile:
      break;
  }
  return "write one (a '-- ferry:down' section at the end of the file)";
}

std::string_view SourceLayoutName(SourceLayout layout) {
  switch (layout) {
    case SourceLayout::kSingleFile:
      return "single-file";
    case SourceLayout::kUpDownFiles:
      return "up-down-files";
    case SourceLayout::kDieselFolder:
      return "diesel-folder";
    case SourceLayout::kFlyway:
      return "flyway";
  }
  return "single-file";
}

const Migration* MigrationSet::Find(const Version& version) const {
  if (version.empty()) return nullptr;
  auto end = std::partition_point(migrations.begin(), migrations.end(), [](const Migration& m) {
    return m.kind == MigrationKind::kVersioned;
  });
  auto it = std::lower_bound(migrations.begin(), end, version,
                             [](const Migration& m, const Version& v) { return m.version < v; });
  return (it != end && it->version == version) ? &*it : nullptr;
}

const Version* MigrationSet::Latest() const {
  const Version* latest = nullptr;
  for (const Migration& m : migrations) {
    if (m.kind == MigrationKind::kVersioned) latest = &m.version;
  }
  return latest;
}

std::string CanonicalScriptText(std::string_view text) {
  std::string out = NormalizeText(text);
  out.resize(TrimTrailingSpace(out).size());
  return out;
}

std::string ChecksumV1(std::string_view up_sql) {
  return std::string(kChecksumPrefix) + Sha256Hex(CanonicalScriptText(up_sql));
}

Result<MigrationSet> ScanDirectory(const std::string& dir, ScanOptions options) {
  const bool cached = options.metadata_only && !options.cache_dir.empty() &&
                      !options.allow_empty && !options.ignore_unknown_files;
  if (!cached) return Scanner(dir, options).Run();
  const std::optional<uint64_t> signature =
      options.signature ? options.signature
                        : DirectorySignature(dir, SignatureOptions{options.cache_dir});
  if (!signature) return Scanner(dir, options).Run();
  if (auto hit = LoadScanCache(options.cache_dir, dir, *signature)) return std::move(*hit);
  Result<MigrationSet> scanned = Scanner(dir, options).Run();
  if (scanned.ok()) SaveScanCache(options.cache_dir, dir, *signature, *scanned);
  return scanned;
}

Result<NewMigration> NextVersionName(const MigrationSet& existing, std::string_view name,
                                     VersionStyle style, std::chrono::system_clock::time_point now,
                                     SourceLayout layout) {
  FERRY_ASSIGN_OR_RETURN(std::string slug, NormalizeNewName(name));
  const Version* latest = existing.Latest();
  const bool diesel = layout == SourceLayout::kDieselFolder;
  std::string version;
  if (style == VersionStyle::kTimestamp) {
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm utc{};
    gmtime_r(&t, &utc);
    char digits[32];
    std::snprintf(digits, sizeof(digits), "%04d%02d%02d%02d%02d%02d", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
    std::string stamp = digits;
    Result<Version> candidate = Version::Parse(stamp);
    if (latest != nullptr && candidate.ok() && !(*candidate > *latest)) {
      // Not after the latest (clock skew, or two in one second): latest + 1.
      stamp = IncrementDecimal(latest->components().front());
    }
    version = diesel && stamp.size() == 14 ? DashedTimestamp(stamp) : stamp;
  } else if (latest == nullptr) {
    version = "0001";
  } else {
    const std::string& text = latest->text();
    if (text.find('-') != std::string::npos) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("cannot number sequentially after the diesel timestamp {}: use "
                                "the timestamp style",
                                text));
    }
    // Increment the last digit group; '_' separators become '.' so that
    // VERSION_name file names stay unambiguous.
    size_t last = text.find_last_of("._");
    std::string head = last == std::string::npos ? "" : text.substr(0, last + 1);
    std::replace(head.begin(), head.end(), '_', '.');
    version = head + IncrementDecimal(last == std::string::npos ? text : text.substr(last + 1));
  }

  NewMigration out;
  out.version = version;
  switch (layout) {
    case SourceLayout::kSingleFile:
      out.files.push_back(
          {fmt::format("{}_{}.sql", version, slug), "-- ferry:up\n\n-- ferry:down\n"});
      break;
    case SourceLayout::kUpDownFiles:
      out.files.push_back({fmt::format("{}_{}.up.sql", version, slug), ""});
      out.files.push_back({fmt::format("{}_{}.down.sql", version, slug), ""});
      break;
    case SourceLayout::kDieselFolder:
      out.files.push_back({fmt::format("{}_{}/up.sql", version, slug), ""});
      out.files.push_back({fmt::format("{}_{}/down.sql", version, slug), ""});
      break;
    case SourceLayout::kFlyway:
      out.files.push_back({fmt::format("V{}__{}.sql", version, slug), ""});
      out.files.push_back({fmt::format("U{}__{}.sql", version, slug), ""});
      break;
  }
  return out;
}

}  // namespace ferry

