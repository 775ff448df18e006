// Fuzzes the linter's directive reading (-- ferry:lint-ignore[-file] RULES
// reason) together with the rules it feeds: one script of any text, linted
// and rendered as text, JSON and SARIF. No crash.
#include <cstdint>
#include <string>
#include <string_view>

#include "migrate/lint.h"
#include "migrate/source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 16 * 1024) return 0;
  ferry::Script script;
  script.path = "fuzz.sql";
  script.sql = ferry::CanonicalScriptText(std::string_view(reinterpret_cast<const char*>(data), size));
  ferry::LintOptions options;
  ferry::LintReport report = ferry::LintScript(script, options);
  (void)ferry::LintReportText(report);
  (void)ferry::LintReportJson(report);
  (void)ferry::LintReportSarif(report);
  return 0;
}
