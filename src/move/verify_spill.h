// Bucket files for comparing two row streams that arrive in no common order
// (verify_cql.cc): each side's rows are written to one of B files by a hash
// of their key, then the two sides are compared bucket by bucket, holding
// one bucket of one side in memory. Rows are canonical text values; the
// first `key_columns` of a row form its key.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"
#include "move/verify.h"

namespace ferry {

class SpillSide {
 public:
  // Files live in `dir` (which must exist), named `<name>.<bucket>`.
  static Result<std::unique_ptr<SpillSide>> Create(const std::string& dir, const std::string& name,
                                                   int buckets);
  ~SpillSide();
  SpillSide(const SpillSide&) = delete;
  SpillSide& operator=(const SpillSide&) = delete;

  // Thread-safe.
  Status Add(const std::string& key, const std::vector<Value>& row);
  Status Close();  // flushes; call before reading
  int64_t rows() const { return rows_; }
  int buckets() const { return static_cast<int>(paths_.size()); }

  // Calls `fn(key, row)` for every row of bucket `b`.
  template <typename Fn>
  Status ForEach(int b, Fn&& fn) const;

 private:
  SpillSide() = default;
  Status ReadBucket(int b, std::vector<std::pair<std::string, std::vector<Value>>>* out) const;

  std::vector<std::string> paths_;
  std::vector<std::FILE*> files_;
  std::vector<std::unique_ptr<std::mutex>> locks_;
  std::mutex count_lock_;
  int64_t rows_ = 0;
};

template <typename Fn>
Status SpillSide::ForEach(int b, Fn&& fn) const {
  std::vector<std::pair<std::string, std::vector<Value>>> rows;
  FERRY_RETURN_IF_ERROR(ReadBucket(b, &rows));
  for (auto& [key, row] : rows) FERRY_RETURN_IF_ERROR(fn(key, row));
  return Status();
}

// Joins key values into one map key (unit separator between values).
std::string SpillKey(const std::vector<Value>& row, size_t key_columns);
// Splits SpillKey's result back into the key's texts.
KeyTuple SpillKeyTuple(const std::string& key);

// Compares `source` with `target` bucket by bucket into `result` (counts
// complete; differences: the `max_listed` smallest keys).
Status CompareSpills(const SpillSide& source, const SpillSide& target,
                     const std::vector<std::string>& columns, size_t key_columns,
                     size_t max_listed, TableVerifyResult* result);

}  // namespace ferry
