#include "sse_connection.hpp"

#include <string_view>

#include "json_scan.hpp"

namespace loadgen {

namespace {
constexpr std::size_t kMaxHead = 64 * 1024;
constexpr unsigned kReadsBeforeYield = 16;
}  // namespace

SseConnection::SseConnection(Context& ctx, std::size_t index, bool stalled)
    : Connection(ctx, index, stalled) {
  parser_.set_last_id(ctx.options.last_event_id);
}

void SseConnection::close_transport() {
  if (socket_ && socket_->is_open()) {
    error_code ignored;
    socket_->close(ignored);
  }
}

std::string SseConnection::request() const {
  std::string r;
  r.reserve(256);
  r += "GET ";
  if (const std::size_t spread = ctx_.options.url_spread; spread > 0) {
    const std::string k = std::to_string(index_ % spread);
    std::string_view target = ctx_.url.target;
    for (auto at = target.find("{k}"); at != std::string_view::npos; at = target.find("{k}")) {
      r += target.substr(0, at);
      r += k;
      target.remove_prefix(at + 3);
    }
    r += target;
  } else {
    r += ctx_.url.target;
  }
  r += " HTTP/1.1\r\nHost: ";
  r += ctx_.url.host_header;
  r += "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n";
  if (!parser_.last_id().empty()) {
    r += "Last-Event-ID: ";
    r += parser_.last_id();
    r += "\r\n";
  }
  for (const auto& [name, value] : ctx_.headers) {
    r += name;
    r += ": ";
    r += value;
    r += "\r\n";
  }
  r += "\r\n";
  return r;
}

asio::awaitable<std::size_t> SseConnection::read_some(error_code& ec) {
  // Asio registers sockets edge-triggered, so a wait may only start once a read
  // has seen the kernel queue empty; otherwise queued bytes would never wake it.
  // Every suspension happens before the read: the shared scratch must reach the
  // caller's parser before any other client can read into it.
  for (;;) {
    if (need_wait_) {
      co_await socket_->async_wait(tcp::socket::wait_read,
                                   asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return 0;
      need_wait_ = false;
    } else if (full_reads_ >= kReadsBeforeYield) {
      // Let other clients run; the queued bytes stay readable without a new edge.
      full_reads_ = 0;
      co_await asio::post(ctx_.ioc, asio::use_awaitable);
    }
    auto& scratch = ctx_.scratch;
    std::size_t n = socket_->read_some(asio::buffer(scratch), ec);
    if (ec == asio::error::would_block) {
      need_wait_ = true;
      continue;
    }
    if (ec) co_return 0;
    if (n < scratch.size()) {
      need_wait_ = true;  // a short read drained the queue: new data brings a new edge
      full_reads_ = 0;
    } else {
      ++full_reads_;
    }
    co_return n;
  }
}

bool SseConnection::parse(std::string_view body, std::int64_t now_us) {
  bool over = false;
  bool ok =
      parser_.feed(body.data(), body.size(), [&](std::string_view type, std::string_view data) {
        if (over) return;
        if (type == "gap") {
          ctx_.stats.on_gap_marker(cursor_);
        } else if (type == "reset") {
          ctx_.stats.on_reset_marker(cursor_);
        } else if (type == "close") {
          end_reason_ = "close: " + std::string(data.substr(0, 120));
          over = true;
        } else {
          ctx_.stats.on_event(cursor_, json::scan_payload(data), now_us);
        }
      });
  if (!ok) {
    end_reason_ = "sse line too long";
    return false;
  }
  return !over;
}

bool SseConnection::consume(const char* p, std::size_t n, std::int64_t now_us) {
  switch (body_) {
    case ResponseHead::Body::until_close:
      return parse(std::string_view(p, n), now_us);
    case ResponseHead::Body::length: {
      auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n));
      remaining_ -= take;
      if (!parse(std::string_view(p, take), now_us)) return false;
      if (remaining_ == 0) {
        end_reason_ = "end of body";
        return false;
      }
      return true;
    }
    case ResponseHead::Body::chunked: {
      bool alive = true;
      auto status = chunked_.feed(p, n, [&](std::string_view s) {
        if (alive) alive = parse(s, now_us);
      });
      if (!alive) return false;
      if (status == ChunkedDecoder::Status::done) {
        end_reason_ = "end of stream";
        return false;
      }
      if (status == ChunkedDecoder::Status::error) {
        end_reason_ = "bad chunked framing";
        return false;
      }
      return true;
    }
  }
  return true;
}

asio::awaitable<void> SseConnection::session() {
  parser_.restart();
  chunked_ = ChunkedDecoder{};
  end_reason_.clear();
  need_wait_ = false;
  full_reads_ = 0;
  socket_.emplace(ctx_.ioc);

  error_code ec = co_await connect(*socket_);
  if (ec) {
    setup_failed(setup_error(ec, "connect"));
    co_return;
  }
  const std::string req = request();
  co_await asio::async_write(*socket_, asio::buffer(req),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    setup_failed(setup_error(ec, "request"));
    co_return;
  }
  socket_->non_blocking(true, ec);

  std::string head;
  std::size_t head_end = std::string::npos;
  while (head_end == std::string::npos) {
    std::size_t n = co_await read_some(ec);
    if (ec) {
      setup_failed(setup_error(ec, "response"));
      co_return;
    }
    head.append(ctx_.scratch.data(), n);
    if (head.size() > kMaxHead) {
      setup_failed("response: head too large");
      co_return;
    }
    head_end = find_head_end(head);
  }
  auto parsed = parse_response_head(std::string_view(head).substr(0, head_end));
  if (!parsed) {
    setup_failed("response: malformed head");
    co_return;
  }
  if (parsed->status != 200) {
    setup_failed("http " + std::to_string(parsed->status));
    co_return;
  }
  body_ = parsed->body;
  remaining_ = parsed->content_length;
  setup_done();

  bool alive = true;
  if (head.size() > head_end) {
    alive = consume(head.data() + head_end, head.size() - head_end, realtime_us());
  }
  head = std::string();  // release: idle clients keep no per-connection buffer

  if (alive && holding_stall()) {
    co_await hold_stall();
    if (commanded()) {
      close_transport();
      co_return;
    }
  }

  while (alive) {
    std::size_t n = co_await read_some(ec);
    if (ec) {
      if (!commanded()) end_reason_ = describe(ec);
      break;
    }
    alive = consume(ctx_.scratch.data(), n, realtime_us());
  }
  close_transport();
  closed_by_server(end_reason_);
}

}  // namespace loadgen
