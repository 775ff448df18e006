// Expand/contract, the way back (`ferry abort`): pick the open expand change
// (the newest, or the one of `version`), check it belongs to the newest
// applied migration, and roll that migration back, whose down step undoes
// the expand phase first (migrate/online_steps.h).
#include <fmt/format.h>

#include "migrate/migrator.h"
#include "move/expand.h"

namespace ferry {

Result<ApplyResult> AbortExpand(Migrator& m, const std::string& version) {
  FERRY_ASSIGN_OR_RETURN(std::vector<ExpandState> states, ListExpandStates(*m.connection()));
  std::string open_version;
  for (const ExpandState& st : states) {
    if (st.phase != "expanding" && st.phase != "expanded") continue;
    if (!version.empty() && st.version != version) continue;
    open_version = st.version;
  }
  if (open_version.empty()) {
    return Status(StatusCode::kNotFound,
                  version.empty() ? std::string("no open expand change to abort (see 'ferry "
                                                "status')")
                                  : fmt::format("migration {} has no open expand change (see "
                                                "'ferry status')",
                                                version));
  }
  FERRY_ASSIGN_OR_RETURN(StatusReport report, m.CurrentStatus());
  if (report.current_version != open_version) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the open expand change belongs to {}, but the newest applied "
                              "migration is {}: roll back the newer ones first ('ferry down "
                              "--to {}'), then 'ferry abort'",
                              open_version, report.current_version, open_version));
  }
  return m.Down(1);
}

}  // namespace ferry
