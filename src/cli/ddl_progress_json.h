// A long statement's progress (observe/ddl_progress_event.h) as the
// "progress" object of --json "statement_progress" lines.
#pragma once

#include <nlohmann/json.hpp>

#include "observe/ddl_progress_event.h"

namespace ferry::cli {

inline nlohmann::json DdlProgressJson(const DdlProgress& p) {
  nlohmann::json j = {{"view", p.view},
                      {"command", p.command},
                      {"phase", p.phase},
                      {"relation", p.relation},
                      {"blocks_done", p.blocks_done},
                      {"blocks_total", p.blocks_total},
                      {"tuples_done", p.tuples_done},
                      {"tuples_total", p.tuples_total},
                      {"lockers_done", p.lockers_done},
                      {"lockers_total", p.lockers_total},
                      {"partitions_done", p.partitions_done},
                      {"partitions_total", p.partitions_total},
                      {"elapsed_ms", p.elapsed_ms}};
  const double ratio = DdlProgressRatio(p);
  j["ratio"] = ratio < 0 ? nlohmann::json(nullptr) : nlohmann::json(ratio);
  return j;
}

}  // namespace ferry::cli
