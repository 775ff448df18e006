// Text from outside (file names, stored values) made safe to print on a
// terminal: control characters (newline, carriage return, tab, ESC and the
// rest of 0x00-0x1f, 0x7f) become C-style escapes, so a file name cannot
// forge output lines or send terminal escape sequences. Other bytes,
// including UTF-8, are kept. JSON output needs none of this: the JSON
// encoder escapes control characters itself.
#pragma once

#include <string>
#include <string_view>

namespace ferry {

// "a\nb" -> "a\\nb"; "\x1b[31m" -> "\\x1b[31m". Text without control
// characters is returned unchanged.
std::string Printable(std::string_view text);
// The same, but newlines stay (multi-line messages): for text whose line
// breaks are ferry's own, with file names already passed through Printable.
std::string PrintableLines(std::string_view text);

}  // namespace ferry
