#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sessionstream/common/log_note.hpp"

namespace sessionstream::detail {

// Bounded queue of notes for the host with de-duplication by kind: once()
// queues a kind's first note and suppresses (counting) its repeats until the
// kind is re-armed. Both the queue and the set of remembered kinds are
// bounded: kinds often embed text from outside (librdkafka log lines, error
// names), so past max_kinds the least recently seen kind is forgotten and its
// next note is queued again. Thread-safe; leaf lock.
class NoteLog {
 public:
  static constexpr std::size_t kDefaultCapacity = 256;
  static constexpr std::size_t kDefaultMaxKinds = 1024;

  // Throws InvalidArgument when either bound is zero.
  explicit NoteLog(std::size_t capacity = kDefaultCapacity,
                   std::size_t max_kinds = kDefaultMaxKinds);

  // Queues the note unless its kind was noted and not re-armed (or forgotten) since.
  void once(std::string level, std::string kind, std::string message);
  // Queues the note whatever was noted before.
  void always(std::string level, std::string kind, std::string message);
  // Lets every kind starting with prefix be noted again (e.g. after a recovery).
  void rearm(std::string_view prefix);
  [[nodiscard]] std::vector<LogNote> take();

  // Notes pushed out of the full queue before the host took them.
  [[nodiscard]] std::uint64_t dropped() const;
  // Repeats once() did not queue, over all kinds ever seen.
  [[nodiscard]] std::uint64_t suppressed() const;
  // Repeats of one kind suppressed since it was last noted; 0 for a kind not remembered.
  [[nodiscard]] std::uint64_t suppressed(std::string_view kind) const;
  // Kinds currently remembered; never above max_kinds.
  [[nodiscard]] std::size_t kinds() const;

 private:
  struct Kind {
    std::list<const std::string*>::iterator recency;  // points at the map's own key
    std::uint64_t suppressed = 0;
  };
  using Kinds = std::map<std::string, Kind, std::less<>>;

  void push_locked(LogNote note);
  void forget_locked(Kinds::iterator kind);

  const std::size_t capacity_;
  const std::size_t max_kinds_;
  mutable std::mutex mutex_;
  std::deque<LogNote> notes_;
  Kinds kinds_;                            // ordered, so rearm() visits one prefix range
  std::list<const std::string*> recency_;  // least recently seen first
  std::uint64_t dropped_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace sessionstream::detail
