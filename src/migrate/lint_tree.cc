// The lint rules' parse-tree reading (see lint_tree.h).
#include "migrate/lint_tree.h"

#include <fmt/format.h>

#include "migrate/lint_internal.h"

namespace ferry::lint_internal {

const json* Field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string Str(const json& obj, const char* key) {
  const json* f = Field(obj, key);
  return f != nullptr && f->is_string() ? f->get<std::string>() : std::string();
}

bool Bool(const json& obj, const char* key) {
  const json* f = Field(obj, key);
  return f != nullptr && f->is_boolean() && f->get<bool>();
}

int Int(const json& obj, const char* key, int fallback) {
  const json* f = Field(obj, key);
  return f != nullptr && f->is_number_integer() ? f->get<int>() : fallback;
}

const json& Arr(const json& obj, const char* key) {
  static const json kEmpty = json::array();
  const json* f = Field(obj, key);
  return f != nullptr && f->is_array() ? *f : kEmpty;
}

// {"String": {"sval": x}} items of a list, e.g. a qualified name.
std::vector<std::string> Names(const json& list) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  for (const json& item : list) {
    if (const json* s = Field(item, "String")) out.push_back(Str(*s, "sval"));
  }
  return out;
}

Rel RelOf(const json* range_var) {
  Rel r;
  if (range_var == nullptr) return r;
  r.schema = Str(*range_var, "schemaname");
  r.name = Str(*range_var, "relname");
  return r;
}

// The type name as written, lower case: "int4", "timestamp", "varchar", "serial".
std::string TypeOf(const json* column_def) {
  if (column_def == nullptr) return "";
  const json* type = Field(*column_def, "typeName");
  if (type == nullptr) return "";
  std::vector<std::string> names = Names(Arr(*type, "names"));
  return names.empty() ? "" : names.back();
}

bool HasTypmods(const json* column_def) {
  const json* type = column_def ? Field(*column_def, "typeName") : nullptr;
  return type != nullptr && !Arr(*type, "typmods").empty();
}

bool IsSerialType(const std::string& t) {
  return t == "serial" || t == "serial4" || t == "bigserial" || t == "serial8" ||
         t == "smallserial" || t == "serial2";
}

bool IsWord(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Text of the clause starting at byte `loc` of `sql`: up to a top-level ','
// or the end, or a top-level word of `stops` (not the first word).
std::string Clause(std::string_view sql, int loc, const std::vector<std::string_view>& stops) {
  if (loc < 0 || static_cast<size_t>(loc) >= sql.size()) return "";
  size_t i = static_cast<size_t>(loc);
  size_t begin = i;
  int depth = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      char q = c;
      ++i;
      while (i < sql.size() && !(sql[i] == q && (i + 1 >= sql.size() || sql[i + 1] != q))) {
        if (sql[i] == q) ++i;  // doubled quote
        ++i;
      }
      ++i;
      continue;
    }
    if (c == '(') ++depth;
    if (c == ')') {
      if (depth == 0) break;
      --depth;
    }
    if (depth == 0 && (c == ',' || c == ';')) break;
    if (depth == 0 && i > begin && IsWord(c) && !IsWord(sql[i - 1])) {
      size_t end = i;
      while (end < sql.size() && IsWord(sql[end])) ++end;
      std::string word = Lower(sql.substr(i, end - i));
      bool stop = false;
      for (std::string_view s : stops) stop |= word == s;
      if (stop) break;
      i = end;
      continue;
    }
    ++i;
  }
  std::string_view out = sql.substr(begin, i - begin);
  while (!out.empty() && (out.back() == ' ' || out.back() == '\n' || out.back() == '\t')) {
    out.remove_suffix(1);
  }
  return std::string(out);
}

const std::vector<std::string_view> kColumnStops = {
    "default", "not", "null", "constraint", "check", "references", "unique",
    "primary", "collate", "generated"};

std::string TypeText(std::string_view sql, const json* column_def) {
  const json* type = column_def ? Field(*column_def, "typeName") : nullptr;
  if (type == nullptr) return "<type>";
  std::string text = Clause(sql, Int(*type, "location"), kColumnStops);
  return text.empty() ? "<type>" : text;
}

// Functions whose value changes per row: a default using them is evaluated
// for every existing row, so the table is rewritten.
bool IsVolatileFunction(const std::string& name) {
  static const std::set<std::string> kVolatile = {
      "random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
      "clock_timestamp", "timeofday", "nextval", "txid_current", "setseed", "random_normal",
      "gen_random_bytes", "uuidv4", "uuidv7"};
  return kVolatile.count(name) > 0;
}

// Functions known not to be volatile (stable or immutable).
bool IsKnownStableFunction(const std::string& name) {
  static const std::set<std::string> kStable = {
      "now", "transaction_timestamp", "statement_timestamp", "lower", "upper", "coalesce",
      "to_jsonb", "jsonb_build_object", "json_build_object", "jsonb_build_array", "array",
      "to_timestamp", "make_date", "make_interval", "current_setting", "concat", "nullif",
      "length", "btrim", "trim", "abs", "round", "date_trunc"};
  return kStable.count(name) > 0;
}

// The smallest "location" inside an expression: where its text starts.
int ExprStart(const json& node) {
  int best = -1;
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      int loc = key == "location" && value.is_number_integer() ? value.get<int>() : ExprStart(value);
      if (loc >= 0 && (best < 0 || loc < best)) best = loc;
    }
  } else if (node.is_array()) {
    for (const json& item : node) {
      int loc = ExprStart(item);
      if (loc >= 0 && (best < 0 || loc < best)) best = loc;
    }
  }
  return best;
}

// Walks an expression: the worst function it calls.
Volatility VolatilityOf(const json& node, std::string* culprit) {
  Volatility worst = Volatility::kConstant;
  if (node.is_object()) {
    if (const json* call = Field(node, "FuncCall")) {
      std::vector<std::string> name = Names(Arr(*call, "funcname"));
      std::string f = name.empty() ? "" : Lower(name.back());
      if (IsVolatileFunction(f)) {
        *culprit = f + "()";
        return Volatility::kVolatile;
      }
      if (!IsKnownStableFunction(f)) {
        worst = Volatility::kUnknown;
        *culprit = f + "()";
      }
    }
    for (const auto& [key, value] : node.items()) {
      Volatility v = VolatilityOf(value, culprit);
      if (v > worst) worst = v;
      if (worst == Volatility::kVolatile) return worst;
    }
  } else if (node.is_array()) {
    for (const json& item : node) {
      Volatility v = VolatilityOf(item, culprit);
      if (v > worst) worst = v;
      if (worst == Volatility::kVolatile) return worst;
    }
  }
  return worst;
}

// "CREATE [UNIQUE] INDEX ..." -> the same with CONCURRENTLY after INDEX.
std::string WithConcurrently(const std::string& sql) {
  std::string lower = Lower(sql);
  size_t pos = 0;
  while ((pos = lower.find("index", pos)) != std::string::npos) {
    bool starts = pos == 0 || !IsWord(lower[pos - 1]);
    bool ends = pos + 5 >= lower.size() || !IsWord(lower[pos + 5]);
    if (starts && ends) {
      return sql.substr(0, pos + 5) + " CONCURRENTLY" + sql.substr(pos + 5) + ";";
    }
    pos += 5;
  }
  return sql + ";";
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

}  // namespace ferry::lint_internal
