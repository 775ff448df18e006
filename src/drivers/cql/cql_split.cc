#include "drivers/cql/cql_split.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace ferry::cql {
namespace {

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Skips a string, identifier or comment starting at `i`; returns the index
// after it, or npos when unterminated. Returns `i` when none starts there.
size_t SkipQuoted(std::string_view s, size_t i) {
  char c = s[i];
  char next = i + 1 < s.size() ? s[i + 1] : '\0';
  if (c == '\'' || c == '"') {
    for (size_t j = i + 1; j < s.size(); ++j) {
      if (s[j] == c) {
        if (j + 1 < s.size() && s[j + 1] == c) {
          ++j;
          continue;
        }
        return j + 1;
      }
    }
    return std::string_view::npos;
  }
  if (c == '$' && next == '$') {
    size_t end = s.find("$$", i + 2);
    return end == std::string_view::npos ? end : end + 2;
  }
  if ((c == '-' && next == '-') || (c == '/' && next == '/')) {
    size_t end = s.find('\n', i);
    return end == std::string_view::npos ? s.size() : end + 1;
  }
  if (c == '/' && next == '*') {
    size_t end = s.find("*/", i + 2);
    return end == std::string_view::npos ? end : end + 2;
  }
  return i;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

int LineAt(std::string_view s, size_t pos, int first_line, int* column) {
  int line = first_line;
  size_t line_start = 0;
  for (size_t i = 0; i < pos && i < s.size(); ++i) {
    if (s[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  *column = static_cast<int>(pos - line_start) + 1;
  return line;
}

// Offset of the first token at or after `pos` (skipping space and comments).
size_t FirstToken(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    if (std::isspace(static_cast<unsigned char>(s[pos]))) {
      ++pos;
      continue;
    }
    char next = pos + 1 < s.size() ? s[pos + 1] : '\0';
    bool comment = (s[pos] == '-' && next == '-') || (s[pos] == '/' && (next == '/' || next == '*'));
    if (!comment) break;
    size_t end = SkipQuoted(s, pos);
    if (end == std::string_view::npos) return s.size();
    pos = end;
  }
  return pos;
}

}  // namespace

std::string LeadingKeywords(std::string_view statement, int max_words) {
  std::string out;
  size_t i = FirstToken(statement, 0);
  for (int w = 0; w < max_words && i < statement.size(); ++w) {
    size_t start = i;
    while (i < statement.size() && IsWordChar(statement[i])) ++i;
    if (i == start) break;
    if (!out.empty()) out += ' ';
    out += Upper(statement.substr(start, i - start));
    while (i < statement.size() && std::isspace(static_cast<unsigned char>(statement[i]))) ++i;
  }
  return out;
}

bool IsSchemaChange(std::string_view statement) {
  std::string head = LeadingKeywords(statement, 3);
  std::string verb = head.substr(0, head.find(' '));
  if (verb != "CREATE" && verb != "ALTER" && verb != "DROP") return false;
  for (std::string_view object : {"KEYSPACE", "SCHEMA", "TABLE", "COLUMNFAMILY", "TYPE", "INDEX",
                                  "MATERIALIZED", "FUNCTION", "AGGREGATE", "TRIGGER", "CUSTOM",
                                  "OR"}) {
    if (head.find(std::string(" ") + std::string(object)) != std::string::npos) return true;
  }
  return false;
}

Result<std::vector<CqlStatement>> SplitCql(std::string_view s, int first_line) {
  std::vector<CqlStatement> out;
  size_t start = FirstToken(s, 0);
  size_t i = start;
  bool in_batch = false;
  bool batch_applied = false;
  auto emit = [&](size_t end) {
    std::string_view text = s.substr(start, end - start);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    if (!text.empty()) {
      CqlStatement st;
      st.text = std::string(text);
      st.offset = start;
      st.line = LineAt(s, start, first_line, &st.column);
      out.push_back(std::move(st));
    }
  };
  while (i < s.size()) {
    size_t skipped = SkipQuoted(s, i);
    if (skipped == std::string_view::npos) {
      int column = 1;
      int line = LineAt(s, i, first_line, &column);
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("unterminated string, identifier or comment starting at line {}, "
                                "column {}",
                                line, column))
          .With("line", std::to_string(line))
          .With("column", std::to_string(column));
    }
    if (skipped != i) {
      i = skipped;
      continue;
    }
    if (IsWordChar(s[i]) && (i == 0 || !IsWordChar(s[i - 1]))) {
      size_t end = i;
      while (end < s.size() && IsWordChar(s[end])) ++end;
      std::string word = Upper(s.substr(i, end - i));
      if (word == "BATCH" && !in_batch && !batch_applied && LeadingKeywords(s.substr(start, i - start), 1) == "BEGIN") {
        in_batch = true;
      } else if (word == "APPLY" && in_batch) {
        in_batch = false;
        batch_applied = true;
      }
      i = end;
      continue;
    }
    if (s[i] == ';' && !in_batch) {
      emit(i);
      batch_applied = false;
      start = FirstToken(s, i + 1);
      i = start;
      continue;
    }
    ++i;
  }
  if (start < s.size()) emit(s.size());
  return out;
}

}  // namespace ferry::cql
