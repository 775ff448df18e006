// Sync cut-over, watch: ferry cutover --watch DURATION keeps running after
// a --reverse cut-over, streams the reverse job (new primary -> old) so
// the old primary stays current, and checks a condition every interval.
// When it holds, it switches back (docs/cutover.md, "Watching and rolling
// back").
//
// In:     CutoverOptions (watch, reverse) and the report of the cut-over
//         that just committed.
// Out:    report.watch. A condition that held: the reverse job cut over
//         (RunCutover of <job>_reverse: lock the new primary's tables,
//         drain, sequences, counts, guard on the new primary, the rollback
//         hook, COMMIT), then the old primary's guard removed and the
//         forward job row set to phase rolled_back with the reason.
// Resume: a failed switch back rolls its lock transaction back: the
//         cut-over stands. A monitor that fails max_failures checks in a
//         row ends the watch with kFailedPrecondition, never with a rollback.
#include <fmt/format.h>

#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/url.h"
#include "drivers/registry.h"
#include "move/sync/sync_internal.h"
#include "observe/plugin.h"

namespace ferry::sync_internal {
namespace {

using Clock = std::chrono::steady_clock;

struct Check {
  bool held = false;
  std::string value;  // the sample (or exit code) seen
};

// "http://host:port/prefix" -> host:port and "/prefix".
Result<std::pair<std::string, std::string>> SplitPrometheusUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  std::string rest = url.starts_with(kScheme) ? url.substr(kScheme.size()) : "";
  size_t slash = rest.find('/');
  std::string host_port = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (prefix.ends_with("/")) prefix.pop_back();
  if (host_port.empty() || host_port.find('@') != std::string::npos) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--prometheus {}: give http://host:port[/prefix]",
                              RedactSecrets(url)));
  }
  return std::make_pair(host_port, prefix);
}

// Like an alert rule: holds when the answer has any sample whose value is
// not 0 (NaN counts as not 0).
Result<Check> ReadPrometheusAnswer(const std::string& body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status(StatusCode::kUnavailable, "Prometheus answered something that is not JSON");
  }
  if (doc.value("status", "") != "success") {
    if (!doc.value("error", nlohmann::json()).is_string()) doc["error"] = "no reason given";
    return Status(StatusCode::kUnavailable,
                  fmt::format("Prometheus refused the query: {}", doc.value("error", "no reason")));
  }
  const nlohmann::json data = doc.value("data", nlohmann::json::object());
  std::string type = data.is_object() ? data.value("resultType", "") : "";
  const nlohmann::json result = data.is_object() ? data.value("result", nlohmann::json()) : nullptr;
  std::vector<nlohmann::json> samples;
  if (type == "vector" && result.is_array()) {
    for (const auto& s : result) {
      if (s.is_object()) samples.push_back(s.value("value", nlohmann::json()));
    }
  } else if (type == "scalar") {
    samples.push_back(result);
  } else {
    return Status(StatusCode::kUnavailable,
                  fmt::format("the query gives a {} result; --rollback-if needs an instant "
                              "vector or a scalar (an alert-rule expression)",
                              type.empty() ? "missing" : type));
  }
  Check c;
  c.value = "empty";
  for (const auto& v : samples) {
    if (!v.is_array() || v.size() != 2 || !v[1].is_string()) continue;
    std::string text = v[1].get<std::string>();
    double x = std::strtod(text.c_str(), nullptr);
    c.value = text;
    if (x != 0 || std::isnan(x)) {
      c.held = true;
      return c;
    }
  }
  return c;
}

// The same, with a body of unexpected shape (a number where a string
// belongs) a failed check rather than an exception.
Result<Check> ParsePrometheusAnswer(const std::string& body) {
  try {
    return ReadPrometheusAnswer(body);
  } catch (const nlohmann::json::exception& e) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("Prometheus answered JSON of an unexpected shape: {}", e.what()));
  }
}

Result<Check> CheckPrometheus(const WatchOptions& w) {
  FERRY_ASSIGN_OR_RETURN(auto where, SplitPrometheusUrl(w.prometheus_url));
  FERRY_ASSIGN_OR_RETURN(const ObservePlugin* plugin, LoadObservePlugin());
  std::string body;
  std::string error =
      plugin->http_get(where.first, where.second + "/api/v1/query", {{"query", w.query}}, &body);
  if (!error.empty()) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("Prometheus {} {}", RedactSecrets(w.prometheus_url), error));
  }
  return ParsePrometheusAnswer(body);
}

// exit 0: holds; exit 1: does not; anything else is a failed check.
Result<Check> CheckCommand(const WatchOptions& w, const std::string& job) {
  auto timeout = std::max(w.interval, std::chrono::milliseconds(std::chrono::seconds(10)));
  FERRY_ASSIGN_OR_RETURN(HookResult r,
                         RunHook(w.check_command, {{"FERRY_CUTOVER_JOB", job}}, timeout));
  if (r.timed_out || (r.exit_code != 0 && r.exit_code != 1)) {
    return Status(StatusCode::kUnavailable,
                  fmt::format("--rollback-if-cmd {} (exit code {}; 0 means roll back, 1 means "
                              "not): {}",
                              r.timed_out ? "timed out" : "failed", r.exit_code,
                              RedactSecrets(r.output)));
  }
  return Check{r.exit_code == 0, "exit " + std::to_string(r.exit_code)};
}

std::string NowUtc() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

class Watch {
 public:
  Watch(const CutoverOptions& o, CutoverReport& r, EventBus* bus)
      : o_(o), w_(o.watch), report_(r), out_(r.watch), bus_(bus) {}

  Status Run() {
    out_.enabled = true;
    database_ = DatabaseLabel(o_.to_url);
    const auto deadline = started_ + w_.duration;
    int failures = 0;
    Step("watch_started", fmt::format("watching for {} ms, a check every {} ms: {}",
                                      w_.duration.count(), w_.interval.count(), Condition()));
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      FERRY_RETURN_IF_ERROR(StreamReverse(std::min(w_.interval, left)));
      auto check = Evaluate();
      ++out_.checks;
      if (!check.ok()) {
        ++failures;
        Step("watch_check_failed", fmt::format("check {} failed ({} in a row): {}", out_.checks,
                                               failures, check.status().message()));
        if (failures >= w_.max_failures) return MonitorDown(check.status());
        continue;
      }
      failures = 0;
      out_.value = check->value;
      Step("watch_check", fmt::format("check {}: {} -> {}", out_.checks, check->value,
                                      check->held ? "holds" : "does not hold"));
      if (check->held) {
        out_.condition_held = true;
        out_.reason = fmt::format("{} gave {} at {}", Condition(), check->value, NowUtc());
        Finish();
        return RollBack();
      }
    }
    Finish();
    Step("watch_done", fmt::format("watched {} ms, condition never held; the cut-over stands",
                                   w_.duration.count()));
    return Status();
  }

 private:
  std::string Condition() const {
    if (!w_.check_command.empty()) return "--rollback-if-cmd " + RedactSecrets(w_.check_command);
    return fmt::format("--rollback-if '{}'", w_.query);
  }

  Result<Check> Evaluate() {
    if (!w_.check_command.empty()) return CheckCommand(w_, report_.job);
    return CheckPrometheus(w_);
  }

  // ferry sync of the reverse job for one interval (its applier passes the
  // old primary's guard: ferry.apply = on).
  Status StreamReverse(std::chrono::milliseconds how_long) {
    SyncOptions s;
    s.from_url = o_.to_url;
    s.to_url = o_.from_url;
    s.job = report_.reverse_job;
    s.resume = true;
    s.stop_after = std::max(how_long, std::chrono::milliseconds(1));
    s.cancel = o_.cancel;
    auto r = RunSync(s, bus_);
    if (!r.ok()) {
      return std::move(r).TakeStatus().Prefix(fmt::format(
          "the watch stopped: streaming reverse job {} failed; the cut-over stands (no rollback)",
          report_.reverse_job));
    }
    if (r->stop_reason == "cancelled") {
      return Status(StatusCode::kCancelled,
                    "the watch was cancelled; the cut-over stands (no rollback)");
    }
    return Status();
  }

  Status MonitorDown(const Status& last) {
    Finish();
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the watch stopped after {} failed checks in a row, without "
                              "rolling back (a monitor that is down is no reason to switch "
                              "back); the cut-over stands. Last failure: {}. Roll back by hand "
                              "if needed: ferry cutover {} --from NEW --to OLD",
                              w_.max_failures, last.message(), report_.reverse_job));
  }

  // The reverse job's cut-over is the switch back; then the old guard goes.
  Status RollBack() {
    Step("rollback_started", "condition held: " + out_.reason);
    CutoverOptions back;
    back.from_url = o_.to_url;
    back.to_url = o_.from_url;
    back.job = report_.reverse_job;
    back.max_lag_bytes = o_.max_lag_bytes;
    back.catch_up_timeout = o_.catch_up_timeout;
    back.lock_timeout = o_.lock_timeout;
    back.max_pause = o_.max_pause;
    back.hook_timeout = o_.hook_timeout;
    back.sequence_margin = o_.sequence_margin;
    back.switch_hook = w_.rollback_hook;
    back.cancel = o_.cancel;
    auto r = RunCutover(back, bus_);
    if (!r.ok()) {
      return std::move(r).TakeStatus().Prefix(fmt::format(
          "the rollback condition held ({}) but switching back failed; the cut-over stands "
          "(writes stay on the new primary)",
          out_.reason));
    }
    out_.rolled_back = true;
    out_.rollback_pause_ms = r->pause_ms;
    auto undone = UndoCutoverGuard(o_.from_url, report_.job);
    if (!undone.ok()) {
      return std::move(undone).TakeStatus().Prefix(fmt::format(
          "rolled back ({}), but the old primary still refuses writes: run ferry cutover {} "
          "--undo-guard --from OLD",
          out_.reason, report_.job));
    }
    FERRY_RETURN_IF_ERROR(RecordRollback());
    Step("rollback_done", fmt::format("writes are back on the old primary; pause {} ms; {}",
                                      out_.rollback_pause_ms, out_.reason));
    return Status();
  }

  // The forward job row (on the new primary): phase rolled_back, and why.
  Status RecordRollback() {
    ConnectOptions co;
    co.application_name = "ferry cutover";
    auto dst = OpenConnection(o_.to_url, co);
    if (!dst.ok()) return std::move(dst).TakeStatus().Prefix("recording the rollback");
    nlohmann::json doc = {{"reason", out_.reason},
                          {"value", out_.value},
                          {"pause_ms", out_.rollback_pause_ms},
                          {"reverse_job", report_.reverse_job}};
    auto done = (*dst)->Query("UPDATE ferry_sync_jobs SET phase = $2, updated_at = now(), cutover ="
                " coalesce(cutover, '{}'::jsonb) || jsonb_build_object('rollback',"
                " $3::jsonb || jsonb_build_object('at', now())) WHERE job = $1",
                {report_.job, std::string(SyncPhaseName(SyncPhase::kRolledBack)), doc.dump()});
    if (!done.ok()) return std::move(done).TakeStatus().Prefix("recording the rollback");
    return Status();
  }

  void Finish() {
    out_.duration_s =
        std::chrono::duration<double>(Clock::now() - started_).count();
  }

  void Step(const std::string& type, std::string message) {
    Event e = SyncEventOf("cutover_" + type, report_.job, database_, SyncProgress{}, 0);
    e.message = std::move(message);
    e.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_)
                        .count();
    Publish(bus_, e);
  }

  const CutoverOptions& o_;
  const WatchOptions& w_;
  CutoverReport& report_;
  WatchReport& out_;
  EventBus* bus_;
  std::string database_;
  Clock::time_point started_ = Clock::now();
};

}  // namespace

Status WatchCutover(const CutoverOptions& options, CutoverReport& report, EventBus* bus) {
  return Watch(options, report, bus).Run();
}

}  // namespace ferry::sync_internal
