#include "drivers/postgres/pg_session.h"

#include <fmt/format.h>

#include <cctype>

namespace ferry::postgres {
namespace {

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$';
}

// `text` at `at` starts the keyword `word` (any case) as a whole word.
bool KeywordAt(std::string_view text, size_t at, std::string_view word) {
  if (at + word.size() > text.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(text[at + i])) != word[i]) return false;
  }
  return (at == 0 || !IsWordChar(text[at - 1])) &&
         (at + word.size() == text.size() || !IsWordChar(text[at + word.size()]));
}

// Skips blanks and comments from `at`.
size_t SkipBlanks(std::string_view text, size_t at) {
  while (at < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[at]))) {
      ++at;
    } else if (text.substr(at, 2) == "--") {
      at = text.find('\n', at);
      if (at == std::string_view::npos) return text.size();
    } else if (text.substr(at, 2) == "/*") {
      size_t end = text.find("*/", at + 2);
      return end == std::string_view::npos ? text.size() : SkipBlanks(text, end + 2);
    } else {
      break;
    }
  }
  return at;
}

// A COPY statement whose source is STDIN: "COPY" first, then "FROM" and
// "STDIN" as consecutive words somewhere after it.
bool IsCopyFromStdin(std::string_view sql) {
  size_t at = SkipBlanks(sql, 0);
  if (!KeywordAt(sql, at, "COPY")) return false;
  for (at += 4; at < sql.size(); ++at) {
    if (KeywordAt(sql, at, "FROM") && KeywordAt(sql, SkipBlanks(sql, at + 4), "STDIN")) {
      return true;
    }
  }
  return false;
}

}  // namespace

Status PgSession::RefuseCopyFromStdin(const std::vector<BatchItem>& items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (IsCopyFromStdin(items[i].sql)) {
      return Status(StatusCode::kInvalidArgument,
                    "COPY FROM STDIN cannot run through ExecBatch; use CopyIn")
          .With("batch_index", std::to_string(i))
          .With("statement", Excerpt(items[i].sql));
    }
  }
  return Status();
}

Status PgSession::Begin() {
  if (InTransaction()) {
    return Status(StatusCode::kFailedPrecondition,
                  "Begin() inside a transaction: PostgreSQL does not nest transactions");
  }
  std::string tag;
  return RunControl("BEGIN", &tag);
}

Status PgSession::Commit() {
  if (!InTransaction()) {
    FERRY_RETURN_IF_ERROR(CheckReady("COMMIT"));
    return Status(StatusCode::kFailedPrecondition, "Commit() without a transaction in progress");
  }
  std::string tag;
  FERRY_RETURN_IF_ERROR(RunControl("COMMIT", &tag));
  if (tag == "ROLLBACK") {
    return Status(StatusCode::kAborted,
                  "the transaction was rolled back at COMMIT because a statement in it failed")
        .With("statement", "COMMIT");
  }
  return Status();
}

Status PgSession::Rollback() {
  if (!InTransaction()) return CheckReady("ROLLBACK");
  std::string tag;
  return RunControl("ROLLBACK", &tag);
}

Result<bool> PgSession::TryLock(int64_t key) {
  FERRY_ASSIGN_OR_RETURN(QueryResult result,
                         Query("SELECT pg_try_advisory_lock($1::bigint)", {std::to_string(key)}));
  return !result.empty() && result.Text(0, 0) == "t";
}

Status PgSession::Unlock(int64_t key) {
  FERRY_ASSIGN_OR_RETURN(QueryResult result,
                         Query("SELECT pg_advisory_unlock($1::bigint)", {std::to_string(key)}));
  if (result.empty() || result.Text(0, 0) != "t") {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("advisory lock {} is not held by this session", key));
  }
  return Status();
}

}  // namespace ferry::postgres
