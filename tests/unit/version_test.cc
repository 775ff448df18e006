#include "migrate/version.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <vector>

namespace ferry {

// Readable gtest output for versions.
static void PrintTo(const Version& v, std::ostream* os) { *os << "Version(" << v.text() << ")"; }

namespace {

Version V(const std::string& text) {
  Result<Version> v = Version::Parse(text);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status().ToString();
  return v.ok() ? std::move(v).value() : Version();
}

TEST(VersionTest, ParsesIntegersAndKeepsText) {
  Version v = V("0042");
  EXPECT_FALSE(v.empty());
  EXPECT_EQ(v.text(), "0042");
  EXPECT_EQ(v.components(), std::vector<std::string>{"42"});
  EXPECT_EQ(v.Canonical(), "42");
  EXPECT_EQ(V("0").Canonical(), "0");
  EXPECT_EQ(V("000").components(), std::vector<std::string>{"0"});
}

TEST(VersionTest, ParsesDottedAndFlywayUnderscores) {
  EXPECT_EQ(V("1.1.0").components(), (std::vector<std::string>{"1", "1", "0"}));
  EXPECT_EQ(V("1.1.0").Canonical(), "1.1");
  EXPECT_EQ(V("1_1"), V("1.1"));
  EXPECT_EQ(V("1_1").text(), "1_1");
  EXPECT_EQ(V("2_0_1").Canonical(), "2.0.1");
}

TEST(VersionTest, ParsesTimestampsWithoutOverflow) {
  Version a = V("20251231120000");
  EXPECT_EQ(a.components(), std::vector<std::string>{"20251231120000"});
  // Longer than uint64 can hold: still compared exactly.
  Version big = V("123456789012345678901234567890");
  Version bigger = V("123456789012345678901234567891");
  EXPECT_LT(big, bigger);
  EXPECT_LT(a, big);
}

TEST(VersionTest, ParsesDieselTimestamps) {
  Version d = V("2019-02-26-002946");
  EXPECT_EQ(d.components(), std::vector<std::string>{"20190226002946"});
  EXPECT_EQ(d.Canonical(), "20190226002946");
  EXPECT_EQ(d, V("20190226002946"));
  Version s = V("2026-04-22-005541-0000");
  EXPECT_EQ(s.components(), (std::vector<std::string>{"20260422005541", "0"}));
  EXPECT_EQ(s, V("20260422005541"));
  EXPECT_LT(V("2026-04-22-005541-0000"), V("2026-04-22-005541-0001"));
  EXPECT_LT(d, s);
  EXPECT_LT(V("20190226002945"), d);
}

TEST(VersionTest, OrdersNumerically) {
  EXPECT_LT(V("1.1"), V("1.2"));
  EXPECT_LT(V("1.2"), V("1.10"));
  EXPECT_LT(V("9"), V("10"));
  EXPECT_LT(V("1"), V("1.0.1"));
  EXPECT_LT(V("0099"), V("100"));
  EXPECT_GT(V("2"), V("1.999"));
  std::vector<Version> vs = {V("1.10"), V("2"), V("1.2"), V("1"), V("0.9")};
  std::sort(vs.begin(), vs.end());
  std::vector<std::string> texts;
  for (const Version& v : vs) texts.push_back(v.text());
  EXPECT_EQ(texts, (std::vector<std::string>{"0.9", "1", "1.2", "1.10", "2"}));
}

TEST(VersionTest, TrailingZeroComponentsAreEqual) {
  EXPECT_EQ(V("1"), V("1.0"));
  EXPECT_EQ(V("1"), V("1.0.0"));
  EXPECT_EQ(V("42"), V("0042"));
  EXPECT_EQ(V("1.0").Canonical(), V("1").Canonical());
  EXPECT_NE(V("1"), V("1.0.1"));
}

TEST(VersionTest, EmptyVersionSortsFirst) {
  Version empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_LT(empty, V("0"));
  EXPECT_EQ(empty, Version());
}

TEST(VersionTest, RejectsJunk) {
  for (const char* junk :
       {"", "abc", "1a", "v1", "1.", ".1", "1..2", "1__2", "-1", "+1", "1 2", "1.2-3",
        "2019-2-26-002946", "2019-02-26", "2019-02-26-002946-", "2019-02-26-002946-x", "１"}) {
    Result<Version> v = Version::Parse(junk);
    ASSERT_FALSE(v.ok()) << "accepted '" << junk << "'";
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(v.status().message().find("invalid version"), std::string::npos);
  }
}

TEST(VersionTest, CompareDecimal) {
  EXPECT_EQ(CompareDecimal("007", "7"), std::strong_ordering::equal);
  EXPECT_EQ(CompareDecimal("10", "9"), std::strong_ordering::greater);
  EXPECT_EQ(CompareDecimal("0", "000"), std::strong_ordering::equal);
  EXPECT_EQ(CompareDecimal("123456789012345678901", "99999999999999999999"),
            std::strong_ordering::greater);
}

}  // namespace
}  // namespace ferry
