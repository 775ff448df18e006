#include "ops/partition/partition_spec.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/toml_guard.h"

namespace ferry::partition {
namespace {

constexpr const char* kKeys[] = {"table",     "column",  "interval",         "premake",
                                 "retention", "archive", "default_partition"};

std::string Text(const toml::node& node) {
  if (auto s = node.value<std::string>()) return *s;
  if (auto i = node.value<int64_t>()) return std::to_string(*i);
  return "";
}

// One [[partitions]] table to a spec; problems are appended.
PartitionSpec ParseEntry(const toml::table& entry, const std::string& where,
                         std::vector<std::string>* problems) {
  PartitionSpec spec;
  spec.origin = where;
  auto fail = [&](const toml::node* node, const std::string& what) {
    std::string line = node != nullptr ? fmt::format("{}:{}", where.substr(0, where.rfind(':')),
                                                     node->source().begin.line)
                                       : where;
    problems->push_back(line + ": " + what);
  };
  for (const auto& [k, node] : entry) {
    bool known = false;
    for (const char* key : kKeys) known = known || k.str() == key;
    if (!known) {
      fail(&node, fmt::format("unknown key '{}' in [[partitions]]: known keys are table, column, "
                              "interval, premake, retention, archive, default_partition",
                              k.str()));
    }
  }
  const toml::node* table = entry.get("table");
  const toml::node* column = entry.get("column");
  if (table == nullptr || !table->is_string() || Text(*table).empty()) {
    fail(table, "[[partitions]] needs table = \"schema.table\"");
  } else {
    spec.table = Text(*table);
  }
  if (column == nullptr || !column->is_string() || Text(*column).empty()) {
    fail(column, "[[partitions]] needs column = \"...\" (the RANGE partition key)");
  } else {
    spec.column = Text(*column);
  }
  const toml::node* interval = entry.get("interval");
  if (interval == nullptr) {
    fail(nullptr,
         "[[partitions]] needs interval = \"day\", \"week\", \"month\", \"year\" or an "
         "integer step");
  } else if (auto parsed = ParseInterval(Text(*interval)); !parsed.ok()) {
    fail(interval, parsed.status().message());
  } else {
    spec.interval = *parsed;
  }
  if (const toml::node* premake = entry.get("premake")) {
    auto n = premake->value<int64_t>();
    if (!n || *n < 0 || *n > 1000) {
      fail(premake,
           "premake must be a whole number from 0 to 1000 (future partitions to keep made)");
    } else {
      spec.premake = static_cast<int>(*n);
    }
  }
  if (const toml::node* retention = entry.get("retention")) {
    if (auto parsed = ParseRetention(Text(*retention), spec.interval); !parsed.ok()) {
      fail(retention, parsed.status().message());
    } else {
      spec.retention = *parsed;
    }
  }
  if (const toml::node* archive = entry.get("archive")) {
    std::string a = Text(*archive);
    spec.archive_given = true;
    if (a == "none") {
      spec.archive = ArchiveKind::kNone;
    } else if (a.starts_with("schema:") && a.size() > 7) {
      spec.archive = ArchiveKind::kSchema;
      spec.archive_schema = a.substr(7);
    } else {
      fail(archive, fmt::format("archive '{}' is unknown: write \"schema:NAME\" (a schema of the "
                                "same database) or \"none\" (drop pruned partitions)",
                                a));
    }
  }
  if (spec.retention.unit != RetentionUnit::kNone && !spec.archive_given) {
    fail(entry.get("retention"),
         "retention without archive: add archive = \"schema:NAME\" to keep "
         "pruned partitions, or archive = \"none\" to drop them");
  }
  if (const toml::node* d = entry.get("default_partition")) {
    if (auto b = d->value<bool>()) {
      spec.default_partition = *b;
    } else {
      fail(d, "default_partition must be true or false");
    }
  }
  return spec;
}

}  // namespace

Result<std::vector<PartitionSpec>> ParsePartitionSpecs(const std::string& text,
                                                       const std::string& name) {
  if (TomlUnsafe bad = TomlUnsafeSpot(text); bad.line > 0) {
    return Status(StatusCode::kInvalidArgument, fmt::format("{}:{}: {}", name, bad.line, bad.reason));
  }
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& err) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}:{}:{}: {}", name, err.source().begin.line,
                              err.source().begin.column, err.description()));
  }
  std::vector<PartitionSpec> out;
  const toml::node* node = root.get("partitions");
  if (node == nullptr) return out;
  const toml::array* list = node->as_array();
  if (list == nullptr || !list->is_array_of_tables()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}:{}: partitions must be written as [[partitions]] tables", name,
                              node->source().begin.line));
  }
  std::vector<std::string> problems;
  for (const toml::node& item : *list) {
    std::string where = fmt::format("{}:{}", name, item.source().begin.line);
    out.push_back(ParseEntry(*item.as_table(), where, &problems));
  }
  for (size_t i = 0; i < out.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (!out[i].table.empty() && out[i].table == out[j].table) {
        problems.push_back(
            fmt::format("{}: table '{}' is declared twice (also at {}): keep one "
                        "[[partitions]] entry per table",
                        out[i].origin, out[i].table, out[j].origin));
      }
    }
  }
  if (!problems.empty()) {
    std::string msg;
    for (const std::string& p : problems) msg += (msg.empty() ? "" : "\n") + p;
    return Status(StatusCode::kInvalidArgument, msg);
  }
  return out;
}

Result<std::vector<PartitionSpec>> LoadPartitionSpecs(const std::string& file_path) {
  std::error_code ec;
  if (file_path.empty() || !std::filesystem::exists(file_path, ec)) {
    return std::vector<PartitionSpec>{};
  }
  std::ifstream in(file_path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParsePartitionSpecs(text, file_path);
}

}  // namespace ferry::partition
