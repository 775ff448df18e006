// `ferry up --checkpoint [--auto-rollback]`: a checkpoint before applying,
// and the way back when a migration (or its verify step) fails.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "migrate/migrator.h"
#include "ops/checkpoint/checkpoint.h"

namespace ferry {

struct GuardedUpOptions {
  bool checkpoint = false;     // take one before applying (when anything is pending)
  bool auto_rollback = false;  // on failure: restore it, or run the downs without one
  // Where and how checkpoints are taken; url is the database URL as given.
  CheckpointOptions checkpoint_options;
};

// How a failed up was undone.
enum class RollbackMethod : uint8_t {
  kNone,        // nothing ran (the failure came before any migration), or not asked
  kCheckpoint,  // the checkpoint was restored
  kDowns,       // the down sections of the migrations applied in this run ran
};
std::string_view ToText(RollbackMethod method);  // "none", "checkpoint", "downs"

struct GuardedUpResult {
  std::optional<ApplyResult> applied;            // when up succeeded
  std::optional<CheckpointManifest> checkpoint;  // the one taken
  Status failure;                                // why up failed (ok when it did not)
  bool rollback_attempted = false;
  RollbackMethod rollback = RollbackMethod::kNone;
  Status rollback_status;                // ok when the rollback worked
  std::vector<std::string> rolled_back;  // versions undone by their downs
  std::string rollback_note;             // what was done, for output
  int64_t rollback_ms = 0;
};

// Takes the checkpoint (pre-up-<version>-<UTC time>), runs m.Up(target),
// and on failure restores it or runs the downs (auto_rollback). Both are
// written to the history (kinds "checkpoint" and "auto-rollback", the
// checkpoint's name in the note, the failure as the error). The migration
// lock is not held between the failure and the restore. Returns non-ok
// only when the checkpoint could not be taken (nothing was applied then);
// a failed up is GuardedUpResult::failure.
Result<GuardedUpResult> UpWithCheckpoint(Migrator& m, const std::string& target,
                                         const GuardedUpOptions& options);

}  // namespace ferry
