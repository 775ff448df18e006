#include "move/block_pipe.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

namespace ferry {
namespace {

// A row of `n` bytes whose content says which row it is.
std::string Row(int i, size_t n) {
  std::string row = std::to_string(i) + ":";
  row.resize(n, static_cast<char>('a' + i % 26));
  return row;
}

TEST(BlockPipeTest, PassesEveryByteInOrderWithBoundedBlocks) {
  BlockPipe pipe(4, 1000);
  std::string sent;
  std::thread producer([&] {
    for (int i = 0; i < 20000; ++i) {
      std::string row = Row(i, 10 + static_cast<size_t>(i % 300));
      sent += row;
      ASSERT_TRUE(pipe.Append(row));
    }
    pipe.Close(Status());
  });
  std::string received;
  size_t blocks = 0;
  while (std::string* block = pipe.Receive()) {
    EXPECT_LE(block->size(), 1000u);  // no row here is larger than a block
    received += *block;
    ++blocks;
    pipe.Recycle(block);
  }
  producer.join();
  EXPECT_TRUE(pipe.producer_status().ok());
  EXPECT_EQ(received, sent);
  EXPECT_GT(blocks, 3000u);          // many blocks passed...
  EXPECT_LE(pipe.allocated(), 4u);   // ...through at most four
}

TEST(BlockPipeTest, RowLargerThanABlockTravelsWhole) {
  BlockPipe pipe(2, 100);
  std::thread producer([&] {
    ASSERT_TRUE(pipe.Append("small"));
    ASSERT_TRUE(pipe.Append(std::string(5000, 'x')));
    ASSERT_TRUE(pipe.Append("tail"));
    pipe.Close(Status());
  });
  std::vector<std::string> got;
  while (std::string* block = pipe.Receive()) {
    got.push_back(*block);
    pipe.Recycle(block);
  }
  producer.join();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "small");
  EXPECT_EQ(got[1], std::string(5000, 'x'));
  EXPECT_EQ(got[2], "tail");
}

TEST(BlockPipeTest, DirectBufferAndSendIfFull) {
  BlockPipe pipe(3, 64);
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) {
      std::string* out = pipe.buffer();
      ASSERT_NE(out, nullptr);
      *out += Row(i, 20);
      ASSERT_TRUE(pipe.SendIfFull());
    }
    pipe.Close(Status());
  });
  std::string received;
  while (std::string* block = pipe.Receive()) {
    received += *block;
    pipe.Recycle(block);
  }
  producer.join();
  std::string expected;
  for (int i = 0; i < 100; ++i) expected += Row(i, 20);
  EXPECT_EQ(received, expected);
}

TEST(BlockPipeTest, ProducerErrorReachesTheConsumerAndDropsUnreadBlocks) {
  BlockPipe pipe(4, 100);
  // Ten rows of 30 bytes: three full blocks sent, a fourth being filled, so
  // the producer never waits for the consumer.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(pipe.Append(Row(i, 30)));
  pipe.Close(Status(StatusCode::kUnavailable, "source lost"));
  EXPECT_EQ(pipe.Receive(), nullptr);  // a broken stream is not written on
  Status s = pipe.producer_status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "source lost");
}

TEST(BlockPipeTest, StopWakesAWaitingProducer) {
  BlockPipe pipe(2, 10);
  std::atomic<bool> refused{false};
  std::thread producer([&] {
    // The consumer takes nothing: the producer fills both blocks and waits
    // for a free one until Stop() releases it.
    for (int i = 0; i < 1000; ++i) {
      if (!pipe.Append(Row(i, 10))) {
        refused = true;
        break;
      }
    }
    pipe.Close(Status());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  pipe.Stop();
  producer.join();
  EXPECT_TRUE(refused);
  EXPECT_EQ(pipe.Receive(), nullptr);
  EXPECT_LE(pipe.allocated(), 2u);
}

TEST(BlockPipeTest, ResetMakesItReusable) {
  BlockPipe pipe(2, 10);
  ASSERT_TRUE(pipe.Append("abc"));
  pipe.Stop();
  EXPECT_FALSE(pipe.Append(std::string(20, 'z')));
  pipe.Reset();
  std::thread producer([&] {
    ASSERT_TRUE(pipe.Append("again"));
    pipe.Close(Status());
  });
  std::string* block = pipe.Receive();
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(*block, "again");
  pipe.Recycle(block);
  EXPECT_EQ(pipe.Receive(), nullptr);
  producer.join();
  EXPECT_TRUE(pipe.producer_status().ok());
}

}  // namespace
}  // namespace ferry
