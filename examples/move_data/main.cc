// Copies tables from one database to another and proves them equal, through
// ferry's public API only (include/ferry/copy.h, verify.h), as an
// application's own data-move job would.
//
//   move_data FROM_URL TO_URL TABLE [TABLE...]
//
// Creates missing target tables. Exit 0 copied and identical, 1 copied but
// different, 2 on an error.
#include <ferry/copy.h>
#include <ferry/verify.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s FROM_URL TO_URL TABLE [TABLE...]\n", argv[0]);
    return 2;
  }
  ferry::CopyRequest copy;
  copy.from_url = argv[1];
  copy.to_url = argv[2];
  for (int i = 3; i < argc; ++i) copy.tables.push_back(argv[i]);
  copy.create_tables = true;
  ferry::Result<ferry::CopyOutcome> copied = ferry::CopyTables(copy);
  if (!copied.ok()) {
    std::fprintf(stderr, "copy failed: %s\n", copied.status().ToString().c_str());
    return 2;
  }
  std::printf("copied %lld rows in %lld chunks (job %s%s)\n",
              static_cast<long long>(copied->rows_copied),
              static_cast<long long>(copied->chunks_done), copied->job_id.c_str(),
              copied->already_done ? ", already done" : "");

  ferry::VerifyRequest verify;
  verify.from_url = copy.from_url;
  verify.to_url = copy.to_url;
  verify.tables = copy.tables;
  ferry::Result<ferry::VerifyOutcome> compared = ferry::CompareTables(verify);
  if (!compared.ok()) {
    std::fprintf(stderr, "verify failed: %s\n", compared.status().ToString().c_str());
    return 2;
  }
  for (const ferry::TableComparison& t : compared->tables) {
    std::printf("%s: %lld rows, %lld missing, %lld extra, %lld changed\n", t.table.c_str(),
                static_cast<long long>(t.source_rows), static_cast<long long>(t.missing),
                static_cast<long long>(t.extra), static_cast<long long>(t.changed));
    for (const std::string& row : t.listed) std::printf("  %s\n", row.c_str());
  }
  std::printf("%s\n", compared->identical() ? "identical" : "DIFFERENT");
  return compared->identical() ? 0 : 1;
}
