#include "ws_connection.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>

#include <boost/beast/http/status.hpp>
#include <boost/beast/websocket.hpp>

#include "json_scan.hpp"

namespace loadgen {

namespace websocket = boost::beast::websocket;

namespace {

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

WsConnection::WsConnection(Context& ctx, std::size_t index, bool stalled, bool chat)
    : Connection(ctx, index, stalled),
      last_id_(ctx.options.last_event_id),
      chat_(chat && !stalled),
      chat_timer_(ctx.ioc) {}

void WsConnection::close_transport() {
  chat_timer_.cancel();
  if (ws_) {
    auto& s = ws_->next_layer();
    if (s.is_open()) {
      error_code ignored;
      s.close(ignored);
    }
  }
}

std::string WsConnection::subscribe_frame() const {
  std::string f = R"({"type":"subscribe","channels":[)";
  for (std::size_t i = 0; i < ctx_.options.ws_channels.size(); ++i) {
    if (i) f += ',';
    append_json_string(f, ctx_.options.ws_channels[i]);
  }
  f += ']';
  if (!last_id_.empty()) {
    f += R"(,"last_event_id":)";
    append_json_string(f, last_id_);
  }
  f += '}';
  return f;
}

void WsConnection::handle_object(std::string_view object, std::int64_t now_us) {
  std::string_view type, id, data;
  bool has_data = false;
  json::for_each_member(object, [&](std::string_view key, std::string_view value) {
    if (key == "type") {
      type = json::string_content(value);
    } else if (key == "id") {
      id = json::string_content(value);
    } else if (key == "data") {
      data = value;
      has_data = true;
    }
    return true;
  });
  if (type == "event") {
    if (!id.empty()) last_id_.assign(id);
    ctx_.stats.on_event(cursor_, has_data ? json::scan_payload(data) : json::Payload{}, now_us);
  } else if (type == "gap") {
    ctx_.stats.on_gap_marker(cursor_);
  } else if (type == "reset") {
    ctx_.stats.on_reset_marker(cursor_);
  } else if (type == "error") {
    ++ctx_.stats.server_errors;
    if (chat_) {
      ++ctx_.stats.chat_errors;
      std::string_view code;
      json::for_each_member(object, [&](std::string_view key, std::string_view value) {
        if (key == "error") code = json::string_content(value);
        return key != "error";
      });
      ++ctx_.stats.chat_error_codes[std::string(code.substr(0, 64))];
    }
  } else if (chat_ && type == ctx_.options.chat_type) {
    handle_chat_reply(object);
  }
  // pong, subscribed and unknown control objects need no action.
}

void WsConnection::handle_chat_reply(std::string_view object) {
  std::int64_t ts = 0;
  bool found = false;
  json::for_each_member(object, [&](std::string_view key, std::string_view value) {
    if (key == "ts") found = json::to_int64(value, ts);
    return !found;
  });
  // Replies to messages sent before the measured window (none are) or malformed ones
  // are not round trips.
  if (found && ctx_.stats.phase == Phase::measure) ctx_.stats.on_chat_reply(ts, realtime_us());
}

asio::awaitable<void> WsConnection::chat_loop(std::uint64_t generation) {
  using Clock = asio::steady_timer::clock_type;
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / ctx_.options.chat_rate));
  // Chatting clients start at evenly spread phases of the period (golden-ratio
  // sequence), so the server sees a steady stream of messages, not bursts.
  const double phase = std::fmod(static_cast<double>(index_) * 0.6180339887498949, 1.0);
  auto next = Clock::now() + std::chrono::duration_cast<Clock::duration>(period * phase);
  std::string message;
  for (;;) {
    chat_timer_.expires_at(next);
    error_code ec;
    co_await chat_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (generation != generation_ || !open_ || commanded()) co_return;
    const auto now = Clock::now();
    next += period;
    if (next < now) next = now + period;  // fell behind (a long write): no catch-up burst
    if (ctx_.stats.phase != Phase::measure) continue;
    message.clear();
    message += R"({"type":")";
    message += ctx_.options.chat_type;
    message += R"(","ts":)";
    message += std::to_string(realtime_us());
    message += '}';
    co_await ws_->async_write(asio::buffer(message), asio::redirect_error(asio::use_awaitable, ec));
    if (generation != generation_) co_return;
    if (ec) {
      ++ctx_.stats.chat_send_failed;
      co_return;
    }
    ++ctx_.stats.chat_sent;
  }
}

void WsConnection::handle_message(std::string_view text, std::int64_t now_us) {
  const char* p = json::skip_ws(text.data(), text.data() + text.size());
  if (p == text.data() + text.size()) return;
  if (*p == '[') {
    json::for_each_element(text, [&](std::string_view element) {
      handle_object(element, now_us);
      return true;
    });
  } else if (*p == '{') {
    handle_object(text, now_us);
  }
}

asio::awaitable<void> WsConnection::session() {
  buffer_.clear();
  ++generation_;
  ws_.emplace(ctx_.ioc);

  error_code ec = co_await connect(ws_->next_layer());
  if (ec) {
    setup_failed(setup_error(ec, "connect"));
    co_return;
  }
  ws_->set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
    for (const auto& [name, value] : ctx_.headers) req.set(name, value);
  }));
  websocket::response_type res;
  co_await ws_->async_handshake(res, ctx_.url.host_header, ctx_.url.target,
                                asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (res.result_int() != 0 && res.result() != boost::beast::http::status::switching_protocols) {
      setup_failed("http " + std::to_string(res.result_int()));
    } else {
      setup_failed(setup_error(ec, "handshake"));
    }
    co_return;
  }
  ws_->text(true);
  const std::string subscribe = subscribe_frame();
  co_await ws_->async_write(asio::buffer(subscribe), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    setup_failed(setup_error(ec, "subscribe"));
    co_return;
  }
  setup_done();

  if (holding_stall()) {
    co_await hold_stall();
    if (commanded()) {
      close_transport();
      co_return;
    }
  }

  if (chat_) {
    ++ctx_.stats.chatters;
    asio::co_spawn(ctx_.ioc, chat_loop(generation_), asio::detached);
  }

  std::string reason;
  for (;;) {
    co_await ws_->async_read(buffer_, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == websocket::error::closed) {
        const auto& cr = ws_->reason();
        reason = "ws close " + std::to_string(cr.code);
        if (!cr.reason.empty()) reason += ": " + std::string(cr.reason.data(), cr.reason.size());
      } else {
        reason = describe(ec);
      }
      break;
    }
    const auto now = realtime_us();
    const auto data = buffer_.cdata();
    handle_message(std::string_view(static_cast<const char*>(data.data()), data.size()), now);
    buffer_.consume(buffer_.size());
  }
  close_transport();
  closed_by_server(reason);
}

}  // namespace loadgen
