// Bucket files for verify across engines (verify_spill.h).
#include "move/verify_spill.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <unordered_map>

#include "core/hash.h"

namespace ferry {
namespace {

constexpr char kUnitSep = '\x1f';
constexpr uint32_t kNull = 0xFFFFFFFFu;

Status IoError(const std::string& what, const std::string& path) {
  return Status(StatusCode::kInternal,
                "verify: cannot " + what + " " + path + ": " + std::strerror(errno));
}

void PutU32(std::string* out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}

bool ReadU32(std::FILE* f, uint32_t* v) { return std::fread(v, 4, 1, f) == 1; }

bool ReadString(std::FILE* f, uint32_t n, std::string* s) {
  s->resize(n);
  return n == 0 || std::fread(s->data(), 1, n, f) == n;
}

// The `limit` smallest keys' differences.
class Listed {
 public:
  explicit Listed(size_t limit) : limit_(limit) {}
  void Add(RowDifference d) {
    if (limit_ == 0) return;
    std::string k = Join(d.key);
    if (items_.size() == limit_ && !(k < items_.rbegin()->first)) return;
    items_.emplace(std::move(k), std::move(d));
    if (items_.size() > limit_) items_.erase(std::prev(items_.end()));
  }
  std::vector<RowDifference> Take() {
    std::vector<RowDifference> out;
    for (auto& [k, d] : items_) out.push_back(std::move(d));
    return out;
  }

 private:
  static std::string Join(const KeyTuple& key) {
    std::string s;
    for (const auto& k : key) s += k + kUnitSep;
    return s;
  }
  size_t limit_;
  std::multimap<std::string, RowDifference> items_;
};

std::vector<ColumnDifference> Changed(const std::vector<std::string>& columns, size_t key_columns,
                                      const std::vector<Value>& a, const std::vector<Value>& b) {
  std::vector<ColumnDifference> out;
  for (size_t i = key_columns; i < columns.size() && i < a.size() && i < b.size(); ++i) {
    if (a[i] != b[i]) out.push_back({columns[i], a[i], b[i]});
  }
  return out;
}

}  // namespace

std::string SpillKey(const std::vector<Value>& row, size_t key_columns) {
  std::string key;
  for (size_t i = 0; i < key_columns && i < row.size(); ++i) {
    if (i) key += kUnitSep;
    key += row[i] ? *row[i] : std::string("NULL");
  }
  return key;
}

KeyTuple SpillKeyTuple(const std::string& key) {
  KeyTuple out;
  size_t start = 0;
  for (;;) {
    size_t pos = key.find(kUnitSep, start);
    out.push_back(key.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) return out;
    start = pos + 1;
  }
}

Result<std::unique_ptr<SpillSide>> SpillSide::Create(const std::string& dir,
                                                     const std::string& name, int buckets) {
  std::unique_ptr<SpillSide> s(new SpillSide());
  for (int b = 0; b < std::max(1, buckets); ++b) {
    std::string path = dir + "/" + name + "." + std::to_string(b);
    std::FILE* f = std::fopen(path.c_str(), "w+b");
    if (f == nullptr) return IoError("create", path);
    s->paths_.push_back(path);
    s->files_.push_back(f);
    s->locks_.push_back(std::make_unique<std::mutex>());
  }
  return s;
}

SpillSide::~SpillSide() {
  for (size_t i = 0; i < files_.size(); ++i) {
    if (files_[i] != nullptr) std::fclose(files_[i]);
    std::remove(paths_[i].c_str());
  }
}

Status SpillSide::Add(const std::string& key, const std::vector<Value>& row) {
  std::string rec;
  PutU32(&rec, static_cast<uint32_t>(key.size()));
  rec += key;
  PutU32(&rec, static_cast<uint32_t>(row.size()));
  for (const auto& v : row) {
    PutU32(&rec, v ? static_cast<uint32_t>(v->size()) : kNull);
    if (v) rec += *v;
  }
  const size_t b = Xxh3(key) % files_.size();
  {
    std::lock_guard<std::mutex> lock(*locks_[b]);
    if (std::fwrite(rec.data(), 1, rec.size(), files_[b]) != rec.size()) {
      return IoError("write", paths_[b]);
    }
  }
  std::lock_guard<std::mutex> lock(count_lock_);
  ++rows_;
  return Status();
}

Status SpillSide::Close() {
  for (size_t b = 0; b < files_.size(); ++b) {
    if (std::fflush(files_[b]) != 0) return IoError("write", paths_[b]);
  }
  return Status();
}

Status SpillSide::ReadBucket(int b, std::vector<std::pair<std::string, std::vector<Value>>>* out) const {
  std::FILE* f = files_[b];
  std::rewind(f);
  uint32_t n = 0;
  while (ReadU32(f, &n)) {
    std::pair<std::string, std::vector<Value>> rec;
    uint32_t cols = 0;
    if (!ReadString(f, n, &rec.first) || !ReadU32(f, &cols)) return IoError("read", paths_[b]);
    rec.second.resize(cols);
    for (uint32_t i = 0; i < cols; ++i) {
      uint32_t len = 0;
      if (!ReadU32(f, &len)) return IoError("read", paths_[b]);
      if (len == kNull) continue;
      std::string v;
      if (!ReadString(f, len, &v)) return IoError("read", paths_[b]);
      rec.second[i] = std::move(v);
    }
    out->push_back(std::move(rec));
  }
  return Status();
}

Status CompareSpills(const SpillSide& source, const SpillSide& target,
                     const std::vector<std::string>& columns, size_t key_columns,
                     size_t max_listed, TableVerifyResult* result) {
  Listed listed(max_listed);
  for (int b = 0; b < source.buckets(); ++b) {
    std::unordered_map<std::string, std::vector<Value>> reference;
    FERRY_RETURN_IF_ERROR(source.ForEach(b, [&](std::string& key, std::vector<Value>& row) {
      reference.emplace(std::move(key), std::move(row));
      return Status();
    }));
    FERRY_RETURN_IF_ERROR(target.ForEach(b, [&](std::string& key, std::vector<Value>& row) {
      auto it = reference.find(key);
      if (it == reference.end()) {
        ++result->extra;
        listed.Add({RowDifference::Kind::kExtra, SpillKeyTuple(key), {}});
        return Status();
      }
      auto cols = Changed(columns, key_columns, it->second, row);
      if (!cols.empty()) {
        ++result->changed;
        listed.Add({RowDifference::Kind::kChanged, SpillKeyTuple(key), std::move(cols)});
      }
      reference.erase(it);
      return Status();
    }));
    for (auto& [key, row] : reference) {
      ++result->missing;
      listed.Add({RowDifference::Kind::kMissing, SpillKeyTuple(key), {}});
    }
  }
  result->differences = listed.Take();
  return Status();
}

}  // namespace ferry
