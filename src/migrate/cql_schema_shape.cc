#include "migrate/cql_schema_shape.h"

#include <cctype>

namespace ferry {
namespace {

using cql_tokens::Tokens;

// Index just past the group that opens at `open` ("(" ... ")").
size_t SkipGroup(const Tokens& t, size_t open) {
  int depth = 0;
  for (size_t i = open; i < t.size(); ++i) {
    if (t.at(i).text == "(") ++depth;
    if (t.at(i).text == ")" && --depth == 0) return i + 1;
  }
  return t.size();
}

// Names inside ( ... ) from `open`, in order.
std::vector<std::string> NamesIn(const Tokens& t, size_t open) {
  std::vector<std::string> out;
  const size_t end = SkipGroup(t, open);
  for (size_t i = open + 1; i + 1 < end; ++i) {
    if (!t.at(i).name.empty()) out.push_back(t.at(i).name);
  }
  return out;
}

void ReadKeyClause(const Tokens& t, size_t open, CqlTableShape* shape) {
  // open is the "(" after PRIMARY KEY.
  size_t i = open + 1;
  if (t.at(i).text == "(") {
    shape->partition_key = NamesIn(t, i);
    i = SkipGroup(t, i);
  } else {
    shape->partition_key = {t.at(i).name};
    ++i;
  }
  for (; i < t.size() && t.at(i).text != ")"; ++i) {
    if (!t.at(i).name.empty()) shape->clustering.push_back({t.at(i).name, "asc"});
  }
}

}  // namespace

std::string NormalizeCqlType(const std::string& type) {
  std::string out;
  for (char c : type) {
    if (!std::isspace(static_cast<unsigned char>(c))) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  std::string fixed;
  for (size_t i = 0; i < out.size();) {  // varchar is text
    if (out.compare(i, 7, "varchar") == 0 &&
        (i == 0 || !std::isalnum(static_cast<unsigned char>(out[i - 1])))) {
      fixed += "text";
      i += 7;
    } else {
      fixed += out[i++];
    }
  }
  return fixed;
}

CqlTableShape ReadTableShape(const Tokens& t, size_t open) {
  CqlTableShape shape;
  const size_t end = SkipGroup(t, open);
  int depth = 0;
  size_t item = open + 1;
  for (size_t i = open; i < end; ++i) {
    const std::string& x = t.at(i).text;
    if (x == "(" || x == "<") ++depth;
    if (x == ")" || x == ">") --depth;
    if (depth == 1 && t.Is(i, "PRIMARY") && t.Is(i + 1, "KEY")) {
      if (t.at(i + 2).text == "(") {
        ReadKeyClause(t, i + 2, &shape);
      } else if (!t.at(item).name.empty()) {
        shape.partition_key = {t.at(item).name};  // inline: `id int PRIMARY KEY`
      }
    }
    if (depth == 1 && x == ",") item = i + 1;
  }
  for (size_t i = end; i < t.size(); ++i) {
    if (!(t.Is(i, "CLUSTERING") && t.Is(i + 1, "ORDER") && t.Is(i + 2, "BY"))) continue;
    const size_t stop = SkipGroup(t, i + 3);
    for (size_t k = i + 4; k + 1 < stop; ++k) {
      if (t.at(k).name.empty() || t.Is(k, "ASC") || t.Is(k, "DESC")) continue;
      const std::string order = t.Is(k + 1, "DESC") ? "desc" : "asc";
      for (auto& [column, o] : shape.clustering) {
        if (column == t.at(k).name) o = order;
      }
    }
  }
  return shape;
}

std::map<std::string, std::string> ReadTableOptions(const Tokens& t, size_t from) {
  std::map<std::string, std::string> out;
  for (size_t i = from; i < t.size(); ++i) {
    const std::string& n = t.at(i).name;
    if (!t.Is(i + 1, "=")) continue;
    if (n == "default_time_to_live" || n == "gc_grace_seconds") {
      out[n] = t.at(i + 2).text;
    } else if (n == "compaction") {
      for (size_t k = i + 2; k < t.size() && t.at(k).text != "}"; ++k) {
        if (t.at(k).text == "'class'" && t.at(k + 1).text == ":") {
          out[n] = CompactionClass(t.at(k + 2).text);
        }
      }
    }
  }
  return out;
}

std::map<std::string, std::string> ReadAddedColumns(const Tokens& t, size_t i) {
  std::map<std::string, std::string> out;
  const bool list = t.at(i).text == "(";
  const size_t end = list ? SkipGroup(t, i) - 1 : t.size();
  size_t k = list ? i + 1 : i;
  while (k < end) {
    const std::string column = t.at(k).name;
    std::string type;
    int depth = 0;
    for (++k; k < end; ++k) {
      const std::string& x = t.at(k).text;
      if (x == "<") ++depth;
      if (x == ">") --depth;
      if (depth == 0 && (x == "," || t.Is(k, "STATIC") || x == ";")) break;
      type += x;
    }
    if (!column.empty()) out[column] = NormalizeCqlType(type);
    while (k < end && t.at(k).text != ",") ++k;
    ++k;
  }
  return out;
}

std::string CompactionClass(const std::string& text) {
  const std::string suffix = "CompactionStrategy";
  const size_t at = text.find(suffix);
  if (at == std::string::npos) return "";
  size_t start = at;
  while (start > 0 && std::isalnum(static_cast<unsigned char>(text[start - 1]))) --start;
  return text.substr(start, at + suffix.size() - start);
}

}  // namespace ferry
