// The JSON checker decides whether client and source payloads are embedded
// raw in WebSocket frames, so a wrong "valid" breaks every receiver. Check it
// against properties any RFC 8259 checker has.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sessionstream/common/json_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sessionstream;
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  constexpr std::size_t kDepth = 64;
  const JsonError error = find_json_error(text, kDepth);
  if (error && error.offset > text.size()) std::abort();
  if (!error) {
    const std::string value{text};
    // Whitespace around a value and one more level of nesting keep it valid
    // (within the depth bound); two values are never one.
    if (!is_valid_json(" \t\r\n" + value + "\n ", kDepth)) std::abort();
    if (!is_valid_json("[" + value + "]", kDepth + 1)) std::abort();
    if (!is_valid_json("{\"k\":" + value + "}", kDepth + 1)) std::abort();
    if (is_valid_json(value + " " + value, kDepth)) std::abort();
    if (is_valid_json("[" + value, kDepth + 1)) std::abort();
    // A larger depth bound never rejects what a smaller one accepted.
    if (!is_valid_json(text, kJsonMaxDepth)) std::abort();
  } else if (is_valid_json(text, 0) && !text.empty()) {
    // Depth 0 admits only scalars, a subset of what depth 64 admits.
    std::abort();
  }
  return 0;
}
