#include "edge/frames.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "sessionstream/core/event.hpp"
#include "sessionstream/core/mailbox.hpp"

namespace sessionstream::edge::frames {

void ChunkHeader::set(std::size_t size) noexcept {
  const auto result = std::to_chars(bytes_.data(), bytes_.data() + bytes_.size() - 2, size, 16);
  char* end = result.ptr;
  *end++ = '\r';
  *end++ = '\n';
  length_ = static_cast<std::size_t>(end - bytes_.data());
}

std::string sse_close(std::string_view reason, std::optional<int> retry_ms) {
  std::string frame;
  frame.reserve(reason.size() + 64);
  if (retry_ms) frame += "retry: " + std::to_string(*retry_ms) + "\n";
  if (reason == close_reason::replaced) {
    frame += "id: ";
    frame += replaced_stream_id;
    frame += "\n";
  }
  frame += "event: close\ndata: {\"reason\":";
  append_json_string(frame, reason);
  frame += "}\n\n";
  return frame;
}

std::uint16_t close_code(std::string_view reason) noexcept {
  if (reason == close_reason::shutdown) return 1001;
  if (reason == close_reason::replaced) return 4000;
  if (reason == close_reason::slow_consumer) return 4001;
  if (reason == close_reason::session_cleanup) return 4002;
  if (reason == close_reason::client_gone) return 4003;
  if (reason == close_reason::invalid_utf8) return 1007;
  return 1000;
}

std::string_view close_text(std::string_view reason) noexcept {
  constexpr std::size_t kMax = 123;
  if (reason.size() <= kMax) return reason;
  std::size_t end = kMax;
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
  return reason.substr(0, end);
}

std::string format_g(double value) {
  std::array<char, 32> buffer{};
  const int n = std::snprintf(buffer.data(), buffer.size(), "%g", value);
  return {buffer.data(), n > 0 ? static_cast<std::size_t>(n) : 0};
}

std::string round3(double value) {
  // %.3f rounds the exact binary value as Python's round() does; the shortest
  // round-trip text of the result is Python's repr.
  std::array<char, 64> fixed{};
  std::snprintf(fixed.data(), fixed.size(), "%.3f", value);
  const double rounded = std::strtod(fixed.data(), nullptr);
  std::array<char, 64> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), rounded);
  std::string text{buffer.data(), result.ptr};
  if (text.find_first_of(".einn") == std::string::npos) text += ".0";
  return text;
}

std::string error(std::string_view code, std::string_view detail, std::string_view extra) {
  std::string frame;
  frame.reserve(code.size() + detail.size() + extra.size() + 48);
  frame += "[{\"type\":\"error\",\"error\":";
  append_json_string(frame, code);
  frame += ",\"detail\":";
  append_json_string(frame, detail);
  frame.append(extra);
  frame += "}]";
  return frame;
}

std::string rate_limited(double rate, std::size_t burst, double retry_after) {
  return error("rate_limited",
               "more than " + format_g(rate) + " messages per second (burst " +
                   std::to_string(burst) + "); message dropped",
               ",\"retry_after\":" + round3(retry_after));
}

std::string too_large(std::size_t size, std::size_t limit) {
  return error("message_too_large",
               "message of " + std::to_string(size) + " bytes exceeds the limit of " +
                   std::to_string(limit) + " bytes",
               ",\"limit\":" + std::to_string(limit));
}

std::string binary_not_supported() {
  return error("binary_not_supported", "send JSON objects as text frames");
}

std::string busy() {
  return error("busy", "the server is overloaded; message dropped");
}

}  // namespace sessionstream::edge::frames
