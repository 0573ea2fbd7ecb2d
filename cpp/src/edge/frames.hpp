#pragma once

// Bytes the engine writes itself: HTTP chunk framing, SSE heartbeat and close
// frames, WebSocket close codes and the JSON error frames of the protocol.
// Pure functions; thread-safe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sessionstream::edge::frames {

inline constexpr std::string_view kHeartbeat = ": ping\n\n";
inline constexpr std::string_view kChunkedHeartbeat = "8\r\n: ping\n\n\r\n";
inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// "<hex size>\r\n" in place, so a session needs no heap for it.
class ChunkHeader {
 public:
  void set(std::size_t size) noexcept;
  [[nodiscard]] std::string_view view() const noexcept { return {bytes_.data(), length_}; }

 private:
  std::array<char, 2 * sizeof(std::size_t) + 2> bytes_{};
  std::size_t length_ = 0;
};

// What Python's close_frame() writes: "retry: <ms>\n" (when given), for
// replaced "id: replaced\n" (replaced_stream_id), then
// "event: close\ndata: {"reason":"<reason>"}\n\n".
[[nodiscard]] std::string sse_close(std::string_view reason, std::optional<int> retry_ms);

// The WebSocket close code of a core close reason.
[[nodiscard]] std::uint16_t close_code(std::string_view reason) noexcept;
// The reason cut to the 123 bytes a close frame carries, on a UTF-8 boundary.
[[nodiscard]] std::string_view close_text(std::string_view reason) noexcept;

// Python's format(value, "g") and repr(round(value, 3)).
[[nodiscard]] std::string format_g(double value);
[[nodiscard]] std::string round3(double value);

// [{"type":"error","error":<code>,"detail":<detail><extra>}]; extra is either
// empty or starts with a comma.
[[nodiscard]] std::string error(std::string_view code, std::string_view detail,
                                std::string_view extra = {});
[[nodiscard]] std::string rate_limited(double rate, std::size_t burst, double retry_after);
[[nodiscard]] std::string too_large(std::size_t size, std::size_t limit);
[[nodiscard]] std::string binary_not_supported();
[[nodiscard]] std::string busy();

}  // namespace sessionstream::edge::frames
