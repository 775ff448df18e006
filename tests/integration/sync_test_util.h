// Helpers shared by the sync, cut-over and rollback tests (real
// PostgreSQL): run output for messages, one-value queries, and removing
// the logical slots that would keep a test database from being dropped.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "drivers/registry.h"
#include "test_util.h"

namespace ferry::testing {

inline std::string Show(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "--- stderr:\n" + r.err;
}

inline std::unique_ptr<Connection> Connect(const std::string& url) {
  auto c = OpenConnection(url);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

// The one value of `sql`: "<none>" without a row, "<null>" for NULL.
inline std::string One(Connection& c, const std::string& sql) {
  auto r = c.Query(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  if (!r.ok() || r->empty()) return "<none>";
  return r->IsNull(0, 0) ? "<null>" : r->Text(0, 0);
}

inline void Sql(Connection& c, const std::string& sql) {
  auto r = c.Exec(sql);
  ASSERT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
}

// Ends the readers of every replication slot in `databases` and drops the
// slots (a killed child's walsender may hold one for a moment).
inline void DropSlotsIn(const std::vector<std::string>& databases) {
  auto admin = Connect(PgAdminUrl());
  if (!admin) return;
  for (const std::string& db : databases) {
    for (int i = 0; i < 50; ++i) {
      auto r = admin->Query(
          "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
          "WHERE database = $1 AND active_pid IS NOT NULL",
          {db});
      auto d = admin->Query(
          "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots "
          "WHERE database = $1 AND NOT active",
          {db});
      auto left =
          admin->Query("SELECT count(*) FROM pg_replication_slots WHERE database = $1", {db});
      if (r.ok() && d.ok() && left.ok() && left->Text(0, 0) == "0") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace ferry::testing
