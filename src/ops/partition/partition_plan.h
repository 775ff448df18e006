// Partition plan: the pure arithmetic of `ferry partition` (no database).
//
// In:  an interval (day, week, month, year or an integer step), the partition
//      key's "now" (the clock for time keys, the largest key for integers),
//      how many future partitions to keep made, and a retention.
// Out: which ranges should exist, the retention cut, deterministic child
//      names and the SQL literals of bounds.
//
// Keys are int64: seconds since 1970-01-01 UTC for time keys, the value
// itself for integer keys. Ranges are [lower, upper), like PostgreSQL's
// FOR VALUES FROM (lower) TO (upper). Weeks start on Monday (ISO 8601);
// days, weeks, months and years start at 00:00 UTC.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry::partition {

enum class IntervalUnit : uint8_t { kDay, kWeek, kMonth, kYear, kInteger };

struct Interval {
  IntervalUnit unit = IntervalUnit::kMonth;
  int64_t step = 1;  // the width of an integer partition; 1 for time units
  bool is_time() const { return unit != IntervalUnit::kInteger; }
};

// "day", "week", "month", "year", or a positive integer ("100000").
Result<Interval> ParseInterval(std::string_view text);
std::string IntervalText(const Interval& interval);

// How long partitions are kept. kNone keeps everything.
enum class RetentionUnit : uint8_t { kNone, kDays, kWeeks, kMonths, kYears, kInteger };
struct Retention {
  RetentionUnit unit = RetentionUnit::kNone;
  int64_t count = 0;
};
// "24 months", "90 days", "2 weeks", "3 years" (singular too) for time keys;
// a positive integer for integer keys ("5000000": keep keys above max - N).
Result<Retention> ParseRetention(std::string_view text, const Interval& interval);
std::string RetentionText(const Retention& retention);

// The partition key's column type, as far as bounds are concerned.
enum class KeyKind : uint8_t { kTimestamp, kTimestampTz, kDate, kInteger };
// From format_type() text: "timestamp with time zone", "date", "bigint", ...
// nullopt for a type ferry cannot partition on.
std::optional<KeyKind> KeyKindFromType(std::string_view type);

struct Range {
  int64_t lower = 0;
  int64_t upper = 0;
  bool operator==(const Range&) const = default;
};

// The start of the interval holding `key`.
int64_t FloorTo(const Interval& interval, int64_t key);
// The start of the interval after the one starting at `start`.
int64_t NextStart(const Interval& interval, int64_t start);

// The ranges that should exist: the one holding `now` and `premake` after it.
std::vector<Range> WantedRanges(const Interval& interval, int64_t now, int premake);

// Partitions whose upper bound is <= the cut are past retention; nullopt
// when nothing expires (kNone).
std::optional<int64_t> RetentionCut(const Retention& retention, int64_t now);

// Deterministic child name from the table's name and the range:
// messages_p2026_12 (month), messages_p2026_12_07 (day, week: its Monday),
// messages_p2026 (year), events_p1000000 / events_pm500 (integer, lower bound).
// The table part is shortened so the name fits PostgreSQL's 63 bytes.
std::string ChildName(std::string_view table, const Interval& interval, const Range& range);

// The bound as SQL text without quotes: "2026-12-01 00:00:00+00" (timestamptz),
// "2026-12-01 00:00:00" (timestamp), "2026-12-01" (date), "42" (integer).
std::string BoundText(KeyKind kind, int64_t key);
// The bound as a SQL literal with its cast: '2026-12-01 00:00:00+00'::timestamptz.
std::string BoundLiteral(KeyKind kind, int64_t key);
// The inverse of BoundText for what pg_get_expr() prints in a session with
// TimeZone UTC (quotes allowed): "'2026-12-01 00:00:00+00'", "'2026-12-01'",
// "42", MINVALUE/MAXVALUE (INT64_MIN/INT64_MAX). kInvalidArgument otherwise.
Result<int64_t> ParseBound(KeyKind kind, std::string_view text);

// Seconds since the epoch of a civil date at 00:00 UTC, and back.
int64_t SecondsFromCivil(int64_t year, unsigned month, unsigned day);
struct CivilDate {
  int64_t year = 1970;
  unsigned month = 1;
  unsigned day = 1;
};
CivilDate CivilFromSeconds(int64_t seconds);
// "2026-12-05" or "2026-12-05T10:00:00Z" (also with a space) to seconds.
Result<int64_t> ParseNow(std::string_view text);

}  // namespace ferry::partition
