// A cache of scan results, so `status` and `health` need not read and hash
// every migration file on each run.
//
// The cache file holds each migration's metadata (version, description,
// kind, layout, paths, first lines, checksum; no SQL, no directives) and a
// signature of the directory: every entry's name, type, size, mtime (ns) and
// inode, one level into subfolders (diesel). Any change to any file changes
// the signature and the cache is not used. Only metadata-only scans use it
// (ScanOptions::metadata_only); `up`, `validate`, `plan` always read the
// files in full.
//
// Files: <cache_dir>/scan-<xxh3 of the directory's absolute path>.v1,
// written to a temporary file and renamed. Unreadable, corrupt or foreign
// cache files are ignored; failures to write are ignored.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "migrate/source.h"

namespace ferry {

struct SignatureOptions {
  // Where the listing memo lives (see DirectorySignature); empty: none.
  std::string cache_dir;
  // How long a directory must have been left alone before its listing is
  // memoized: comfortably more than any filesystem's timestamp tick.
  std::chrono::nanoseconds settle = std::chrono::seconds(2);
};

// The signature of `dir` now, or nullopt when it cannot be listed. Take it
// BEFORE a full scan: a file changed during the scan then misses next time.
//
// Every entry is stat'ed on every call (an edit in place changes only the
// file). Listing is skipped when a memo in options.cache_dir holds the
// directory's names from a run when its stamp (device, inode, mtime and
// ctime, which adding, removing or renaming an entry all move) was the
// same as now and already `settle` old.
std::optional<uint64_t> DirectorySignature(const std::string& dir,
                                           const SignatureOptions& options = {});

// The cached set for `dir` when it was saved with `signature`, else nullopt.
std::optional<MigrationSet> LoadScanCache(const std::string& cache_dir, const std::string& dir,
                                          uint64_t signature);

// Stores `set`, the result of a full scan of `dir` that began at `signature`.
void SaveScanCache(const std::string& cache_dir, const std::string& dir, uint64_t signature,
                   const MigrationSet& set);

// Shared by the caches (this one, status_memo.h): the whole file, or nullopt.
std::optional<std::string> ReadCacheFile(const std::string& path);
// Writes `content` to a temporary file in `cache_dir` and renames it to
// `path`, so readers see the old file or the new one; failures are ignored.
void WriteCacheFile(const std::string& cache_dir, const std::string& path,
                    const std::string& content);

}  // namespace ferry
