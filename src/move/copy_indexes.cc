// Deferred key builds after a copy's data; see copy_indexes.h.
#include "move/copy_indexes.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "drivers/registry.h"

namespace ferry {
namespace {

Status BuildOne(Connection& c, const DeferredDdl& d, int64_t lock_timeout_ms) {
  FERRY_RETURN_IF_ERROR(
      c.Query("SELECT set_config('lock_timeout', $1, false), "
              "set_config('maintenance_work_mem', '256MB', false)",
              {fmt::format("{}ms", lock_timeout_ms)})
          .status());
  for (const std::string& sql : d.statements) {
    Status s = c.Exec(sql).status();
    const std::string state = s.Get("sqlstate");
    if (s.ok() || state == "42P16" || state == "42P07") continue;  // built by an earlier run
    return std::move(s)
        .Prefix(fmt::format("building the keys of target table {} after the data", d.table))
        .With("table", d.table);
  }
  return Status();
}

}  // namespace

Status BuildDeferred(const std::string& target_url, const std::vector<DeferredDdl>& todo,
                     int workers, int64_t lock_timeout_ms) {
  if (todo.empty()) return Status();
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first;
  auto work = [&] {
    ConnectOptions co;
    co.application_name = "ferry copy keys";
    auto conn = OpenConnection(target_url, co);
    if (!conn.ok()) {
      std::lock_guard lock(mu);
      if (first.ok()) first = std::move(conn).TakeStatus().Prefix("target");
      return;
    }
    for (size_t i = next++; i < todo.size(); i = next++) {
      Status s = BuildOne(**conn, todo[i], lock_timeout_ms);
      if (!s.ok()) {
        std::lock_guard lock(mu);
        if (first.ok()) first = std::move(s);
        return;
      }
    }
  };
  const int n = std::max(1, std::min<int>(workers, static_cast<int>(todo.size())));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  return first;
}

}  // namespace ferry
