// DDL progress, the text: one line per progress change, throttled
// (observe/ddl_progress.h).
#include <fmt/format.h>

#include <cctype>

#include "core/numbers.h"
#include "observe/ddl_progress.h"

namespace ferry {

namespace {


std::string Counter(int64_t done, int64_t total, std::string_view unit, double ratio) {
  return fmt::format(" {}% ({}/{} {})", static_cast<int>(ratio * 100), Grouped(done),
                     Grouped(total), unit);
}

}  // namespace

namespace {

// `sql` past white space and comments, upper-cased up to `n` characters.
std::string UpperHead(std::string_view sql, size_t n) {
  size_t i = 0;
  while (i < sql.size()) {
    if (std::isspace(static_cast<unsigned char>(sql[i]))) {
      ++i;
    } else if (sql.compare(i, 2, "--") == 0) {
      size_t nl = sql.find('\n', i);
      i = nl == std::string_view::npos ? sql.size() : nl + 1;
    } else if (sql.compare(i, 2, "/*") == 0) {
      size_t end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? sql.size() : end + 2;
    } else {
      break;
    }
  }
  std::string out;
  for (size_t j = i; j < sql.size() && out.size() < n; ++j) {
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[j])));
  }
  return out;
}

}  // namespace

bool MayReportProgress(std::string_view sql) {
  const std::string head = UpperHead(sql, 32);
  for (const char* word : {"CREATE INDEX", "CREATE UNIQUE INDEX", "REINDEX", "CLUSTER", "VACUUM",
                           "ANALYZE", "ANALYSE", "COPY"}) {
    if (head.rfind(word, 0) == 0) return true;
  }
  if (head.rfind("ALTER TABLE", 0) != 0) return false;
  const std::string all = UpperHead(sql, sql.size());
  return all.find("PRIMARY KEY") != std::string::npos || all.find("UNIQUE") != std::string::npos ||
         all.find("EXCLUDE") != std::string::npos;
}

std::string DdlProgressText(const DdlProgress& p) {
  std::string out = p.command.empty() ? p.view : p.command;
  if (!p.phase.empty()) out += ": " + p.phase;
  const double ratio = DdlProgressRatio(p);
  switch (DdlProgressUnitOf(p)) {
    case DdlProgressUnit::kBlocks:
      out += Counter(p.blocks_done, p.blocks_total, "blocks", ratio);
      break;
    case DdlProgressUnit::kTuples:
      out += Counter(p.tuples_done, p.tuples_total, "tuples", ratio);
      break;
    case DdlProgressUnit::kLockers:
      out += Counter(p.lockers_done, p.lockers_total, "lockers", ratio);
      break;
    case DdlProgressUnit::kNone:
      if (p.tuples_done > 0) out += fmt::format(" ({} tuples)", Grouped(p.tuples_done));
      break;
  }
  if (p.partitions_total > 0) {
    out += fmt::format(", partition {}/{}", Grouped(p.partitions_done), Grouped(p.partitions_total));
  }
  return out;
}

bool DdlProgressThrottle::Due(const DdlProgress& p, Clock::time_point now) {
  if (last_ && last_->SameAs(p)) return false;
  const bool new_phase = !last_ || last_->command != p.command || last_->phase != p.phase;
  if (!new_phase && now - last_at_ < every_) return false;
  last_ = p;
  last_at_ = now;
  return true;
}

}  // namespace ferry
