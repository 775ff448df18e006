// `ferry status` through the memo (status_memo.h): probe, hit or compute
// in one snapshot, render, store.
#include <utility>

#include "migrate/history.h"
#include "migrate/migrator.h"
#include "migrate/status_memo.h"

namespace ferry {
namespace {

// The probe, when the history exists in a format this ferry reads.
std::optional<History::Probe> UsableProbe(Migrator& m, const std::vector<std::string>& extra) {
  auto p = m.ProbeHistory(extra);
  if (p.ok() && p->exists && p->format_version >= 1 &&
      p->format_version <= kHistoryFormatVersion) {
    return *p;
  }
  return std::nullopt;
}

// The payload: '0' or '1' (attention), '\n', head, '\0', body.
std::string MemoPayload(const Migrator::StatusText& t) {
  return std::string(t.attention ? "1\n" : "0\n") + t.head + '\0' + t.body;
}

std::optional<Migrator::StatusText> FromPayload(const std::string& payload) {
  size_t nul = payload.find('\0');
  if (payload.size() < 2 || nul == std::string::npos || payload[1] != '\n') return std::nullopt;
  return Migrator::StatusText{payload.substr(2, nul - 2), payload.substr(nul + 1),
                              payload[0] == '1'};
}

// The caller's expressions: the probe's extra values after the lock's.
std::vector<bool> CallerExtra(const History::Probe& probe) {
  if (probe.extra.empty()) return {};
  return std::vector<bool>(probe.extra.begin() + 1, probe.extra.end());
}

}  // namespace

Result<Migrator::MemoizedStatus> Migrator::StatusThroughMemo(
    const MemoRequest& request, const std::function<StatusText(const StatusReport&)>& render) {
  const bool memo = request.dir_signature && !options_.scan_cache_dir.empty() &&
                    conn_->traits().Has(Feature::kHistoryFingerprint);
  std::optional<History::Probe> probe;
  if (memo) probe = UsableProbe(*this, request.extra);
  StatusMemoKey key;
  MemoizedStatus out;
  if (probe) {
    key = StatusMemoKey{redacted_url(), options_.dir,          options_.history_table,
                        request.mode,   *request.dir_signature, probe->fingerprint};
    std::optional<std::string> hit = LoadStatusMemo(options_.scan_cache_dir, key);
    std::optional<StatusText> text = hit ? FromPayload(*hit) : std::nullopt;
    if (text) {
      auto holder = LockHolderNow(probe->extra.at(0));
      out.lock_holder = holder.ok() ? *holder : std::nullopt;
      out.text = std::move(*text);
      out.extra = CallerExtra(*probe);
      out.from_memo = true;
      return out;
    }
  }
  // In full. With a probe, inside one snapshot, so that the fingerprint the
  // memo is stored under matches the rows read.
  StatusInputs inputs;
  inputs.dir_signature = request.dir_signature;
  const bool snapshot = probe.has_value();
  if (snapshot) {
    probe.reset();
    if (conn_->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").ok()) {
      probe = UsableProbe(*this, request.extra);
      if (probe) {
        key.fingerprint = probe->fingerprint;
        inputs.lock_held = probe->extra.at(0);
        inputs.history_checked = true;
      }
    }
  }
  auto r = CurrentStatus(inputs);
  if (snapshot) (void)conn_->Exec(r.ok() ? "COMMIT" : "ROLLBACK");
  if (!r.ok()) return r.status();
  out.text = render(*r);
  out.lock_holder = r->lock_holder;
  if (probe) {
    SaveStatusMemo(options_.scan_cache_dir, key, MemoPayload(out.text));
    out.extra = CallerExtra(*probe);
  }
  return out;
}

}  // namespace ferry
