#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "asio.hpp"

namespace ref {

class Broadcaster;

// An immutable, pre-framed SSE or WebSocket frame shared by every client it goes to.
using Frame = std::shared_ptr<const std::string>;

// One client, SSE or WebSocket (`websocket`: it gets the WebSocket framing of every
// event). Frames wait in pending_ while a write is in flight; when it completes,
// everything pending goes out in one gather write. What the client sends (a WebSocket
// subscribe frame, pongs) is read and discarded. Owned by the broadcaster's list and by
// its own in-flight handlers (shared_from_this).
class SseSession : public std::enable_shared_from_this<SseSession> {
 public:
  SseSession(tcp::socket socket, Broadcaster& hub, std::size_t max_pending, bool websocket);

  bool websocket() const { return websocket_; }

  void start(const Frame& response_head);

  // Queues a frame; false when the client already holds max_pending frames,
  // and the caller should drop it.
  bool enqueue(const Frame& frame);
  // Starts a write of everything pending unless one is in flight.
  void flush();
  void close();

  std::size_t slot = 0;  // position in the broadcaster's list, for O(1) removal

 private:
  void start_write();
  void on_write(const error_code& ec);
  void check_peer();  // notices EOF or reset without keeping a read buffer
  void fail();

  tcp::socket socket_;
  Broadcaster& hub_;
  const std::size_t max_pending_;
  const bool websocket_;
  std::vector<Frame> pending_;
  std::vector<Frame> in_flight_;  // keeps the written frames alive until the write completes
  std::vector<asio::const_buffer> buffers_;
  bool writing_ = false;
  bool closed_ = false;
};

}  // namespace ref
