// DdlProgress: a long statement's progress as PostgreSQL reports it in its
// pg_stat_progress_* views, and how it rides on the event stream.
//
// A "statement_progress" event (kind kMigration, status info) carries its
// figures in Event::message as `key=value` fields joined by '|'
// (EncodeDdlProgress; '%' and '|' in values are %-escaped), and a
// migration detail whose message is the human text. Consumers read them
// back with DdlProgressOf(). Header-only: the observability plugin
// (observe/plugin.h) uses it without linking ferry_lib.
// TODO(ddlprogress): a typed `ddl` member of Event once the plugin ABI is
// bumped (it changes Event's layout).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "observe/event.h"

namespace ferry {

struct DdlProgress {
  std::string view;      // "create_index", "cluster", "vacuum", "analyze"
  std::string command;   // "CREATE INDEX CONCURRENTLY", "VACUUM FULL", "ANALYZE" ...
  std::string phase;     // "building index: scanning table" (the view's text)
  std::string relation;  // the table, as the server names it ("" when unknown)
  int64_t blocks_done = 0, blocks_total = 0;
  int64_t tuples_done = 0, tuples_total = 0;
  int64_t lockers_done = 0, lockers_total = 0;
  int64_t partitions_done = 0, partitions_total = 0;
  int64_t elapsed_ms = 0;  // since the statement began (as the watcher saw it)

  // Same view, phase and counters (elapsed_ms aside).
  bool SameAs(const DdlProgress& o) const {
    return view == o.view && command == o.command && phase == o.phase &&
           relation == o.relation && blocks_done == o.blocks_done &&
           blocks_total == o.blocks_total && tuples_done == o.tuples_done &&
           tuples_total == o.tuples_total && lockers_done == o.lockers_done &&
           lockers_total == o.lockers_total && partitions_done == o.partitions_done &&
           partitions_total == o.partitions_total;
  }
};

// The unit the current phase counts in: the first of blocks, tuples,
// lockers with a total (the server fills the one its phase uses).
enum class DdlProgressUnit { kNone, kBlocks, kTuples, kLockers };
inline DdlProgressUnit DdlProgressUnitOf(const DdlProgress& p) {
  if (p.blocks_total > 0) return DdlProgressUnit::kBlocks;
  if (p.tuples_total > 0) return DdlProgressUnit::kTuples;
  if (p.lockers_total > 0) return DdlProgressUnit::kLockers;
  return DdlProgressUnit::kNone;
}

// The fraction of the current phase done (0..1), or -1 when the phase has
// no counter.
inline double DdlProgressRatio(const DdlProgress& p) {
  auto ratio = [](int64_t done, int64_t total) {
    double r = static_cast<double>(done) / static_cast<double>(total);
    return r < 0 ? 0.0 : (r > 1 ? 1.0 : r);
  };
  switch (DdlProgressUnitOf(p)) {
    case DdlProgressUnit::kBlocks: return ratio(p.blocks_done, p.blocks_total);
    case DdlProgressUnit::kTuples: return ratio(p.tuples_done, p.tuples_total);
    case DdlProgressUnit::kLockers: return ratio(p.lockers_done, p.lockers_total);
    case DdlProgressUnit::kNone: break;
  }
  return -1;
}

namespace ddl_progress_internal {

inline std::string Escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '%') {
      out += "%25";
    } else if (c == '|') {
      out += "%7C";
    } else {
      out += c;
    }
  }
  return out;
}

inline std::string Unescape(std::string_view v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && v.substr(i, 3) == "%25") {
      out += '%';
      i += 2;
    } else if (v[i] == '%' && v.substr(i, 3) == "%7C") {
      out += '|';
      i += 2;
    } else {
      out += v[i];
    }
  }
  return out;
}

inline void ReadPair(std::string_view v, int64_t* done, int64_t* total) {
  size_t slash = v.find('/');
  if (slash == std::string_view::npos) return;
  std::from_chars(v.data(), v.data() + slash, *done);
  std::from_chars(v.data() + slash + 1, v.data() + v.size(), *total);
}

}  // namespace ddl_progress_internal

// "view=create_index|command=...|phase=...|relation=...|blocks=5/10|
// tuples=0/0|lockers=0/0|partitions=0/0|elapsed_ms=1500".
inline std::string EncodeDdlProgress(const DdlProgress& p) {
  using ddl_progress_internal::Escape;
  auto pair = [](int64_t a, int64_t b) { return std::to_string(a) + "/" + std::to_string(b); };
  return "view=" + Escape(p.view) + "|command=" + Escape(p.command) + "|phase=" +
         Escape(p.phase) + "|relation=" + Escape(p.relation) +
         "|blocks=" + pair(p.blocks_done, p.blocks_total) +
         "|tuples=" + pair(p.tuples_done, p.tuples_total) +
         "|lockers=" + pair(p.lockers_done, p.lockers_total) +
         "|partitions=" + pair(p.partitions_done, p.partitions_total) +
         "|elapsed_ms=" + std::to_string(p.elapsed_ms);
}

inline DdlProgress DecodeDdlProgress(std::string_view text) {
  using namespace ddl_progress_internal;
  DdlProgress p;
  while (!text.empty()) {
    size_t bar = text.find('|');
    std::string_view field = text.substr(0, bar);
    text = bar == std::string_view::npos ? std::string_view() : text.substr(bar + 1);
    size_t eq = field.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
    if (key == "view") p.view = Unescape(value);
    if (key == "command") p.command = Unescape(value);
    if (key == "phase") p.phase = Unescape(value);
    if (key == "relation") p.relation = Unescape(value);
    if (key == "blocks") ReadPair(value, &p.blocks_done, &p.blocks_total);
    if (key == "tuples") ReadPair(value, &p.tuples_done, &p.tuples_total);
    if (key == "lockers") ReadPair(value, &p.lockers_done, &p.lockers_total);
    if (key == "partitions") ReadPair(value, &p.partitions_done, &p.partitions_total);
    if (key == "elapsed_ms") std::from_chars(value.data(), value.data() + value.size(), p.elapsed_ms);
  }
  return p;
}

inline constexpr std::string_view kStatementProgress = "statement_progress";

// The progress a "statement_progress" event carries; nullopt for others.
inline std::optional<DdlProgress> DdlProgressOf(const Event& e) {
  if (e.type != kStatementProgress) return std::nullopt;
  return DecodeDdlProgress(e.message);
}

// A "statement_progress" event: `base` gives the kind, job, operation,
// database and a migration detail (whose message becomes the human text
// `text`); `progress` its figures.
inline Event DdlProgressEventOf(Event base, const DdlProgress& progress, std::string text) {
  base.type = std::string(kStatementProgress);
  base.status = EventStatus::kInfo;
  base.duration_ms = progress.elapsed_ms;
  base.rows = 0;
  base.error_type.clear();
  base.message = EncodeDdlProgress(progress);
  if (base.migration) base.migration->message = std::move(text);
  return base;
}

}  // namespace ferry
