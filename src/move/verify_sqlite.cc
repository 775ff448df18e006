// SQL functions that let SQLite compute verify's canonical values and row
// hashes inside the database, with the same results PostgreSQL computes
// with its own output functions and md5() (see canonical.h):
//
//   ferry_canon(value, 'kind')            canonical text of one value (NULL stays NULL)
//   ferry_row_hash('k1,k2,...', v1, v2 ...) row hash (int64) of the canonical record text
//   ferry_xor(int64)                      aggregate: XOR of its inputs (NULL when no rows)
//
// Kinds are CanonKindName() names. Registered with sqlite3_auto_extension,
// so every SQLite connection opened after RegisterSqliteVerifyFunctions()
// has them; the SQLite driver itself is unchanged.
#include "move/verify_sqlite.h"

#include <sqlite3.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "move/canonical.h"

namespace ferry {
namespace {

StoredValue Stored(sqlite3_value* v) {
  StoredValue s;
  switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
      s.storage = StoredValue::Storage::kInteger;
      s.integer = sqlite3_value_int64(v);
      break;
    case SQLITE_FLOAT:
      s.storage = StoredValue::Storage::kReal;
      s.real = sqlite3_value_double(v);
      break;
    case SQLITE_TEXT: {
      s.storage = StoredValue::Storage::kText;
      const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(v));
      s.bytes = std::string_view(p, static_cast<size_t>(sqlite3_value_bytes(v)));
      break;
    }
    case SQLITE_BLOB: {
      s.storage = StoredValue::Storage::kBlob;
      const auto* p = static_cast<const char*>(sqlite3_value_blob(v));
      s.bytes = std::string_view(p, static_cast<size_t>(sqlite3_value_bytes(v)));
      break;
    }
    default:
      break;
  }
  return s;
}

CanonKind KindArg(sqlite3_value* v) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(v));
  if (p == nullptr) return CanonKind::kAny;
  return CanonKindFromName(p).value_or(CanonKind::kAny);
}

void Canon(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  if (argc != 2) {
    sqlite3_result_error(ctx, "ferry_canon(value, kind) takes 2 arguments", -1);
    return;
  }
  std::optional<std::string> text = Canonicalize(KindArg(argv[1]), Stored(argv[0]));
  if (!text) {
    sqlite3_result_null(ctx);
    return;
  }
  sqlite3_result_text64(ctx, text->data(), text->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void DeleteKinds(void* p) { delete static_cast<std::vector<CanonKind>*>(p); }

void RowHashFn(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  if (argc < 2) {
    sqlite3_result_error(ctx, "ferry_row_hash(kinds, v1, ...) needs a value", -1);
    return;
  }
  std::vector<CanonKind> local;
  const auto* kinds = static_cast<const std::vector<CanonKind>*>(sqlite3_get_auxdata(ctx, 0));
  if (kinds == nullptr) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
    std::string_view list = p != nullptr ? p : "";
    while (!list.empty()) {
      size_t comma = list.find(',');
      local.push_back(CanonKindFromName(list.substr(0, comma)).value_or(CanonKind::kAny));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
    kinds = &local;
    // Cached for the next rows of this statement (SQLite may drop it at once).
    sqlite3_set_auxdata(ctx, 0, new std::vector<CanonKind>(local), &DeleteKinds);
  }
  std::string record = "(";
  for (int i = 1; i < argc; ++i) {
    const size_t k = static_cast<size_t>(i - 1);
    CanonKind kind = k < kinds->size() ? (*kinds)[k] : CanonKind::kAny;
    AppendRecordField(record, Canonicalize(kind, Stored(argv[i])), i == 1);
  }
  record += ')';
  sqlite3_result_int64(ctx, RowHash(record));
}

struct XorState {
  sqlite3_int64 value;
  bool any;
};

void XorStep(sqlite3_context* ctx, int, sqlite3_value** argv) {
  auto* st = static_cast<XorState*>(sqlite3_aggregate_context(ctx, sizeof(XorState)));
  if (st == nullptr || sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
  st->value ^= sqlite3_value_int64(argv[0]);
  st->any = true;
}

void XorFinal(sqlite3_context* ctx) {
  auto* st = static_cast<XorState*>(sqlite3_aggregate_context(ctx, 0));
  if (st == nullptr || !st->any) {
    sqlite3_result_null(ctx);
    return;
  }
  sqlite3_result_int64(ctx, st->value);
}

int RegisterAll(sqlite3* db, const char** /*error*/, const struct sqlite3_api_routines* /*api*/) {
  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  int rc = sqlite3_create_function_v2(db, "ferry_canon", 2, flags, nullptr, &Canon, nullptr,
                                      nullptr, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db, "ferry_row_hash", -1, flags, nullptr, &RowHashFn, nullptr,
                                    nullptr, nullptr);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db, "ferry_xor", 1, flags, nullptr, nullptr, &XorStep,
                                    &XorFinal, nullptr);
  }
  return rc;
}

}  // namespace

void RegisterSqliteVerifyFunctions() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_auto_extension(reinterpret_cast<void (*)()>(&RegisterAll));
  });
}

}  // namespace ferry
