// The text and throttle of long statements' progress (observe/ddl_progress.h)
// and its event (observe/event.h), from fake snapshots.
#include "observe/ddl_progress.h"

#include <gtest/gtest.h>

#include <chrono>

namespace ferry {
namespace {

using std::chrono::milliseconds;

DdlProgress Scanning(int64_t done, int64_t total) {
  DdlProgress p;
  p.view = "create_index";
  p.command = "CREATE INDEX CONCURRENTLY";
  p.phase = "building index: scanning table";
  p.relation = "public.big";
  p.blocks_done = done;
  p.blocks_total = total;
  return p;
}

TEST(DdlProgressTextTest, BlocksWithPercentAndGroupedDigits) {
  EXPECT_EQ(DdlProgressText(Scanning(12345, 27000)),
            "CREATE INDEX CONCURRENTLY: building index: scanning table 45% (12,345/27,000 blocks)");
}

TEST(DdlProgressTextTest, TuplesWhenThePhaseCountsTuples) {
  DdlProgress p = Scanning(0, 0);
  p.phase = "building index: loading tuples in tree";
  p.tuples_done = 500;
  p.tuples_total = 1000;
  EXPECT_EQ(DdlProgressText(p),
            "CREATE INDEX CONCURRENTLY: building index: loading tuples in tree 50% "
            "(500/1,000 tuples)");
  EXPECT_DOUBLE_EQ(DdlProgressRatio(p), 0.5);
}

TEST(DdlProgressTextTest, PhaseWithoutCounterAndPartitions) {
  DdlProgress p = Scanning(0, 0);
  p.command = "CREATE INDEX";
  p.phase = "waiting for writers before build";
  p.partitions_done = 3;
  p.partitions_total = 12;
  EXPECT_EQ(DdlProgressText(p), "CREATE INDEX: waiting for writers before build, partition 3/12");
  EXPECT_DOUBLE_EQ(DdlProgressRatio(p), -1.0);
}

TEST(DdlProgressTextTest, LockersAndVacuum) {
  DdlProgress p = Scanning(0, 0);
  p.phase = "waiting for old snapshots";
  p.lockers_done = 1;
  p.lockers_total = 4;
  EXPECT_EQ(DdlProgressText(p),
            "CREATE INDEX CONCURRENTLY: waiting for old snapshots 25% (1/4 lockers)");
  DdlProgress v;
  v.view = "vacuum";
  v.command = "VACUUM";
  v.phase = "scanning heap";
  v.blocks_done = 1000000;
  v.blocks_total = 1000000;
  EXPECT_EQ(DdlProgressText(v), "VACUUM: scanning heap 100% (1,000,000/1,000,000 blocks)");
}

TEST(DdlProgressThrottleTest, FirstLineAtOnceThenOnePerInterval) {
  DdlProgressThrottle throttle(milliseconds(2000));
  const auto t0 = DdlProgressThrottle::Clock::time_point{} + std::chrono::hours(1);
  EXPECT_TRUE(throttle.Due(Scanning(1, 100), t0));
  EXPECT_FALSE(throttle.Due(Scanning(1, 100), t0 + milliseconds(5000)));  // no change
  EXPECT_FALSE(throttle.Due(Scanning(10, 100), t0 + milliseconds(500)));  // too soon
  EXPECT_FALSE(throttle.Due(Scanning(20, 100), t0 + milliseconds(1999)));
  EXPECT_TRUE(throttle.Due(Scanning(30, 100), t0 + milliseconds(2000)));
  EXPECT_FALSE(throttle.Due(Scanning(40, 100), t0 + milliseconds(3000)));
}

TEST(DdlProgressThrottleTest, NewPhaseIsPrintedAtOnce) {
  DdlProgressThrottle throttle(milliseconds(2000));
  const auto t0 = DdlProgressThrottle::Clock::time_point{} + std::chrono::hours(1);
  EXPECT_TRUE(throttle.Due(Scanning(1, 100), t0));
  DdlProgress sorting = Scanning(0, 0);
  sorting.phase = "building index: sorting live tuples";
  EXPECT_TRUE(throttle.Due(sorting, t0 + milliseconds(10)));
  EXPECT_FALSE(throttle.Due(sorting, t0 + milliseconds(20)));
}

TEST(DdlProgressEventTest, EventCarriesTheBaseAndTheProgress) {
  MigrationStep step{"20260101", "migrations/20260101_idx.sql", "idx"};
  step.statement = 1;
  step.statements = 1;
  Event base = MigrationEventOf("statement_progress", step);
  base.database = "localhost:5432/app";
  DdlProgress p = Scanning(5, 10);
  p.relation = "odd|name%7C";  // separators in a value survive
  p.partitions_done = 2;
  p.partitions_total = 3;
  p.elapsed_ms = 1500;
  Event e = DdlProgressEventOf(base, p, DdlProgressText(p));
  EXPECT_EQ(e.kind, EventKind::kMigration);
  EXPECT_EQ(e.type, "statement_progress");
  EXPECT_EQ(e.status, EventStatus::kInfo);
  EXPECT_EQ(e.job, "20260101");
  EXPECT_EQ(e.database, "localhost:5432/app");
  EXPECT_EQ(e.duration_ms, 1500);
  ASSERT_TRUE(e.migration.has_value());
  EXPECT_EQ(e.migration->script, "migrations/20260101_idx.sql");
  EXPECT_EQ(e.migration->message,
            "CREATE INDEX CONCURRENTLY: building index: scanning table 50% (5/10 blocks), "
            "partition 2/3");
  std::optional<DdlProgress> back = DdlProgressOf(e);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->SameAs(p));
  EXPECT_EQ(back->relation, "odd|name%7C");
  EXPECT_EQ(back->elapsed_ms, 1500);
  EXPECT_FALSE(DdlProgressOf(MigrationEventOf("migration_done", step)).has_value());
}

TEST(DdlProgressTest, OnlyStatementsWithAProgressViewAreWatched) {
  EXPECT_TRUE(MayReportProgress("CREATE INDEX CONCURRENTLY i ON t (a)"));
  EXPECT_TRUE(MayReportProgress("  -- why\n/* c */ create unique index i on t (a)"));
  EXPECT_TRUE(MayReportProgress("REINDEX TABLE t"));
  EXPECT_TRUE(MayReportProgress("vacuum full t"));
  EXPECT_TRUE(MayReportProgress("CLUSTER t USING i"));
  EXPECT_TRUE(MayReportProgress("ANALYZE t"));
  EXPECT_TRUE(MayReportProgress("COPY t FROM STDIN"));
  EXPECT_TRUE(MayReportProgress("ALTER TABLE t ADD PRIMARY KEY (id)"));
  EXPECT_TRUE(MayReportProgress("alter table t add constraint u unique (a)"));
  EXPECT_FALSE(MayReportProgress("CREATE TABLE t (id int PRIMARY KEY)"));
  EXPECT_FALSE(MayReportProgress("ALTER TABLE t ADD COLUMN b int"));
  EXPECT_FALSE(MayReportProgress("INSERT INTO t VALUES (1)"));
  EXPECT_FALSE(MayReportProgress("-- CREATE INDEX i ON t (a)\nSELECT 1"));
  EXPECT_FALSE(MayReportProgress(""));
}

}  // namespace
}  // namespace ferry
