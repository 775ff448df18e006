// What a PostgreSQL server is and offers, asked through any Connection to it
// (the libpq driver and the light client share it).
#pragma once

#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry::postgres {

// One query: version (text and number), database, session user and the
// capabilities ferry relies on (logical replication, slots, privileges...),
// each with a hint when it is missing.
Result<ServerInfo> DescribeServer(Connection& connection);

}  // namespace ferry::postgres
