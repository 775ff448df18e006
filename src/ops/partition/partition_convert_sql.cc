// SQL builders of the online conversion (partition_convert.h): pure text,
// no database. Identifiers are quoted here; values are always parameters.
#include <fmt/format.h>

#include <algorithm>

#include "drivers/connection.h"
#include "ops/partition/partition_convert.h"

namespace ferry::partition {
namespace {

constexpr const char* kTriggerName = "ferry_partition_sync";

std::string Q(const SourceTable& t, std::string_view name) {
  return QuoteIdent(t.schema) + "." + QuoteIdent(name);
}

std::string Join(const std::vector<std::string>& items, std::string_view sep,
                 std::string_view prefix = "") {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += sep;
    out += std::string(prefix) + QuoteIdent(s);
  }
  return out;
}

// "name|text" -> {name, text}.
std::pair<std::string, std::string> Split(const std::string& entry) {
  size_t bar = entry.find('|');
  if (bar == std::string::npos) return {entry, ""};
  return {entry.substr(0, bar), entry.substr(bar + 1)};
}

std::vector<std::string> IndexNames(const SourceTable& t) {
  std::vector<std::string> out;
  for (const std::string& c : t.constraint_defs) out.push_back(Split(c).first);
  for (const std::string& i : t.index_defs) out.push_back(Split(i).first);
  return out;
}

std::string Cut(std::string_view name, size_t keep, std::string_view suffix) {
  return std::string(name.substr(0, keep)) + std::string(suffix);
}

// "CREATE [UNIQUE] INDEX n ON s.t USING btree (a)" for the shadow: its own
// name and table, the rest (method, columns, predicate) unchanged.
std::string ShadowIndex(const SourceTable& t, const std::string& name, const std::string& def) {
  bool unique = def.starts_with("CREATE UNIQUE INDEX ");
  size_t on = def.find(" ON ");
  size_t using_at = on == std::string::npos ? std::string::npos : def.find(" USING ", on);
  std::string rest = using_at == std::string::npos ? def : def.substr(using_at + 1);
  return fmt::format("CREATE {}INDEX {} ON {} {}", unique ? "UNIQUE " : "",
                     QuoteIdent(ShadowObjectName(name)), Q(t, ShadowName(t.name)), rest);
}

}  // namespace

std::string ShadowName(std::string_view table) { return Cut(table, 52, "_ferry_part"); }
std::string OldName(std::string_view table) { return Cut(table, 53, "_ferry_old"); }
std::string SyncFunctionName(std::string_view table) { return Cut(table, 47, "_ferry_part_sync"); }
std::string ShadowObjectName(std::string_view name) { return Cut(name, 57, "_fpart"); }
std::string OldObjectName(std::string_view name) { return Cut(name, 58, "_fold"); }

std::string KeyList(const SourceTable& t) { return "(" + Join(t.pk, ", ") + ")"; }

std::string KeyCompare(const SourceTable& t, std::string_view op, int first_param) {
  std::string params;
  for (size_t i = 0; i < t.pk.size(); ++i) {
    params += fmt::format("{}${}::{}", i == 0 ? "" : ", ", first_param + static_cast<int>(i),
                          t.pk_types[i]);
  }
  return fmt::format("{} {} ({})", KeyList(t), op, params);
}

std::vector<std::string> ShadowSql(const SourceTable& t, const Interval& interval,
                                   const std::vector<Range>& ranges, bool default_partition) {
  std::string shadow = Q(t, ShadowName(t.name));
  std::vector<std::string> out;
  out.push_back(fmt::format(
      "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED "
      "INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ({})",
      shadow, Q(t, t.name), QuoteIdent(t.column)));
  for (const std::string& c : t.constraint_defs) {
    auto [name, def] = Split(c);
    out.push_back(fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {}", shadow,
                              QuoteIdent(ShadowObjectName(name)), def));
  }
  for (const std::string& i : t.index_defs) {
    auto [name, def] = Split(i);
    out.push_back(ShadowIndex(t, name, def));
  }
  // Foreign keys keep their names: those are per table, not per schema.
  for (const std::string& f : t.foreign_keys) {
    auto [name, def] = Split(f);
    out.push_back(
        fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {}", shadow, QuoteIdent(name), def));
  }
  for (const Range& r : ranges) {
    out.push_back(fmt::format("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})",
                              Q(t, ChildName(t.name, interval, r)), shadow,
                              BoundLiteral(t.key, r.lower), BoundLiteral(t.key, r.upper)));
  }
  if (default_partition) {
    out.push_back(fmt::format("CREATE TABLE {} PARTITION OF {} DEFAULT",
                              Q(t, t.name.substr(0, 55) + "_default"), shadow));
  }
  return out;
}

std::vector<std::string> TriggerSql(const SourceTable& t) {
  std::string shadow = Q(t, ShadowName(t.name));
  std::string old_key;
  for (const std::string& k : t.pk) {
    old_key += (old_key.empty() ? "" : ", ") + ("OLD." + QuoteIdent(k));
  }
  std::string sets;
  for (const std::string& c : t.columns) {
    bool in_key = std::find(t.pk.begin(), t.pk.end(), c) != t.pk.end();
    if (in_key) continue;
    sets += (sets.empty() ? "" : ", ") + fmt::format("{0} = EXCLUDED.{0}", QuoteIdent(c));
  }
  std::string on_conflict = sets.empty() ? "DO NOTHING" : "DO UPDATE SET " + sets;
  // An UPDATE is a delete of the old key and an upsert of the new row, so a
  // row whose partition key changes moves to its new partition.
  std::string body = fmt::format(
      "BEGIN\n"
      "  IF TG_OP <> 'INSERT' THEN\n"
      "    DELETE FROM {0} WHERE {1} = ({2});\n"
      "  END IF;\n"
      "  IF TG_OP <> 'DELETE' THEN\n"
      "    INSERT INTO {0} ({3}) VALUES ({4}) ON CONFLICT {1} {5};\n"
      "  END IF;\n"
      "  RETURN NULL;\n"
      "END",
      shadow, KeyList(t), old_key, Join(t.columns, ", "), Join(t.columns, ", ", "NEW."),
      on_conflict);
  std::string fn = Q(t, SyncFunctionName(t.name));
  return {fmt::format("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS "
                      "$ferry$\n{}\n$ferry$",
                      fn, body),
          fmt::format("CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW "
                      "EXECUTE FUNCTION {}()",
                      kTriggerName, Q(t, t.name), fn)};
}

std::vector<std::string> DropTriggerSql(const SourceTable& t) {
  return {fmt::format("DROP TRIGGER IF EXISTS {} ON {}", kTriggerName, Q(t, t.name)),
          fmt::format("DROP FUNCTION IF EXISTS {}()", Q(t, SyncFunctionName(t.name)))};
}

std::string NextKeySql(const SourceTable& t, bool first, int64_t batch_rows) {
  std::string keys = Join(t.pk, ", ");
  std::string text_keys, desc;
  for (const std::string& k : t.pk) {
    text_keys += (text_keys.empty() ? "" : ", ") + QuoteIdent(k) + "::text";
    desc += (desc.empty() ? "" : ", ") + QuoteIdent(k) + " DESC";
  }
  return fmt::format(
      "SELECT {} FROM (SELECT {} FROM {}{} ORDER BY {} LIMIT {}) b ORDER BY {} LIMIT 1", text_keys,
      keys, Q(t, t.name), first ? "" : " WHERE " + KeyCompare(t, ">", 1), keys, batch_rows, desc);
}

std::string CopyBatchSql(const SourceTable& t, bool first) {
  int upper = first ? 1 : static_cast<int>(t.pk.size()) + 1;
  std::string where = first ? "" : KeyCompare(t, ">", 1) + " AND ";
  where += KeyCompare(t, "<=", upper);
  std::string cols = Join(t.columns, ", ");
  return fmt::format(
      "INSERT INTO {} ({}) SELECT {} FROM {} WHERE {} FOR SHARE ON CONFLICT DO NOTHING",
      Q(t, ShadowName(t.name)), cols, cols, Q(t, t.name), where);
}

std::string RangeDigestSql(const SourceTable& t, const std::string& table, bool first, bool last) {
  std::vector<std::string> where;
  if (!first) where.push_back(KeyCompare(t, ">", 1));
  if (!last) where.push_back(KeyCompare(t, "<=", first ? 1 : static_cast<int>(t.pk.size()) + 1));
  std::string filter;
  for (const std::string& w : where) filter += (filter.empty() ? " WHERE " : " AND ") + w;
  return fmt::format(
      "SELECT count(*), coalesce(sum(hashtextextended(x::text, 0)), 0)::text FROM (SELECT {} "
      "FROM {}{}) x",
      Join(t.columns, ", "), table, filter);
}

std::vector<std::string> SwapSql(const SourceTable& t) {
  std::vector<std::string> out = {
      fmt::format("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", Q(t, t.name))};
  for (std::string& s : DropTriggerSql(t)) out.push_back(std::move(s));
  out.push_back(
      fmt::format("ALTER TABLE {} RENAME TO {}", Q(t, t.name), QuoteIdent(OldName(t.name))));
  out.push_back(fmt::format("ALTER TABLE {} RENAME TO {}", Q(t, ShadowName(t.name)),
                            QuoteIdent(t.name)));
  for (const std::string& name : IndexNames(t)) {
    out.push_back(
        fmt::format("ALTER INDEX {} RENAME TO {}", Q(t, name), QuoteIdent(OldObjectName(name))));
    out.push_back(fmt::format("ALTER INDEX {} RENAME TO {}", Q(t, ShadowObjectName(name)),
                              QuoteIdent(name)));
  }
  for (const std::string& s : t.sequences) {
    auto [seq, column] = Split(s);
    out.push_back(fmt::format("ALTER SEQUENCE {} OWNED BY {}.{}", QuoteQualified(seq),
                              Q(t, t.name), QuoteIdent(column)));
  }
  return out;
}

}  // namespace ferry::partition
