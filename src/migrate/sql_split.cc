#include "migrate/sql_split.h"

#include <fmt/format.h>
#include <pg_query.h>
#include <sqlite3.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "drivers/cql/cql_split.h"

namespace ferry {
namespace {

using nlohmann::json;

constexpr size_t kExcerptChars = 200;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsWordStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsWordChar(char c) { return IsWordStart(c) || (c >= '0' && c <= '9') || c == '$'; }

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

// Position of the first byte at or after `pos` that is neither whitespace
// nor inside a comment. PostgreSQL block comments nest; SQLite's do not.
size_t SkipSpaceAndComments(std::string_view sql, size_t pos, bool nested_comments) {
  while (pos < sql.size()) {
    char c = sql[pos];
    if (IsSpace(c)) {
      ++pos;
    } else if (c == '-' && pos + 1 < sql.size() && sql[pos + 1] == '-') {
      size_t eol = sql.find('\n', pos);
      pos = eol == std::string_view::npos ? sql.size() : eol + 1;
    } else if (c == '/' && pos + 1 < sql.size() && sql[pos + 1] == '*') {
      int depth = 1;
      pos += 2;
      while (pos < sql.size() && depth > 0) {
        if (sql[pos] == '*' && pos + 1 < sql.size() && sql[pos + 1] == '/') {
          --depth;
          pos += 2;
        } else if (nested_comments && sql[pos] == '/' && pos + 1 < sql.size() &&
                   sql[pos + 1] == '*') {
          ++depth;
          pos += 2;
        } else {
          ++pos;
        }
      }
    } else {
      return pos;
    }
  }
  return pos;
}

std::string_view TrimTrailingSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Counts lines through a script; cheap when positions only grow.
class LineCounter {
 public:
  LineCounter(std::string_view text, int first_line)
      : text_(text), first_line_(first_line), line_(first_line) {}
  int LineAt(size_t pos) {
    pos = std::min(pos, text_.size());
    if (pos < pos_) {
      pos_ = 0;
      line_ = first_line_;
    }
    line_ += static_cast<int>(std::count(text_.begin() + static_cast<std::ptrdiff_t>(pos_),
                                         text_.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
    pos_ = pos;
    return line_;
  }

 private:
  std::string_view text_;
  int first_line_;
  size_t pos_ = 0;
  int line_;
};

// One-line excerpt of a statement for error messages.
std::string Excerpt(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (IsSpace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
    if (out.size() >= kExcerptChars) {
      // Do not cut a UTF-8 sequence in half.
      while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) {
        out.pop_back();
      }
      if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
      out += "...";
      break;
    }
  }
  return out;
}

// Byte offset of the 1-based character position `cursorpos` (what the
// PostgreSQL parser reports, counting UTF-8 characters).
size_t ByteOffsetOfCharPos(std::string_view text, int cursorpos) {
  size_t pos = 0;
  int chars = 0;
  while (pos < text.size() && chars < cursorpos - 1) {
    ++pos;
    while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
    ++chars;
  }
  return pos;
}

struct LineColumn {
  int line;
  int column;  // 1-based, in characters
};

LineColumn LocateByte(std::string_view text, size_t offset, int first_line) {
  offset = std::min(offset, text.size());
  LineColumn lc{first_line, 1};
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++lc.line;
      lc.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++lc.column;
    }
  }
  return lc;
}

// Builds the error for a syntax error at byte `offset` of `sql`. The scanner
// split (which tolerates syntax errors) finds the statement to quote.
Status SyntaxError(std::string_view sql, const std::string& nul_terminated, int first_line,
                   const std::string& message, std::optional<size_t> offset) {
  std::string excerpt;
  PgQuerySplitResult scan = pg_query_split_with_scanner(nul_terminated.c_str());
  if (scan.error == nullptr && offset.has_value()) {
    // The failing statement begins after the last ';' the scanner found
    // before the error and ends at the next one (or the end of the script).
    size_t begin = 0;
    size_t end = sql.size();
    for (int i = 0; i < scan.n_stmts; ++i) {
      size_t loc = std::min(static_cast<size_t>(scan.stmts[i]->stmt_location), sql.size());
      size_t stop = std::min(loc + static_cast<size_t>(scan.stmts[i]->stmt_len), sql.size());
      if (stop < *offset) {
        begin = std::min(stop + 1, sql.size());
      } else {
        end = stop;
        break;
      }
    }
    std::string_view raw = sql.substr(begin, end - begin);
    excerpt = Excerpt(raw.substr(SkipSpaceAndComments(raw, 0, true)));
  }
  pg_query_free_split_result(scan);
  if (excerpt.empty() && offset.has_value()) {
    // Fall back to the line holding the error.
    size_t bol = sql.rfind('\n', *offset == 0 ? 0 : *offset - 1);
    bol = (bol == std::string_view::npos || *offset == 0) ? 0 : bol + 1;
    size_t eol = sql.find('\n', *offset);
    excerpt = Excerpt(sql.substr(bol, eol == std::string_view::npos ? eol : eol - bol));
  }
  std::string text = "SQL syntax error";
  std::string line;
  std::string column;
  if (offset.has_value()) {
    LineColumn lc = LocateByte(sql, *offset, first_line);
    line = std::to_string(lc.line);
    column = std::to_string(lc.column);
    text += fmt::format(" at line {}, column {}", line, column);
  }
  text += ": " + message;
  if (!excerpt.empty()) text += fmt::format(" (in: {})", excerpt);
  return Status(StatusCode::kInvalidArgument, std::move(text))
      .With("line", std::move(line))
      .With("column", std::move(column))
      .With("statement", std::move(excerpt));
}

// ---- classification ------------------------------------------------------

const json* Field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool BoolField(const json& obj, const char* key) {
  const json* f = Field(obj, key);
  return f != nullptr && f->is_boolean() && f->get<bool>();
}

std::string StringField(const json& obj, const char* key) {
  const json* f = Field(obj, key);
  return (f != nullptr && f->is_string()) ? f->get<std::string>() : std::string();
}

// The DefElem named `name` in the list `obj[key]`, or nullptr.
const json* FindDefElem(const json& obj, const char* key, std::string_view name) {
  const json* list = Field(obj, key);
  if (list == nullptr || !list->is_array()) return nullptr;
  for (const json& item : *list) {
    const json* def = Field(item, "DefElem");
    if (def != nullptr && StringField(*def, "defname") == name) return def;
  }
  return nullptr;
}

// The boolean value of a DefElem as the server reads it (defGetBoolean): no
// argument means true; true/false/on/off/1/0. Unknown spellings -> nullopt.
std::optional<bool> DefElemBool(const json& def) {
  const json* arg = Field(def, "arg");
  if (arg == nullptr) return true;
  std::string text;
  if (const json* s = Field(*arg, "String")) {
    text = StringField(*s, "sval");
  } else if (const json* i = Field(*arg, "Integer")) {
    const json* v = Field(*i, "ival");
    text = (v != nullptr && v->is_number()) ? std::to_string(v->get<long long>()) : "0";
  } else if (const json* b = Field(*arg, "Boolean")) {
    return BoolField(*b, "boolval");
  } else if (const json* t = Field(*arg, "TypeName")) {
    const json* names = Field(*t, "names");
    if (names != nullptr && names->is_array() && names->size() == 1) {
      if (const json* s2 = Field((*names)[0], "String")) text = StringField(*s2, "sval");
    }
  }
  if (EqualsIgnoreCase(text, "true") || EqualsIgnoreCase(text, "on") || text == "1") return true;
  if (EqualsIgnoreCase(text, "false") || EqualsIgnoreCase(text, "off") || text == "0") return false;
  return std::nullopt;
}

// True unless the option list sets `name` to false (the option defaults on).
bool OptionOnByDefault(const json& node, std::string_view name) {
  const json* def = FindDefElem(node, "options", name);
  if (def == nullptr) return true;
  return DefElemBool(*def).value_or(true);
}

void Refuse(Statement* s, std::string reason) {
  s->cannot_run_in_transaction = true;
  s->no_transaction_reason = std::move(reason);
}

// Sets the flags of `s` from its parse node. The list follows the server's
// PreventInTransactionBlock() calls (PostgreSQL 12-17).
void Classify(const std::string& type, const json& node, Statement* s) {
  s->node_type = type;
  if (type == "TransactionStmt") {
    s->is_transaction_control = true;
    std::string kind = StringField(node, "kind");
    if (kind == "TRANS_STMT_COMMIT_PREPARED") Refuse(s, "COMMIT PREPARED");
    if (kind == "TRANS_STMT_ROLLBACK_PREPARED") Refuse(s, "ROLLBACK PREPARED");
  } else if (type == "IndexStmt") {
    if (BoolField(node, "concurrent")) Refuse(s, "CREATE INDEX CONCURRENTLY");
  } else if (type == "DropStmt") {
    if (BoolField(node, "concurrent")) Refuse(s, "DROP INDEX CONCURRENTLY");
  } else if (type == "ReindexStmt") {
    const json* def = FindDefElem(node, "params", "concurrently");
    std::string kind = StringField(node, "kind");
    if (def != nullptr && DefElemBool(*def).value_or(true)) {
      Refuse(s, "REINDEX CONCURRENTLY");
    } else if (kind == "REINDEX_OBJECT_SCHEMA") {
      Refuse(s, "REINDEX SCHEMA");
    } else if (kind == "REINDEX_OBJECT_SYSTEM") {
      Refuse(s, "REINDEX SYSTEM");
    } else if (kind == "REINDEX_OBJECT_DATABASE") {
      Refuse(s, "REINDEX DATABASE");
    }
  } else if (type == "VacuumStmt") {
    // VACUUM in any form; ANALYZE alone runs in a transaction.
    if (BoolField(node, "is_vacuumcmd")) Refuse(s, "VACUUM");
  } else if (type == "CreatedbStmt") {
    Refuse(s, "CREATE DATABASE");
  } else if (type == "DropdbStmt") {
    Refuse(s, "DROP DATABASE");
  } else if (type == "AlterDatabaseStmt") {
    if (FindDefElem(node, "options", "tablespace") != nullptr) {
      Refuse(s, "ALTER DATABASE ... SET TABLESPACE");
    }
  } else if (type == "CreateTableSpaceStmt") {
    Refuse(s, "CREATE TABLESPACE");
  } else if (type == "DropTableSpaceStmt") {
    Refuse(s, "DROP TABLESPACE");
  } else if (type == "AlterSystemStmt") {
    Refuse(s, "ALTER SYSTEM");
  } else if (type == "ClusterStmt") {
    if (Field(node, "relation") == nullptr) Refuse(s, "CLUSTER without a table name");
  } else if (type == "DiscardStmt") {
    if (StringField(node, "target") == "DISCARD_ALL") Refuse(s, "DISCARD ALL");
  } else if (type == "CreateSubscriptionStmt") {
    // create_slot defaults to true, and to false with connect = false.
    const json* create_slot = FindDefElem(node, "options", "create_slot");
    bool slot = create_slot != nullptr ? DefElemBool(*create_slot).value_or(true)
                                       : OptionOnByDefault(node, "connect");
    if (slot) Refuse(s, "CREATE SUBSCRIPTION with a replication slot (create_slot = true)");
  } else if (type == "DropSubscriptionStmt") {
    // Refused when the subscription has a slot, which cannot be told from
    // the text; only slot_name = NONE subscriptions may be dropped inside.
    Refuse(s, "DROP SUBSCRIPTION of a subscription with a replication slot");
  } else if (type == "AlterSubscriptionStmt") {
    std::string kind = StringField(node, "kind");
    if (kind == "ALTER_SUBSCRIPTION_REFRESH") {
      Refuse(s, "ALTER SUBSCRIPTION ... REFRESH PUBLICATION");
    } else if ((kind == "ALTER_SUBSCRIPTION_SET_PUBLICATION" ||
                kind == "ALTER_SUBSCRIPTION_ADD_PUBLICATION" ||
                kind == "ALTER_SUBSCRIPTION_DROP_PUBLICATION") &&
               OptionOnByDefault(node, "refresh")) {
      Refuse(s, "ALTER SUBSCRIPTION ... PUBLICATION with refresh = true");
    }
  } else if (type == "AlterTableStmt") {
    const json* cmds = Field(node, "cmds");
    if (cmds != nullptr && cmds->is_array()) {
      for (const json& item : *cmds) {
        const json* cmd = Field(item, "AlterTableCmd");
        if (cmd == nullptr || StringField(*cmd, "subtype") != "AT_DetachPartition") continue;
        const json* def = Field(*cmd, "def");
        const json* part = def != nullptr ? Field(*def, "PartitionCmd") : nullptr;
        if (part != nullptr && BoolField(*part, "concurrent")) {
          Refuse(s, "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY");
        }
      }
    }
  } else if (type == "AlterEnumStmt") {
    // ADD VALUE has no oldVal; RENAME VALUE has one.
    if (Field(node, "oldVal") == nullptr) s->adds_enum_value = true;
  }
}

// Parses one statement and classifies it.
Status ClassifyPostgres(Statement* s) {
  PgQueryParseResult parsed = pg_query_parse(s->text.c_str());
  Status status;
  if (parsed.error != nullptr) {
    status = Status(StatusCode::kInternal,
                    fmt::format("statement at line {} split but did not parse: {}", s->line,
                                parsed.error->message))
                 .With("statement", Excerpt(s->text));
  } else {
    json tree = json::parse(parsed.parse_tree, nullptr, /*allow_exceptions=*/false);
    const json* stmts = Field(tree, "stmts");
    if (stmts != nullptr && stmts->is_array() && !stmts->empty()) {
      const json* stmt = Field((*stmts)[0], "stmt");
      if (stmt != nullptr && stmt->is_object() && !stmt->empty()) {
        Classify(stmt->begin().key(), stmt->begin().value(), s);
      }
    }
  }
  pg_query_free_parse_result(parsed);
  return status;
}

// ---- psql meta-commands --------------------------------------------------

std::string MetaCommandHint(std::string_view command) {
  if (command == "i" || command == "ir" || command == "include" || command == "include_relative") {
    return "inline the file or split it into migrations";
  }
  if (command == "c" || command == "connect") return "run one migration directory per database";
  if (command == "copy") return "load the data with INSERT statements or 'ferry copy'";
  if (command == "set" || command == "gset" || command == "unset") {
    return "write the values into the SQL";
  }
  if (command == "gexec") return "generate the statements with a DO block and EXECUTE";
  return "remove it";
}

// Byte-level scanner state for CheckForPsqlMetaCommands.
class PsqlScanner {
 public:
  PsqlScanner(std::string_view sql, int first_line) : sql_(sql), first_line_(first_line) {}

  std::vector<std::string> Run() {
    while (pos_ < sql_.size()) Step();
    return problems_;
  }

 private:
  int Line() { return lines_.LineAt(pos_); }

  void Step() {
    char c = sql_[pos_];
    char next = pos_ + 1 < sql_.size() ? sql_[pos_ + 1] : '\0';
    if (c == '-' && next == '-') {
      SkipTo('\n');
    } else if (c == '/' && next == '*') {
      pos_ = SkipSpaceAndComments(sql_, pos_, true);
    } else if (c == '\'') {
      bool escapes = pos_ > 0 && (sql_[pos_ - 1] == 'e' || sql_[pos_ - 1] == 'E') &&
                     (pos_ < 2 || !IsWordChar(sql_[pos_ - 2]));
      SkipQuoted('\'', escapes);
    } else if (c == '"') {
      SkipQuoted('"', false);
    } else if (c == '$' && (pos_ == 0 || !IsWordChar(sql_[pos_ - 1])) && TryDollarQuote()) {
      // consumed
    } else if (c == '\\') {
      MetaCommand();
    } else if (c == ';') {
      ++pos_;
      EndStatement();
    } else if (c == '(') {
      ++depth_;
      ++pos_;
    } else if (c == ')') {
      if (depth_ > 0) --depth_;
      ++pos_;
    } else if (IsWordStart(c)) {
      size_t start = pos_;
      while (pos_ < sql_.size() && IsWordChar(sql_[pos_])) ++pos_;
      Word(sql_.substr(start, pos_ - start), start);
    } else {
      ++pos_;
    }
  }

  void SkipTo(char c) {
    size_t p = sql_.find(c, pos_);
    pos_ = p == std::string_view::npos ? sql_.size() : p + 1;
  }

  void SkipQuoted(char quote, bool backslash_escapes) {
    ++pos_;
    while (pos_ < sql_.size()) {
      char c = sql_[pos_];
      if (backslash_escapes && c == '\\') {
        pos_ += 2;
      } else if (c == quote) {
        if (pos_ + 1 < sql_.size() && sql_[pos_ + 1] == quote) {
          pos_ += 2;  // doubled quote
        } else {
          ++pos_;
          return;
        }
      } else {
        ++pos_;
      }
    }
    pos_ = std::min(pos_, sql_.size());
  }

  // At '$': skips a dollar-quoted string and returns true, or returns false
  // when this '$' does not open one ($1 parameters, stray '$').
  bool TryDollarQuote() {
    size_t p = pos_ + 1;
    if (p < sql_.size() && sql_[p] != '$') {
      if (!IsWordStart(sql_[p])) return false;
      while (p < sql_.size() && IsWordChar(sql_[p]) && sql_[p] != '$') ++p;
      if (p >= sql_.size() || sql_[p] != '$') return false;
    }
    if (p >= sql_.size()) return false;
    std::string_view tag = sql_.substr(pos_, p - pos_ + 1);
    size_t end = sql_.find(tag, p + 1);
    pos_ = end == std::string_view::npos ? sql_.size() : end + tag.size();
    return true;
  }

  void MetaCommand() {
    int line = Line();
    size_t p = pos_ + 1;
    while (p < sql_.size() && (IsWordChar(sql_[p]) || sql_[p] == '!' || sql_[p] == '?')) ++p;
    std::string command(sql_.substr(pos_ + 1, p - pos_ - 1));
    if (command.empty() && p < sql_.size() && sql_[p] == '\\') command = "\\";
    problems_.push_back(fmt::format(
        "line {}: psql meta-command \\{} is not SQL: ferry sends statements to the server "
        "directly; {}",
        line, command, MetaCommandHint(command)));
    SkipTo('\n');  // psql takes the rest of the line as arguments
  }

  void Word(std::string_view word, size_t start) {
    if (words_in_statement_ == 0) {
      statement_is_copy_ = EqualsIgnoreCase(word, "copy");
      statement_line_ = lines_.LineAt(start);
    }
    ++words_in_statement_;
    if (statement_is_copy_ && depth_ == 0) {
      if (previous_was_from_ && EqualsIgnoreCase(word, "stdin")) copy_from_stdin_ = true;
      previous_was_from_ = EqualsIgnoreCase(word, "from");
    }
  }

  void EndStatement() {
    if (copy_from_stdin_) {
      problems_.push_back(fmt::format(
          "line {}: COPY ... FROM STDIN reads data that follows inline, which only psql "
          "supports: ferry sends statements to the server directly; load the data with INSERT "
          "statements or 'ferry copy'",
          statement_line_));
      SkipCopyData();
    }
    words_in_statement_ = 0;
    statement_is_copy_ = false;
    previous_was_from_ = false;
    copy_from_stdin_ = false;
    depth_ = 0;
  }

  // After "COPY ... FROM STDIN;": the data runs up to a line "\." (or the end).
  void SkipCopyData() {
    SkipTo('\n');
    while (pos_ < sql_.size()) {
      size_t eol = sql_.find('\n', pos_);
      std::string_view line =
          TrimTrailingSpace(sql_.substr(pos_, eol == std::string_view::npos ? eol : eol - pos_));
      pos_ = eol == std::string_view::npos ? sql_.size() : eol + 1;
      if (line == "\\.") return;
    }
  }

  std::string_view sql_;
  int first_line_;
  LineCounter lines_{sql_, first_line_};
  size_t pos_ = 0;
  int depth_ = 0;
  int words_in_statement_ = 0;
  int statement_line_ = 0;
  bool statement_is_copy_ = false;
  bool previous_was_from_ = false;
  bool copy_from_stdin_ = false;
  std::vector<std::string> problems_;
};

// First keyword of a statement, lower-cased.
std::string FirstWord(std::string_view text) {
  std::string word;
  for (char c : text) {
    if (!IsWordChar(c)) break;
    word += AsciiLower(c);
  }
  return word;
}

}  // namespace

bool HasSqlTokens(std::string_view sql) { return SkipSpaceAndComments(sql, 0, true) < sql.size(); }

size_t SkipSqlSpaceAndComments(std::string_view sql, size_t pos) {
  return SkipSpaceAndComments(sql, pos, true);
}

Result<std::vector<Statement>> SplitPostgres(std::string_view sql, int first_line) {
  if (size_t nul = sql.find('\0'); nul != std::string_view::npos) {
    LineColumn lc = LocateByte(sql, nul, first_line);
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("NUL byte at line {}, column {}: remove it", lc.line, lc.column))
        .With("line", std::to_string(lc.line));
  }
  std::string input(sql);
  PgQuerySplitResult split = pg_query_split_with_parser(input.c_str());
  if (split.error != nullptr) {
    std::string message = split.error->message != nullptr ? split.error->message : "parse error";
    std::optional<size_t> offset;
    if (split.error->cursorpos > 0) offset = ByteOffsetOfCharPos(sql, split.error->cursorpos);
    pg_query_free_split_result(split);
    return SyntaxError(sql, input, first_line, message, offset);
  }
  std::vector<Statement> out;
  out.reserve(static_cast<size_t>(split.n_stmts));
  LineCounter lines(sql, first_line);
  for (int i = 0; i < split.n_stmts; ++i) {
    size_t loc = std::min(static_cast<size_t>(split.stmts[i]->stmt_location), sql.size());
    size_t len = static_cast<size_t>(split.stmts[i]->stmt_len);
    if (len == 0 || loc + len > sql.size()) len = sql.size() - loc;
    std::string_view raw = sql.substr(loc, len);
    size_t start = SkipSpaceAndComments(raw, 0, true);
    std::string_view text = TrimTrailingSpace(raw.substr(start));
    if (text.empty()) continue;
    Statement s;
    s.text = std::string(text);
    s.offset = loc + start;
    s.line = lines.LineAt(s.offset);
    out.push_back(std::move(s));
  }
  pg_query_free_split_result(split);
  for (Statement& s : out) FERRY_RETURN_IF_ERROR(ClassifyPostgres(&s));
  return out;
}

Status CheckForPsqlMetaCommands(std::string_view sql, int first_line) {
  std::vector<std::string> problems = PsqlScanner(sql, first_line).Run();
  if (problems.empty()) return Status::Ok();
  std::string message;
  for (const std::string& p : problems) {
    if (!message.empty()) message += '\n';
    message += p;
  }
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

std::vector<Statement> SplitSqlite(std::string_view sql, int first_line) {
  std::vector<Statement> out;
  LineCounter lines(sql, first_line);
  auto emit = [&](size_t begin, size_t end) {
    std::string_view raw = sql.substr(begin, end - begin);
    size_t start = SkipSpaceAndComments(raw, 0, false);
    std::string_view text = raw.substr(start);
    text = TrimTrailingSpace(text);
    if (!text.empty() && text.back() == ';') text.remove_suffix(1);
    text = TrimTrailingSpace(text);
    if (text.empty()) return;
    Statement s;
    s.text = std::string(text);
    s.offset = begin + start;
    s.line = lines.LineAt(s.offset);
    std::string word = FirstWord(s.text);
    s.is_transaction_control = word == "begin" || word == "commit" || word == "end" ||
                               word == "rollback" || word == "savepoint" || word == "release";
    if (word == "vacuum") {
      s.cannot_run_in_transaction = true;
      s.no_transaction_reason = "VACUUM";
    }
    out.push_back(std::move(s));
  };
  size_t begin = 0;
  std::string candidate;
  for (size_t semi = sql.find(';'); semi != std::string_view::npos;
       semi = sql.find(';', semi + 1)) {
    candidate.assign(sql.substr(begin, semi + 1 - begin));
    if (sqlite3_complete(candidate.c_str()) != 0) {
      emit(begin, semi + 1);
      begin = semi + 1;
    }
  }
  if (begin < sql.size() && SkipSpaceAndComments(sql, begin, false) < sql.size()) {
    emit(begin, sql.size());
  }
  return out;
}

namespace {

// CQL: drivers/cql's splitter; nothing in CQL is transaction control.
Result<std::vector<Statement>> SplitCqlScript(std::string_view sql, int first_line) {
  FERRY_ASSIGN_OR_RETURN(std::vector<cql::CqlStatement> parts, cql::SplitCql(sql, first_line));
  std::vector<Statement> out;
  for (auto& p : parts) {
    Statement s;
    s.text = std::move(p.text);
    s.offset = p.offset;
    s.line = p.line;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

Result<std::vector<Statement>> SplitScript(SqlGrammar grammar, std::string_view sql,
                                           int first_line) {
  switch (grammar) {
    case SqlGrammar::kPostgres: return SplitPostgres(sql, first_line);
    case SqlGrammar::kSqlite: return SplitSqlite(sql, first_line);
    case SqlGrammar::kCql: return SplitCqlScript(sql, first_line);
  }
  return Status(StatusCode::kInternal, "unknown SQL grammar");
}

}  // namespace ferry
