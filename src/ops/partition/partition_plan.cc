#include "ops/partition/partition_plan.h"

#include "core/numbers.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <limits>

namespace ferry::partition {
namespace {

constexpr int64_t kDay = 86'400;

// Floor division for negative keys too.
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

int64_t AddMonths(int64_t seconds, int64_t months) {
  CivilDate d = CivilFromSeconds(seconds);
  int64_t index = d.year * 12 + (d.month - 1) + months;
  return SecondsFromCivil(FloorDiv(index, 12),
                          static_cast<unsigned>(index - FloorDiv(index, 12) * 12) + 1, 1);
}

// "YYYY-MM-DD" at the start of `s`; advances `s` past it.
std::optional<int64_t> TakeDate(std::string_view* s) {
  if (s->size() < 10 || (*s)[4] != '-' || (*s)[7] != '-') return std::nullopt;
  auto y = ParseInt64(s->substr(0, 4));
  auto m = ParseInt64(s->substr(5, 2));
  auto d = ParseInt64(s->substr(8, 2));
  if (!y || !m || !d || *m < 1 || *m > 12 || *d < 1 || *d > 31) return std::nullopt;
  s->remove_prefix(10);
  return SecondsFromCivil(*y, static_cast<unsigned>(*m), static_cast<unsigned>(*d));
}

// " HH:MM:SS[.ffffff][+HH[:MM]]" (or 'T' ... 'Z'); seconds to add. Fractions are dropped.
std::optional<int64_t> TakeTime(std::string_view s) {
  if (s.empty()) return 0;
  if (s[0] != ' ' && s[0] != 'T') return std::nullopt;
  s.remove_prefix(1);
  if (s.size() < 8 || s[2] != ':' || s[5] != ':') return std::nullopt;
  auto h = ParseInt64(s.substr(0, 2));
  auto mi = ParseInt64(s.substr(3, 2));
  auto se = ParseInt64(s.substr(6, 2));
  if (!h || !mi || !se) return std::nullopt;
  int64_t out = *h * 3600 + *mi * 60 + *se;
  s.remove_prefix(8);
  if (!s.empty() && s[0] == '.') {
    s.remove_prefix(1);
    while (!s.empty() && std::isdigit(static_cast<unsigned char>(s[0]))) s.remove_prefix(1);
  }
  if (s.empty() || s == "Z") return out;
  if (s[0] != '+' && s[0] != '-') return std::nullopt;
  int sign = s[0] == '+' ? 1 : -1;
  s.remove_prefix(1);
  auto oh = ParseInt64(s.substr(0, 2));
  if (!oh) return std::nullopt;
  int64_t offset = *oh * 3600;
  if (s.size() == 5 && s[2] == ':') {
    auto om = ParseInt64(s.substr(3, 2));
    if (!om) return std::nullopt;
    offset += *om * 60;
  } else if (s.size() != 2) {
    return std::nullopt;
  }
  return out - sign * offset;  // local time minus its offset is UTC
}

}  // namespace

Result<Interval> ParseInterval(std::string_view text) {
  std::string_view t = Trim(text);
  if (t == "day" || t == "daily") return Interval{IntervalUnit::kDay, 1};
  if (t == "week" || t == "weekly") return Interval{IntervalUnit::kWeek, 1};
  if (t == "month" || t == "monthly") return Interval{IntervalUnit::kMonth, 1};
  if (t == "year" || t == "yearly") return Interval{IntervalUnit::kYear, 1};
  if (auto n = ParseInt64(t); n && *n > 0) return Interval{IntervalUnit::kInteger, *n};
  return Status(StatusCode::kInvalidArgument,
                fmt::format("interval '{}' is unknown: write day, week, month, year, or a "
                            "positive integer step for an integer key (e.g. 100000)",
                            text));
}

std::string IntervalText(const Interval& interval) {
  switch (interval.unit) {
    case IntervalUnit::kDay:
      return "day";
    case IntervalUnit::kWeek:
      return "week";
    case IntervalUnit::kMonth:
      return "month";
    case IntervalUnit::kYear:
      return "year";
    case IntervalUnit::kInteger:
      return std::to_string(interval.step);
  }
  return "";
}

Result<Retention> ParseRetention(std::string_view text, const Interval& interval) {
  std::string_view t = Trim(text);
  if (t.empty() || t == "none") return Retention{};
  if (!interval.is_time()) {
    if (auto n = ParseInt64(t); n && *n > 0) return Retention{RetentionUnit::kInteger, *n};
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("retention '{}': an integer key keeps a positive number of key "
                              "values below the largest one (e.g. retention = 5000000)",
                              text));
  }
  size_t space = t.find(' ');
  auto n = ParseInt64(t.substr(0, space));
  std::string_view unit = space == std::string_view::npos ? "" : Trim(t.substr(space));
  if (unit.ends_with('s')) unit.remove_suffix(1);
  RetentionUnit u = RetentionUnit::kNone;
  if (unit == "day")
    u = RetentionUnit::kDays;
  else if (unit == "week")
    u = RetentionUnit::kWeeks;
  else if (unit == "month")
    u = RetentionUnit::kMonths;
  else if (unit == "year")
    u = RetentionUnit::kYears;
  if (!n || *n <= 0 || u == RetentionUnit::kNone || *n > 100'000) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("retention '{}' is unknown: write a count and a unit, e.g. "
                              "\"24 months\", \"90 days\", \"2 weeks\", \"3 years\"",
                              text));
  }
  return Retention{u, *n};
}

std::string RetentionText(const Retention& r) {
  switch (r.unit) {
    case RetentionUnit::kNone:
      return "none";
    case RetentionUnit::kDays:
      return fmt::format("{} days", r.count);
    case RetentionUnit::kWeeks:
      return fmt::format("{} weeks", r.count);
    case RetentionUnit::kMonths:
      return fmt::format("{} months", r.count);
    case RetentionUnit::kYears:
      return fmt::format("{} years", r.count);
    case RetentionUnit::kInteger:
      return std::to_string(r.count);
  }
  return "";
}

std::optional<KeyKind> KeyKindFromType(std::string_view type) {
  if (type == "timestamp with time zone") return KeyKind::kTimestampTz;
  if (type == "timestamp without time zone") return KeyKind::kTimestamp;
  if (type == "date") return KeyKind::kDate;
  if (type == "bigint" || type == "integer" || type == "smallint") return KeyKind::kInteger;
  return std::nullopt;
}

int64_t FloorTo(const Interval& interval, int64_t key) {
  switch (interval.unit) {
    case IntervalUnit::kDay:
      return FloorDiv(key, kDay) * kDay;
    case IntervalUnit::kWeek: {
      int64_t days = FloorDiv(key, kDay);
      int64_t monday = days - (((days + 3) % 7) + 7) % 7;  // 1970-01-01 was a Thursday
      return monday * kDay;
    }
    case IntervalUnit::kMonth: {
      CivilDate d = CivilFromSeconds(key);
      return SecondsFromCivil(d.year, d.month, 1);
    }
    case IntervalUnit::kYear:
      return SecondsFromCivil(CivilFromSeconds(key).year, 1, 1);
    case IntervalUnit::kInteger:
      return FloorDiv(key, interval.step) * interval.step;
  }
  return key;
}

int64_t NextStart(const Interval& interval, int64_t start) {
  switch (interval.unit) {
    case IntervalUnit::kDay:
      return start + kDay;
    case IntervalUnit::kWeek:
      return start + 7 * kDay;
    case IntervalUnit::kMonth:
      return AddMonths(start, 1);
    case IntervalUnit::kYear:
      return AddMonths(start, 12);
    case IntervalUnit::kInteger:
      return start + interval.step;
  }
  return start;
}

std::vector<Range> WantedRanges(const Interval& interval, int64_t now, int premake) {
  std::vector<Range> out;
  int64_t lower = FloorTo(interval, now);
  for (int i = 0; i <= premake; ++i) {
    int64_t upper = NextStart(interval, lower);
    out.push_back({lower, upper});
    lower = upper;
  }
  return out;
}

std::optional<int64_t> RetentionCut(const Retention& r, int64_t now) {
  switch (r.unit) {
    case RetentionUnit::kNone:
      return std::nullopt;
    case RetentionUnit::kDays:
      return now - r.count * kDay;
    case RetentionUnit::kWeeks:
      return now - r.count * 7 * kDay;
    case RetentionUnit::kMonths:
    case RetentionUnit::kYears: {
      int64_t months = r.unit == RetentionUnit::kMonths ? r.count : r.count * 12;
      // The same day of the month, `months` earlier (clamped to the month's end).
      CivilDate d = CivilFromSeconds(now);
      int64_t first = AddMonths(SecondsFromCivil(d.year, d.month, 1), -months);
      int64_t next = AddMonths(first, 1);
      int64_t into_month = now - SecondsFromCivil(d.year, d.month, 1);
      return std::min(first + into_month, next - 1);
    }
    case RetentionUnit::kInteger:
      return now - r.count;
  }
  return std::nullopt;
}

std::string ChildName(std::string_view table, const Interval& interval, const Range& range) {
  std::string suffix;
  CivilDate d = CivilFromSeconds(range.lower);
  switch (interval.unit) {
    case IntervalUnit::kDay:
    case IntervalUnit::kWeek:
      suffix = fmt::format("_p{:04}_{:02}_{:02}", d.year, d.month, d.day);
      break;
    case IntervalUnit::kMonth:
      suffix = fmt::format("_p{:04}_{:02}", d.year, d.month);
      break;
    case IntervalUnit::kYear:
      suffix = fmt::format("_p{:04}", d.year);
      break;
    case IntervalUnit::kInteger:
      suffix = range.lower < 0 ? fmt::format("_pm{}", -(range.lower + 1) + 1)
                               : fmt::format("_p{}", range.lower);
      break;
  }
  constexpr size_t kMaxName = 63;
  std::string base(table.substr(0, kMaxName - std::min(kMaxName, suffix.size())));
  return base + suffix;
}

std::string BoundText(KeyKind kind, int64_t key) {
  if (kind == KeyKind::kInteger) return std::to_string(key);
  CivilDate d = CivilFromSeconds(key);
  std::string date = fmt::format("{:04}-{:02}-{:02}", d.year, d.month, d.day);
  if (kind == KeyKind::kDate) return date;
  int64_t in_day = key - SecondsFromCivil(d.year, d.month, d.day);
  std::string time =
      fmt::format(" {:02}:{:02}:{:02}", in_day / 3600, in_day / 60 % 60, in_day % 60);
  return date + time + (kind == KeyKind::kTimestampTz ? "+00" : "");
}

std::string BoundLiteral(KeyKind kind, int64_t key) {
  switch (kind) {
    case KeyKind::kInteger:
      return std::to_string(key);
    case KeyKind::kDate:
      return "'" + BoundText(kind, key) + "'::date";
    case KeyKind::kTimestamp:
      return "'" + BoundText(kind, key) + "'::timestamp";
    case KeyKind::kTimestampTz:
      return "'" + BoundText(kind, key) + "'::timestamptz";
  }
  return "";
}

Result<int64_t> ParseBound(KeyKind kind, std::string_view text) {
  std::string_view t = Trim(text);
  if (t == "MINVALUE") return std::numeric_limits<int64_t>::min();
  if (t == "MAXVALUE") return std::numeric_limits<int64_t>::max();
  if (t.size() >= 2 && t.front() == '\'' && t.back() == '\'') t = t.substr(1, t.size() - 2);
  auto bad = [&]() {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("partition bound '{}' is not a value ferry can read", text));
  };
  if (kind == KeyKind::kInteger) {
    if (auto n = ParseInt64(t)) return *n;
    return bad();
  }
  std::string_view rest = t;
  auto date = TakeDate(&rest);
  if (!date) return bad();
  auto time = TakeTime(rest);
  if (!time) return bad();
  return *date + *time;
}

// Howard Hinnant's days_from_civil / civil_from_days.
int64_t SecondsFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (era * 146097 + doe - 719468) * kDay;
}

CivilDate CivilFromSeconds(int64_t seconds) {
  int64_t z = FloorDiv(seconds, kDay) + 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const unsigned d = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  const unsigned m = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (m <= 2), m, d};
}

Result<int64_t> ParseNow(std::string_view text) {
  std::string_view rest = Trim(text);
  auto date = TakeDate(&rest);
  auto time = date ? TakeTime(rest) : std::nullopt;
  if (!date || !time) {
    return Status(
        StatusCode::kInvalidArgument,
        fmt::format("'{}' is not a date: write 2026-12-05 or 2026-12-05T10:00:00Z", text));
  }
  return *date + *time;
}

}  // namespace ferry::partition
