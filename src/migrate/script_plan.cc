#include "migrate/script_plan.h"

#include <fmt/format.h>

#include "core/printable.h"
#include "drivers/connection.h"

namespace ferry {
namespace {

// "line 3: x\nline 9: y" -> "path:3: x\npath:9: y", the form editors jump to.
std::string AtFile(const std::string& file, const std::string& message) {
  const std::string path = Printable(file);  // a newline in a name must not forge a line
  std::string out;
  size_t pos = 0;
  while (pos <= message.size()) {
    size_t nl = message.find('\n', pos);
    std::string_view line(message.data() + pos,
                          (nl == std::string::npos ? message.size() : nl) - pos);
    if (!out.empty()) out += '\n';
    size_t colon = line.find(": ");
    if (line.rfind("line ", 0) == 0 && colon != std::string_view::npos) {
      out += fmt::format("{}:{}: {}", path, line.substr(5, colon - 5), line.substr(colon + 2));
    } else {
      out += fmt::format("{}: {}", path, line);
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

// BEGIN/COMMIT in the file: run as written when it says no-transaction,
// else refused (ferry would wrap it in a transaction of its own).
Status CheckTransactionControl(const Script& script, ScriptPlan* plan) {
  for (const Statement& s : plan->statements) {
    if (!s.is_transaction_control) continue;
    if (script.directives.no_transaction) {
      plan->own_transactions = true;
      plan->transactional = false;
      plan->reason = fmt::format("the file manages its own transactions (line {}: {}); run as "
                                 "written, statement by statement",
                                 s.line, Excerpt(s.text, 20));
      return Status();
    }
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}:{}: '{}' controls transactions, but ferry runs each migration "
                              "in its own transaction: remove BEGIN/COMMIT from the file, or add "
                              "'-- ferry:no-transaction' at its top to run it as written, "
                              "statement by statement",
                              script.path, s.line, Excerpt(s.text, 40)))
        .With("file", script.path)
        .With("line", std::to_string(s.line));
  }
  return Status();
}

}  // namespace

Result<ScriptPlan> PlanScript(const Migration& m, bool down, const ScriptPlanOptions& options) {
  ScriptPlan plan;
  const Script* script = down ? &*m.down : &m.up;
  plan.script = script;
  // psql-only syntax is refused on every engine: no server understands it.
  if (Status meta = CheckForPsqlMetaCommands(script->sql, script->first_line); !meta.ok()) {
    return Status(meta.code(), AtFile(script->path, meta.message())).With("file", script->path);
  }
  auto split = SplitScript(options.grammar, script->sql, script->first_line);
  if (!split.ok()) {
    Status s = std::move(split).TakeStatus();
    std::string where = s.Get("line").empty() ? script->path
                                              : fmt::format("{}:{}", script->path, s.Get("line"));
    return std::move(s).Prefix(where).With("file", script->path);
  }
  plan.statements = std::move(split).value();
  if (plan.statements.empty() && !(!down && !m.up.online.empty())) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: the {} section has no SQL statements", script->path,
                              down ? "down" : "up"));
  }
  const Directives& d = script->directives;
  plan.lock_timeout = d.lock_timeout.empty() ? options.lock_timeout : d.lock_timeout;
  plan.statement_timeout =
      d.statement_timeout.empty() ? options.statement_timeout : d.statement_timeout;
  if (d.no_transaction) {
    plan.transactional = false;
    plan.reason = "the file says no-transaction";
  }
  for (const Statement& s : plan.statements) {
    if (s.cannot_run_in_transaction && plan.transactional) {
      plan.transactional = false;
      plan.reason = fmt::format("line {}: {} cannot run inside a transaction", s.line,
                                s.no_transaction_reason.empty() ? s.node_type
                                                                : s.no_transaction_reason);
    }
  }
  FERRY_RETURN_IF_ERROR(CheckTransactionControl(*script, &plan));
  return plan;
}

}  // namespace ferry
