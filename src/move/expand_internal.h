// Private declarations shared by expand.cc (the expand and backfill steps,
// the state table), expand_parse.cc (reading and resolving expand blocks)
// and expand_complete.cc (the contract phase).
// Not part of the library's API.
#pragma once

#include <string>
#include <utility>
#include <vector>
#include <string_view>

#include "move/expand.h"
#include "move/table_info.h"
#include "observe/event.h"

namespace ferry::expand_internal {

// Publishes expand steps (kind kExpand) on a bus; does nothing without one.
class StepPublisher {
 public:
  explicit StepPublisher(EventBus* bus) : bus_(bus) {}
  explicit operator bool() const { return bus_ != nullptr; }
  void operator()(std::string type, std::string message) const {
    Publish(bus_, StepEvent(EventKind::kExpand, std::move(type), std::move(message)));
  }
  EventBus* bus() const { return bus_; }

 private:
  EventBus* bus_;
};

inline constexpr std::string_view kStateTable = "ferry_expand_state";

// "ferry_expand_<version>_<table>", short enough for an identifier.
std::string ObjectName(std::string_view prefix, const std::string& version,
                       const std::string& table);

// Rows the backfill has still to do.
std::string BackfillWhere(const ExpandSpec& s);

struct Draft {
  ExpandSpec spec;
  std::vector<std::pair<std::string, int>> ups, downs;  // column, line (explicit)
  std::vector<std::pair<std::string, std::string>> up_expr, down_expr;
  std::vector<std::pair<std::string, int>> not_null;
  // Columns named by change/rename/split/merge, resolved with the catalog.
  struct Op {
    std::string kind;  // change, rename, split, merge
    std::vector<std::string> olds;
    std::vector<std::pair<std::string, std::string>> news;  // name, type ("" = old's)
    int line;
  };
  std::vector<Op> ops;
};

std::string_view Trim(std::string_view s);

std::string Lower(std::string_view s);

// Reads one identifier ("name" or plain) from the front of `s`; "" when none.
std::string TakeIdent(std::string_view* s);

// Consumes keyword `kw` (case-insensitive, whole word) from the front of `s`.
bool TakeKeyword(std::string_view* s, std::string_view kw);

// Splits on commas outside parentheses and quotes.
std::vector<std::string> SplitTopLevel(std::string_view s);

Status BlockError(const std::string& file, int line, std::string message);

bool IsReplaced(const ExpandSpec& s, std::string_view name);

std::string Join(const std::vector<std::string>& v, std::string_view sep);

// A block's clauses, read (expand_parse.cc).
Result<Draft> ParseDraft(const OnlineBlock& block, const std::string& file);
// Resolves a draft against the table: types, scopes, defaults, checks.
Result<ExpandSpec> Resolve(Draft d, const TableInfo& t);

}  // namespace ferry::expand_internal
