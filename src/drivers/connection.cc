#include "drivers/connection.h"

#include <fmt/format.h>

#include <cstdlib>

#include "drivers/lease.h"

namespace ferry {

Status EngineTraits::SettleSchema(Connection&, std::string_view, std::chrono::milliseconds) const {
  return Status();
}

Result<std::unique_ptr<TableLease>> EngineTraits::OpenLease(Connection&, std::string, std::string,
                                                            std::string,
                                                            std::chrono::seconds) const {
  return Status(StatusCode::kUnimplemented,
                fmt::format("{} has no table leases", name()));
}

Result<std::string> EngineTraits::DescribeSchema(Connection&, const std::string&) const {
  return Status(StatusCode::kUnimplemented,
                fmt::format("--backup is not available on {} yet", name()));
}

const std::string& QueryResult::Text(size_t row, size_t col) const {
  static const std::string kEmpty;
  const Value& v = rows.at(row).at(col);
  return v ? *v : kEmpty;
}

std::string PgLiteral(std::string_view value) {
  const bool escape = value.find('\\') != std::string_view::npos;
  std::string out = escape ? "E'" : "'";
  out.reserve(value.size() + 3);
  for (char c : value) {
    if (c == '\'' || (escape && c == '\\')) out += c;
    out += c;
  }
  return out + "'";
}

std::string QuoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string QuoteQualified(std::string_view name) {
  size_t dot = name.find('.');
  if (dot == std::string_view::npos) return QuoteIdent(name);
  return QuoteIdent(name.substr(0, dot)) + "." + QuoteIdent(name.substr(dot + 1));
}

std::string FoldWhitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string Excerpt(std::string_view sql, size_t max_chars) {
  std::string out = FoldWhitespace(sql);
  if (out.size() <= max_chars) return out;
  out.resize(max_chars);
  // Do not cut a UTF-8 sequence in half.
  while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
  if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0x80)) out.pop_back();
  out += "...";
  return out;
}

}  // namespace ferry
