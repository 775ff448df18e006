// libpq, loaded on first use instead of at process start.
//
// ferry does not link libpq: the dynamic loader would otherwise resolve
// libpq and its chain of ~25 libraries (OpenSSL, Kerberos, LDAP, GnuTLS, ...)
// before main() for every command, SQLite ones included. The PostgreSQL
// driver calls LoadLibpq() before its first libpq call; it dlopen()s
// libpq.so.5 once and fills a table of function pointers whose types come
// from <libpq-fe.h>, so every call keeps libpq's own signature.
//
// Only files of the PostgreSQL driver include this header.
#pragma once

#include <libpq-fe.h>

#include "ferry/status.h"

namespace ferry::postgres {

// The shared object ferry loads: libpq's soname since PostgreSQL 8.2.
inline constexpr const char* kLibpqSoname = "libpq.so.5";

// Every libpq function ferry calls. X(name) per function; adding a call to a
// new libpq function means adding it here.
#define FERRY_LIBPQ_FUNCTIONS(X) \
  X(PQbackendPID)                \
  X(PQcancel)                    \
  X(PQclear)                     \
  X(PQcmdStatus)                 \
  X(PQcmdTuples)                 \
  X(PQconnectdbParams)           \
  X(PQconsumeInput)              \
  X(PQdb)                        \
  X(PQenterPipelineMode)         \
  X(PQerrorMessage)              \
  X(PQexec)                      \
  X(PQexecParams)                \
  X(PQexitPipelineMode)          \
  X(PQfinish)                    \
  X(PQflush)                     \
  X(PQfname)                     \
  X(PQfreeCancel)                \
  X(PQfreemem)                   \
  X(PQftype)                     \
  X(PQgetCancel)                 \
  X(PQgetCopyData)               \
  X(PQgetisnull)                 \
  X(PQgetlength)                 \
  X(PQgetResult)                 \
  X(PQgetvalue)                  \
  X(PQhost)                      \
  X(PQnfields)                   \
  X(PQntuples)                   \
  X(PQpipelineSync)              \
  X(PQport)                      \
  X(PQputCopyData)               \
  X(PQputCopyEnd)                \
  X(PQresStatus)                 \
  X(PQresultErrorField)          \
  X(PQresultErrorMessage)        \
  X(PQresultStatus)              \
  X(PQsendQuery)                 \
  X(PQsendPrepare)               \
  X(PQsendQueryParams)           \
  X(PQsendQueryPrepared)         \
  X(PQserverVersion)             \
  X(PQsetNoticeProcessor)        \
  X(PQsetSingleRowMode)          \
  X(PQsocket)                    \
  X(PQstatus)                    \
  X(PQtransactionStatus)         \
  X(PQuser)

// The loaded functions, named as in libpq: Pq().PQexec(conn, sql).
struct LibpqApi {
#define FERRY_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
  FERRY_LIBPQ_FUNCTIONS(FERRY_LIBPQ_MEMBER)
#undef FERRY_LIBPQ_MEMBER
};

// Loads libpq.so.5 and resolves every function above, once per process
// (thread-safe); later calls return the same Status without trying again.
// Fails with kFailedPrecondition (a human must install the library; retrying
// cannot help) when the library cannot be loaded or lacks a function, with a
// message naming the library, the loader's reason or the missing symbol, and
// how to install it.
Status LoadLibpq();

// The function table. Only valid after LoadLibpq() succeeded: calling it
// before, or after a failed load, is a programmer error and aborts.
const LibpqApi& Pq();

}  // namespace ferry::postgres
