// Canonical value text for verify, jsonb: the text parsed into a tree and
// written back in one canonical form (canonical.h, docs/verify.md).
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "move/canonical.h"

namespace ferry {
namespace {

struct JsonNode {
  enum class Type { kNull, kTrue, kFalse, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  std::string text;  // number or string
  std::vector<JsonNode> items;
  std::vector<std::pair<std::string, JsonNode>> members;
};

class JsonTreeBuilder : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return Add({JsonNode::Type::kNull, {}, {}, {}}); }
  bool boolean(bool v) override {
    return Add({v ? JsonNode::Type::kTrue : JsonNode::Type::kFalse, {}, {}, {}});
  }
  bool number_integer(number_integer_t v) override {
    return Add({JsonNode::Type::kNumber, std::to_string(v), {}, {}});
  }
  bool number_unsigned(number_unsigned_t v) override {
    return Add({JsonNode::Type::kNumber, std::to_string(v), {}, {}});
  }
  bool number_float(number_float_t, const string_t& raw) override {
    auto n = CanonicalNumeric(raw, /*trim=*/false);
    if (!n) return false;
    return Add({JsonNode::Type::kNumber, *n, {}, {}});
  }
  bool string(string_t& v) override { return Add({JsonNode::Type::kString, v, {}, {}}); }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override { return Open(JsonNode::Type::kObject); }
  bool key(string_t& k) override {
    keys_.push_back(k);
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(JsonNode::Type::kArray); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
  JsonNode& root() { return root_; }

 private:
  bool Add(JsonNode node) {
    if (stack_.empty()) {
      root_ = std::move(node);
      return true;
    }
    JsonNode& top = stack_.back();
    if (top.type == JsonNode::Type::kArray) {
      top.items.push_back(std::move(node));
    } else {
      top.members.emplace_back(std::move(keys_.back()), std::move(node));
      keys_.pop_back();
    }
    return true;
  }
  bool Open(JsonNode::Type type) {
    stack_.push_back(JsonNode{type, {}, {}, {}});
    return true;
  }
  bool Close() {
    JsonNode node = std::move(stack_.back());
    stack_.pop_back();
    return Add(std::move(node));
  }

  JsonNode root_;
  std::vector<JsonNode> stack_;
  std::vector<std::string> keys_;
};

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void AppendJsonb(std::string& out, JsonNode& node) {
  switch (node.type) {
    case JsonNode::Type::kNull: out += "null"; return;
    case JsonNode::Type::kTrue: out += "true"; return;
    case JsonNode::Type::kFalse: out += "false"; return;
    case JsonNode::Type::kNumber: out += node.text; return;
    case JsonNode::Type::kString: AppendJsonString(out, node.text); return;
    case JsonNode::Type::kArray:
      out += '[';
      for (size_t i = 0; i < node.items.size(); ++i) {
        if (i) out += ", ";
        AppendJsonb(out, node.items[i]);
      }
      out += ']';
      return;
    case JsonNode::Type::kObject: {
      // jsonb keeps the last of duplicate keys and orders keys by length,
      // then bytes.
      auto& m = node.members;
      std::stable_sort(m.begin(), m.end(), [](const auto& a, const auto& b) {
        if (a.first.size() != b.first.size()) return a.first.size() < b.first.size();
        return a.first < b.first;
      });
      std::vector<std::pair<std::string, JsonNode>*> kept;
      for (size_t i = 0; i < m.size(); ++i) {
        if (i + 1 < m.size() && m[i + 1].first == m[i].first) continue;
        kept.push_back(&m[i]);
      }
      out += '{';
      for (size_t i = 0; i < kept.size(); ++i) {
        if (i) out += ", ";
        AppendJsonString(out, kept[i]->first);
        out += ": ";
        AppendJsonb(out, kept[i]->second);
      }
      out += '}';
      return;
    }
  }
}

}  // namespace

std::optional<std::string> CanonicalJsonb(std::string_view text) {
  JsonTreeBuilder builder;
  if (!nlohmann::json::sax_parse(text, &builder)) return std::nullopt;
  std::string out;
  AppendJsonb(out, builder.root());
  return out;
}

}  // namespace ferry
