// The module's entry point: the function table of observe/plugin.h.
#include "observe/plugin/plugin_internal.h"

extern "C" __attribute__((visibility("default"))) const ferry::ObservePlugin*
ferry_observe_plugin() {
  using namespace ferry::plugin;  // NOLINT: the table names every function
  static const ferry::ObservePlugin table = {
      ferry::ObservePlugin::kVersion,
      MetricsNew,
      MetricsDelete,
      MetricsObserve,
      MetricsText,
      StateMetricsText,
      HttpPut,
      ServerNew,
      ServerBind,
      ServerRun,
      ServerStop,
      ServerDelete,
      HttpGet,
  };
  return &table;
}
