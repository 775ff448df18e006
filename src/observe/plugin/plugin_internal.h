// The functions behind ObservePlugin (observe/plugin.h), one file each.
// Inside the module: no ferry_lib symbol may be used here.
#pragma once

#include <string>
#include <vector>

#include "observe/plugin.h"

namespace ferry::plugin {

// A family as declared: name, help, type ("counter", "gauge", "histogram").
struct FamilyDecl {
  std::string name, help, type;
};
// `text` plus HELP and TYPE lines for each declared family that has no
// series yet (prometheus-cpp leaves empty families out), so a scrape or a
// metrics file always names every family ferry exports.
std::string WithEmptyFamilies(std::string text, const std::vector<FamilyDecl>& families);

// metrics_registry.cc
void* MetricsNew();
void MetricsDelete(void* metrics);
void MetricsObserve(void* metrics, const Event& event);
std::string MetricsText(void* metrics);

// state_metrics.cc
std::string StateMetricsText(const std::string& status_json, const std::string& jobs_json);

// http.cc
std::string HttpPut(const std::string& host_port, const std::string& path, const std::string& body,
                    const std::string& content_type);
std::string HttpGet(const std::string& host_port, const std::string& path,
                    const std::vector<std::pair<std::string, std::string>>& params,
                    std::string* body);
void* ServerNew(HttpHandler handler);
int ServerBind(void* server, const std::string& host, int port, std::string* error);
bool ServerRun(void* server);
void ServerStop(void* server);
void ServerDelete(void* server);

}  // namespace ferry::plugin
