// What the checkpoint stages share (manifest.cc, pg_checkpoint.cc,
// sqlite_checkpoint.cc, checkpoint.cc).
#pragma once

#include <string>

#include "core/url.h"
#include "drivers/connection.h"
#include "ops/checkpoint/checkpoint.h"

namespace ferry::checkpoint {

inline constexpr const char* kManifestFile = "manifest.json";

// How a restorable point of this engine is taken, from its capabilities
// (drivers/engine.h), never its name: a server with schemas and the COPY
// protocol (PostgreSQL) by its own dump and restore programs; an engine of
// SQL tables without a server protocol (SQLite, an embedded file) by the
// library's online backup API; anything else (CQL) not at all.
enum class SnapshotMethod : uint8_t { kNone, kDumpTools, kOnlineBackup };
SnapshotMethod SnapshotOf(const EngineTraits& traits);

// <dir>/<name>
std::string FolderOf(const std::string& dir, const std::string& name);
// Writes manifest.json into `folder` through a temporary file and rename.
Status WriteManifest(const std::string& folder, const CheckpointManifest& m);
// "2026-12-06T02:16:03.123Z" and "20261206T021603123Z" (UTC).
std::string IsoNow();
std::string CompactNow();

// The engine stages. `m` arrives with name, engine, database, scope,
// schemas/tables, migration_version and note filled; they add dump_file,
// tool, server_version and size.
Status PgCreate(const CheckpointOptions& o, const Url& url, Connection& conn,
                const std::string& folder, CheckpointManifest* m);
Status PgRestore(const CheckpointOptions& o, const Url& url, Connection& conn,
                 const std::string& folder, RestoreReport* report);
Status SqliteCreate(const Url& url, const std::string& folder, CheckpointManifest* m);
Status SqliteRestore(const CheckpointOptions& o, const Url& url, Connection& conn,
                     const std::string& folder, RestoreReport* report);

}  // namespace ferry::checkpoint
