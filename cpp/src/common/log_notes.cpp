#include "common/log_notes.hpp"

#include <iterator>

#include "sessionstream/common/errors.hpp"

namespace sessionstream::detail {

NoteLog::NoteLog(std::size_t capacity, std::size_t max_kinds)
    : capacity_(capacity), max_kinds_(max_kinds) {
  if (capacity_ == 0 || max_kinds_ == 0) {
    throw InvalidArgument("NoteLog needs a capacity and max_kinds of at least 1, got " +
                          std::to_string(capacity_) + " and " + std::to_string(max_kinds_));
  }
}

void NoteLog::once(std::string level, std::string kind, std::string message) {
  std::lock_guard lock(mutex_);
  if (const auto known = kinds_.find(kind); known != kinds_.end()) {
    ++known->second.suppressed;
    ++suppressed_;
    recency_.splice(recency_.end(), recency_, known->second.recency);
    return;
  }
  if (kinds_.size() >= max_kinds_) forget_locked(kinds_.find(*recency_.front()));
  const auto added = kinds_.emplace(kind, Kind{}).first;
  added->second.recency = recency_.insert(recency_.end(), &added->first);
  push_locked({std::move(level), std::move(kind), std::move(message)});
}

void NoteLog::always(std::string level, std::string kind, std::string message) {
  std::lock_guard lock(mutex_);
  push_locked({std::move(level), std::move(kind), std::move(message)});
}

void NoteLog::rearm(std::string_view prefix) {
  std::lock_guard lock(mutex_);
  for (auto it = kinds_.lower_bound(prefix); it != kinds_.end() && it->first.starts_with(prefix);) {
    const auto next = std::next(it);
    forget_locked(it);
    it = next;
  }
}

void NoteLog::forget_locked(Kinds::iterator kind) {
  recency_.erase(kind->second.recency);
  kinds_.erase(kind);
}

void NoteLog::push_locked(LogNote note) {
  if (notes_.size() >= capacity_) {
    notes_.pop_front();
    ++dropped_;
  }
  notes_.push_back(std::move(note));
}

std::vector<LogNote> NoteLog::take() {
  std::lock_guard lock(mutex_);
  std::vector<LogNote> out(std::make_move_iterator(notes_.begin()),
                           std::make_move_iterator(notes_.end()));
  notes_.clear();
  return out;
}

std::uint64_t NoteLog::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

std::uint64_t NoteLog::suppressed() const {
  std::lock_guard lock(mutex_);
  return suppressed_;
}

std::uint64_t NoteLog::suppressed(std::string_view kind) const {
  std::lock_guard lock(mutex_);
  const auto it = kinds_.find(kind);
  return it == kinds_.end() ? 0 : it->second.suppressed;
}

std::size_t NoteLog::kinds() const {
  std::lock_guard lock(mutex_);
  return kinds_.size();
}

}  // namespace sessionstream::detail
