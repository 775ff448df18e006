#include "migrate/in_doubt.h"

#include <fmt/format.h>

namespace ferry {

bool AppliedByInterruptedRun(const Status& error) {
  return error.code() == StatusCode::kAlreadyExists;
}

std::string InDoubtMessage(const Status& error, int statement, int line) {
  return fmt::format("statement {} (line {}) had been applied by the interrupted run (server: {}); "
                     "counted as done",
                     statement, line, error.message());
}

}  // namespace ferry
