// Canonical value text for verify. Expected strings are what PostgreSQL 15
// prints under verify's session settings (TimeZone=UTC, DateStyle ISO,
// IntervalStyle postgres, extra_float_digits=1); verify_test.cc checks the
// same pairs against a live server.
#include "move/canonical.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace ferry {
namespace {

StoredValue Text(std::string_view s) {
  StoredValue v;
  v.storage = StoredValue::Storage::kText;
  v.bytes = s;
  return v;
}
StoredValue Int(int64_t i) {
  StoredValue v;
  v.storage = StoredValue::Storage::kInteger;
  v.integer = i;
  return v;
}
StoredValue Real(double d) {
  StoredValue v;
  v.storage = StoredValue::Storage::kReal;
  v.real = d;
  return v;
}
StoredValue Blob(std::string_view s) {
  StoredValue v;
  v.storage = StoredValue::Storage::kBlob;
  v.bytes = s;
  return v;
}

TEST(CanonicalTest, FloatsUsePostgresShortestLayout) {
  EXPECT_EQ(CanonicalFloat(1e15, false), "1e+15");
  EXPECT_EQ(CanonicalFloat(1e14, false), "100000000000000");
  EXPECT_EQ(CanonicalFloat(1e-4, false), "0.0001");
  EXPECT_EQ(CanonicalFloat(1e-5, false), "1e-05");
  EXPECT_EQ(CanonicalFloat(123456.7, false), "123456.7");
  EXPECT_EQ(CanonicalFloat(1.2345678901234567e20, false), "1.2345678901234567e+20");
  EXPECT_EQ(CanonicalFloat(-0.0, false), "-0");
  EXPECT_EQ(CanonicalFloat(0.0, false), "0");
  EXPECT_EQ(CanonicalFloat(std::nan(""), false), "NaN");
  EXPECT_EQ(CanonicalFloat(-HUGE_VAL, false), "-Infinity");
  EXPECT_EQ(CanonicalFloat(0.1, false), "0.1");
  EXPECT_EQ(CanonicalFloat(1e6, true), "1e+06");
  EXPECT_EQ(CanonicalFloat(1e5, true), "100000");
  EXPECT_EQ(CanonicalFloat(123456.7, true), "123456.7");
  EXPECT_EQ(CanonicalFloat(0.1, true), "0.1");
}

TEST(CanonicalTest, FloatsFromEveryStorageClass) {
  EXPECT_EQ(Canonicalize(CanonKind::kFloat8, Real(1.5)), "1.5");
  EXPECT_EQ(Canonicalize(CanonKind::kFloat8, Int(3)), "3");
  EXPECT_EQ(Canonicalize(CanonKind::kFloat8, Text("NaN")), "NaN");
  EXPECT_EQ(Canonicalize(CanonKind::kFloat8, Text("-Infinity")), "-Infinity");
  EXPECT_EQ(Canonicalize(CanonKind::kFloat8, Text("-0")), "-0");
  EXPECT_EQ(Canonicalize(CanonKind::kFloat8, Text("1e+20")), "1e+20");
}

TEST(CanonicalTest, NumericDropsTrailingZerosKeepsExactDigits) {
  EXPECT_EQ(CanonicalNumeric("1.500", true), "1.5");
  EXPECT_EQ(CanonicalNumeric("1.500", false), "1.500");
  EXPECT_EQ(CanonicalNumeric("-0.000", true), "0");
  EXPECT_EQ(CanonicalNumeric("-1.10", true), "-1.1");
  EXPECT_EQ(CanonicalNumeric("100", true), "100");
  EXPECT_EQ(CanonicalNumeric("1e2", false), "100");
  EXPECT_EQ(CanonicalNumeric("1.50e1", false), "15.0");
  EXPECT_EQ(CanonicalNumeric("0.1e1", false), "1");
  EXPECT_EQ(CanonicalNumeric("12e-1", false), "1.2");
  EXPECT_EQ(CanonicalNumeric("0012.3400", true), "12.34");
  EXPECT_EQ(CanonicalNumeric("123456789012345678901234567890.123456789", true),
            "123456789012345678901234567890.123456789");
  EXPECT_EQ(CanonicalNumeric("nan", true), "NaN");
  EXPECT_EQ(CanonicalNumeric("-Infinity", true), "-Infinity");
  EXPECT_EQ(CanonicalNumeric("abc", true), std::nullopt);
  EXPECT_EQ(Canonicalize(CanonKind::kNumeric, Int(42)), "42");
}

TEST(CanonicalTest, IntervalsInPostgresStyle) {
  EXPECT_EQ(CanonicalInterval("1 year 2 mons -3 days +04:05:06.5"), "1 year 2 mons -3 days +04:05:06.5");
  EXPECT_EQ(CanonicalInterval("P1Y2M-3DT4H5M6.5S"), "1 year 2 mons -3 days +04:05:06.5");
  EXPECT_EQ(CanonicalInterval("-1 mons"), "-1 mons");
  EXPECT_EQ(CanonicalInterval("-00:00:01.5"), "-00:00:01.5");
  EXPECT_EQ(CanonicalInterval("PT0S"), "00:00:00");
  EXPECT_EQ(CanonicalInterval("100:00:00"), "100:00:00");
  EXPECT_EQ(CanonicalInterval("1 day -00:00:01"), "1 day -00:00:01");
  EXPECT_EQ(CanonicalInterval("14 mons"), "1 year 2 mons");
}

TEST(CanonicalTest, TimestampsInUtcIso) {
  EXPECT_EQ(CanonicalTimestamp("2024-01-01T12:00:00.123+02:00", true), "2024-01-01 10:00:00.123+00");
  EXPECT_EQ(CanonicalTimestamp("2024-01-01 01:00:00-02", true), "2024-01-01 03:00:00+00");
  EXPECT_EQ(CanonicalTimestamp("2024-01-01 00:30:00+01", true), "2023-12-31 23:30:00+00");
  EXPECT_EQ(CanonicalTimestamp("2024-03-01T00:00:00Z", true), "2024-03-01 00:00:00+00");
  EXPECT_EQ(CanonicalTimestamp("0044-03-15 10:00:00+00 BC", true), "0044-03-15 10:00:00+00 BC");
  EXPECT_EQ(CanonicalTimestamp("infinity", true), "infinity");
  EXPECT_EQ(CanonicalTimestamp("2024-01-31T13:45:00.500000", false), "2024-01-31 13:45:00.5");
  EXPECT_EQ(Canonicalize(CanonKind::kDate, Text("2024-01-31")), "2024-01-31");
  EXPECT_EQ(Canonicalize(CanonKind::kDate, Text("44-01-01 BC")), "0044-01-01 BC");
  EXPECT_EQ(Canonicalize(CanonKind::kTime, Text("12:00:01.50")), "12:00:01.5");
}

TEST(CanonicalTest, JsonbOrderAndSpacing) {
  EXPECT_EQ(CanonicalJsonb(R"({"b":1,"a":[1.0,2e2]})"), R"({"a": [1.0, 200], "b": 1})");
  EXPECT_EQ(CanonicalJsonb(R"({"a": 1.10, "aa": -0, "b": 0.1e1})"), R"({"a": 1.10, "b": 1, "aa": 0})");
  EXPECT_EQ(CanonicalJsonb(R"({"a":"\u00e9\n","a":2})"), R"({"a": 2})");
  EXPECT_EQ(CanonicalJsonb(R"(["x\ty", null, true, {}])"), R"(["x\ty", null, true, {}])");
  EXPECT_EQ(CanonicalJsonb("{bad"), std::nullopt);
}

TEST(CanonicalTest, OtherKinds) {
  EXPECT_EQ(Canonicalize(CanonKind::kBool, Int(1)), "t");
  EXPECT_EQ(Canonicalize(CanonKind::kBool, Int(0)), "f");
  EXPECT_EQ(Canonicalize(CanonKind::kBool, Text("true")), "t");
  EXPECT_EQ(Canonicalize(CanonKind::kBytea, Blob(std::string_view("\x01\xff", 2))), "\\x01ff");
  EXPECT_EQ(Canonicalize(CanonKind::kUuid, Text("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  EXPECT_EQ(Canonicalize(CanonKind::kText, Text("")), "");
  EXPECT_EQ(Canonicalize(CanonKind::kText, StoredValue{}), std::nullopt);
}

TEST(CanonicalTest, RecordTextMatchesPostgresRowOutput) {
  // SELECT ROW(1, 'a b', '', NULL, '\x01'::bytea, 'a"b\c', true)::text
  std::string out = "(";
  AppendRecordField(out, std::string("1"), true);
  AppendRecordField(out, std::string("a b"), false);
  AppendRecordField(out, std::string(""), false);
  AppendRecordField(out, std::nullopt, false);
  AppendRecordField(out, std::string("\\x01"), false);
  AppendRecordField(out, std::string("a\"b\\c"), false);
  AppendRecordField(out, std::string("t"), false);
  out += ")";
  EXPECT_EQ(out, R"((1,"a b","",,"\\x01","a""b\\c",t))");
}

TEST(CanonicalTest, RowHashIsMd5Prefix) {
  // SELECT ('x' || left(md5('abc'), 16))::bit(64)::bigint
  EXPECT_EQ(RowHash("abc"), -8070080442485551184);
}

}  // namespace
}  // namespace ferry
