#include "sessionstream/core/lifecycle.hpp"

#include <iterator>

namespace sessionstream {

LifecycleQueue::LifecycleQueue(std::size_t capacity, std::shared_ptr<Notifier> notifier)
    : capacity_(capacity == 0 ? 1 : capacity), notifier_(std::move(notifier)) {}

void LifecycleQueue::push(LifecycleEvent event) {
  std::shared_ptr<Notifier> notifier;
  {
    std::lock_guard lock(mutex_);
    if (events_.size() >= capacity_) {
      events_.pop_front();
      ++dropped_;
    }
    events_.push_back(std::move(event));
    if (events_.size() == 1) notifier = notifier_;
  }
  if (notifier) notifier->mark_ready(kNotifyToken);
}

std::vector<LifecycleEvent> LifecycleQueue::take() {
  std::lock_guard lock(mutex_);
  std::vector<LifecycleEvent> events(std::make_move_iterator(events_.begin()),
                                     std::make_move_iterator(events_.end()));
  events_.clear();
  return events;
}

std::uint64_t LifecycleQueue::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void LifecycleQueue::set_notifier(std::shared_ptr<Notifier> notifier) {
  bool pending = false;
  {
    std::lock_guard lock(mutex_);
    notifier_ = notifier;
    pending = !events_.empty();
  }
  // push() signals only on empty -> non-empty, so events queued before the
  // notifier was attached would otherwise wait for the next push. Signalled
  // outside the lock: the notifier's mutex is a leaf.
  if (notifier && pending) notifier->mark_ready(kNotifyToken);
}

const char* to_string(LifecycleKind kind) noexcept {
  switch (kind) {
    case LifecycleKind::connected:
      return "connected";
    case LifecycleKind::disconnected:
      return "disconnected";
    case LifecycleKind::swapped:
      return "swapped";
    case LifecycleKind::replaced:
      return "replaced";
    case LifecycleKind::slow_consumer:
      return "slow_consumer";
    case LifecycleKind::rejected:
      return "rejected";
    case LifecycleKind::standby:
      return "standby";
    case LifecycleKind::promoted:
      return "promoted";
  }
  return "unknown";
}

}  // namespace sessionstream
