#include "edge/outbox.hpp"

#include <utility>

namespace sessionstream::edge {

Outbox::Outbox(std::uint64_t id, std::shared_ptr<Notifier> wake,
               std::weak_ptr<Connection> connection, std::size_t max_frames, std::size_t max_bytes)
    : id_(id),
      wake_(std::move(wake)),
      connection_(std::move(connection)),
      max_frames_(max_frames),
      max_bytes_(max_bytes) {}

Outbox::Push Outbox::push(std::string frame, bool wake) {
  bool was_empty = false;
  bool overflow = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return Push::closed;
    const std::size_t pending = frames_.size() - head_;
    if (pending + 1 > max_frames_ || bytes_ + frame.size() > max_bytes_) {
      closed_ = true;
      overflowed_ = true;
      frames_.clear();
      head_ = 0;
      bytes_ = 0;
      overflow = true;
    } else {
      was_empty = pending == 0;
      bytes_ += frame.size();
      frames_.push_back(std::move(frame));
    }
  }
  if (overflow) {
    // Closed here rather than on the worker so the caller's false already
    // means "closed"; the session then drops its socket when woken.
    if (const auto connection = connection_.lock()) connection->close(close_reason::slow_consumer);
    if (wake_) wake_->mark_ready(id_);
    return Push::overflow;
  }
  if (wake && was_empty && wake_) wake_->mark_ready(id_);
  return Push::queued;
}

std::optional<std::string> Outbox::pop() {
  std::lock_guard lock(mutex_);
  if (head_ == frames_.size()) return std::nullopt;
  std::string frame = std::move(frames_[head_++]);
  bytes_ -= frame.size();
  if (head_ == frames_.size()) {
    frames_.clear();
    head_ = 0;
    if (frames_.capacity() > 16) frames_.shrink_to_fit();
  }
  return frame;
}

bool Outbox::overflowed() const {
  std::lock_guard lock(mutex_);
  return overflowed_;
}

void Outbox::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  frames_.clear();
  frames_.shrink_to_fit();
  head_ = 0;
  bytes_ = 0;
}

}  // namespace sessionstream::edge
