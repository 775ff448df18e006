#include "drivers/cql/cql_messages.h"

#include <fmt/format.h>

namespace ferry::cql {
namespace {

constexpr int32_t kGlobalTableSpec = 0x0001;
constexpr int32_t kHasMorePages = 0x0002;
constexpr int32_t kNoMetadata = 0x0004;

Result<std::vector<ColumnSpec>> ReadColumnSpecs(WireReader& r, int32_t flags, int32_t count) {
  std::string ks, table;
  if (flags & kGlobalTableSpec) {
    FERRY_ASSIGN_OR_RETURN(ks, r.String());
    FERRY_ASSIGN_OR_RETURN(table, r.String());
  }
  std::vector<ColumnSpec> cols;
  for (int32_t i = 0; i < count; ++i) {
    ColumnSpec c;
    if (flags & kGlobalTableSpec) {
      c.keyspace = ks;
      c.table = table;
    } else {
      FERRY_ASSIGN_OR_RETURN(c.keyspace, r.String());
      FERRY_ASSIGN_OR_RETURN(c.table, r.String());
    }
    FERRY_ASSIGN_OR_RETURN(c.name, r.String());
    FERRY_ASSIGN_OR_RETURN(c.type, ReadType(r));
    cols.push_back(std::move(c));
  }
  return cols;
}

// Rows metadata; returns the column count (also when metadata was skipped).
Result<int32_t> ReadRowsMetadata(WireReader& r, ResultMessage* out) {
  FERRY_ASSIGN_OR_RETURN(int32_t flags, r.Int());
  FERRY_ASSIGN_OR_RETURN(int32_t count, r.Int());
  if (count < 0) return Status(StatusCode::kInternal, "CQL protocol error: negative column count");
  if (flags & kHasMorePages) {
    FERRY_ASSIGN_OR_RETURN(auto state, r.Bytes());
    if (state) out->paging_state = std::string(*state);
  }
  if (!(flags & kNoMetadata)) {
    FERRY_ASSIGN_OR_RETURN(out->columns, ReadColumnSpecs(r, flags, count));
  }
  return count;
}

Status ReadRows(WireReader& r, ResultMessage* out) {
  FERRY_ASSIGN_OR_RETURN(int32_t ncols, ReadRowsMetadata(r, out));
  FERRY_ASSIGN_OR_RETURN(int32_t nrows, r.Int());
  if (nrows < 0) return Status(StatusCode::kInternal, "CQL protocol error: negative row count");
  out->rows.reserve(static_cast<size_t>(nrows));
  for (int32_t i = 0; i < nrows; ++i) {
    RawRow row;
    row.reserve(static_cast<size_t>(ncols));
    for (int32_t c = 0; c < ncols; ++c) {
      FERRY_ASSIGN_OR_RETURN(auto v, r.Bytes());
      row.push_back(v ? RawValue(std::string(*v)) : RawValue());
    }
    out->rows.push_back(std::move(row));
  }
  return Status();
}

Status ReadPrepared(WireReader& r, ResultMessage* out) {
  FERRY_ASSIGN_OR_RETURN(out->prepared_id, r.ShortBytes());
  FERRY_ASSIGN_OR_RETURN(int32_t flags, r.Int());
  FERRY_ASSIGN_OR_RETURN(int32_t count, r.Int());
  FERRY_ASSIGN_OR_RETURN(int32_t pk_count, r.Int());
  for (int32_t i = 0; i < pk_count; ++i) {
    FERRY_ASSIGN_OR_RETURN(uint16_t index, r.Short());
    out->pk_indexes.push_back(index);
  }
  FERRY_ASSIGN_OR_RETURN(out->bind_columns, ReadColumnSpecs(r, flags, count));
  ResultMessage result_meta;
  FERRY_RETURN_IF_ERROR(ReadRowsMetadata(r, &result_meta).status());
  out->columns = std::move(result_meta.columns);
  return Status();
}

Status ReadSchemaChange(WireReader& r, ResultMessage* out) {
  FERRY_ASSIGN_OR_RETURN(out->change_type, r.String());
  FERRY_ASSIGN_OR_RETURN(out->change_target, r.String());
  FERRY_ASSIGN_OR_RETURN(out->change_keyspace, r.String());
  if (out->change_target != "KEYSPACE") {
    FERRY_ASSIGN_OR_RETURN(out->change_name, r.String());
  }
  return Status();  // function argument types, when present, are not needed
}

void WriteParams(const QueryParams& p, WireWriter* w) {
  uint8_t flags = 0;
  if (!p.values.empty()) flags |= 0x01;
  if (p.skip_metadata) flags |= 0x02;
  if (p.page_size > 0) flags |= 0x04;
  if (p.paging_state) flags |= 0x08;
  if (p.serial_consistency) flags |= 0x10;
  if (p.timestamp) flags |= 0x20;
  w->Short(static_cast<uint16_t>(p.consistency));
  w->Byte(flags);
  if (!p.values.empty()) {
    w->Short(static_cast<uint16_t>(p.values.size()));
    for (const auto& v : p.values) w->Bytes(v);
  }
  if (p.page_size > 0) w->Int(p.page_size);
  if (p.paging_state) w->Bytes(*p.paging_state);
  if (p.serial_consistency) w->Short(static_cast<uint16_t>(*p.serial_consistency));
  if (p.timestamp) w->Long(*p.timestamp);
}

}  // namespace

Result<ResultMessage> ParseResult(std::string_view body) {
  WireReader r(body);
  ResultMessage out;
  FERRY_ASSIGN_OR_RETURN(int32_t kind, r.Int());
  out.kind = static_cast<ResultKind>(kind);
  switch (out.kind) {
    case ResultKind::kVoid: return out;
    case ResultKind::kRows: FERRY_RETURN_IF_ERROR(ReadRows(r, &out)); return out;
    case ResultKind::kSetKeyspace: {
      FERRY_ASSIGN_OR_RETURN(out.keyspace, r.String());
      return out;
    }
    case ResultKind::kPrepared: FERRY_RETURN_IF_ERROR(ReadPrepared(r, &out)); return out;
    case ResultKind::kSchemaChange: FERRY_RETURN_IF_ERROR(ReadSchemaChange(r, &out)); return out;
  }
  return Status(StatusCode::kInternal, fmt::format("CQL protocol error: unknown RESULT kind {}", kind));
}

std::string QueryBody(std::string_view cql, const QueryParams& params) {
  WireWriter w;
  w.LongString(cql);
  WriteParams(params, &w);
  return w.Take();
}

std::string PrepareBody(std::string_view cql) {
  WireWriter w;
  w.LongString(cql);
  return w.Take();
}

std::string ExecuteBody(std::string_view prepared_id, const QueryParams& params) {
  WireWriter w;
  w.ShortBytes(prepared_id);
  WriteParams(params, &w);
  return w.Take();
}

std::string BatchBody(BatchType type, const std::vector<BatchStatement>& statements,
                      Consistency consistency, std::optional<Consistency> serial) {
  WireWriter w;
  w.Byte(static_cast<uint8_t>(type));
  w.Short(static_cast<uint16_t>(statements.size()));
  for (const auto& s : statements) {
    w.Byte(s.prepared ? 1 : 0);
    if (s.prepared) {
      w.ShortBytes(s.query_or_id);
    } else {
      w.LongString(s.query_or_id);
    }
    w.Short(static_cast<uint16_t>(s.values.size()));
    for (const auto& v : s.values) w.Bytes(v);
  }
  w.Short(static_cast<uint16_t>(consistency));
  w.Byte(serial ? 0x10 : 0x00);
  if (serial) w.Short(static_cast<uint16_t>(*serial));
  return w.Take();
}

}  // namespace ferry::cql
