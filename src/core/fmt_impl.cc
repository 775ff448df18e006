// fmt's compiled part, built into ferry from Debian's headers (libfmt-dev).
//
// Debian ships fmt as headers plus a shared library only. Linking that
// libfmt.so also loads libstdc++.so and libgcc_s.so at every start, whose
// relocations cost the dynamic loader more than the rest of a short command
// (`ferry status`) together. fmt's own documented way to avoid the library is
// to compile format-inl.h, the file its shared library is built from; this
// translation unit does that once, so the other files keep including only
// <fmt/format.h> (no header-only mode, which would compile it in every file).
#include <fmt/format-inl.h>

// <fmt/format.h> declares these templates `extern`, leaving their char
// instantiations to the compiled library; they are made here instead.
FMT_BEGIN_NAMESPACE
namespace detail {
template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl<char>(locale_ref) -> char;
}  // namespace detail
FMT_END_NAMESPACE
