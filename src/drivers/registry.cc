#include "drivers/registry.h"

#include <fmt/format.h>

#include <utility>

#include "drivers/cql/cql_engine.h"
#include "drivers/postgres/pg_engine.h"
#include "drivers/sqlite/sqlite_connection.h"
#include "drivers/sqlite/sqlite_engine.h"
#if FERRY_WITH_POSTGRES
#include "drivers/postgres/pg_connection.h"
#endif
#if FERRY_WITH_CQL
#include "drivers/cql/cql_connection.h"
#endif

namespace ferry {
namespace {

using Factory = Result<std::unique_ptr<Connection>> (*)(const Url&, const ConnectOptions&);
using TraitsFn = const EngineTraits& (*)();

struct Registration {
  Engine engine;
  std::string_view scheme;  // as Url::Parse normalises it
  std::string_view alias;   // another spelling users write, or ""
  Factory open;             // null when this build leaves the driver out
  TraitsFn traits;
};

// Explicit table, one line per engine: linkers drop self-registering objects
// from static libraries.
constexpr Registration kEngines[] = {
    {Engine::kSqlite, "sqlite", "", &sqlite::Open, &sqlite::Traits},  // always built
#if FERRY_WITH_POSTGRES
    {Engine::kPostgres, "postgres", "postgresql", &postgres::Open, &postgres::Traits},
#else
    {Engine::kPostgres, "postgres", "postgresql", nullptr, &postgres::Traits},
#endif
// scylla:// and cassandra:// are normalised to "cql" by core/url.cc.
#if FERRY_WITH_CQL
    {Engine::kCql, "cql", "", &cql::Open, &cql::Traits},
#else
    {Engine::kCql, "cql", "", nullptr, &cql::Traits},
#endif
};

}  // namespace

std::string_view EngineName(Engine engine) {
  switch (engine) {
    case Engine::kSqlite: return "sqlite";
    case Engine::kPostgres: return "postgres";
    case Engine::kCql: return "cql";
  }
  return "unknown";
}

Result<Engine> EngineFromName(std::string_view name) {
  for (const Registration& r : kEngines) {
    if (r.scheme == name || (!r.alias.empty() && r.alias == name)) return r.engine;
  }
  return Status(StatusCode::kInvalidArgument, fmt::format("unknown engine '{}'", name));
}

const EngineTraits& TraitsOf(Engine engine) {
  for (const Registration& r : kEngines) {
    if (r.engine == engine) return r.traits();
  }
  return sqlite::Traits();  // unreachable: every Engine has a line above
}

Result<std::unique_ptr<Connection>> OpenConnection(const Url& url, const ConnectOptions& options) {
  for (const Registration& r : kEngines) {
    if (r.open != nullptr && r.scheme == url.scheme()) return r.open(url, options);
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
  for (const Registration& r : kEngines) {
    if (r.open == nullptr) continue;
    out.emplace_back(r.scheme);
    if (!r.alias.empty()) out.emplace_back(r.alias);
  }
  return out;
}

}  // namespace ferry
