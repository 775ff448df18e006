// Expand/contract, the parsing stage: a `-- ferry:expand` block's clauses
// -> a draft, resolved against the table's catalog into an ExpandSpec.
#include <fmt/format.h>

#include <algorithm>

#include "core/hash.h"
#include "move/expand.h"
#include "move/expand_internal.h"
#include "move/table_info.h"

namespace ferry {
namespace expand_internal {
namespace {

constexpr std::string_view kClauses =
    "clauses are: change COL type TYPE | rename OLD to NEW [type TYPE] | split OLD into NEW TYPE, "
    "NEW TYPE | merge OLD, OLD into NEW TYPE | not null COL | up COL = EXPR | down COL = EXPR | "
    "batch_rows N | workers N";

}  // namespace

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Reads one identifier ("name" or plain) from the front of `s`; "" when none.
std::string TakeIdent(std::string_view* s) {
  std::string_view in = Trim(*s);
  std::string out;
  if (!in.empty() && in.front() == '"') {
    size_t i = 1;
    while (i < in.size()) {
      if (in[i] == '"') {
        if (i + 1 < in.size() && in[i + 1] == '"') {
          out += '"';
          i += 2;
          continue;
        }
        *s = in.substr(i + 1);
        return out;
      }
      out += in[i++];
    }
    return "";
  }
  size_t i = 0;
  while (i < in.size() && (std::isalnum(static_cast<unsigned char>(in[i])) || in[i] == '_' ||
                           in[i] == '$' || in[i] == '.')) {
    ++i;
  }
  out = Lower(in.substr(0, i));  // unquoted names fold to lower case, as in SQL
  *s = in.substr(i);
  return out;
}

// Consumes keyword `kw` (case-insensitive, whole word) from the front of `s`.
bool TakeKeyword(std::string_view* s, std::string_view kw) {
  std::string_view in = Trim(*s);
  if (in.size() < kw.size() || Lower(in.substr(0, kw.size())) != kw) return false;
  if (in.size() > kw.size() && (std::isalnum(static_cast<unsigned char>(in[kw.size()])) ||
                                in[kw.size()] == '_')) {
    return false;
  }
  *s = in.substr(kw.size());
  return true;
}

// Splits on commas outside parentheses and quotes.
std::vector<std::string> SplitTopLevel(std::string_view s) {
  std::vector<std::string> out;
  int depth = 0;
  bool quote = false;
  std::string cur;
  for (char c : s) {
    if (c == '"') quote = !quote;
    if (!quote && c == '(') ++depth;
    if (!quote && c == ')') --depth;
    if (!quote && depth == 0 && c == ',') {
      out.emplace_back(Trim(cur));
      cur.clear();
      continue;
    }
    cur += c;
  }
  if (!Trim(cur).empty()) out.emplace_back(Trim(cur));
  return out;
}

Status BlockError(const std::string& file, int line, std::string message) {
  return Status(StatusCode::kInvalidArgument, fmt::format("{}:{}: {}", file, line, message))
      .With("file", file)
      .With("line", std::to_string(line));
}

Result<Draft> ParseDraft(const OnlineBlock& block, const std::string& file) {
  Draft d;
  d.spec.file = file;
  d.spec.line = block.line;
  std::string_view header = block.header;
  d.spec.table = TakeIdent(&header);
  if (d.spec.table.empty() || !Trim(header).empty()) {
    return BlockError(file, block.line,
                      "'-- ferry:expand' names one table: '-- ferry:expand users' (then one "
                      "clause per indented comment line below)");
  }
  if (block.body.empty()) {
    return BlockError(file, block.line,
                      fmt::format("'-- ferry:expand {}' has no clauses: add indented comment "
                                  "lines below it, e.g. '--   change amount type numeric(12,2)'; {}",
                                  d.spec.table, kClauses));
  }
  std::vector<std::string> summary;
  for (const auto& [line, text] : block.body) {
    std::string_view s = text;
    auto bad = [&, line = line, text = text](std::string why) {
      return BlockError(file, line, fmt::format("cannot read '{}': {}; {}", text, why, kClauses));
    };
    if (TakeKeyword(&s, "change")) {
      std::string col = TakeIdent(&s);
      if (col.empty() || !TakeKeyword(&s, "type") || Trim(s).empty()) {
        return bad("write 'change COLUMN type TYPE'");
      }
      d.ops.push_back({"change", {col}, {{col, std::string(Trim(s))}}, line});
      summary.push_back(fmt::format("change {} type {}", col, Trim(s)));
    } else if (TakeKeyword(&s, "rename")) {
      std::string from = TakeIdent(&s);
      std::string to;
      if (from.empty() || !TakeKeyword(&s, "to") || (to = TakeIdent(&s)).empty()) {
        return bad("write 'rename OLD to NEW'");
      }
      std::string type;
      if (TakeKeyword(&s, "type")) type = std::string(Trim(s));
      else if (!Trim(s).empty()) return bad("unexpected text after the new name");
      d.ops.push_back({"rename", {from}, {{to, type}}, line});
      summary.push_back(fmt::format("rename {} to {}", from, to));
    } else if (TakeKeyword(&s, "split")) {
      std::string from = TakeIdent(&s);
      if (from.empty() || !TakeKeyword(&s, "into")) return bad("write 'split OLD into A TYPE, B TYPE'");
      Draft::Op op{"split", {from}, {}, line};
      for (const std::string& part : SplitTopLevel(s)) {
        std::string_view p = part;
        std::string name = TakeIdent(&p);
        if (name.empty() || Trim(p).empty()) return bad("each new column needs a name and a type");
        op.news.emplace_back(name, std::string(Trim(p)));
      }
      if (op.news.size() < 2) return bad("split makes two or more columns");
      summary.push_back(fmt::format("split {} into {}", from, Trim(s)));
      d.ops.push_back(std::move(op));
    } else if (TakeKeyword(&s, "merge")) {
      std::string_view rest = s;
      size_t into = Lower(rest).find(" into ");
      if (into == std::string_view::npos) return bad("write 'merge A, B into NEW TYPE'");
      Draft::Op op{"merge", {}, {}, line};
      for (const std::string& part : SplitTopLevel(rest.substr(0, into))) {
        std::string_view p = part;
        std::string name = TakeIdent(&p);
        if (name.empty() || !Trim(p).empty()) return bad("list the old columns separated by commas");
        op.olds.push_back(name);
      }
      std::string_view tail = rest.substr(into + 6);
      std::string name = TakeIdent(&tail);
      if (name.empty() || Trim(tail).empty()) return bad("the new column needs a name and a type");
      if (op.olds.size() < 2) return bad("merge joins two or more columns");
      op.news.emplace_back(name, std::string(Trim(tail)));
      summary.push_back(fmt::format("merge {} into {}", Trim(rest.substr(0, into)), name));
      d.ops.push_back(std::move(op));
    } else if (TakeKeyword(&s, "not")) {
      std::string col;
      if (!TakeKeyword(&s, "null") || (col = TakeIdent(&s)).empty() || !Trim(s).empty()) {
        return bad("write 'not null COLUMN'");
      }
      d.not_null.emplace_back(col, line);
      summary.push_back(fmt::format("not null {}", col));
    } else if (TakeKeyword(&s, "up") || TakeKeyword(&s, "down")) {
      bool up = Lower(Trim(text)).rfind("up", 0) == 0;
      std::string col = TakeIdent(&s);
      std::string_view expr = Trim(s);
      if (col.empty() || expr.empty() || expr.front() != '=' || Trim(expr.substr(1)).empty()) {
        return bad(fmt::format("write '{} COLUMN = EXPRESSION'", up ? "up" : "down"));
      }
      auto& list = up ? d.up_expr : d.down_expr;
      auto& lines = up ? d.ups : d.downs;
      for (const auto& [c, e] : list) {
        if (c == col) return bad(fmt::format("a second {} expression for {}", up ? "up" : "down", col));
      }
      list.emplace_back(col, std::string(Trim(expr.substr(1))));
      lines.emplace_back(col, line);
    } else if (TakeKeyword(&s, "batch_rows") || TakeKeyword(&s, "workers")) {
      bool rows = Lower(Trim(text)).rfind("batch_rows", 0) == 0;
      std::string v(Trim(s));
      int64_t n = std::atoll(v.c_str());
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || n <= 0 ||
          (!rows && n > 64)) {
        return bad(rows ? "batch_rows takes a positive count" : "workers takes 1..64");
      }
      if (rows) d.spec.batch_rows = n;
      else d.spec.workers = static_cast<int>(n);
    } else {
      return bad("unknown clause");
    }
  }
  if (d.ops.empty() && d.not_null.empty()) {
    return BlockError(file, block.line,
                      "the expand block changes nothing: add change, rename, split, merge or not "
                      "null");
  }
  d.spec.summary = Join(summary, "; ");
  return d;
}

// Resolves a draft against the table: types, scopes, defaults, checks.
Result<ExpandSpec> Resolve(Draft d, const TableInfo& t) {
  ExpandSpec& s = d.spec;
  s.schema = t.schema;
  s.name = t.name;
  for (const ColumnInfo& c : t.columns) s.old_columns.push_back(c.name);
  const std::string& file = s.file;
  auto column = [&](const std::string& name, int line) -> Result<const ColumnInfo*> {
    const ColumnInfo* c = t.Find(name);
    if (c == nullptr) {
      return Status(StatusCode::kNotFound,
                    fmt::format("{}:{}: table {}.{} has no column {}", file, line, t.schema,
                                t.name, name))
          .With("file", file);
    }
    if (c->pk_position > 0) {
      return BlockError(file, line,
                        fmt::format("{} is part of the primary key of {}: expand/contract "
                                    "changes other columns (the key identifies rows while both "
                                    "versions run); change the key with a regular migration",
                                    name, t.name));
    }
    if (c->generated) {
      return BlockError(file, line, fmt::format("{} is a generated column: change its expression "
                                                "with a regular migration", name));
    }
    return c;
  };
  for (const Draft::Op& op : d.ops) {
    for (const std::string& old : op.olds) {
      FERRY_ASSIGN_OR_RETURN(const ColumnInfo* c, column(old, op.line));
      if (IsReplaced(s, old)) {
        return BlockError(file, op.line, fmt::format("{} is already changed by this block", old));
      }
      std::string down;
      if (op.kind == "change") down = old;  // the new column under the same name
      if (op.kind == "rename") down = op.news[0].first;
      s.replaced.push_back({old, c->type, down});
    }
    for (const auto& [name, type] : op.news) {
      ExpandAdded a;
      a.name = name;
      a.type = type.empty() ? t.Find(op.olds[0])->type : type;
      if (op.kind == "change") {
        a.physical = std::string("_ferry_new_") + name;
        if (a.physical.size() > 63) a.physical = fmt::format("_ferry_new_{:016x}", Xxh3(name));
        a.up = name;
      } else {
        a.physical = name;
        if (op.kind == "rename") a.up = op.olds[0];
      }
      if (t.Find(a.physical) != nullptr) {
        return BlockError(
            file, op.line,
            fmt::format("{} already has a column {}{}", t.name, a.physical,
                        a.physical.rfind("_ferry_new_", 0) == 0
                            ? ": an earlier expand left it; 'ferry abort' or drop it first"
                            : ": pick another name"));
      }
      for (const ExpandAdded& other : s.added) {
        if (other.name == a.name) return BlockError(file, op.line, fmt::format("{} is added twice", name));
      }
      s.added.push_back(std::move(a));
    }
  }
  for (const auto& [col, expr] : d.up_expr) {
    int line = 0;
    for (const auto& [c, l] : d.ups) if (c == col) line = l;
    auto it = std::find_if(s.added.begin(), s.added.end(), [&](const ExpandAdded& a) { return a.name == col; });
    if (it != s.added.end()) {
      it->up = expr;
      continue;
    }
    bool nn = std::any_of(d.not_null.begin(), d.not_null.end(), [&](const auto& p) { return p.first == col; });
    if (!nn) {
      return BlockError(file, line,
                        fmt::format("'up {}' names no new column (up expressions compute new "
                                    "columns, or fill NULLs of a 'not null' column)",
                                    col));
    }
  }
  for (const auto& [col, expr] : d.down_expr) {
    int line = 0;
    for (const auto& [c, l] : d.downs) if (c == col) line = l;
    auto it = std::find_if(s.replaced.begin(), s.replaced.end(),
                           [&](const ExpandReplaced& r) { return r.name == col; });
    if (it == s.replaced.end()) {
      return BlockError(file, line,
                        fmt::format("'down {}' names no replaced column (down expressions "
                                    "compute old columns from the new ones)",
                                    col));
    }
    it->down = expr;
  }
  for (const ExpandAdded& a : s.added) {
    if (a.up.empty()) {
      return BlockError(file, s.line,
                        fmt::format("new column {} needs 'up {} = EXPRESSION' (how to compute it "
                                    "from the old columns)",
                                    a.name, a.name));
    }
  }
  for (const auto& [col, line] : d.not_null) {
    auto it = std::find_if(s.added.begin(), s.added.end(), [&](const ExpandAdded& a) { return a.name == col; });
    if (it != s.added.end()) {
      it->not_null = true;
      continue;
    }
    if (IsReplaced(s, col)) {
      return BlockError(file, line, fmt::format("{} is dropped by this change; 'not null' applies "
                                                "to new or kept columns", col));
    }
    FERRY_ASSIGN_OR_RETURN(const ColumnInfo* c, column(col, line));
    ExpandNotNull n{col, c->type, ""};
    for (const auto& [uc, ue] : d.up_expr) if (uc == col) n.up = ue;
    s.not_null.push_back(std::move(n));
  }
  s.function = ObjectName("ferry_expand", s.version, s.name);
  s.trigger = s.function;
  return std::move(d.spec);
}

}  // namespace expand_internal

using namespace expand_internal;

Result<ExpandSpec> ParseExpandBlock(const OnlineBlock& block, const std::string& file) {
  FERRY_ASSIGN_OR_RETURN(Draft d, ParseDraft(block, file));
  return std::move(d.spec);
}

}  // namespace ferry
