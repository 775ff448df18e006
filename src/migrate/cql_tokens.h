// A CQL statement as tokens: keywords compared in upper case, identifiers
// lower-cased unless quoted. Shared by CQL lint (cql_lint_rules.cc) and the
// CQL schema check (cql_schema.cc). Not a parser: enough to read DDL.
#pragma once

#include <cctype>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::cql_tokens {

struct Token {
  std::string text;   // as written (quotes kept for '...')
  std::string upper;  // upper case, for keywords
  std::string name;   // identifier: lower case, or the quoted name as is
};

inline std::vector<Token> Tokenize(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    size_t start = i;
    Token t;
    if (c == '\'' || c == '"') {
      for (++i; i < s.size(); ++i) {
        if (s[i] == c && i + 1 < s.size() && s[i + 1] == c) {
          ++i;
        } else if (s[i] == c) {
          break;
        }
      }
      ++i;
      t.text = std::string(s.substr(start, i - start));
      if (c == '"' && t.text.size() >= 2) t.name = t.text.substr(1, t.text.size() - 2);
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
      t.text = std::string(s.substr(start, i - start));
      for (char ch : t.text) t.name += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    } else {
      t.text = std::string(1, c);
      ++i;
    }
    t.upper = t.text;
    for (char& ch : t.upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    out.push_back(std::move(t));
  }
  return out;
}

class Tokens {
 public:
  explicit Tokens(std::vector<Token> t) : t_(std::move(t)) {}
  bool Is(size_t i, std::string_view upper) const { return i < t_.size() && t_[i].upper == upper; }
  const Token& at(size_t i) const {
    static const Token kEnd;
    return i < t_.size() ? t_[i] : kEnd;
  }
  size_t size() const { return t_.size(); }
  // Whether the words appear in a row anywhere from `from`.
  bool Has(std::initializer_list<std::string_view> words, size_t from = 0) const {
    for (size_t i = from; i + words.size() <= t_.size(); ++i) {
      size_t k = 0;
      for (std::string_view w : words) {
        if (t_[i + k].upper != w) break;
        ++k;
      }
      if (k == words.size()) return true;
    }
    return false;
  }
  // "ks.table" or "table" starting at i; sets *next past it.
  std::string QualifiedName(size_t i, size_t* next) const {
    std::string n = at(i).name;
    if (Is(i + 1, ".")) {
      n += "." + at(i + 2).name;
      i += 2;
    }
    *next = i + 1;
    return n;
  }

 private:
  std::vector<Token> t_;
};

// The column list of CREATE TABLE ... ( ... ): name -> type, and key columns.
inline void ReadColumns(const Tokens& t, size_t open, std::map<std::string, std::string>* types,
                 std::set<std::string>* key) {
  int depth = 0;
  size_t item = open + 1;
  for (size_t i = open; i < t.size(); ++i) {
    const std::string& x = t.at(i).text;
    if (x == "(" || x == "<") ++depth;
    if (x == ")" || x == ">") --depth;
    const bool end_of_item = (depth == 1 && x == ",") || (depth == 0 && x == ")");
    if (!end_of_item) continue;
    if (t.Is(item, "PRIMARY") && t.Is(item + 1, "KEY")) {
      for (size_t k = item + 2; k < i; ++k) {
        if (!t.at(k).name.empty()) key->insert(t.at(k).name);
      }
    } else if (!t.at(item).name.empty()) {
      std::string type;
      for (size_t k = item + 1; k < i && !t.Is(k, "PRIMARY") && !t.Is(k, "STATIC"); ++k) {
        type += t.at(k).upper;
      }
      (*types)[t.at(item).name] = type;
      if (t.Has({"PRIMARY", "KEY"}, item) && t.Is(i - 1, "KEY")) key->insert(t.at(item).name);
    }
    item = i + 1;
    if (depth == 0) break;
  }
}

}  // namespace ferry::cql_tokens
