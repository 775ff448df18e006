#include "migrate/validate_files.h"

#include <fmt/format.h>

#include "drivers/engine.h"
#include "migrate/script_plan.h"

namespace ferry {

Result<std::vector<ValidationProblem>> ValidateFiles(const MigratorOptions& options,
                                                     const std::string& engine) {
  auto parsed = EngineFromName(engine);
  if (!parsed.ok()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("unknown engine '{}': use postgres or sqlite", engine));
  }
  std::vector<ValidationProblem> problems;
  ScanOptions scan;
  scan.ignore_unknown_files = options.ignore_unknown_files;
  auto files = ScanDirectory(options.dir, scan);
  if (!files.ok()) {
    problems.push_back({"source", options.dir, files.status().message()});
    return problems;
  }
  ScriptPlanOptions plan_options;
  plan_options.grammar = TraitsOf(*parsed).grammar();
  for (const Migration& m : files->migrations) {
    auto up = PlanScript(m, false, plan_options);
    if (!up.ok()) problems.push_back({"parse", m.up.path, up.status().message()});
    if (m.down) {
      auto down = PlanScript(m, true, plan_options);
      if (!down.ok()) problems.push_back({"parse", m.down->path, down.status().message()});
    }
  }
  const std::string& cur = options.compat_current_version;
  const Version* newest = files->Latest();
  if (!cur.empty() && newest != nullptr) {
    auto current = Version::Parse(cur);
    if (current.ok() && *current < *newest) {
      problems.push_back({"compat", options.dir,
                          fmt::format("newest migration {} is newer than compat.current_version {}",
                                      newest->text(), cur)});
    }
  }
  return problems;
}

}  // namespace ferry
