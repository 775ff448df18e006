// SQLite driver: the embedded default (a file such as ferry.db).
//
// Opens with WAL journaling, a busy timeout (URL ?busy_timeout=MS, default
// 5000) and foreign keys on. Parameters are written $1, $2 ... like
// PostgreSQL. TryLock uses an open-file-description lock on "<db>.ferry-lock",
// so the kernel releases it when the process dies. COPY is kUnimplemented.
#pragma once

#include <memory>

#include "drivers/connection.h"

namespace ferry::sqlite {

Result<std::unique_ptr<Connection>> Open(const Url& url, const ConnectOptions& options);

}  // namespace ferry::sqlite
