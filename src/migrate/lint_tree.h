// Reading libpg_query's JSON parse tree for the lint rules (lint_rules.cc):
// field accessors, relation and type names, clause text, expression
// volatility. Private to the linter.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::lint_internal {

using nlohmann::json;

const json* Field(const json& obj, const char* key);

std::string Str(const json& obj, const char* key);

bool Bool(const json& obj, const char* key);

int Int(const json& obj, const char* key, int fallback = -1);

const json& Arr(const json& obj, const char* key);

// {"String": {"sval": x}} items of a list, e.g. a qualified name.
std::vector<std::string> Names(const json& list);

struct Rel {
  std::string schema;
  std::string name;
  std::string key() const { return schema.empty() ? name : schema + "." + name; }
  std::string sql() const { return key(); }
};

Rel RelOf(const json* range_var);

// The type name as written, lower case: "int4", "timestamp", "varchar", "serial".
std::string TypeOf(const json* column_def);

bool HasTypmods(const json* column_def);

bool IsSerialType(const std::string& t);

bool IsWord(char c);

// Text of the clause starting at byte `loc` of `sql`: up to a top-level ','
// or the end, or a top-level word of `stops` (not the first word).
std::string Clause(std::string_view sql, int loc, const std::vector<std::string_view>& stops = {});

extern const std::vector<std::string_view> kColumnStops;

std::string TypeText(std::string_view sql, const json* column_def);

// Functions whose value changes per row: a default using them is evaluated
// for every existing row, so the table is rewritten.
bool IsVolatileFunction(const std::string& name);

// Functions known not to be volatile (stable or immutable).
bool IsKnownStableFunction(const std::string& name);

// The smallest "location" inside an expression: where its text starts.
int ExprStart(const json& node);

enum class Volatility { kConstant, kUnknown, kVolatile };

// Walks an expression: the worst function it calls.
Volatility VolatilityOf(const json& node, std::string* culprit);

// "CREATE [UNIQUE] INDEX ..." -> the same with CONCURRENTLY after INDEX.
std::string WithConcurrently(const std::string& sql);

std::string Join(const std::vector<std::string>& items, std::string_view sep);

}  // namespace ferry::lint_internal
