#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sessionstream/core/notifier.hpp"
#include "sessionstream/edge/engine.hpp"

namespace sessionstream::edge {

// Client messages and closed notices on their way to the host, which drains
// them when its notifier fires (token Engine::kInboundToken). Bounded for
// messages; closed notices are always accepted so the host never keeps state
// for a connection it was not told about. Thread-safe; the notifier is marked
// after the lock is released.
class InboundQueue {
 public:
  InboundQueue(std::size_t capacity, std::shared_ptr<Notifier> notifier);

  // False when the queue holds capacity messages already (nothing queued).
  bool push_text(std::uint64_t connection_id, std::string text);
  void push_closed(std::uint64_t connection_id, std::string reason);
  [[nodiscard]] std::vector<InboundMessage> take(std::size_t max);

 private:
  bool push(InboundMessage message, bool bounded);

  const std::size_t capacity_;
  const std::shared_ptr<Notifier> notifier_;
  std::mutex mutex_;
  std::deque<InboundMessage> messages_;
};

}  // namespace sessionstream::edge
