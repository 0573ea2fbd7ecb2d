#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "asio.hpp"
#include "sse_session.hpp"

namespace ref {

// The set of SSE clients and the fan-out to them. Single-threaded: every call
// comes from the io_context thread, so nothing here locks.
class Broadcaster {
 public:
  Broadcaster(asio::io_context& ioc, std::size_t max_pending, double heartbeat_s);

  void add(tcp::socket socket);
  // A WebSocket client whose upgrade request carried `key` (Sec-WebSocket-Key).
  void add_websocket(tcp::socket socket, std::string_view key);
  void remove(SseSession& session);

  // Hands every client the same frames (SSE clients `sse`, WebSocket clients `ws`,
  // the same events framed for each), then starts one write per idle client.
  // Clients that cannot take them are closed (bounded memory, no silent stall).
  void publish(const std::vector<Frame>& sse, const std::vector<Frame>& ws);

  std::size_t connections() const { return sessions_.size(); }
  std::uint64_t dropped() const { return dropped_; }

 private:
  void schedule_heartbeat();

  asio::io_context& ioc_;
  const std::size_t max_pending_;
  const double heartbeat_s_;
  asio::steady_timer heartbeat_timer_;
  std::vector<std::shared_ptr<SseSession>> sessions_;
  std::vector<std::shared_ptr<SseSession>> overflowed_;  // reused scratch for publish()
  std::uint64_t dropped_ = 0;
};

}  // namespace ref
