#include "cli/run_metrics.h"

#include <fmt/format.h>

#include <cstdio>

#include "core/url.h"
#include "observe/event.h"
#include "observe/metrics.h"

namespace ferry::cli {

RunMetrics::RunMetrics() = default;
RunMetrics::~RunMetrics() = default;

Status RunMetrics::Start(const std::string& file, const std::string& pushgateway, EventBus& bus) {
  if (file.empty() && pushgateway.empty()) return Status();
  if (!file.empty()) FERRY_RETURN_IF_ERROR(CheckMetricsFilePath(file));
  file_ = file;
  pushgateway_ = pushgateway;
  FERRY_ASSIGN_OR_RETURN(metrics_, Metrics::Create());
  metrics_->Attach(bus);
  return Status();
}

int RunMetrics::Finish(const std::string& command, int code) {
  if (!metrics_) return code;
  const std::string text = metrics_->Text();
  if (!file_.empty()) {
    Status s = WriteMetricsFile(file_, text);
    if (!s.ok()) {
      std::fprintf(stderr, "ferry: warning: metrics not written: %s\n",
                   RedactSecrets(s.ToString()).c_str());
    }
  }
  if (!pushgateway_.empty()) {
    Status s = PushMetrics(pushgateway_, command, text);
    if (!s.ok()) {
      std::fprintf(stderr, "ferry: warning: metrics not pushed: %s\n",
                   RedactSecrets(s.ToString()).c_str());
    }
  }
  return code;
}

}  // namespace ferry::cli
