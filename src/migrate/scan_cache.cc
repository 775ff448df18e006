#include "migrate/scan_cache.h"

#include "core/numbers.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

namespace ferry {
namespace {

constexpr std::string_view kHeader = "ferry-scan-cache v1";

int64_t Nanos(const timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

// What identifies a directory's list of names: when none of these moved, no
// entry was added, removed or renamed in it (each of those sets its mtime
// and ctime to the current time).
struct DirStamp {
  uint64_t dev = 0, ino = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  bool operator==(const DirStamp&) const = default;
};

DirStamp StampOf(const struct stat& st) {
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), Nanos(st.st_mtim),
          Nanos(st.st_ctim)};
}

// A directory's entry names, each NUL-terminated in one buffer (10,000
// names are one allocation, not 10,000).
struct NameList {
  std::string arena;
  std::vector<uint32_t> starts;
  size_t size() const { return starts.size(); }
  const char* at(size_t i) const { return arena.data() + starts[i]; }
  std::string_view view(size_t i) const { return at(i); }
  void Add(std::string_view name) {
    starts.push_back(static_cast<uint32_t>(arena.size()));
    arena.append(name);
    arena.push_back('\0');
  }
};

// Every name in the directory open at `fd` (the descriptor stays open).
bool ListNames(int fd, NameList* out) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return false;
  DIR* d = fdopendir(copy);
  if (d == nullptr) {
    close(copy);
    return false;
  }
  while (dirent* e = readdir(d)) {
    std::string_view name(e->d_name);
    if (name != "." && name != "..") out->Add(name);
  }
  closedir(d);
  return true;
}

// One entry's hash, seeded by its folder. Entry hashes are summed, so the
// signature does not depend on listing order and needs no sort.
uint64_t HashEntry(uint64_t seed, std::string_view name, const struct stat& st) {
  uint64_t fields[] = {static_cast<uint64_t>(st.st_mode), static_cast<uint64_t>(st.st_size),
                       static_cast<uint64_t>(st.st_mtim.tv_sec),
                       static_cast<uint64_t>(st.st_mtim.tv_nsec),
                       static_cast<uint64_t>(st.st_ino)};
  uint64_t h = XXH3_64bits_withSeed(name.data(), name.size(), seed);
  return XXH3_64bits_withSeed(fields, sizeof fields, h);
}

std::string CachePath(const std::string& cache_dir, const std::string& dir,
                      std::string_view kind = "scan") {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(dir, ec).lexically_normal().string();
  return fmt::format("{}/{}-{:016x}.v1", cache_dir, kind, XXH3_64bits(abs.data(), abs.size()));
}

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string Unescape(std::string_view s) {
  if (s.find('\\') == std::string_view::npos) return std::string(s);  // the common case
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      out += n == 't' ? '\t' : n == 'n' ? '\n' : n;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string_view> SplitTabs(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string_view::npos ? line.size() - start
                                                                    : tab - start));
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  return out;
}

}  // namespace

std::optional<std::string> ReadCacheFile(const std::string& path) {
  // One read of the whole file (the listing memo of 10,000 files is ~250 kB).
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st;
  std::string out;
  if (fstat(fd, &st) == 0 && st.st_size > 0) out.resize(static_cast<size_t>(st.st_size) + 1);
  size_t used = 0;
  while (true) {
    if (used == out.size()) out.resize(out.size() * 2 + 4096);
    ssize_t n = read(fd, out.data() + used, out.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  close(fd);
  out.resize(used);
  return out;
}

void WriteCacheFile(const std::string& cache_dir, const std::string& path,
                    const std::string& content) {
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  if (ec) return;
  std::string tmp = fmt::format("{}.{}.tmp", path, getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return;
    f << content;
    if (!f) {
      f.close();
      std::remove(tmp.c_str());
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}

namespace {

constexpr std::string_view kListHeader = "ferry-list-memo v1";

// The listing memo: each directory's stamp and names as last listed, so an
// unchanged directory is not listed again (listing 10,000 names costs more
// than a third of stat'ing them). File format: the header line, then per
// directory a line "\t<folder>\t<dev>\t<ino>\t<mtime ns>\t<ctime ns>" (the
// folder "" is the directory itself) followed by its names, one a line,
// escaped, so no name line starts with a tab.
struct ListedDir {
  DirStamp stamp;
  NameList names;
  bool seen = false;  // this run used these names (from the memo or listed)
  bool keep = true;   // worth saving (not a listing of an unsettled directory)
};
using ListMemo = std::map<std::string, ListedDir, std::less<>>;

ListMemo ParseListMemo(std::string_view text) {
  ListMemo memo;
  size_t nl = text.find('\n');
  if (text.substr(0, nl) != kListHeader || nl == std::string_view::npos) return memo;
  text.remove_prefix(nl + 1);
  ListedDir* current = nullptr;
  while (!text.empty()) {
    nl = text.find('\n');
    if (nl == std::string_view::npos) return {};  // cut short: use none of it
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (line.empty() || line[0] != '\t') {
      if (current == nullptr) return {};
      if (line.find('\\') == std::string_view::npos) {
        current->names.Add(line);  // the common case: nothing escaped
      } else {
        current->names.Add(Unescape(line));
      }
      continue;
    }
    std::vector<std::string_view> f = SplitTabs(line.substr(1));
    if (f.size() != 5) return {};
    DirStamp st;
    auto num = [](std::string_view v, auto* out) {
      return std::from_chars(v.data(), v.data() + v.size(), *out).ec == std::errc();
    };
    if (!num(f[1], &st.dev) || !num(f[2], &st.ino) || !num(f[3], &st.mtime_ns) ||
        !num(f[4], &st.ctime_ns)) {
      return {};
    }
    current = &memo[Unescape(f[0])];
    current->stamp = st;
  }
  return memo;
}

std::string FormatListMemo(const ListMemo& memo) {
  std::string out(kListHeader);
  out += '\n';
  for (const auto& [folder, listed] : memo) {
    out += fmt::format("\t{}\t{}\t{}\t{}\t{}\n", Escape(folder), listed.stamp.dev,
                       listed.stamp.ino, listed.stamp.mtime_ns, listed.stamp.ctime_ns);
    for (size_t i = 0; i < listed.names.size(); ++i) {
      out += Escape(listed.names.view(i));
      out += '\n';
    }
  }
  return out;
}

// Computes the signature, reusing and refreshing the listing memo.
class Signer {
 public:
  Signer(const SignatureOptions& options, int64_t now_ns) : options_(options), now_ns_(now_ns) {}

  void Load(const std::string& path) {
    if (std::optional<std::string> text = ReadCacheFile(path)) memo_ = ParseListMemo(*text);
  }

  // Stats and hashes every entry of the directory open at `fd` (whose stat
  // is `st`); `folder` is "" for the top directory, seed 0 there. Entries
  // that are directories (diesel) are hashed one level down.
  uint64_t Sign(int fd, const struct stat& st, const std::string& folder, uint64_t seed,
                bool descend) {
    const NameList& names = Names(fd, StampOf(st), folder);
    // One stat per file, ~1 us each, on this thread: `status` computes the
    // signature while its main thread connects, so the other core is busy
    // already (a second stat thread measured no faster: bench/RESULTS.md,
    // session 6).
    uint64_t sum = 0;
    std::vector<size_t> dirs;
    struct stat entry;
    for (size_t i = 0; i < names.size(); ++i) {
      // Follow links, as the scanner does; a broken link counts by name.
      if (fstatat(fd, names.at(i), &entry, 0) != 0) entry = {};
      sum += HashEntry(seed, names.view(i), entry);
      if (descend && S_ISDIR(entry.st_mode)) dirs.push_back(i);
    }
    for (size_t i : dirs) {
      std::string_view name = names.view(i);
      uint64_t inner_seed = XXH3_64bits(name.data(), name.size()) | 1;
      int inner = openat(fd, names.at(i), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      struct stat inner_st;
      if (inner < 0 || fstat(inner, &inner_st) != 0) {  // an unreadable folder counts as empty
        if (inner >= 0) close(inner);
        continue;
      }
      sum += Sign(inner, inner_st, std::string(name), inner_seed, false);
      close(inner);
    }
    return sum + names.size() * (folder.empty() ? 1 : seed);
  }

  // Writes the memo back when this run listed something worth keeping or
  // found part of it stale.
  void Save(const std::string& path) {
    for (auto it = memo_.begin(); it != memo_.end();) {
      if (it->second.seen && it->second.keep) {
        ++it;
      } else {
        changed_ |= !it->second.seen;  // a folder gone since the memo was written
        it = memo_.erase(it);
      }
    }
    if (changed_) WriteCacheFile(options_.cache_dir, path, FormatListMemo(memo_));
  }

 private:
  // The names of `folder` (open at `fd`): the memo's while its stamp holds,
  // else listed now (in the memo's place; std::map entries stay put).
  const NameList& Names(int fd, const DirStamp& stamp, const std::string& folder) {
    auto [it, added] = memo_.try_emplace(folder);
    ListedDir& entry = it->second;
    if (!added && entry.stamp == stamp) {
      entry.seen = true;
      return entry.names;
    }
    entry = ListedDir{stamp, {}, true, false};
    if (!ListNames(fd, &entry.names)) return entry.names;
    // A directory changed within the last moment may change again within
    // the same timestamp tick, leaving its stamp as it is: not memoized
    // until it has settled (the next run lists it again and keeps it then).
    const int64_t settle = options_.settle.count();
    entry.keep = !options_.cache_dir.empty() && stamp.mtime_ns + settle < now_ns_ &&
                 stamp.ctime_ns + settle < now_ns_;
    changed_ |= entry.keep || !added;
    return entry.names;
  }

  const SignatureOptions& options_;
  const int64_t now_ns_;
  ListMemo memo_;  // as loaded, then updated by this run
  bool changed_ = false;
};

}  // namespace

std::optional<uint64_t> DirectorySignature(const std::string& dir,
                                           const SignatureOptions& options) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);  // before anything is looked at
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return std::nullopt;
  }
  Signer signer(options, Nanos(now));
  const std::string memo_path =
      options.cache_dir.empty() ? "" : CachePath(options.cache_dir, dir, "list");
  if (!memo_path.empty()) signer.Load(memo_path);
  std::string header = fmt::format("{} {}", kHeader, FERRY_VERSION);
  uint64_t sig = XXH3_64bits(header.data(), header.size()) + signer.Sign(fd, st, "", 0, true);
  close(fd);
  if (!memo_path.empty()) signer.Save(memo_path);
  return sig;
}

std::optional<MigrationSet> LoadScanCache(const std::string& cache_dir, const std::string& dir,
                                          uint64_t signature) {
  if (cache_dir.empty()) return std::nullopt;
  std::optional<std::string> text = ReadCacheFile(CachePath(cache_dir, dir));
  if (!text) return std::nullopt;
  std::string_view rest(*text);
  auto next_line = [&rest]() {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    return line;
  };
  if (next_line() != fmt::format("{}\t{:016x}", kHeader, signature)) return std::nullopt;
  MigrationSet set;
  set.dir = dir;
  while (!rest.empty()) {
    std::vector<std::string_view> f = SplitTabs(next_line());
    if (f.size() != 11) return std::nullopt;
    Migration m;
    if (!f[0].empty()) {
      auto v = Version::Parse(Unescape(f[0]));
      if (!v.ok()) return std::nullopt;
      m.version = std::move(v).value();
    }
    m.description = Unescape(f[1]);
    m.kind = static_cast<MigrationKind>(LeadingInt64(f[2]));
    m.layout = static_cast<SourceLayout>(LeadingInt64(f[3]));
    m.script = Unescape(f[4]);
    m.up.path = Unescape(f[5]);
    m.up.first_line = LeadingInt64(f[6]);
    if (f[7] == "1") {
      Script down;
      down.path = Unescape(f[8]);
      down.first_line = LeadingInt64(f[9]);
      m.down = std::move(down);
    }
    m.checksum = Unescape(f[10]);
    set.migrations.push_back(std::move(m));
  }
  return set;
}

void SaveScanCache(const std::string& cache_dir, const std::string& dir, uint64_t signature,
                   const MigrationSet& set) {
  if (cache_dir.empty()) return;
  std::string out = fmt::format("{}\t{:016x}\n", kHeader, signature);
  for (const Migration& m : set.migrations) {
    out += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n", Escape(m.version.text()),
                       Escape(m.description), static_cast<int>(m.kind),
                       static_cast<int>(m.layout), Escape(m.script), Escape(m.up.path),
                       m.up.first_line, m.down ? 1 : 0, m.down ? Escape(m.down->path) : "",
                       m.down ? m.down->first_line : 0, Escape(m.checksum));
  }
  WriteCacheFile(cache_dir, CachePath(cache_dir, dir), out);
}

}  // namespace ferry
