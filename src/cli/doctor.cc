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
#if FERRY_WITH_CQL
#include <set>

#include "drivers/cql/cql_connection.h"
#endif

namespace ferry::cli {
namespace {

// CQL clusters: protocol, compression, nodes and datacenters.
Status DescribeCluster(Connection* conn, nlohmann::json* json, std::string* text) {
#if FERRY_WITH_CQL
  auto* cql = dynamic_cast<cql::CqlConnection*>(conn);
  if (cql == nullptr) return Status();
  FERRY_ASSIGN_OR_RETURN(std::vector<cql::NodeInfo> nodes, cql->Nodes());
  std::set<std::string> dcs;
  nlohmann::json list = nlohmann::json::array();
  std::string lines;
  for (const auto& n : nodes) {
    dcs.insert(n.datacenter);
    list.push_back({{"address", n.address}, {"port", n.port}, {"datacenter", n.datacenter},
                    {"rack", n.rack}, {"release_version", n.release_version},
                    {"host_id", n.host_id}, {"schema_version", n.schema_version},
                    {"tokens", n.tokens.size()}, {"control", n.control}});
    lines += fmt::format("  {}:{}  {}/{}  {}  schema {}{}\n", n.address, n.port, n.datacenter,
                         n.rack, n.release_version, n.schema_version,
                         n.control ? "  (control)" : "");
  }
  std::string compression = cql->compressed() ? "lz4" : "none";
  (*json)["protocol"] = {{"version", cql->protocol_version()}, {"compression", compression}};
  (*json)["nodes"] = list;
  (*json)["datacenters"] = dcs;
  *text += fmt::format("protocol  CQL native protocol v{}, compression {}\n",
                       cql->protocol_version(), compression);
  *text += fmt::format("nodes     {} in datacenter{} {}\n{}", nodes.size(),
                       dcs.size() == 1 ? "" : "s", fmt::join(dcs, ", "), lines);
#else
  (void)conn;
  (void)json;
  (void)text;
#endif
  return Status();
}

}  // namespace

int RunDoctor(const Context& ctx, const std::string& url_text) {
  auto url = Url::Parse(url_text);
  if (!url.ok()) return ReportError(url.status(), ctx.json);
  if (url->scheme() == "redis") return RunRedisDoctor(ctx, url_text);
  auto conn = OpenConnection(*url);
  if (!conn.ok()) return ReportError(conn.status(), ctx.json);
  auto info = (*conn)->Info();
  if (!info.ok()) return ReportError(info.status(), ctx.json);

  nlohmann::json cluster = nlohmann::json::object();
  std::string cluster_text;
  Status described = DescribeCluster(conn->get(), &cluster, &cluster_text);
  if (!described.ok()) return ReportError(described, ctx.json);

  int missing = 0;
  for (const auto& c : info->capabilities) missing += c.available ? 0 : 1;
  if (ctx.json) {
    nlohmann::json caps = nlohmann::json::array();
    for (const auto& c : info->capabilities) {
      caps.push_back({{"name", c.name}, {"available", c.available}, {"detail", c.detail},
                      {"hint", c.hint}});
    }
    nlohmann::json doc = {{"ok", true},
               {"database", url->Redacted()},
               {"engine", info->engine},
               {"version", info->version},
               {"version_num", info->version_num},
               {"database_name", info->database},
               {"user", info->user},
               {"capabilities", caps},
               {"missing", missing}};
    doc.update(cluster);
    PrintJson(doc);
    return kExitOk;
  }
  std::string out;
  out += fmt::format("database  {}\n", url->Redacted());
  out += fmt::format("engine    {} {}\n", info->engine, info->version);
  if (!info->user.empty()) out += fmt::format("user      {}\n", info->user);
  out += cluster_text;
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
