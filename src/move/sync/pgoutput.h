// pgoutput: a pure decoder of PostgreSQL's logical replication messages
// (protocol version 1) and of the replication stream's framing around them.
//
// In:  the bytes of one CopyData message of a START_REPLICATION stream.
// Out: XLogData ('w') / Primary keepalive ('k') frames; inside XLogData one
//      pgoutput message: Begin, Commit, Origin, Relation, Type, Insert,
//      Update, Delete, Truncate. No I/O, no state: tests feed it built bytes.
// A message that is cut short or of an unknown type is kInvalidArgument
// naming the message type and what was missing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ferry/status.h"

namespace ferry::pgoutput {

// LSNs are 64-bit WAL positions; text form "16/B374D848".
std::string LsnText(uint64_t lsn);
Result<uint64_t> ParseLsn(std::string_view text);

// Microseconds since 2000-01-01 UTC (PostgreSQL's epoch) <-> Unix seconds.
double PgTimeToUnix(int64_t pg_micros);
int64_t UnixToPgTime(double unix_seconds);

struct XLogData {
  uint64_t start = 0;     // WAL position of the data
  uint64_t wal_end = 0;   // server's current end of WAL
  int64_t send_time = 0;  // pg micros
  std::string_view payload;  // one pgoutput message; views the input
};
struct Keepalive {
  uint64_t wal_end = 0;
  int64_t send_time = 0;
  bool reply_requested = false;
};
using Frame = std::variant<XLogData, Keepalive>;
Result<Frame> DecodeFrame(std::string_view bytes);

// A Standby Status Update ('r'): positions written, flushed and applied.
std::string EncodeStatusUpdate(uint64_t written, uint64_t flushed, uint64_t applied,
                               int64_t now_pg_micros, bool reply_requested);

// One column value of a tuple.
enum class FieldKind : char {
  kNull = 'n',
  kUnchangedToast = 'u',  // an unchanged TOASTed value: not sent, keep the old one
  kText = 't',
};
struct Field {
  FieldKind kind = FieldKind::kNull;
  std::string text;  // kText only
};
using Tuple = std::vector<Field>;

struct Begin {
  uint64_t final_lsn = 0;  // the commit record's LSN
  int64_t commit_time = 0;
  uint32_t xid = 0;
};
struct Commit {
  uint8_t flags = 0;
  uint64_t commit_lsn = 0;
  uint64_t end_lsn = 0;  // end of the commit record: the position to confirm
  int64_t commit_time = 0;
};
struct Origin {
  uint64_t lsn = 0;
  std::string name;
};
struct RelationColumn {
  bool key = false;  // part of the replica identity
  std::string name;
  uint32_t type_oid = 0;
  int32_t type_modifier = -1;
};
struct Relation {
  uint32_t id = 0;
  std::string schema;
  std::string name;
  char replica_identity = 'd';  // 'd' default (primary key), 'f' full, 'i' index, 'n' nothing
  std::vector<RelationColumn> columns;
};
struct Type {
  uint32_t oid = 0;
  std::string schema;
  std::string name;
};
struct Insert {
  uint32_t relation = 0;
  Tuple tuple;
};
struct Update {
  uint32_t relation = 0;
  char old_kind = 0;  // 0: no old tuple; 'K': old key (key changed); 'O': old row (FULL)
  Tuple old_tuple;
  Tuple tuple;
};
struct Delete {
  uint32_t relation = 0;
  char old_kind = 'K';  // 'K' key columns only, 'O' whole row (FULL)
  Tuple old_tuple;
};
struct Truncate {
  bool cascade = false;
  bool restart_identity = false;
  std::vector<uint32_t> relations;
};

using Message = std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate>;

// Decodes one pgoutput message (the payload of an XLogData frame).
Result<Message> Decode(std::string_view bytes);

}  // namespace ferry::pgoutput
