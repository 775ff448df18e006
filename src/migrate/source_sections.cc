// Migration sources, the sections stage: a file's text -> its up, down and
// verify scripts, with the `-- ferry:` directives each carries.
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string>

#include "migrate/source_internal.h"
#include "migrate/sql_split.h"

namespace ferry::source_internal {
namespace {

constexpr std::string_view kKnownDirectives =
    "known directives are up, down, verify, no-transaction, transaction false, "
    "lock_timeout DURATION, statement_timeout DURATION, expand TABLE, backfill TABLE";

// A number with an optional PostgreSQL time unit: 5s, 500ms, 1.5min, 0.
bool IsPostgresDuration(std::string_view v) {
  size_t i = 0;
  size_t digits = 0;
  while (i < v.size() && IsDigit(v[i])) ++i, ++digits;
  if (i < v.size() && v[i] == '.') {
    ++i;
    while (i < v.size() && IsDigit(v[i])) ++i, ++digits;
  }
  if (digits == 0) return false;
  while (i < v.size() && IsBlank(v[i])) ++i;
  std::string_view unit = v.substr(i);
  return unit.empty() || unit == "us" || unit == "ms" || unit == "s" || unit == "min" ||
         unit == "h" || unit == "d";
}

// ---- directives ------------------------------------------------------------

// A `-- ferry:NAME ...` or `-- migrate:NAME ...` comment line.
struct DirectiveLine {
  std::string written;               // "ferry:lock_timeout", for messages
  std::string name;                  // lower case, '-' turned into '_'
  std::string value;                 // after ':' / '=' or the rest of the line
  std::string extra;                 // text after an inline value (an error)
  std::vector<std::string> options;  // markers: the tokens after up / down
  bool is_marker() const { return name == "up" || name == "down" || name == "verify"; }
  bool is_online() const { return name == "expand" || name == "backfill"; }
};

std::optional<DirectiveLine> ParseDirectiveLine(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && IsBlank(line[i])) ++i;
  if (line.substr(i, 2) != "--") return std::nullopt;
  i += 2;
  while (i < line.size() && IsBlank(line[i])) ++i;
  std::string_view rest = line.substr(i);
  std::string_view prefix;
  for (std::string_view p : {std::string_view("ferry:"), std::string_view("migrate:")}) {
    if (rest.substr(0, p.size()) == p) prefix = p;
  }
  // "-- ferry: some prose" is an ordinary comment.
  if (prefix.empty() || rest.size() == prefix.size() || IsSpace(rest[prefix.size()])) {
    return std::nullopt;
  }
  // dbmate reads its `-- migrate:` lines only at the start of a line: an
  // indented one (inside a statement, a function body) is a plain comment.
  if (prefix == "migrate:" && line.substr(0, 2) != "--") return std::nullopt;
  std::string_view body = TrimTrailingSpace(rest.substr(prefix.size()));
  size_t word_end = 0;
  while (word_end < body.size() && !IsBlank(body[word_end])) ++word_end;
  std::string_view word = body.substr(0, word_end);
  std::string_view tail = TrimBlanks(body.substr(word_end));
  size_t sep = word.find_first_of(":=");
  std::string_view name = word.substr(0, sep);
  std::string_view inline_value = sep == std::string_view::npos ? "" : word.substr(sep + 1);

  DirectiveLine d;
  d.written = fmt::format("{}{}", prefix, name);
  for (char c : name) d.name += c == '-' ? '_' : AsciiLower(c);
  // Lint ignores are read by the linter (migrate/lint.h), anywhere in the
  // SQL: to the scanner they are plain comments.
  if (d.name == "lint_ignore" || d.name == "lint_ignore_file") return std::nullopt;
  if (d.is_marker()) {
    if (!inline_value.empty()) d.options.emplace_back(inline_value);
    while (!tail.empty()) {
      size_t end = 0;
      while (end < tail.size() && !IsBlank(tail[end])) ++end;
      if (tail.substr(0, 2) == "--") break;  // a trailing comment
      d.options.emplace_back(tail.substr(0, end));
      tail = TrimBlanks(tail.substr(end));
    }
  } else if (!inline_value.empty()) {
    d.value = std::string(inline_value);
    d.extra = std::string(tail);
  } else {
    d.value = std::string(tail);
  }
  return d;
}

// Applies one directive; an error message (without location) on failure.
std::optional<std::string> ApplyDirective(std::string_view written, std::string_view name,
                                          std::string_view value, Directives* d) {
  if (name == "no_transaction") {
    if (!value.empty()) {
      return fmt::format("directive '{}' takes no value (found '{}')", written, value);
    }
    d->no_transaction = true;
    return std::nullopt;
  }
  if (name == "transaction") {
    std::string lower;
    for (char c : value) lower += AsciiLower(c);
    if (lower == "false") {
      d->no_transaction = true;
    } else if (lower == "true") {
      d->no_transaction = false;
    } else {
      return fmt::format("directive '{}' takes true or false (found '{}')", written, value);
    }
    return std::nullopt;
  }
  if (name == "lock_timeout" || name == "statement_timeout") {
    std::string_view v = value;
    if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
    if (!IsPostgresDuration(v)) {
      return fmt::format(
          "directive '{}' needs a PostgreSQL duration such as 5s, 500ms or 1min (found '{}')",
          written, value);
    }
    (name == "lock_timeout" ? d->lock_timeout : d->statement_timeout) = std::string(v);
    return std::nullopt;
  }
  return fmt::format("unknown directive '{}': {}", written, kKnownDirectives);
}

// Applies a non-marker directive line; reports problems at `line`.
void ApplyDirectiveLine(const DirectiveLine& d, const std::string& path, int line,
                        Directives* directives, Problems* problems) {
  if (!d.extra.empty()) {
    problems->AddAt(path, line,
                    fmt::format("unexpected '{}' after directive '{}'", d.extra, d.written));
    return;
  }
  if (auto error = ApplyDirective(d.written, d.name, d.value, directives)) {
    problems->AddAt(path, line, *error);
  }
}

// ---- sections --------------------------------------------------------------




// A file's text cut into lines, with the directive (if any) on each.
struct SectionText {
  std::string_view text;
  const std::string& path;
  const std::vector<Line>& lines;
  const std::vector<std::optional<DirectiveLine>>& directive_at;
  const Directives& file_directives;
};

// Reads one section: lines [first, end) after the marker at `marker`.
// Online blocks (expand, backfill) belong to up sections only.
Script ReadSection(const SectionText& st, std::optional<size_t> marker, size_t first, size_t end,
                   bool up_section, Problems* problems) {
  std::string_view text = st.text;
  const std::string& path = st.path;
  const std::vector<Line>& lines = st.lines;
  const auto& directive_at = st.directive_at;
  const Directives& file_directives = st.file_directives;
  auto line_no = [](size_t index) { return static_cast<int>(index) + 1; };
  auto offset_of = [&](size_t index) {
    return index < lines.size() ? lines[index].begin : text.size();
  };
  Script script;
  script.path = path;
  script.first_line = line_no(first);
  script.directives = file_directives;
  if (marker) {
    const DirectiveLine& d = *directive_at[*marker];
    for (const std::string& option : d.options) {
      size_t sep = option.find_first_of(":=");
      std::string name;
      for (char c : option.substr(0, sep)) name += c == '-' ? '_' : AsciiLower(c);
      std::string value = sep == std::string::npos ? "" : option.substr(sep + 1);
      if (auto error = ApplyDirective(option.substr(0, sep), name, value, &script.directives)) {
        problems->AddAt(path, line_no(*marker), *error);
      }
    }
  }
  const size_t begin = offset_of(first);
  for (size_t i = first; i < end; ++i) {
    if (!directive_at[i]) continue;
    if (directive_at[i]->is_online()) {
      const DirectiveLine& d = *directive_at[i];
      if (!up_section) {
        problems->AddAt(path, line_no(i),
                        fmt::format("'-- {}' belongs in the up script: move it there",
                                    d.written));
        continue;
      }
      OnlineBlock block;
      block.kind = d.name;
      block.header = d.value.empty() ? d.extra : d.value + (d.extra.empty() ? "" : " " + d.extra);
      block.line = line_no(i);
      // Body: the indented `--` comment lines right below.
      while (i + 1 < end && !directive_at[i + 1]) {
        std::string_view next =
            text.substr(lines[i + 1].begin, lines[i + 1].end - lines[i + 1].begin);
        std::string_view trimmed = TrimBlanks(next);
        if (trimmed.substr(0, 2) != "--" || trimmed.size() < 3 || !IsBlank(trimmed[2])) break;
        std::string_view content = TrimBlanks(trimmed.substr(2));
        ++i;
        if (!content.empty()) block.body.emplace_back(line_no(i), std::string(content));
      }
      script.online.push_back(std::move(block));
      continue;
    }
    std::string_view above = text.substr(begin, lines[i].begin - begin);
    if (HasSqlTokens(above)) {
      problems->AddAt(path, line_no(i),
                      fmt::format("directive '{}' must be at the top of its section, above the "
                                  "SQL: move it up",
                                  directive_at[i]->written));
      continue;
    }
    ApplyDirectiveLine(*directive_at[i], path, line_no(i), &script.directives, problems);
  }
  script.sql = std::string(TrimTrailingSpace(text.substr(begin, offset_of(end) - begin)));
  return script;
}

// The up, down and verify markers among `markers` (line indexes); problems
// when one is repeated or out of place.
void FindMarkers(const std::vector<size_t>& markers,
                 const std::vector<std::optional<DirectiveLine>>& directive_at,
                 const std::string& path, std::optional<size_t>* up, std::optional<size_t>* down,
                 std::optional<size_t>* verify, Problems* problems) {
  auto line_no = [](size_t index) { return static_cast<int>(index) + 1; };
  std::optional<size_t>& up_marker = *up;
  std::optional<size_t>& down_marker = *down;
  std::optional<size_t>& verify_marker = *verify;
  for (size_t m : markers) {
    const DirectiveLine& d = *directive_at[m];
    std::optional<size_t>& slot =
        d.name == "up" ? up_marker : (d.name == "down" ? down_marker : verify_marker);
    if (slot) {
      problems->AddAt(path, line_no(m),
                      fmt::format("second '-- {}' marker (the first is on line {}): a file holds "
                                  "one up and at most one down section",
                                  d.written, line_no(*slot)));
      continue;
    }
    slot = m;
  }
  if (down_marker && (!up_marker || *down_marker < *up_marker)) {
    problems->AddAt(path, line_no(*down_marker),
                    up_marker ? fmt::format("'-- {}' comes before '-- {}' (line {}): put the up "
                                            "section first",
                                            directive_at[*down_marker]->written,
                                            directive_at[*up_marker]->written, line_no(*up_marker))
                              : fmt::format("'-- {}' without a '-- ferry:up' marker: add "
                                            "'-- ferry:up' above the up SQL",
                                            directive_at[*down_marker]->written));
  }
  if (verify_marker && (!up_marker || *verify_marker < *up_marker)) {
    problems->AddAt(path, line_no(*verify_marker),
                    fmt::format("'-- {}' must come after the '-- ferry:up' section: move it below",
                                directive_at[*verify_marker]->written));
  }
}

}  // namespace

std::vector<Line> SplitLines(std::string_view text) {
  std::vector<Line> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    lines.push_back({pos, eol});
    pos = eol + 1;
  }
  return lines;
}

// Splits normalized file text into its up (and down) scripts and reads the
// directives. Returns false when it added problems.
bool SplitSections(std::string_view text, const std::string& path, bool markers_allowed,
                   ScriptParts* out, Problems* problems) {
  const size_t problems_before = problems->size();
  std::vector<Line> lines = SplitLines(text);
  std::vector<std::optional<DirectiveLine>> directive_at(lines.size());
  std::vector<size_t> markers;  // line indexes
  for (size_t i = 0; i < lines.size(); ++i) {
    directive_at[i] =
        ParseDirectiveLine(text.substr(lines[i].begin, lines[i].end - lines[i].begin));
    if (directive_at[i] && directive_at[i]->is_marker()) markers.push_back(i);
  }
  auto line_no = [](size_t index) { return static_cast<int>(index) + 1; };

  if (!markers.empty() && !markers_allowed) {
    for (size_t m : markers) {
      problems->AddAt(path, line_no(m),
                      fmt::format("section marker '-- {}' belongs only in single-file migrations "
                                  "(VERSION_name.sql); in this layout the down script is a file "
                                  "of its own: remove the marker",
                                  directive_at[m]->written));
    }
    return false;
  }

  std::optional<size_t> up_marker;
  std::optional<size_t> down_marker;
  std::optional<size_t> verify_marker;
  FindMarkers(markers, directive_at, path, &up_marker, &down_marker, &verify_marker, problems);
  if (problems->size() != problems_before) return false;

  auto offset_of = [&](size_t index) {
    return index < lines.size() ? lines[index].begin : text.size();
  };

  // File-wide directives: the comment lines above the up marker.
  Directives file_directives;
  if (up_marker) {
    std::string_view header = text.substr(0, offset_of(*up_marker));
    size_t token = SkipSqlSpaceAndComments(header);
    if (token < header.size()) {
      int line =
          1 + static_cast<int>(std::count(
                  header.begin(), header.begin() + static_cast<std::ptrdiff_t>(token), '\n'));
      problems->AddAt(path, line,
                      fmt::format("SQL above '-- {}' never runs: move it below the marker",
                                  directive_at[*up_marker]->written));
    }
    for (size_t i = 0; i < *up_marker; ++i) {
      if (directive_at[i])
        ApplyDirectiveLine(*directive_at[i], path, line_no(i), &file_directives, problems);
    }
  }


  const SectionText st{text, path, lines, directive_at, file_directives};
  if (!up_marker) {
    out->up = ReadSection(st, std::nullopt, 0, lines.size(), true, problems);
  } else {
    out->sectioned = true;
    // A section ends at the next marker.
    auto end_of = [&](size_t marker) {
      size_t end = lines.size();
      for (size_t m : markers) {
        if (m > marker && m < end) end = m;
      }
      return end;
    };
    out->up = ReadSection(st, up_marker, *up_marker + 1, end_of(*up_marker), true, problems);
    if (down_marker) {
      out->down = ReadSection(st, down_marker, *down_marker + 1, end_of(*down_marker), false, problems);
    }
    if (verify_marker) {
      out->verify = ReadSection(st, verify_marker, *verify_marker + 1, end_of(*verify_marker),
                                false, problems);
    }
  }
  return problems->size() == problems_before;
}

}  // namespace ferry::source_internal
