// ferry doctor: connects, prints engine and version, and the capabilities
// ferry relies on, with a hint for each that is missing.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/context.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "cli/redis_command.h"
#include "core/url.h"
#include "drivers/registry.h"

namespace ferry::cli {

int RunDoctor(const Context& ctx, const std::string& url_text) {
  auto url = Url::Parse(url_text);
  if (!url.ok()) return ReportError(url.status(), ctx.json);
  if (url->scheme() == "redis") return RunRedisDoctor(ctx, url_text);
  auto conn = OpenConnection(*url);
  if (!conn.ok()) return ReportError(conn.status(), ctx.json);
  auto info = (*conn)->Info();
  if (!info.ok()) return ReportError(info.status(), ctx.json);

  int missing = 0;
  for (const auto& c : info->capabilities) missing += c.available ? 0 : 1;
  if (ctx.json) {
    nlohmann::json caps = nlohmann::json::array();
    for (const auto& c : info->capabilities) {
      caps.push_back({{"name", c.name}, {"available", c.available}, {"detail", c.detail},
                      {"hint", c.hint}});
    }
    PrintJson({{"ok", true},
               {"database", url->Redacted()},
               {"engine", info->engine},
               {"version", info->version},
               {"version_num", info->version_num},
               {"database_name", info->database},
               {"user", info->user},
               {"capabilities", caps},
               {"missing", missing}});
    return kExitOk;
  }
  std::string out;
  out += fmt::format("database  {}\n", url->Redacted());
  out += fmt::format("engine    {} {}\n", info->engine, info->version);
  if (!info->user.empty()) out += fmt::format("user      {}\n", info->user);
  out += "capabilities\n";
  for (const auto& c : info->capabilities) {
    out += fmt::format("  {:<8} {:<26} {}\n", c.available ? "ok" : "missing", c.name, c.detail);
    if (!c.available && !c.hint.empty()) out += fmt::format("           hint: {}\n", c.hint);
  }
  out += missing == 0 ? "all capabilities present\n"
                      : fmt::format("{} capabilit{} missing (see hints); ferry works without "
                                    "them but the features that need them will refuse\n",
                                    missing, missing == 1 ? "y" : "ies");
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

}  // namespace ferry::cli
