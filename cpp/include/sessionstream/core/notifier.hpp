#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace sessionstream {

// Wakes one consumer thread (an asyncio loop) when subscribers become ready.
// Owns one eventfd. Producers call mark_ready(); the eventfd is written only
// when the ready list goes from empty to non-empty, so one wake-up serves every
// mailbox that became ready before the consumer ran.
// Thread-safe. Leaf lock: never calls out while holding its mutex.
class Notifier {
 public:
  Notifier();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // The readable file descriptor to register with the event loop.
  [[nodiscard]] int fd() const noexcept { return fd_; }

  void mark_ready(std::uint64_t token);
  // Clears the eventfd and returns the tokens marked since the last call, in
  // the order they became ready.
  [[nodiscard]] std::vector<std::uint64_t> take_ready();

 private:
  void signal() const noexcept;

  int fd_;
  std::mutex mutex_;
  std::vector<std::uint64_t> ready_;
};

}  // namespace sessionstream
