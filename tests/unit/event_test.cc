#include "observe/event.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ferry {
namespace {

TEST(EventBus, DeliversToEveryConsumerInOrderUntilUnsubscribed) {
  EventBus bus;
  std::vector<std::string> seen;
  int a = bus.Subscribe([&](const Event& e) { seen.push_back("a:" + e.type); });
  bus.Subscribe([&](const Event& e) { seen.push_back("b:" + e.type); });
  bus.Publish(StepEvent(EventKind::kExpand, "expand_phase", "x"));
  bus.Unsubscribe(a);
  bus.Publish(StepEvent(EventKind::kExpand, "expand_completed", "y"));
  EXPECT_EQ(seen,
            (std::vector<std::string>{"a:expand_phase", "b:expand_phase", "b:expand_completed"}));
}

TEST(EventBus, SerializesPublishersSoConsumersNeedNoLock) {
  EventBus bus;
  int64_t count = 0;  // unguarded on purpose: the bus serializes calls
  std::atomic<int> inside{0};
  bool overlapped = false;
  bus.Subscribe([&](const Event&) {
    if (inside.fetch_add(1) != 0) overlapped = true;
    ++count;
    inside.fetch_sub(1);
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) bus.Publish(StepEvent(EventKind::kCopy, "chunk_done", ""));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(count, 8000);
  EXPECT_FALSE(overlapped);
}

TEST(Event, BuildersFillTheHeaderFromTheDetail) {
  MigrationStep step{"3", "V3__x.sql", "x"};
  step.rows_affected = 7;
  Event done = MigrationEventOf("migration_done", step, 12);
  EXPECT_EQ(done.kind, EventKind::kMigration);
  EXPECT_EQ(done.status, EventStatus::kSucceeded);
  EXPECT_EQ(done.job, "3");
  EXPECT_EQ(done.rows, 7);
  EXPECT_EQ(done.duration_ms, 12);
  EXPECT_EQ(MigrationEventOf("migration_failed", step).status, EventStatus::kFailed);
  EXPECT_EQ(MigrationEventOf("undo_done", step).operation, "undo");
  EXPECT_EQ(MigrationEventOf("lint_finding", step).kind, EventKind::kLint);

  CopyProgress chunk;
  chunk.rows = 100;
  Event copied = CopyEventOf("chunk_done", "copy:t", chunk);
  EXPECT_EQ(copied.kind, EventKind::kCopy);
  EXPECT_EQ(copied.operation, "copy_chunk");
  EXPECT_EQ(copied.status, EventStatus::kSucceeded);
  EXPECT_EQ(CopyEventOf("chunk_retry", "j", chunk).status, EventStatus::kRetrying);

  BackfillProgress batch;
  batch.kind = BackfillProgress::Kind::kBatch;
  batch.batch_rows = 50;
  batch.batch_ms = 4;
  Event b = BackfillEventOf("backfill:t", "t", batch);
  EXPECT_EQ(b.type, "batch");
  EXPECT_EQ(b.rows, 50);
  EXPECT_EQ(b.duration_ms, 4);
  EXPECT_EQ(b.operation, "backfill_batch");
}

TEST(Event, DatabaseLabelNeverCarriesUserOrPassword) {
  EXPECT_EQ(DatabaseLabel("postgres://alice:s3cret@db.example:5433/app"), "db.example:5433/app");
  EXPECT_EQ(DatabaseLabel("host=h dbname=d user=u password=s3cret"), "h/d");
  EXPECT_EQ(DatabaseLabel("sqlite:/var/lib/app/data.db"), "data.db");
  EXPECT_EQ(DatabaseLabel("::not a url::"), "unknown");
}

TEST(Event, ErrorTypePrefersSqlstate) {
  EXPECT_EQ(ErrorTypeOf(Status(StatusCode::kAborted, "x").With("sqlstate", "40001")), "40001");
  EXPECT_EQ(ErrorTypeOf(Status(StatusCode::kUnavailable, "x")), "UNAVAILABLE");
}

}  // namespace
}  // namespace ferry
