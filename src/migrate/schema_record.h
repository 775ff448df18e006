// What the applied migrations made of the schema, kept beside the history,
// so `validate` and `health` can tell when the live schema drifted from it
// (a table dropped by hand: "missing table partition_stats").
//
// In:  the catalog before and after every run that changes the database
//      (up, down, redo, goto): tables, views, columns (type, NOT NULL),
//      indexes (definition) and constraints (definition) outside ferry's own
//      tables.
// Out: the table `<history_table>_objects` (kind, name, detail, added_by):
//      what a run added is recorded (added_by = the version whose script
//      names it, else the run's versions, as "one of A .. B" past three),
//      what it removed is forgotten. Objects made
//      or dropped by hand between runs are not recorded, so a drop by hand
//      stays visible as drift until someone restores the object (or a
//      migration drops it for good).
// Adoption: a database whose history predates this record gets the live
//      schema of its first recorded run as its starting point ("adopted").
#pragma once

#include <set>
#include <string>
#include <vector>

#include "drivers/connection.h"
#include "ferry/status.h"

namespace ferry {

struct SchemaObject {
  std::string kind;    // table, column, index, constraint
  std::string name;    // "public.users", "public.users.email", "public.users_email_idx"
  std::string detail;  // relation kind, column type, index or constraint definition
  std::string added_by;  // recorded objects: versions of the run that made them

  bool operator<(const SchemaObject& o) const {
    return kind != o.kind ? kind < o.kind : name < o.name;
  }
};

// One difference between the record and the live catalog.
struct SchemaDrift {
  std::string kind;     // table, column, index, constraint
  std::string name;     // as shown: without "public." (or SQLite's "main.")
  std::string problem;  // "missing" or "changed"
  std::string message;  // "missing table partition_stats (made by 2)"
};

// The live catalog objects outside ferry's own tables (those named ferry_*
// and `history_table` with its _meta and _objects tables). PostgreSQL:
// pg_catalog; SQLite: sqlite_master and pragma_table_info.
Result<std::vector<SchemaObject>> ReadSchemaObjects(Connection& conn,
                                                    const std::string& history_table);

class SchemaRecord {
 public:
  SchemaRecord(Connection* conn, std::string history_table);

  // `<history_table>_objects`, schema-qualified like the history table.
  const std::string& table() const { return table_; }

  // Snapshot before a run changes anything. `has_applied`: the history
  // already holds applied migrations (then a missing record is adopted
  // from this snapshot).
  Status Before(bool has_applied);
  bool started() const { return started_; }
  // One script a run completed: the version (or script name) and its SQL.
  struct RunScript {
    std::string version;
    std::string sql;
  };
  // After the run (successful or not): records what it added and forgets
  // what it removed. Each added object is attributed to the first of `done`
  // whose SQL names it (the last one for an object whose definition
  // changed), else to its table's first mention, else to all of them.
  Status After(const std::vector<RunScript>& done);

  // Recorded objects missing from the live schema or changed there, in
  // record order. Empty when nothing was recorded yet.
  Result<std::vector<SchemaDrift>> Compare();

 private:
  Result<bool> Exists();
  Status Create();
  Result<std::vector<SchemaObject>> Load();
  Status Store(const std::vector<SchemaObject>& add, const std::vector<SchemaObject>& remove);

  Connection* conn_;
  std::string history_table_;
  std::string table_;
  bool started_ = false;
  std::vector<SchemaObject> before_;
};

}  // namespace ferry
