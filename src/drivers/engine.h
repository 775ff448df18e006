// Engine: which database engine a Connection speaks, and the one object per
// engine (EngineTraits) that answers what the layers above need to know
// about it: its capabilities, the SQL vocabulary of ferry's own tables
// (history, meta, control), its statement grammar and its catalog probes.
//
// Code above src/drivers asks an engine's traits for a capability
// (`conn.traits().Has(Feature::kTransactionalDdl)`) or a verb
// (`conn.traits().TableExists(conn, name)`), never compares engine names.
//
// How to add an engine:
//   1. Add its value to `Engine` and its name to EngineName() below.
//   2. In src/drivers/<name>/: a Connection (connection.h) whose engine()
//      returns it, and an EngineTraits implementation returned by a
//      `const EngineTraits& Traits()` function in the engine's namespace.
//   3. Add one line for it to kEngines in src/drivers/registry.cc (schemes,
//      factory, traits) and its sources to src/drivers/CMakeLists.txt.
//   4. Instantiate the conformance suite for it
//      (tests/integration/conformance_test.cc); cases a Feature it lacks
//      needs are skipped by that Feature, not by its name.
// Traits objects are immutable singletons: safe to share between threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ferry/status.h"

namespace ferry {

class Connection;
class TableLease;  // drivers/lease.h

enum class Engine : uint8_t {
  kSqlite,
  kPostgres,
  kCql,  // Apache Cassandra, ScyllaDB
};

// The engine's stable lower-case name: "sqlite", "postgres", "cql". Stored in job
// specs and printed; never compare it to choose behaviour (ask the traits).
std::string_view EngineName(Engine engine);
// The Engine named `name` ("postgres", "postgresql", "sqlite"); kInvalidArgument otherwise.
Result<Engine> EngineFromName(std::string_view name);

// Things ferry relies on that only some engines offer.
enum class Feature : uint8_t {
  kTransactionalDdl,       // DDL inside a transaction is rolled back with it
  kCatalogLockHolder,      // who holds a session lock is visible in a server view
  kCopyProtocol,           // COPY ... TO STDOUT / FROM STDIN
  kTableStatistics,        // planner statistics and relation sizes (lint grading)
  kOnlineChanges,          // triggers and procedural code (expand, backfill)
  kHistoryFingerprint,     // a one-query fingerprint of the history (status memo)
  kSessionTimeouts,        // SET [LOCAL] lock_timeout / statement_timeout
  kPipelining,             // a batch travels in one round trip, ferry's own
                           // statements kept prepared (Connection::ExecBatch)
  kTransactionLocks,       // transaction-scoped advisory locks
  kSchemas,                // schema-qualified names other than an attached file
  kDeclarativePartitions,  // PARTITION BY RANGE, ATTACH/DETACH PARTITION (ops/partition)
  kTransactions,           // BEGIN/COMMIT: a migration can run in one transaction
  kSessionLocks,           // Connection::TryLock (session-bound, freed when the
                           // session ends); without it the migration lock is a
                           // lease (OpenLease)
  kLintRules,              // migrate/lint.h has rules for this engine's grammar,
                           // so `up` refuses error-level findings before applying
  kSqlTables,              // ferry's own tables (history, schema record, control)
                           // are written in SQL ($n parameters, identity ids,
                           // ON CONFLICT, transactions); without it the history
                           // has its own store (migrate/cql_history.h)
};

// Which grammar splits and classifies this engine's scripts (migrate/sql_split.h).
enum class SqlGrammar : uint8_t {
  kSqlite,
  kPostgres,
  kCql,  // drivers/cql/cql_split.h
};

// What one engine is and can do. One immutable instance per engine.
class EngineTraits {
 public:
  virtual ~EngineTraits() = default;

  virtual Engine engine() const = 0;
  std::string_view name() const { return EngineName(engine()); }
  virtual bool Has(Feature feature) const = 0;
  virtual SqlGrammar grammar() const = 0;

  // Vocabulary for ferry's own tables.
  virtual std::string_view TimestampType() const = 0;       // "timestamptz"
  virtual std::string_view IdentityPrimaryKey() const = 0;  // "bigint GENERATED ... PRIMARY KEY"
  virtual std::string_view BooleanType() const = 0;
  virtual std::string_view BooleanLiteral(bool value) const = 0;
  // The statement that opens a transaction which will write (SQLite takes
  // its write lock at once with BEGIN IMMEDIATE instead of failing later).
  virtual std::string_view BeginWrite() const = 0;
  // The current time as ferry stores it, and that time plus parameter $n seconds.
  virtual std::string Now() const = 0;
  virtual std::string NowPlusSeconds(int param) const = 0;
  // A stored timestamp column read back as ISO-8601 UTC text.
  virtual std::string IsoTimestamp(std::string_view column) const = 0;

  // Whether the table `qualified` ("table" or "schema.table", unquoted)
  // exists. Probes the catalog: a missing table is `false`, not an error,
  // and leaves no error in the server's log.
  virtual Result<bool> TableExists(Connection& conn, std::string_view qualified) const = 0;

  // Statements to run once on a session that will apply migrations (e.g. a
  // setting that makes the server notice a killed client). Failures are
  // harmless: the caller logs them and goes on.
  virtual std::string_view MigrationSessionSetup() const = 0;

  // Called after each migration statement `statement` ran: engines whose
  // nodes learn schema changes one by one (CQL) wait up to `timeout` until
  // every node agrees on the schema after a schema change, so the next
  // statement finds it. kDeadlineExceeded naming the disagreeing nodes.
  // Engines with one schema return OK at once (the default).
  virtual Status SettleSchema(Connection& conn, std::string_view statement,
                              std::chrono::milliseconds timeout) const;

  // The schema of `scope` (CQL: a keyspace) as statements that re-create
  // it, for `ferry up --backup`. kUnimplemented by default.
  virtual Result<std::string> DescribeSchema(Connection& conn, const std::string& scope) const;

  // A lease named `name` in table `table` (created by TableLease::Ensure),
  // for engines without kSessionLocks. kUnimplemented by default. `conn`
  // must outlive the lease.
  virtual Result<std::unique_ptr<TableLease>> OpenLease(Connection& conn, std::string table,
                                                        std::string name, std::string owner,
                                                        std::chrono::seconds ttl) const;
};

// The traits of `engine` (registered in src/drivers/registry.cc).
const EngineTraits& TraitsOf(Engine engine);

}  // namespace ferry
