// The project's one text-to-integer module: strict for what users type,
// leading-integer for what servers write.
#include "core/numbers.h"

#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <string>

namespace ferry {
namespace {

TEST(NumbersTest, ParseInt64TakesOnlyAWholeInteger) {
  EXPECT_EQ(ParseInt64("42"), 42);
  EXPECT_EQ(ParseInt64("-7"), -7);
  EXPECT_EQ(ParseInt64("9223372036854775807"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(ParseInt64(""), std::nullopt);
  EXPECT_EQ(ParseInt64("12x"), std::nullopt);
  EXPECT_EQ(ParseInt64(" 12"), std::nullopt);
  EXPECT_EQ(ParseInt64("+3"), std::nullopt);
  EXPECT_EQ(ParseInt64("9223372036854775808"), std::nullopt);  // out of range
}

TEST(NumbersTest, LeadingInt64ReadsTheLeadingIntegerOrFallsBack) {
  EXPECT_EQ(LeadingInt64("7.2.4"), 7);
  EXPECT_EQ(LeadingInt64("123 kB"), 123);
  EXPECT_EQ(LeadingInt64(std::string("-5")), -5);
  EXPECT_EQ(LeadingInt64(""), 0);
  EXPECT_EQ(LeadingInt64("abc", -1), -1);
  EXPECT_EQ(LeadingInt64("99999999999999999999", 3), 3);  // out of range: the fallback
}

TEST(NumbersTest, ColumnInt64ReadsANullableColumn) {
  EXPECT_EQ(ColumnInt64(std::optional<std::string>("15")), 15);
  EXPECT_EQ(ColumnInt64(std::optional<std::string>(), 9), 9);
  EXPECT_EQ(ColumnInt64(std::optional<std::string>(""), 4), 4);
}

TEST(NumbersTest, GroupedPutsCommasBetweenThousands) {
  EXPECT_EQ(Grouped(0), "0");
  EXPECT_EQ(Grouped(999), "999");
  EXPECT_EQ(Grouped(1000), "1,000");
  EXPECT_EQ(Grouped(1234567), "1,234,567");
  EXPECT_EQ(Grouped(-45678), "-45,678");
}

}  // namespace
}  // namespace ferry
