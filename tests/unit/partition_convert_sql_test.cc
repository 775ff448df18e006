// SQL builders of the online partition conversion (ops/partition/partition_convert.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ops/partition/partition_convert.h"

namespace ferry::partition {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

SourceTable Events() {
  SourceTable t;
  t.schema = "public";
  t.name = "events";
  t.column = "created_at";
  t.key = KeyKind::kTimestampTz;
  t.columns = {"id", "created_at", "body"};
  t.pk = {"id", "created_at"};
  t.pk_types = {"bigint", "timestamp with time zone"};
  t.constraint_defs = {"events_pkey|PRIMARY KEY (id, created_at)"};
  t.index_defs = {"events_body|CREATE INDEX events_body ON public.events USING btree (body)"};
  t.sequences = {"public.events_id_seq|id"};
  return t;
}

TEST(PartitionConvertSql, NamesFitPostgresIdentifiers) {
  std::string long_name(63, 'x');
  EXPECT_EQ(ShadowName("events"), "events_ferry_part");
  EXPECT_EQ(OldName("events"), "events_ferry_old");
  EXPECT_EQ(ShadowName(long_name).size(), 63u);
  EXPECT_EQ(OldName(long_name).size(), 63u);
  EXPECT_EQ(SyncFunctionName(long_name).size(), 63u);
  EXPECT_EQ(ShadowObjectName(long_name).size(), 63u);
  EXPECT_EQ(OldObjectName(long_name).size(), 63u);
}

TEST(PartitionConvertSql, ShadowIsPartitionedWithKeysIndexesAndRanges) {
  Interval month{IntervalUnit::kMonth, 1};
  int64_t nov = SecondsFromCivil(2026, 11, 1), dec = SecondsFromCivil(2026, 12, 1);
  std::vector<std::string> sql = ShadowSql(Events(), month, {{nov, dec}}, true);
  ASSERT_EQ(sql.size(), 5u);
  EXPECT_THAT(sql[0], HasSubstr("CREATE TABLE \"public\".\"events_ferry_part\" (LIKE "
                                "\"public\".\"events\" INCLUDING DEFAULTS"));
  EXPECT_THAT(sql[0], HasSubstr("PARTITION BY RANGE (\"created_at\")"));
  EXPECT_EQ(sql[1],
            "ALTER TABLE \"public\".\"events_ferry_part\" ADD CONSTRAINT \"events_pkey_fpart\" "
            "PRIMARY KEY (id, created_at)");
  EXPECT_EQ(sql[2],
            "CREATE INDEX \"events_body_fpart\" ON \"public\".\"events_ferry_part\" USING btree "
            "(body)");
  EXPECT_EQ(sql[3],
            "CREATE TABLE \"public\".\"events_p2026_11\" PARTITION OF "
            "\"public\".\"events_ferry_part\" FOR VALUES FROM ('2026-11-01 "
            "00:00:00+00'::timestamptz) TO ('2026-12-01 00:00:00+00'::timestamptz)");
  EXPECT_EQ(sql[4],
            "CREATE TABLE \"public\".\"events_default\" PARTITION OF "
            "\"public\".\"events_ferry_part\" DEFAULT");
}

TEST(PartitionConvertSql, TriggerMovesRowsByDeleteAndUpsert) {
  std::vector<std::string> sql = TriggerSql(Events());
  ASSERT_EQ(sql.size(), 2u);
  EXPECT_THAT(sql[0], HasSubstr("DELETE FROM \"public\".\"events_ferry_part\" WHERE (\"id\", "
                                "\"created_at\") = (OLD.\"id\", OLD.\"created_at\")"));
  EXPECT_THAT(sql[0], HasSubstr("VALUES (NEW.\"id\", NEW.\"created_at\", NEW.\"body\") ON "
                                "CONFLICT (\"id\", \"created_at\") DO UPDATE SET \"body\" = "
                                "EXCLUDED.\"body\""));
  EXPECT_THAT(sql[1], HasSubstr("AFTER INSERT OR UPDATE OR DELETE ON \"public\".\"events\" FOR "
                                "EACH ROW EXECUTE FUNCTION \"public\".\"events_ferry_part_sync\"()"));
}

TEST(PartitionConvertSql, TriggerOnKeyOnlyTableDoesNothingOnConflict) {
  SourceTable t = Events();
  t.columns = {"id", "created_at"};
  EXPECT_THAT(TriggerSql(t)[0], HasSubstr("ON CONFLICT (\"id\", \"created_at\") DO NOTHING"));
}

TEST(PartitionConvertSql, BatchesWalkTheKeyWithBoundParameters) {
  SourceTable t = Events();
  EXPECT_EQ(CopyBatchSql(t, true),
            "INSERT INTO \"public\".\"events_ferry_part\" (\"id\", \"created_at\", \"body\") "
            "SELECT \"id\", \"created_at\", \"body\" FROM \"public\".\"events\" WHERE (\"id\", "
            "\"created_at\") <= ($1::bigint, $2::timestamp with time zone) FOR SHARE ON "
            "CONFLICT DO NOTHING");
  EXPECT_THAT(CopyBatchSql(t, false),
              HasSubstr("WHERE (\"id\", \"created_at\") > ($1::bigint, $2::timestamp with time "
                        "zone) AND (\"id\", \"created_at\") <= ($3::bigint, $4::timestamp with "
                        "time zone)"));
  EXPECT_THAT(NextKeySql(t, true, 500), HasSubstr("LIMIT 500) b ORDER BY \"id\" DESC"));
  EXPECT_THAT(NextKeySql(t, true, 500), Not(HasSubstr("$1")));
  EXPECT_THAT(NextKeySql(t, false, 500), HasSubstr("> ($1::bigint"));
}

TEST(PartitionConvertSql, DigestRangesAreOpenBelowAndClosedAbove) {
  SourceTable t = Events();
  EXPECT_THAT(RangeDigestSql(t, "x", true, true), Not(HasSubstr("WHERE")));
  EXPECT_THAT(RangeDigestSql(t, "x", true, false), HasSubstr("WHERE (\"id\", \"created_at\") <= ($1"));
  EXPECT_THAT(RangeDigestSql(t, "x", false, true), HasSubstr("WHERE (\"id\", \"created_at\") > ($1"));
  EXPECT_THAT(RangeDigestSql(t, "x", false, false), HasSubstr("<= ($3"));
}

TEST(PartitionConvertSql, SwapRenamesTablesIndexesAndReownsSequences) {
  std::vector<std::string> sql = SwapSql(Events());
  EXPECT_THAT(sql, ElementsAre(
      "LOCK TABLE \"public\".\"events\" IN ACCESS EXCLUSIVE MODE",
      "DROP TRIGGER IF EXISTS ferry_partition_sync ON \"public\".\"events\"",
      "DROP FUNCTION IF EXISTS \"public\".\"events_ferry_part_sync\"()",
      "ALTER TABLE \"public\".\"events\" RENAME TO \"events_ferry_old\"",
      "ALTER TABLE \"public\".\"events_ferry_part\" RENAME TO \"events\"",
      "ALTER INDEX \"public\".\"events_pkey\" RENAME TO \"events_pkey_fold\"",
      "ALTER INDEX \"public\".\"events_pkey_fpart\" RENAME TO \"events_pkey\"",
      "ALTER INDEX \"public\".\"events_body\" RENAME TO \"events_body_fold\"",
      "ALTER INDEX \"public\".\"events_body_fpart\" RENAME TO \"events_body\"",
      "ALTER SEQUENCE \"public\".\"events_id_seq\" OWNED BY \"public\".\"events\".\"id\""));
}

TEST(PartitionConvertSql, PhaseNamesRoundTrip) {
  for (ConvertPhase p : {ConvertPhase::kShadowCreated, ConvertPhase::kTriggersInstalled,
                         ConvertPhase::kCopying, ConvertPhase::kVerified, ConvertPhase::kSwapped,
                         ConvertPhase::kDone, ConvertPhase::kAborted}) {
    EXPECT_EQ(ConvertPhaseFromName(ConvertPhaseName(p)), p);
  }
  EXPECT_EQ(ConvertPhaseFromName("bogus"), ConvertPhase::kNone);
}

}  // namespace
}  // namespace ferry::partition
