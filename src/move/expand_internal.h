// Private declarations shared by expand.cc (parsing, the expand and backfill
// steps, the state table) and expand_complete.cc (the contract phase).
// Not part of the library's API.
#pragma once

#include <string>
#include <string_view>

#include "move/expand.h"
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

}  // namespace ferry::expand_internal
