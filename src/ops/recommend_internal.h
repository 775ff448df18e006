// What recommend.cc (PostgreSQL) and recommend_cql.cc (CQL) share.
#pragma once

#include <cstdint>
#include <string>

#include "drivers/connection.h"
#include "ops/recommend.h"

namespace ferry::recommend_internal {

// A cell as a number; 0 when NULL or empty.
int64_t Int(const QueryResult& r, size_t row, size_t col);
double Dbl(const QueryResult& r, size_t row, size_t col);

// The CQL checks (recommend_cql.cc), on the URL's keyspace ("" = every
// keyspace that is not the server's own).
Status RecommendCql(Connection& conn, const RecommendOptions& options,
                    const std::string& url_keyspace, RecommendReport& report);

}  // namespace ferry::recommend_internal
