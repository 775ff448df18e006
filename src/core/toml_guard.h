// A guard in front of toml++ (Debian's 3.3): text it cannot read safely.
//
// toml++ 3.3 reaches __builtin_unreachable() (undefined behaviour) when it
// asks whether some characters outside ASCII are white space: one outside
// quotes and comments, or one after a backslash in a basic string (also
// after the white space and line breaks a line-ending backslash skips).
// tests/fuzz/config_fuzz.cc found them, the first also after a quote inside
// a bare key or value (`d=6"é`, `0=4="é`), which toml++ does not read as a
// string. Every file ferry parses with toml++
// goes through TomlUnsafeSpot first and is refused with the line it names.
#pragma once

#include <string_view>

namespace ferry {

struct TomlUnsafe {
  int line = 0;             // 1-based; 0 = the text is safe to parse
  std::string_view reason;  // what is wrong and what to do, for the message
};

TomlUnsafe TomlUnsafeSpot(std::string_view text);

}  // namespace ferry
