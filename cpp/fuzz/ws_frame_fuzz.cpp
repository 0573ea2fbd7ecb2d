// The WebSocket reader of the native engine: Beast's server stream with the
// options WebSocketSession sets (no auto-fragment, a message size cap), fed
// client bytes after a handshake. Modes: 0 arbitrary frames after a valid
// upgrade (no crash, no message beyond the cap), 1 arbitrary upgrade request and frames, 2 a valid
// masked, fragmented message that must read back byte for byte.
#include <fuzzer/FuzzedDataProvider.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sessionstream/common/utf8.hpp"

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

constexpr std::size_t kMaxMessage = 4096;
constexpr std::string_view kUpgrade =
    "GET /stream/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

// A client frame: FIN, opcode, mask bit set, the length in its shortest form.
void append_frame(std::string& out, bool fin, unsigned opcode, std::string_view payload,
                  std::uint32_t mask) {
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  const std::size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF));
    }
  }
  const unsigned char key[4] = {
      static_cast<unsigned char>(mask >> 24), static_cast<unsigned char>(mask >> 16),
      static_cast<unsigned char>(mask >> 8), static_cast<unsigned char>(mask)};
  out.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
}

struct Read {
  std::vector<std::string> messages;
  std::vector<bool> text;
  beast::error_code error;
};

// Accepts request (bytes already read by the host, as the engine does) and
// reads messages from wire until an error.
Read serve(std::string_view request, std::string_view wire) {
  boost::asio::io_context io;
  beast::test::stream server(io);
  beast::test::stream client(io);
  server.connect(client);
  client.write_some(boost::asio::buffer(wire.data(), wire.size()));
  client.close();  // end of stream once the bytes are consumed

  websocket::stream<beast::test::stream&> ws(server);
  ws.auto_fragment(false);
  ws.read_message_max(kMaxMessage);
  ws.write_buffer_bytes(1024);
  Read result;
  ws.accept(boost::asio::buffer(request.data(), request.size()), result.error);
  while (!result.error) {
    beast::flat_buffer buffer;
    const std::size_t n = ws.read(buffer, result.error);
    if (result.error) break;
    if (n != buffer.size() || n > kMaxMessage) std::abort();
    result.messages.push_back(beast::buffers_to_string(buffer.data()));
    result.text.push_back(ws.got_text());
  }
  return result;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  FuzzedDataProvider input(bytes, size);
  const unsigned mode = input.ConsumeIntegralInRange<unsigned>(0, 2);
  if (mode == 0) {
    // Beast fails most text that is not UTF-8 (1007) but not a sequence cut
    // off by an empty final fragment, so the engine checks each message again
    // (RawWebSocket.Utf8SequenceCutOffByAnEmptyFinalFragmentIs1007).
    (void)serve(kUpgrade, input.ConsumeRemainingBytesAsString());
  } else if (mode == 1) {
    const std::string request = input.ConsumeRandomLengthString(512);
    (void)serve(request, input.ConsumeRemainingBytesAsString());
  } else {
    const std::uint32_t mask = input.ConsumeIntegral<std::uint32_t>();
    const std::size_t pieces = input.ConsumeIntegralInRange<std::size_t>(1, 4);
    const std::string payload = input.ConsumeRemainingBytesAsString();
    const bool text = sessionstream::is_valid_utf8(payload);
    std::string wire;
    std::size_t at = 0;
    for (std::size_t p = 0; p < pieces; ++p) {
      const bool last = p + 1 == pieces;
      const std::size_t n = last ? payload.size() - at : (payload.size() - at) / 2;
      // A ping between fragments is answered without disturbing the message.
      if (p == 1) append_frame(wire, true, 0x9, "p", mask);
      append_frame(wire, last, p == 0 ? (text ? 0x1 : 0x2) : 0x0,
                   std::string_view{payload}.substr(at, n), mask);
      at += n;
    }
    const Read read = serve(kUpgrade, wire);
    const bool fits = payload.size() <= kMaxMessage;
    if (fits) {
      if (read.messages.size() != 1 || read.messages[0] != payload || read.text[0] != text) {
        std::abort();
      }
      if (read.error != websocket::error::closed &&
          read.error != beast::test::error::test_failure && read.error != boost::asio::error::eof) {
        // Anything but the end of the bytes means a valid frame was refused.
        std::abort();
      }
    } else if (!read.messages.empty()) {
      std::abort();
    }
  }
  return 0;
}
