#pragma once

#include <optional>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "connection.hpp"

namespace loadgen {

// A WebSocket client: handshake, one subscribe frame, then text messages that
// hold either an array of event objects or a control object.
class WsConnection final : public Connection {
 public:
  // chat: this client sends chat messages while measuring (--chat-fraction).
  WsConnection(Context& ctx, std::size_t index, bool stalled, bool chat = false);

 private:
  asio::awaitable<void> session() override;
  void close_transport() override;

  void handle_message(std::string_view text, std::int64_t now_us);
  void handle_object(std::string_view object, std::int64_t now_us);
  std::string subscribe_frame() const;
  // Sends a chat message every 1/--chat-rate s while the connection of this
  // generation is open; only this loop writes after the subscribe frame.
  asio::awaitable<void> chat_loop(std::uint64_t generation);
  void handle_chat_reply(std::string_view object);

  std::optional<boost::beast::websocket::stream<tcp::socket>> ws_;
  boost::beast::flat_buffer buffer_;
  std::string last_id_;
  const bool chat_;
  asio::steady_timer chat_timer_;
  std::uint64_t generation_ = 0;  // bumped per session; a stale chat loop ends
};

}  // namespace loadgen
