#include "edge/sse_session.hpp"

#include <boost/asio/write.hpp>
#include <optional>
#include <utility>

#include "edge/buffer_view.hpp"
#include "edge/worker.hpp"
#include "sessionstream/core/mailbox.hpp"

namespace sessionstream::edge {

namespace asio = boost::asio;

SseSession::SseSession(Worker& worker, asio::ip::tcp::socket socket, ConnectionPtr connection,
                       SseAdopt options)
    : Session(worker, std::move(connection)),
      socket_(std::move(socket)),
      initial_(std::move(options.initial)),
      last_write_(Clock::now()),
      chunked_(options.chunked) {}

void SseSession::start() {
  wait_readable();
  pump();
}

void SseSession::on_ready() {
  pump();
}

void SseSession::on_tick(Clock::time_point now) {
  if (closed_) return;
  const EngineConfig& config = worker_.shared().config;
  if (writing_) {
    if (now - write_started_ > config.send_timeout) {
      Counters::add(worker_.shared().counters.send_timeouts);
      force_close(close_reason::slow_consumer);
    }
    return;
  }
  if (finishing_ || now - last_write_ < config.heartbeat_interval) return;
  buffers_.clear();
  buffers_.push_back(asio::buffer(chunked_ ? frames::kChunkedHeartbeat : frames::kHeartbeat));
  Counters::add(worker_.shared().counters.heartbeats);
  write(0);
}

void SseSession::add(std::string_view bytes) {
  if (bytes.empty()) return;
  buffers_.push_back(asio::buffer(bytes.data(), bytes.size()));
  body_bytes_ += bytes.size();
}

void SseSession::pump() {
  if (closed_ || writing_ || finishing_) return;
  const SharedState& shared = worker_.shared();
  Mailbox::EventBatch batch = connection_->mailbox()->take_events(shared.config.max_batch_bytes);
  buffers_.clear();
  body_bytes_ = 0;
  if (chunked_) buffers_.emplace_back();  // the chunk header, once the size is known
  add(initial_);
  for (const EventPtr& event : batch.events) add(event->sse_frame());
  if (batch.closed) {
    const bool shutdown = batch.close_reason == close_reason::shutdown;
    close_frame_ = frames::sse_close(
        batch.close_reason,
        shutdown ? std::optional<int>{shared.config.shutdown_retry_ms} : std::nullopt);
    add(close_frame_);
    finishing_ = true;
  }
  if (body_bytes_ == 0) {
    buffers_.clear();
    return;
  }
  if (chunked_) {
    chunk_header_.set(body_bytes_);
    const std::string_view header = chunk_header_.view();
    buffers_.front() = asio::buffer(header.data(), header.size());
    buffers_.push_back(asio::buffer(frames::kCrlf));
    if (finishing_) buffers_.push_back(asio::buffer(frames::kLastChunk));
  }
  in_flight_ = std::move(batch.events);
  write(in_flight_.size());
}

void SseSession::write(std::size_t events) {
  writing_ = true;
  events_in_flight_ = events;
  write_started_ = Clock::now();
  asio::async_write(
      socket_, BufferView{buffers_},
      [self = shared_from_this(), this](const boost::system::error_code& ec, std::size_t bytes) {
        guarded([&] { on_write(ec, bytes); });
      });
}

void SseSession::on_write(const boost::system::error_code& ec, std::size_t bytes) {
  writing_ = false;
  in_flight_.clear();
  if (in_flight_.capacity() > 64) in_flight_.shrink_to_fit();
  buffers_.clear();
  if (buffers_.capacity() > 64) buffers_.shrink_to_fit();
  if (closed_) return;
  if (ec) {
    close(close_reason::client_gone);
    return;
  }
  Counters& counters = worker_.shared().counters;
  Counters::add(counters.writes);
  Counters::add(counters.bytes_written, bytes);
  Counters::add(counters.events_written, events_in_flight_);
  last_write_ = Clock::now();
  if (!initial_.empty()) std::string{}.swap(initial_);
  if (finishing_) {
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    close(connection_->mailbox()->closed_reason());
    return;
  }
  pump();
}

void SseSession::wait_readable() {
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this(), this](const boost::system::error_code& ec) {
                       guarded([&] { on_readable(ec); });
                     });
}

void SseSession::on_readable(const boost::system::error_code& ec) {
  if (closed_) return;
  if (ec) {
    close(close_reason::client_gone);
    return;
  }
  // The client has nothing to say after its request: discard, but an end of
  // stream or an error means it is gone.
  const std::span<char> scratch = worker_.scratch();
  for (int i = 0; i < 4; ++i) {
    boost::system::error_code read_ec;
    const std::size_t n = socket_.read_some(asio::buffer(scratch.data(), scratch.size()), read_ec);
    if (read_ec == asio::error::would_block || read_ec == asio::error::try_again) break;
    if (read_ec || n == 0) {
      close(close_reason::client_gone);
      return;
    }
  }
  wait_readable();
}

void SseSession::force_close(std::string_view reason) noexcept {
  close(reason);
}

void SseSession::close(std::string_view reason) noexcept {
  if (closed_) return;
  closed_ = true;
  const auto self = shared_from_this();  // alive until this returns
  try {
    connection_->close(reason);
  } catch (...) {
  }
  boost::system::error_code ignored;
  socket_.close(ignored);
  Counters& counters = worker_.shared().counters;
  Counters::sub(counters.open_sse);
  Counters::add(counters.closed_total);
  worker_.remove(id_);
}

void SseSession::abandon() noexcept {
  closed_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  Counters::sub(worker_.shared().counters.open_sse);
}

}  // namespace sessionstream::edge
