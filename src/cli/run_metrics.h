// --metrics-file and --pushgateway: the metrics of one `ferry` run.
#pragma once

#include <memory>
#include <string>

#include "ferry/status.h"

namespace ferry {
class EventBus;
class Metrics;
}  // namespace ferry

namespace ferry::cli {

class RunMetrics {
 public:
  RunMetrics();
  ~RunMetrics();

  // Checks the flags before any work (a metrics file whose folder is
  // missing is kNotFound) and, when either is given, subscribes a Metrics
  // consumer to `bus`.
  Status Start(const std::string& file, const std::string& pushgateway, EventBus& bus);
  // After the command: writes the file and pushes to the gateway. A failure
  // of either is a warning on stderr; the command's exit `code` is returned
  // unchanged (the work it reports on is done).
  int Finish(const std::string& command, int code);

 private:
  std::string file_, pushgateway_;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace ferry::cli
