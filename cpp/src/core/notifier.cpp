#include "sessionstream/core/notifier.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace sessionstream {

Notifier::Notifier() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Notifier::~Notifier() {
  ::close(fd_);
}

void Notifier::signal() const noexcept {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: the reader is already due to wake.
  [[maybe_unused]] const auto n = ::write(fd_, &one, sizeof one);
}

void Notifier::mark_ready(std::uint64_t token) {
  bool was_empty = false;
  {
    std::lock_guard lock(mutex_);
    was_empty = ready_.empty();
    ready_.push_back(token);
  }
  if (was_empty) signal();
}

std::vector<std::uint64_t> Notifier::take_ready() {
  std::uint64_t counter = 0;
  [[maybe_unused]] const auto n = ::read(fd_, &counter, sizeof counter);
  std::vector<std::uint64_t> ready;
  std::lock_guard lock(mutex_);
  ready.swap(ready_);
  return ready;
}

}  // namespace sessionstream
