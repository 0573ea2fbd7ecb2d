#pragma once

#include <optional>
#include <string>

#include "chunked_decoder.hpp"
#include "connection.hpp"
#include "http_head.hpp"
#include "sse_parser.hpp"

namespace loadgen {

// An EventSource-like client: GET with Accept: text/event-stream, Last-Event-ID
// on reconnect, body decoded (chunked, sized or until close) and parsed as SSE.
class SseConnection final : public Connection {
 public:
  SseConnection(Context& ctx, std::size_t index, bool stalled);

 private:
  asio::awaitable<void> session() override;
  void close_transport() override;

  // Reads into the shared scratch buffer; returns 0 with ec set on error.
  asio::awaitable<std::size_t> read_some(error_code& ec);
  // Feeds received bytes; false once the stream is over (end_reason_ says why).
  bool consume(const char* p, std::size_t n, std::int64_t now_us);
  bool parse(std::string_view body, std::int64_t now_us);
  std::string request() const;

  std::optional<tcp::socket> socket_;
  SseParser parser_;
  ChunkedDecoder chunked_;
  ResponseHead::Body body_ = ResponseHead::Body::until_close;
  std::uint64_t remaining_ = 0;
  bool need_wait_ = false;   // the last read emptied the kernel queue
  unsigned full_reads_ = 0;  // consecutive reads that filled the buffer
  std::string end_reason_;
};

}  // namespace loadgen
