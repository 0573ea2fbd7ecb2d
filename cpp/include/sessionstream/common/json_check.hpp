#pragma once

#include <cstddef>
#include <string_view>

namespace sessionstream {

// A strict RFC 8259 checker: the text must be exactly one JSON value with
// optional surrounding whitespace. Strings are checked for escapes and control
// characters only (a lone \uD800 escape is valid JSON text); UTF-8 is checked
// elsewhere. One pass, no allocation; nesting beyond max_depth is refused so
// hostile input cannot exhaust the stack.

inline constexpr std::size_t kJsonMaxDepth = 512;

struct JsonError {
  const char* what = nullptr;  // nullptr when the text is valid
  std::size_t offset = 0;      // byte where the problem was found

  [[nodiscard]] explicit operator bool() const noexcept { return what != nullptr; }
};

[[nodiscard]] JsonError find_json_error(std::string_view text,
                                        std::size_t max_depth = kJsonMaxDepth) noexcept;

[[nodiscard]] inline bool is_valid_json(std::string_view text,
                                        std::size_t max_depth = kJsonMaxDepth) noexcept {
  return !find_json_error(text, max_depth);
}

}  // namespace sessionstream
