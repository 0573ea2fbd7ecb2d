#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sessionstream/core/notifier.hpp"
#include "sessionstream/sessions/connection_manager.hpp"

namespace sessionstream::edge {

struct EngineConfig {
  std::size_t threads = 1;  // io_context threads; each owns its sessions
  std::chrono::milliseconds heartbeat_interval{15000};  // SSE ": ping\n\n" after this long idle
  std::chrono::milliseconds send_timeout{10000};  // a write in flight longer: close slow_consumer
  std::size_t max_batch_bytes = 262144;           // take_events budget per write
  int shutdown_retry_ms = 5000;  // "retry:" on the SSE close frame when reason == shutdown
  std::size_t ws_max_message_bytes = 65536;  // larger messages get a message_too_large error frame
  std::size_t ws_hard_max_message_bytes = 1 << 20;  // beyond this Beast closes with 1009
  double ws_messages_per_second = 20.0;             // token bucket per connection
  std::size_t ws_message_burst = 40;
  std::chrono::milliseconds ws_idle_timeout{60000};  // Beast idle timeout; pings at half of it
  std::chrono::milliseconds handshake_timeout{10000};
  std::size_t outbox_max_frames = 256;  // direct replies queued per connection; overflow closes
  std::size_t outbox_max_bytes = 1 << 20;
  std::size_t inbound_max_messages = 65536;  // to the host; when full a message gets error "busy"
};

// initial: body bytes written first (e.g. the welcome frame); the engine adds
// the chunk framing when chunked. buffered: bytes the client sent after its
// request; an SSE client has nothing to say, so they are discarded.
struct SseAdopt {
  bool chunked = true;
  std::string initial;
  std::string buffered;
};

// request: the raw HTTP/1.1 upgrade request bytes ("GET /path?query
// HTTP/1.1\r\nHost: ...\r\n...\r\n\r\n") followed by any bytes already read
// after it. headers: extra response headers for the 101 (set-cookie,
// x-session-id). welcome: the first text frame (none when empty).
struct WebSocketAdopt {
  std::string request;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string welcome;
};

struct InboundMessage {
  enum class Kind { text, closed };
  std::uint64_t connection_id = 0;
  Kind kind = Kind::text;
  std::string text;  // text: the client's message; closed: the close reason
};

// A snapshot of the engine's counters; open_* are gauges, the rest totals.
struct EngineMetrics {
  std::uint64_t adopted_sse = 0;
  std::uint64_t adopted_websocket = 0;
  std::uint64_t open_sse = 0;
  std::uint64_t open_websocket = 0;
  std::uint64_t writes = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t events_written = 0;
  std::uint64_t heartbeats = 0;
  std::uint64_t send_timeouts = 0;
  std::uint64_t ws_messages_in = 0;
  std::uint64_t ws_rate_limited = 0;
  std::uint64_t ws_oversized = 0;
  std::uint64_t inbound_dropped = 0;
  std::uint64_t closed_total = 0;
};

// Native delivery of adopted SSE and WebSocket connections. After adoption
// the engine alone writes frames, reads client messages, sends heartbeats and
// pings, detects disconnects and closes; the host only drains take_inbound().
// Every public method is thread-safe, except that stop() and the destructor
// must not run on an engine thread. The ConnectionManager (and its Hub) of
// adopted connections must outlive the engine, or at least its stop().
class Engine {
 public:
  static constexpr std::uint64_t kInboundToken = ~std::uint64_t{0};

  // host_notifier (may be null) is marked with kInboundToken when the inbound
  // queue goes from empty to non-empty. Throws InvalidArgument for a config
  // value out of range. Starts the threads.
  Engine(EngineConfig config, std::shared_ptr<Notifier> host_notifier);
  ~Engine();  // stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The notifier to pass to ConnectionManager::open for a connection that will
  // be adopted (round robin over the workers).
  [[nodiscard]] std::shared_ptr<Notifier> next_notifier();

  // Takes ownership of fd in every case (closes it on error). Throws
  // InvalidArgument when fd is not a TCP socket or the connection's notifier
  // is not one of next_notifier()'s (the connection is left as it is), and
  // Closed after begin_shutdown()/stop() (the connection is closed with reason
  // shutdown).
  void adopt_sse(int fd, ConnectionPtr connection, SseAdopt options);
  void adopt_websocket(int fd, ConnectionPtr connection, WebSocketAdopt options);

  // A direct text frame to one WebSocket connection, sent before its mailbox
  // frames. False when the id is unknown or closed; an outbox overflow closes
  // the connection as slow_consumer and returns false.
  bool send_text(std::uint64_t connection_id, std::string text);

  // Messages and closed notices in arrival order, at most max of them.
  [[nodiscard]] std::vector<InboundMessage> take_inbound(std::size_t max = 4096);
  [[nodiscard]] EngineMetrics metrics() const;

  // Refuses further adopts; open sessions run on (close them through the
  // ConnectionManager so they send their close frames).
  void begin_shutdown();
  // True once no adopted connection is open; false on timeout.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Closes every connection left (reason shutdown, sockets closed at once),
  // stops and joins the threads. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sessionstream::edge
