#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sessionstream {

// UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates (U+D800 to
// U+DFFF), nothing above U+10FFFF. One pass over the bytes, no allocation.

inline constexpr std::size_t kUtf8Valid = std::string_view::npos;

// Byte offset of the first byte of the first invalid sequence in text (a
// sequence cut short by the end of text counts as invalid), or kUtf8Valid.
[[nodiscard]] std::size_t find_invalid_utf8(std::string_view text) noexcept;

[[nodiscard]] inline bool is_valid_utf8(std::string_view text) noexcept {
  return find_invalid_utf8(text) == kUtf8Valid;
}

// The longest prefix of text of at most max_bytes bytes that does not end in
// the middle of a valid multi-byte sequence: a character that does not fit is
// dropped whole. Text that is not UTF-8 is cut at max_bytes.
[[nodiscard]] std::string_view truncate_utf8(std::string_view text, std::size_t max_bytes) noexcept;

// Text fit for an error message or a frame that echoes untrusted input:
// truncate_utf8(text, max_bytes) with every invalid sequence in it replaced by
// U+FFFD, so the result is always valid UTF-8 (and at most 3 * max_bytes long).
[[nodiscard]] std::string utf8_excerpt(std::string_view text, std::size_t max_bytes);

}  // namespace sessionstream
