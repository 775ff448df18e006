// Partition plan arithmetic and [[partitions]] parsing (ops/partition/).
#include "ops/partition/partition_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ops/partition/partition_spec.h"

namespace ferry::partition {
namespace {

using ::testing::HasSubstr;

int64_t At(const char* text) { return ParseNow(text).value(); }

Interval Unit(IntervalUnit unit, int64_t step = 1) { return Interval{unit, step}; }

std::vector<std::string> Names(const char* table, const Interval& interval,
                               const std::vector<Range>& ranges) {
  std::vector<std::string> out;
  for (const Range& r : ranges) out.push_back(ChildName(table, interval, r));
  return out;
}

TEST(PartitionPlan, MonthlyPremakeCrossesTheYearBoundary) {
  Interval month = Unit(IntervalUnit::kMonth);
  std::vector<Range> wanted = WantedRanges(month, At("2026-12-05T10:00:00Z"), 2);
  ASSERT_EQ(wanted.size(), 3u);
  EXPECT_EQ(
      Names("messages", month, wanted),
      (std::vector<std::string>{"messages_p2026_12", "messages_p2027_01", "messages_p2027_02"}));
  EXPECT_EQ(BoundText(KeyKind::kTimestampTz, wanted[0].lower), "2026-12-01 00:00:00+00");
  EXPECT_EQ(BoundText(KeyKind::kTimestampTz, wanted[0].upper), "2027-01-01 00:00:00+00");
  EXPECT_EQ(BoundText(KeyKind::kDate, wanted[2].upper), "2027-03-01");
  EXPECT_EQ(wanted[0].upper, wanted[1].lower);
}

TEST(PartitionPlan, DailyAndWeekly) {
  Interval day = Unit(IntervalUnit::kDay);
  std::vector<Range> days = WantedRanges(day, At("2026-12-31 23:59:59"), 1);
  EXPECT_EQ(Names("e", day, days), (std::vector<std::string>{"e_p2026_12_31", "e_p2027_01_01"}));
  EXPECT_EQ(BoundText(KeyKind::kTimestamp, days[1].upper), "2027-01-02 00:00:00");

  Interval week = Unit(IntervalUnit::kWeek);
  // 2026-12-05 is a Saturday: its week starts Monday 2026-11-30.
  std::vector<Range> weeks = WantedRanges(week, At("2026-12-05"), 5);
  EXPECT_EQ(BoundText(KeyKind::kDate, weeks[0].lower), "2026-11-30");
  EXPECT_EQ(BoundText(KeyKind::kDate, weeks[5].lower), "2027-01-04");
  EXPECT_EQ(ChildName("e", week, weeks[5]), "e_p2027_01_04");
  // A Monday is its own week's start.
  EXPECT_EQ(FloorTo(week, At("2027-01-04")), At("2027-01-04"));
}

TEST(PartitionPlan, YearAndLeapDays) {
  Interval year = Unit(IntervalUnit::kYear);
  std::vector<Range> years = WantedRanges(year, At("2028-02-29"), 1);
  EXPECT_EQ(Names("t", year, years), (std::vector<std::string>{"t_p2028", "t_p2029"}));
  EXPECT_EQ(NextStart(Unit(IntervalUnit::kDay), At("2028-02-28")), At("2028-02-29"));
  EXPECT_EQ(NextStart(Unit(IntervalUnit::kMonth), At("2028-02-01")), At("2028-03-01"));
}

TEST(PartitionPlan, IntegerSteps) {
  Interval step = Unit(IntervalUnit::kInteger, 1000);
  std::vector<Range> wanted = WantedRanges(step, 2500, 2);
  EXPECT_EQ(wanted, (std::vector<Range>{{2000, 3000}, {3000, 4000}, {4000, 5000}}));
  EXPECT_EQ(ChildName("ids", step, wanted[0]), "ids_p2000");
  EXPECT_EQ(FloorTo(step, -1), -1000);
  EXPECT_EQ(ChildName("ids", step, Range{-1000, 0}), "ids_pm1000");
  EXPECT_EQ(BoundLiteral(KeyKind::kInteger, 3000), "3000");
}

TEST(PartitionPlan, RetentionCut) {
  Retention months = ParseRetention("24 months", Unit(IntervalUnit::kMonth)).value();
  EXPECT_EQ(RetentionCut(months, At("2026-12-05")), At("2024-12-05"));
  // The 31st, 1 month back, is clamped into February.
  Retention one = ParseRetention("1 month", Unit(IntervalUnit::kMonth)).value();
  EXPECT_EQ(*RetentionCut(one, At("2026-03-31")), At("2026-03-01") - 1);
  Retention days = ParseRetention("90 days", Unit(IntervalUnit::kDay)).value();
  EXPECT_EQ(RetentionCut(days, At("2026-12-05")), At("2026-09-06"));
  Retention years = ParseRetention("2 years", Unit(IntervalUnit::kMonth)).value();
  EXPECT_EQ(RetentionCut(years, At("2026-01-15")), At("2024-01-15"));
  EXPECT_FALSE(RetentionCut(Retention{}, At("2026-01-01")).has_value());
  Retention ints = ParseRetention("5000", Unit(IntervalUnit::kInteger, 1000)).value();
  EXPECT_EQ(RetentionCut(ints, 12000), 7000);
  // A monthly partition ending 2024-12-01 is past a cut of 2024-12-05.
  EXPECT_LE(At("2024-12-01"), *RetentionCut(months, At("2026-12-05")));
}

TEST(PartitionPlan, ParsesBoundsAsPostgresPrintsThem) {
  EXPECT_EQ(ParseBound(KeyKind::kTimestampTz, "'2026-12-01 00:00:00+00'").value(),
            At("2026-12-01"));
  EXPECT_EQ(ParseBound(KeyKind::kTimestampTz, "'2026-12-01 02:00:00+02'").value(),
            At("2026-12-01"));
  EXPECT_EQ(ParseBound(KeyKind::kTimestamp, "'2026-12-01 06:30:00'").value(),
            At("2026-12-01") + 6 * 3600 + 1800);
  EXPECT_EQ(ParseBound(KeyKind::kDate, "'2027-01-01'").value(), At("2027-01-01"));
  EXPECT_EQ(ParseBound(KeyKind::kInteger, "-42").value(), -42);
  EXPECT_EQ(ParseBound(KeyKind::kInteger, "MINVALUE").value(), std::numeric_limits<int64_t>::min());
  EXPECT_FALSE(ParseBound(KeyKind::kDate, "'yesterday'").ok());
}

TEST(PartitionPlan, BadIntervalAndRetentionSayTheFix) {
  EXPECT_THAT(ParseInterval("fortnight").status().message(), HasSubstr("day, week, month, year"));
  EXPECT_THAT(ParseRetention("24 moons", Unit(IntervalUnit::kMonth)).status().message(),
              HasSubstr("\"24 months\""));
  EXPECT_FALSE(ParseRetention("24 months", Unit(IntervalUnit::kInteger, 10)).ok());
}

TEST(PartitionSpecParse, ReadsEntriesAndNamesLinesOfBadOnes) {
  auto specs = ParsePartitionSpecs(R"(database = "x"
[[partitions]]
table = "public.messages"
column = "created_at"
interval = "month"
retention = "24 months"
archive = "schema:archive"
default_partition = true

[[partitions]]
table = "ids"
column = "id"
interval = 1000
premake = 2
)",
                                   "ferry.toml");
  ASSERT_TRUE(specs.ok()) << specs.status().ToString();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].table, "public.messages");
  EXPECT_EQ((*specs)[0].premake, 4);
  EXPECT_EQ((*specs)[0].archive, ArchiveKind::kSchema);
  EXPECT_EQ((*specs)[0].archive_schema, "archive");
  EXPECT_TRUE((*specs)[0].default_partition);
  EXPECT_EQ((*specs)[0].origin, "ferry.toml:2");
  EXPECT_EQ((*specs)[1].interval.step, 1000);
  EXPECT_EQ((*specs)[1].premake, 2);

  auto bad = ParsePartitionSpecs(R"([[partitions]]
table = "t"
column = "c"
interval = "fortnight"
retention = "3 months"
)",
                                 "ferry.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("ferry.toml:4: interval 'fortnight' is unknown"));
  EXPECT_THAT(bad.status().message(), HasSubstr("retention without archive"));
}

}  // namespace
}  // namespace ferry::partition
