#include "sse_session.hpp"

#include "broadcaster.hpp"

namespace ref {

SseSession::SseSession(tcp::socket socket, Broadcaster& hub, std::size_t max_pending,
                       bool websocket)
    : socket_(std::move(socket)), hub_(hub), max_pending_(max_pending), websocket_(websocket) {}

void SseSession::start(const Frame& response_head) {
  error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  socket_.non_blocking(true, ignored);
  pending_.push_back(response_head);
  flush();
  check_peer();
}

bool SseSession::enqueue(const Frame& frame) {
  if (closed_) return true;
  if (pending_.size() + in_flight_.size() >= max_pending_) return false;
  pending_.push_back(frame);
  return true;
}

void SseSession::flush() {
  if (!writing_ && !closed_ && !pending_.empty()) start_write();
}

void SseSession::start_write() {
  writing_ = true;
  in_flight_.swap(pending_);  // pending_ takes the old, empty in-flight vector and its capacity
  buffers_.clear();
  for (const auto& f : in_flight_) buffers_.emplace_back(f->data(), f->size());
  asio::async_write(
      socket_, buffers_,
      [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_write(ec); });
}

void SseSession::on_write(const error_code& ec) {
  writing_ = false;
  in_flight_.clear();
  if (closed_) return;
  if (ec) {
    fail();
    return;
  }
  flush();
}

void SseSession::check_peer() {
  // Read before waiting: sockets are registered edge-triggered, so an EOF that
  // arrived before the wait started would otherwise never be reported.
  char scratch[256];
  for (;;) {
    error_code ec;
    socket_.read_some(asio::buffer(scratch), ec);
    if (ec == asio::error::would_block) break;
    if (ec) {
      fail();
      return;
    }
  }
  socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const error_code& ec) {
    if (ec || self->closed_) return;
    self->check_peer();
  });
}

void SseSession::fail() {
  if (closed_) return;
  close();
  hub_.remove(*this);
}

void SseSession::close() {
  if (closed_) return;
  closed_ = true;
  pending_.clear();
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace ref
