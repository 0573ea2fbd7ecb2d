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
  WsConnection(Context& ctx, std::size_t index, bool stalled);

 private:
  asio::awaitable<void> session() override;
  void close_transport() override;

  void handle_message(std::string_view text, std::int64_t now_us);
  void handle_object(std::string_view object, std::int64_t now_us);
  std::string subscribe_frame() const;

  std::optional<boost::beast::websocket::stream<tcp::socket>> ws_;
  boost::beast::flat_buffer buffer_;
  std::string last_id_;
};

}  // namespace loadgen
