// Private to lint.cc and lint_rules.cc: the per-file linter.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "migrate/lint.h"
#include "migrate/sql_split.h"

namespace ferry::cql_tokens {
class Tokens;
}

namespace ferry::lint_internal {

std::string Lower(std::string_view s);
std::string HumanRows(int64_t rows);

// What earlier statements established; kept across files when the list is
// the pending migrations (LintOptions::carry_across_files).
struct CarriedState {
  std::set<std::string> new_tables;                      // "t" and "s.t"
  std::map<std::string, std::set<std::string>> new_columns;  // table -> columns
  std::set<std::string> new_indexes;
  std::set<std::string> validated_tables;  // VALIDATE CONSTRAINT seen (for SET NOT NULL)
  // CQL (cql_lint_rules.cc), keys lower-case "table" or "keyspace.table":
  std::map<std::string, std::set<std::string>> cql_primary_keys;   // table -> key columns
  std::map<std::string, std::map<std::string, std::string>> cql_column_types;  // table -> col -> type
  std::map<std::string, std::map<std::string, std::string>> cql_dropped;  // table -> col -> type ("" unknown)
};

class FileLinter {
 public:
  FileLinter(const Script& script, const LintOptions& options, CarriedState* carried,
             LintReport* report);
  void Run();

 private:
  struct Ignore {
    bool file_level = false;
    std::vector<std::string> rules;
    size_t offset = 0;
    int line = 0;
  };

  void ReadIgnores();
  bool Ignored(const LintFinding& f) const;
  // Fills file, line and column (the current statement's unless set),
  // grades by table size, applies ignores and disabled rules. `cap` lowers
  // the rule's severity (e.g. a default that may not be volatile).
  void Add(LintFinding f, std::optional<LintSeverity> cap = std::nullopt);

  bool IsNewTable(const std::string& key) const;
  void AddNewTable(const std::string& schema, const std::string& name);
  const TableSize* SizeOf(const std::string& key) const;

  // cql_lint_rules.cc: the CQL grammar (a .cql file or LintOptions::grammar).
  void RunCql();
  void LintCqlStatement(std::string_view text);
  void LintCqlCreate(const cql_tokens::Tokens& t, std::string_view text);
  void LintCqlDestructive(const cql_tokens::Tokens& t);
  void LintCqlAlterTable(const cql_tokens::Tokens& t);

  // lint_rules.cc
  void LintStatement(const Statement& s);
  void LintAlterTableCmd(const nlohmann::json& item, const std::string& sql,
                         const std::string& table, const std::string& rel_name, bool is_new,
                         std::set<std::string>& new_cols, bool* strong);
  // LintAlterTableCmd's longer commands.
  void LintAddColumn(const nlohmann::json* def, const std::string& sql, const std::string& table,
                     const std::string& rel_name, bool is_new, std::set<std::string>& new_cols);
  void LintAddConstraint(const nlohmann::json* def, const std::string& sql,
                         const std::string& table, const std::string& rel_name, bool is_new);
  // LintStatement by statement type; `node` is the statement's parse tree.
  void LintTransaction(const Statement& s, const std::string& type, const nlohmann::json& node);
  void LintVariableSet(const Statement& s, const std::string& type, const nlohmann::json& node);
  void LintCreateTable(const Statement& s, const std::string& type, const nlohmann::json& node);
  void LintCreateIndex(const Statement& s, const std::string& type, const nlohmann::json& node);
  void LintDrop(const Statement& s, const std::string& type, const nlohmann::json& node);
  void LintRename(const Statement& s, const std::string& type, const nlohmann::json& node);
  void LintUpdateDelete(const Statement& s, const std::string& type, const nlohmann::json& node);
  void LintTruncate(const Statement& s, const std::string& type, const nlohmann::json& node);
  void LintVacuumCluster(const Statement& s, const std::string& type, const nlohmann::json& node);
  // ALTER ... RENAME of a new table, column or index: the new name is new too.
  void FollowRename(const std::string& kind, const std::string& schema, const std::string& name,
                    const std::string& column, const std::string& newname);
  void StrongLock(const std::string& lock, const std::string& table);

  const Script& script_;
  const LintOptions& options_;
  CarriedState* carried_;
  LintReport* report_;
  std::vector<Ignore> ignores_;
  size_t current_offset_ = 0;
  size_t previous_end_ = 0;
  int current_line_ = 1;
  int current_column_ = 1;
  bool in_transaction_block_ = false;
  bool lock_timeout_set_ = false;
  bool lock_timeout_reported_ = false;
};

}  // namespace ferry::lint_internal
