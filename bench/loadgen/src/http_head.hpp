#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace loadgen {

// The parts of an HTTP/1.x response head a streaming client needs.
struct ResponseHead {
  enum class Body { chunked, length, until_close };
  int status = 0;
  Body body = Body::until_close;
  std::uint64_t content_length = 0;
  std::string_view content_type;  // view into the parsed text
};

// Position just past the blank line ending the head, or npos.
std::size_t find_head_end(std::string_view buffered);

// Parses a complete head (status line and header lines); nullopt when malformed.
std::optional<ResponseHead> parse_response_head(std::string_view head);

}  // namespace loadgen
