#include "broadcaster.hpp"

#include <chrono>
#include <string>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/detail/sha1.hpp>

namespace ref {

namespace {

const Frame& response_head() {
  static const Frame head = std::make_shared<const std::string>(
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/event-stream\r\n"
      "Cache-Control: no-cache\r\n"
      "Connection: close\r\n"
      "\r\n");
  return head;
}

// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2).
std::string websocket_accept(std::string_view key) {
  namespace detail = boost::beast::detail;
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  detail::sha1_context ctx;
  detail::init(ctx);
  detail::update(ctx, key.data(), key.size());
  detail::update(ctx, kGuid.data(), kGuid.size());
  unsigned char digest[detail::sha1_context::digest_size];
  detail::finish(ctx, digest);
  std::string out(detail::base64::encoded_size(sizeof digest), '\0');
  out.resize(detail::base64::encode(out.data(), digest, sizeof digest));
  return out;
}

}  // namespace

Broadcaster::Broadcaster(asio::io_context& ioc, std::size_t max_pending, double heartbeat_s)
    : ioc_(ioc), max_pending_(max_pending), heartbeat_s_(heartbeat_s), heartbeat_timer_(ioc) {
  if (heartbeat_s_ > 0) schedule_heartbeat();
}

void Broadcaster::add(tcp::socket socket) {
  auto session = std::make_shared<SseSession>(std::move(socket), *this, max_pending_, false);
  session->slot = sessions_.size();
  sessions_.push_back(session);
  session->start(response_head());
}

void Broadcaster::add_websocket(tcp::socket socket, std::string_view key) {
  auto head = std::make_shared<const std::string>(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      websocket_accept(key) + "\r\n\r\n");
  auto session = std::make_shared<SseSession>(std::move(socket), *this, max_pending_, true);
  session->slot = sessions_.size();
  sessions_.push_back(session);
  session->start(head);
}

void Broadcaster::remove(SseSession& session) {
  const std::size_t slot = session.slot;
  if (slot >= sessions_.size() || sessions_[slot].get() != &session) return;
  if (slot + 1 != sessions_.size()) {
    sessions_[slot] = std::move(sessions_.back());
    sessions_[slot]->slot = slot;
  }
  sessions_.pop_back();
}

void Broadcaster::publish(const std::vector<Frame>& sse, const std::vector<Frame>& ws) {
  overflowed_.clear();
  for (const auto& session : sessions_) {
    bool ok = true;
    for (const auto& f : session->websocket() ? ws : sse) {
      if (!session->enqueue(f)) {
        ok = false;
        break;
      }
    }
    if (ok) {
      session->flush();
    } else {
      overflowed_.push_back(session);
    }
  }
  // Removal after the loop: it reorders sessions_.
  for (const auto& session : overflowed_) {
    session->close();
    remove(*session);
    ++dropped_;
  }
  overflowed_.clear();
}

void Broadcaster::schedule_heartbeat() {
  heartbeat_timer_.expires_after(std::chrono::duration_cast<asio::steady_timer::duration>(
      std::chrono::duration<double>(heartbeat_s_)));
  heartbeat_timer_.async_wait([this](const error_code& ec) {
    if (ec) return;
    static const Frame comment = std::make_shared<const std::string>(": keep-alive\n\n");
    static const Frame ping = std::make_shared<const std::string>(std::string("\x89\x00", 2));
    publish({comment}, {ping});
    schedule_heartbeat();
  });
}

}  // namespace ref
