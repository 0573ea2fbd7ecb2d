#include "edge/inbound_queue.hpp"

#include <algorithm>
#include <iterator>

#include "sessionstream/edge/engine.hpp"

namespace sessionstream::edge {

InboundQueue::InboundQueue(std::size_t capacity, std::shared_ptr<Notifier> notifier)
    : capacity_(capacity), notifier_(std::move(notifier)) {}

bool InboundQueue::push_text(std::uint64_t connection_id, std::string text) {
  return push({connection_id, InboundMessage::Kind::text, std::move(text)}, true);
}

void InboundQueue::push_closed(std::uint64_t connection_id, std::string reason) {
  push({connection_id, InboundMessage::Kind::closed, std::move(reason)}, false);
}

bool InboundQueue::push(InboundMessage message, bool bounded) {
  bool was_empty = false;
  {
    std::lock_guard lock(mutex_);
    if (bounded && messages_.size() >= capacity_) return false;
    was_empty = messages_.empty();
    messages_.push_back(std::move(message));
  }
  if (was_empty && notifier_) notifier_->mark_ready(Engine::kInboundToken);
  return true;
}

std::vector<InboundMessage> InboundQueue::take(std::size_t max) {
  std::lock_guard lock(mutex_);
  const auto n = static_cast<std::ptrdiff_t>(std::min(max, messages_.size()));
  std::vector<InboundMessage> taken(std::make_move_iterator(messages_.begin()),
                                    std::make_move_iterator(messages_.begin() + n));
  messages_.erase(messages_.begin(), messages_.begin() + n);
  // Messages left behind need another wake-up: take() emptied nothing, so no
  // push would mark the notifier again.
  if (!messages_.empty() && notifier_) notifier_->mark_ready(Engine::kInboundToken);
  return taken;
}

}  // namespace sessionstream::edge
