#include "drivers/registry.h"

#include <fmt/format.h>

#include <utility>

#include "drivers/sqlite/sqlite_connection.h"
#if FERRY_WITH_POSTGRES
#include "drivers/postgres/pg_connection.h"
#endif
#if FERRY_WITH_CQL
#include "drivers/cql/cql_connection.h"
#endif

namespace ferry {
namespace {

using Factory = Result<std::unique_ptr<Connection>> (*)(const Url&, const ConnectOptions&);

// Explicit table: linkers drop self-registering objects from static libraries.
constexpr std::pair<std::string_view, Factory> kFactories[] = {
    {"sqlite", &sqlite::Open},  // always built: also the embedded default
#if FERRY_WITH_POSTGRES
    {"postgres", &postgres::Open},
#endif
#if FERRY_WITH_CQL
    {"cql", &cql::Open},  // also scylla:// and cassandra:// (core/url.cc)
#endif
};

}  // namespace

Result<std::unique_ptr<Connection>> OpenConnection(const Url& url, const ConnectOptions& options) {
  for (const auto& [scheme, factory] : kFactories) {
    if (scheme == url.scheme()) return factory(url, options);
  }
  std::string known;
  for (const auto& s : SupportedSchemes()) known += (known.empty() ? "" : ", ") + s;
  if (url.scheme() == "redis") {
    return Status(StatusCode::kUnimplemented,
                  fmt::format("{}: Redis is not a SQL database; use it with 'ferry redis' commands",
                              url.Redacted()));
  }
  return Status(StatusCode::kInvalidArgument,
                fmt::format("no driver for scheme '{}' in this build ({}); supported: {}",
                            url.scheme(), url.Redacted(), known));
}

Result<std::unique_ptr<Connection>> OpenConnection(std::string_view url_text,
                                                   const ConnectOptions& options) {
  FERRY_ASSIGN_OR_RETURN(Url url, Url::Parse(url_text));
  return OpenConnection(url, options);
}

std::vector<std::string> SupportedSchemes() {
  std::vector<std::string> out;
  for (const auto& [scheme, factory] : kFactories) {
    out.emplace_back(scheme);
    if (scheme == "postgres") out.emplace_back("postgresql");
    if (scheme == "cql") {
      out.emplace_back("scylla");
      out.emplace_back("cassandra");
    }
  }
  return out;
}

}  // namespace ferry
