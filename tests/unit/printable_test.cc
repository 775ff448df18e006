#include "core/printable.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(PrintableTest, ControlCharactersAreEscaped) {
  EXPECT_EQ(Printable("1_a\nb\x1b[2J.sql"), "1_a\\nb\\x1b[2J.sql");
  EXPECT_EQ(Printable("tab\there\r\x7f"), "tab\\there\\r\\x7f");
  EXPECT_EQ(Printable(std::string_view("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(Printable("plain name.sql"), "plain name.sql");
  EXPECT_EQ(Printable("caf\xc3\xa9.sql"), "caf\xc3\xa9.sql");  // UTF-8 kept
}

TEST(PrintableTest, LinesKeepTheirBreaks) {
  EXPECT_EQ(PrintableLines("a\x1b[31m\nb\tc\n"), "a\\x1b[31m\nb\\tc\n");
  EXPECT_EQ(PrintableLines(""), "");
}

}  // namespace
}  // namespace ferry
