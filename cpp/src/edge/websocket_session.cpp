#include "edge/websocket_session.hpp"

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket.hpp>
#include <utility>

#include "edge/buffer_view.hpp"
#include "edge/frames.hpp"
#include "edge/worker.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/core/mailbox.hpp"

namespace sessionstream::edge {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

namespace {

constexpr std::string_view kOpen = "[";
constexpr std::string_view kComma = ",";
constexpr std::string_view kClose = "]";
// How long a close handshake may wait for the peer's close frame.
constexpr std::chrono::seconds kCloseWait{2};
// Message buffer bytes prepared for a read while no message is arriving.
constexpr std::size_t kIdleReadBytes = 64;

asio::const_buffer view(std::string_view bytes) {
  return {bytes.data(), bytes.size()};
}

}  // namespace

WebSocketSession::WebSocketSession(Worker& worker, asio::ip::tcp::socket socket,
                                   ConnectionPtr connection, WebSocketAdopt options,
                                   std::shared_ptr<Outbox> outbox)
    : Session(worker, std::move(connection)),
      ws_(std::move(socket)),
      outbox_(std::move(outbox)),
      request_(std::move(options.request)),
      welcome_(std::move(options.welcome)),
      bucket_(worker.shared().config.ws_messages_per_second,
              static_cast<double>(worker.shared().config.ws_message_burst)) {
  const EngineConfig& config = worker.shared().config;
  websocket::stream_base::timeout timeout{};
  timeout.handshake_timeout = config.handshake_timeout;
  timeout.idle_timeout = config.ws_idle_timeout;
  timeout.keep_alive_pings = true;
  ws_.set_option(timeout);
  ws_.set_option(websocket::stream_base::decorator(
      [headers = std::move(options.headers)](websocket::response_type& response) {
        for (const auto& [name, value] : headers) response.insert(name, value);
        // Beast names itself and its version unless a Server header is set.
        if (response.count(beast::http::field::server) == 0) {
          response.set(beast::http::field::server, "sessionstream");
        }
      }));
  ws_.auto_fragment(false);
  ws_.read_message_max(config.ws_hard_max_message_bytes);
  // Server frames are not masked, so Beast writes payloads straight from our
  // buffers; its own write buffer only needs to be small.
  ws_.write_buffer_bytes(1024);
  ws_.text(true);
}

void WebSocketSession::start() {
  ws_.async_accept(asio::buffer(request_),
                   [self = shared_from_this(), this](const boost::system::error_code& ec) {
                     guarded([&] { on_accept(ec); });
                   });
}

void WebSocketSession::on_accept(const boost::system::error_code& ec) {
  if (state_ != State::accepting) return;
  if (ec) {
    close(close_reason::client_gone);
    return;
  }
  state_ = State::open;
  std::string{}.swap(request_);
  // The headers were for the 101 only.
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type&) {}));
  read();
  pump();
}

void WebSocketSession::on_ready() {
  pump();
}

void WebSocketSession::on_tick(Clock::time_point now) {
  if (state_ == State::closed) return;
  if (writing_ && now - write_started_ > worker_.shared().config.send_timeout) {
    Counters::add(worker_.shared().counters.send_timeouts);
    force_close(close_reason::slow_consumer);
    return;
  }
  // After a peer's close or a protocol error Beast answers, half-closes and
  // waits for the peer's end of stream; a peer that keeps its socket open is
  // cut off after the close wait rather than Beast's handshake timeout.
  if (state_ == State::open && !ws_.is_open()) {
    if (peer_closing_since_ == Clock::time_point{}) {
      peer_closing_since_ = now;
    } else if (now - peer_closing_since_ > kCloseWait) {
      force_close(close_reason::client_gone);
    }
  }
}

void WebSocketSession::read() {
  // While idle only a few bytes are prepared in the message buffer (Beast
  // would reserve a whole TCP frame's worth per connection); once a message
  // is arriving Beast picks the read size.
  const std::size_t limit = read_buffer_.size() == 0 ? kIdleReadBytes : 0;
  ws_.async_read_some(
      read_buffer_, limit,
      [self = shared_from_this(), this](const boost::system::error_code& ec, std::size_t) {
        guarded([&] { on_read(ec); });
      });
}

void WebSocketSession::on_read(const boost::system::error_code& ec) {
  if (state_ == State::closed) return;
  if (ec) {
    // The peer closed, went away, timed out or broke the protocol (Beast has
    // sent the close frame with the matching code then).
    close(ec == websocket::error::bad_frame_payload ? close_reason::invalid_utf8
                                                    : close_reason::client_gone);
    return;
  }
  if (!ws_.is_message_done()) {
    read();
    return;
  }
  handle_message();
  read_buffer_.clear();
  read_buffer_.shrink_to_fit();
  if (state_ == State::open) read();
}

void WebSocketSession::handle_message() {
  SharedState& shared = worker_.shared();
  Counters& counters = shared.counters;
  Counters::add(counters.ws_messages_in);
  if (state_ != State::open) return;
  const EngineConfig& config = shared.config;
  const std::size_t size = read_buffer_.size();
  if (!bucket_.take()) {
    Counters::add(counters.ws_rate_limited);
    reply(frames::rate_limited(config.ws_messages_per_second, config.ws_message_burst,
                               bucket_.retry_after()));
    return;
  }
  if (size > config.ws_max_message_bytes) {
    Counters::add(counters.ws_oversized);
    reply(frames::too_large(size, config.ws_max_message_bytes));
    return;
  }
  if (!ws_.got_text()) {
    reply(frames::binary_not_supported());
    return;
  }
  std::string text = beast::buffers_to_string(read_buffer_.data());
  // Beast checks UTF-8 as frames arrive but lets a sequence cut off by an
  // empty final fragment through; nothing that is not UTF-8 may reach the host.
  if (!is_valid_utf8(text)) {
    connection_->mailbox()->close(close_reason::invalid_utf8);
    return;
  }
  if (!shared.inbound.push_text(id_, std::move(text))) {
    Counters::add(counters.inbound_dropped);
    reply(frames::busy());
  }
}

void WebSocketSession::reply(std::string frame) {
  // An overflow has closed the connection as slow_consumer and emptied the outbox:
  // pump() then sends the close frame once the write in flight is done, so the
  // client learns why; the send timeout bounds that wait.
  (void)outbox_->push(std::move(frame), false);
  pump();
}

void WebSocketSession::pump() {
  if (state_ != State::open || writing_) return;
  if (!welcome_.empty()) {
    text_ = std::exchange(welcome_, std::string{});
    write_text();
    return;
  }
  if (auto frame = outbox_->pop()) {
    text_ = std::move(*frame);
    write_text();
    return;
  }
  Mailbox::EventBatch batch =
      connection_->mailbox()->take_events(worker_.shared().config.max_batch_bytes);
  if (!batch.events.empty()) {
    // A closed batch with events is closed again, empty, on the next take.
    write_batch(std::move(batch.events));
    return;
  }
  if (batch.closed) start_close(batch.close_reason);
}

void WebSocketSession::write_text() {
  writing_ = true;
  events_in_flight_ = 0;
  write_started_ = Clock::now();
  ws_.async_write(asio::buffer(text_), [self = shared_from_this(), this](
                                           const boost::system::error_code& ec, std::size_t bytes) {
    guarded([&] { on_write(ec, bytes); });
  });
}

void WebSocketSession::write_batch(std::vector<EventPtr> events) {
  buffers_.clear();
  buffers_.reserve(2 * events.size() + 1);
  buffers_.push_back(view(kOpen));
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0) buffers_.push_back(view(kComma));
    buffers_.push_back(view(events[i]->ws_object()));
  }
  buffers_.push_back(view(kClose));
  in_flight_ = std::move(events);
  writing_ = true;
  events_in_flight_ = in_flight_.size();
  write_started_ = Clock::now();
  ws_.async_write(
      BufferView{buffers_},
      [self = shared_from_this(), this](const boost::system::error_code& ec, std::size_t bytes) {
        guarded([&] { on_write(ec, bytes); });
      });
}

void WebSocketSession::on_write(const boost::system::error_code& ec, std::size_t bytes) {
  writing_ = false;
  if (text_.capacity() > 256) {
    std::string{}.swap(text_);
  } else {
    text_.clear();
  }
  in_flight_.clear();
  if (in_flight_.capacity() > 64) in_flight_.shrink_to_fit();
  buffers_.clear();
  if (buffers_.capacity() > 128) buffers_.shrink_to_fit();
  if (state_ == State::closed) return;
  if (ec) {
    close(close_reason::client_gone);
    return;
  }
  Counters& counters = worker_.shared().counters;
  Counters::add(counters.writes);
  Counters::add(counters.bytes_written, bytes);
  Counters::add(counters.events_written, events_in_flight_);
  pump();
}

void WebSocketSession::start_close(std::string_view reason) {
  state_ = State::closing;
  close_timer_ = std::make_unique<asio::steady_timer>(ws_.get_executor(), kCloseWait);
  close_timer_->async_wait([self = shared_from_this(), this](const boost::system::error_code& ec) {
    if (!ec) close(close_reason::client_gone);  // the peer never answered; close is noexcept
  });
  websocket::close_reason frame{static_cast<websocket::close_code>(frames::close_code(reason))};
  const std::string_view text = frames::close_text(reason);
  frame.reason.assign(text.data(), text.size());
  ws_.async_close(frame, [self = shared_from_this(), this](const boost::system::error_code&) {
    close(close_reason::client_gone);  // the mailbox's reason is the one kept
  });
}

void WebSocketSession::force_close(std::string_view reason) noexcept {
  close(reason);
}

void WebSocketSession::close(std::string_view reason) noexcept {
  if (state_ == State::closed) return;
  state_ = State::closed;
  const auto self = shared_from_this();  // alive until this returns
  SharedState& shared = worker_.shared();
  std::string final_reason{reason};
  try {
    connection_->close(reason);
    final_reason = connection_->mailbox()->closed_reason();
  } catch (...) {
  }
  outbox_->close();
  shared.unregister_outbox(id_);
  boost::system::error_code ignored;
  if (close_timer_) close_timer_->cancel();
  beast::get_lowest_layer(ws_).close(ignored);
  try {
    shared.inbound.push_closed(id_, std::move(final_reason));
  } catch (...) {
  }
  Counters::sub(shared.counters.open_websocket);
  Counters::add(shared.counters.closed_total);
  worker_.remove(id_);
}

void WebSocketSession::abandon() noexcept {
  state_ = State::closed;
  boost::system::error_code ignored;
  beast::get_lowest_layer(ws_).close(ignored);
  Counters::sub(worker_.shared().counters.open_websocket);
}

}  // namespace sessionstream::edge
