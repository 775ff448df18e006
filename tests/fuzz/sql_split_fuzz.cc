// Fuzzes the SQL splitters (migrate/sql_split.h): any text, no crash, and
// each statement's line lies within the text.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "migrate/sql_split.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view sql(reinterpret_cast<const char*>(data), size);
  int lines = 1 + static_cast<int>(std::count(sql.begin(), sql.end(), '\n'));
  auto check = [lines, &sql](const std::vector<ferry::Statement>& statements) {
    for (const auto& s : statements) {
      if (s.offset > sql.size() || s.text.size() > sql.size() - s.offset) {
        std::fprintf(stderr, "sql_split_fuzz: statement past the end of the text\n");
        std::abort();
      }
      if (s.line < 1 || s.line > lines) {
        std::fprintf(stderr, "sql_split_fuzz: statement line %d outside 1..%d\n", s.line, lines);
        std::abort();
      }
    }
  };
  auto pg = ferry::SplitPostgres(sql);
  if (pg.ok()) check(*pg);
  check(ferry::SplitSqlite(sql));
  (void)ferry::CheckForPsqlMetaCommands(sql);
  (void)ferry::HasSqlTokens(sql);
  size_t pos = ferry::SkipSqlSpaceAndComments(sql);
  if (pos > sql.size()) std::abort();
  return 0;
}
