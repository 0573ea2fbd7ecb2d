#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sessionstream/core/notifier.hpp"

namespace sessionstream {

// standby: a failover connection opened behind the session's active one
// (other_connection_id); promoted: a standby took over from the active one
// that closed (other_connection_id).
enum class LifecycleKind {
  connected,
  disconnected,
  swapped,
  replaced,
  slow_consumer,
  rejected,
  standby,
  promoted,
};

struct LifecycleEvent {
  LifecycleKind kind;
  std::uint64_t connection_id = 0;
  std::string session_id;
  // swapped, replaced: the connection taking over; standby: the active one;
  // promoted: the active one that closed.
  std::uint64_t other_connection_id = 0;
  std::string detail;  // a reason or rejected limit
};

// Bounded queue of lifecycle events, drained by the host (Python) when its
// notifier fires; the core never calls into the host. When full the oldest
// events are dropped and counted, so a host that never drains stays bounded.
class LifecycleQueue {
 public:
  static constexpr std::uint64_t kNotifyToken = 0;

  explicit LifecycleQueue(std::size_t capacity = 4096,
                          std::shared_ptr<Notifier> notifier = nullptr);

  void push(LifecycleEvent event);
  [[nodiscard]] std::vector<LifecycleEvent> take();
  [[nodiscard]] std::uint64_t dropped() const;
  void set_notifier(std::shared_ptr<Notifier> notifier);

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::shared_ptr<Notifier> notifier_;
  std::deque<LifecycleEvent> events_;
  std::uint64_t dropped_ = 0;
};

[[nodiscard]] const char* to_string(LifecycleKind kind) noexcept;

}  // namespace sessionstream
