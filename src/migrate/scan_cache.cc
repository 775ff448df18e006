#include "migrate/scan_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace ferry {
namespace {

constexpr std::string_view kHeader = "ferry-scan-cache v1";

struct Entry {
  std::string name;
  struct stat st;
};

// Names, types, sizes, mtimes and inodes of `dir`'s entries (in no
// particular order). With 10,000 files this is most of a `status` that
// answers from its memo: listing costs ~0.4 us an entry (ext4 hashes its
// directory index) and stat ~1.3 us a file here. So large directories are
// listed in batches that a second thread starts stat'ing while the listing
// goes on; once listed, both threads stat what is left, batch by batch.
bool ListWithStats(const std::string& dir, std::vector<Entry>* out) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  const int fd = dirfd(d);
  // Follow links, as the scanner does; a broken link still counts by name.
  auto stat_all = [fd](std::vector<Entry>& batch) {
    for (Entry& entry : batch) {
      if (fstatat(fd, entry.name.c_str(), &entry.st, 0) != 0) entry.st = {};
    }
  };
  constexpr size_t kBatch = 512;  // a small directory is one batch, no thread
  std::deque<std::vector<Entry>> batches;  // deque: batches never move
  std::mutex mu;
  std::condition_variable more;
  size_t listed = 0;      // complete batches
  size_t taken = 0;       // batches claimed by a stat'ing thread
  bool done = false;      // listing finished (the last batch may be short)
  // Claims the next complete batch; nullptr when there is none (yet).
  auto claim = [&]() -> std::vector<Entry>* {
    if (taken < listed) return &batches[taken++];
    return nullptr;
  };
  std::thread helper;
  std::vector<Entry> current;
  current.reserve(kBatch);
  while (dirent* e = readdir(d)) {
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    current.push_back(Entry{std::string(name), {}});
    if (current.size() < kBatch) continue;
    {
      std::lock_guard<std::mutex> lock(mu);
      batches.push_back(std::move(current));
      ++listed;
    }
    more.notify_one();
    current = {};
    current.reserve(kBatch);
    if (!helper.joinable()) {
      helper = std::thread([&] {
        std::unique_lock<std::mutex> lock(mu);
        while (true) {
          if (std::vector<Entry>* batch = claim()) {
            lock.unlock();
            stat_all(*batch);
            lock.lock();
          } else if (done) {
            return;
          } else {
            more.wait(lock);
          }
        }
      });
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!current.empty()) {
      batches.push_back(std::move(current));
      ++listed;
    }
    done = true;
  }
  more.notify_all();
  while (true) {
    std::vector<Entry>* batch;
    {
      std::lock_guard<std::mutex> lock(mu);
      batch = claim();
    }
    if (batch == nullptr) break;
    stat_all(*batch);
  }
  if (helper.joinable()) helper.join();
  closedir(d);
  size_t total = out->size();
  for (const auto& batch : batches) total += batch.size();
  out->reserve(total);
  for (auto& batch : batches) {
    for (Entry& entry : batch) out->push_back(std::move(entry));
  }
  return true;
}

// One entry's hash, seeded by its folder. Entry hashes are summed, so the
// signature does not depend on listing order and needs no sort.
uint64_t HashEntry(uint64_t seed, const Entry& e) {
  uint64_t fields[] = {static_cast<uint64_t>(e.st.st_mode), static_cast<uint64_t>(e.st.st_size),
                       static_cast<uint64_t>(e.st.st_mtim.tv_sec),
                       static_cast<uint64_t>(e.st.st_mtim.tv_nsec),
                       static_cast<uint64_t>(e.st.st_ino)};
  uint64_t name = XXH3_64bits_withSeed(e.name.data(), e.name.size(), seed);
  return XXH3_64bits_withSeed(fields, sizeof fields, name);
}

std::string CachePath(const std::string& cache_dir, const std::string& dir) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(dir, ec).lexically_normal().string();
  return fmt::format("{}/scan-{:016x}.v1", cache_dir, XXH3_64bits(abs.data(), abs.size()));
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

int ToInt(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

std::optional<std::string> ReadCacheFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in.good() && !in.eof()) return std::nullopt;
  return std::move(buffer).str();
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

std::optional<uint64_t> DirectorySignature(const std::string& dir) {
  std::vector<Entry> entries;
  if (!ListWithStats(dir, &entries)) return std::nullopt;
  std::string header = fmt::format("{} {}", kHeader, FERRY_VERSION);
  uint64_t sig = XXH3_64bits(header.data(), header.size()) + entries.size();
  for (const Entry& e : entries) {
    sig += HashEntry(0, e);
    if (S_ISDIR(e.st.st_mode)) {  // diesel folders: one level down
      std::vector<Entry> inner;
      ListWithStats(dir + "/" + e.name, &inner);
      uint64_t folder = XXH3_64bits(e.name.data(), e.name.size()) | 1;
      sig += inner.size() * folder;
      for (const Entry& i : inner) sig += HashEntry(folder, i);
    }
  }
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
    m.kind = static_cast<MigrationKind>(ToInt(f[2]));
    m.layout = static_cast<SourceLayout>(ToInt(f[3]));
    m.script = Unescape(f[4]);
    m.up.path = Unescape(f[5]);
    m.up.first_line = ToInt(f[6]);
    if (f[7] == "1") {
      Script down;
      down.path = Unescape(f[8]);
      down.first_line = ToInt(f[9]);
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
