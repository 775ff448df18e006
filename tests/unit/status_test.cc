#include "ferry/status.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Status(StatusCode::kInvalidArgument, "odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  FERRY_ASSIGN_OR_RETURN(int h, Half(x));
  FERRY_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, ContextIsRenderedAndEmptyValuesDropped) {
  Status s = Status(StatusCode::kUnavailable, "connection refused")
                 .With("sqlstate", "08006")
                 .With("hint", "");
  EXPECT_EQ(s.ToString(), "UNAVAILABLE: connection refused [sqlstate=08006]");
  EXPECT_EQ(s.Get("sqlstate"), "08006");
  EXPECT_EQ(s.Get("hint"), "");
}

TEST(StatusTest, DropRemovesOnlyThatKey) {
  Status s = Status(StatusCode::kInvalidArgument, "bad")
                 .With("batch_index", "7")
                 .With("sqlstate", "42601")
                 .With("line", "3");
  s.Drop("batch_index").Drop("no_such_key");
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT: bad [sqlstate=42601, line=3]");
  EXPECT_EQ(s.Get("batch_index"), "");
}

TEST(StatusTest, PrefixKeepsCodeAndContext) {
  Status s = Status(StatusCode::kAborted, "deadlock").With("sqlstate", "40P01").Prefix("3_x.sql");
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_EQ(s.message(), "3_x.sql: deadlock");
  EXPECT_EQ(s.Get("sqlstate"), "40P01");
}

TEST(StatusTest, RetryableCodes) {
  EXPECT_TRUE(IsRetryable(StatusCode::kUnavailable));
  EXPECT_TRUE(IsRetryable(StatusCode::kAborted));
  EXPECT_FALSE(IsRetryable(StatusCode::kInvalidArgument));
  EXPECT_FALSE(IsRetryable(StatusCode::kFailedPrecondition));
}

TEST(ResultTest, PropagatesFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(ResultTest, OkStatusBecomesInternalError) {
  Result<int> r = Status();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace ferry
