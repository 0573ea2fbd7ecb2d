#include "broadcaster.hpp"

#include <chrono>
#include <string>

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

}  // namespace

Broadcaster::Broadcaster(asio::io_context& ioc, std::size_t max_pending, double heartbeat_s)
    : ioc_(ioc), max_pending_(max_pending), heartbeat_s_(heartbeat_s), heartbeat_timer_(ioc) {
  if (heartbeat_s_ > 0) schedule_heartbeat();
}

void Broadcaster::add(tcp::socket socket) {
  auto session = std::make_shared<SseSession>(std::move(socket), *this, max_pending_);
  session->slot = sessions_.size();
  sessions_.push_back(session);
  session->start(response_head());
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

void Broadcaster::publish(const std::vector<Frame>& frames) {
  overflowed_.clear();
  for (const auto& session : sessions_) {
    bool ok = true;
    for (const auto& f : frames) {
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
    static const Frame ping = std::make_shared<const std::string>(": keep-alive\n\n");
    publish({ping});
    schedule_heartbeat();
  });
}

}  // namespace ref
