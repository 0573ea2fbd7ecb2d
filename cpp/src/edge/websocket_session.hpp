#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <memory>
#include <string>
#include <vector>

#include "edge/outbox.hpp"
#include "edge/session.hpp"
#include "edge/token_bucket.hpp"
#include "sessionstream/core/event.hpp"
#include "sessionstream/edge/engine.hpp"

namespace sessionstream::edge {

// An adopted WebSocket connection, server role, on Beast (RFC 6455 framing,
// masking, UTF-8 and size checks, ping/pong and the close handshake; no
// permessage-deflate). Accepts from the request bytes the host read, then
// writes the welcome frame, direct replies from the outbox, and one JSON
// array frame per mailbox batch. Client text messages go to the inbound
// queue after the rate and size checks. Worker thread only.
class WebSocketSession final : public Session {
 public:
  WebSocketSession(Worker& worker, boost::asio::ip::tcp::socket socket, ConnectionPtr connection,
                   WebSocketAdopt options, std::shared_ptr<Outbox> outbox);

  void start() override;
  void on_ready() override;
  void on_tick(Clock::time_point now) override;
  void force_close(std::string_view reason) noexcept override;
  void abandon() noexcept override;

 private:
  enum class State : std::uint8_t { accepting, open, closing, closed };

  void on_accept(const boost::system::error_code& ec);
  void read();
  void on_read(const boost::system::error_code& ec);
  void handle_message();
  void reply(std::string frame);
  // Starts the next write (welcome, outbox, mailbox) or the close handshake.
  void pump();
  void write_text();
  void write_batch(std::vector<EventPtr> events);
  void on_write(const boost::system::error_code& ec, std::size_t bytes);
  void start_close(std::string_view reason);
  void close(std::string_view reason) noexcept;

  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
  // Cleared and shrunk after each message, so an idle connection holds none.
  boost::beast::flat_buffer read_buffer_;
  const std::shared_ptr<Outbox> outbox_;
  std::string request_;  // until accepted
  std::string welcome_;  // until written
  std::string text_;     // the direct frame in flight
  std::vector<EventPtr> in_flight_;
  std::vector<boost::asio::const_buffer> buffers_;
  TokenBucket bucket_;
  std::unique_ptr<boost::asio::steady_timer> close_timer_;  // only while closing
  Clock::time_point write_started_;
  Clock::time_point peer_closing_since_{};  // first tick that saw Beast closing
  std::size_t events_in_flight_ = 0;
  State state_ = State::accepting;
  bool writing_ = false;
};

}  // namespace sessionstream::edge
