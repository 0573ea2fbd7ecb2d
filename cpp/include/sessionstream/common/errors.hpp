#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace sessionstream {

// Every error the core raises derives from Error; the bindings map each class
// once to a Python exception of the same meaning.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A caller passed a value outside its valid range; the message names the value
// and what would be valid.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// Text that must be UTF-8 is not: field names which ("event" for the event
// type, "data"), offset is the byte where its first invalid sequence starts.
// (Channel names are printable ASCII, so a channel is refused as invalid.)
class InvalidUtf8 : public InvalidArgument {
 public:
  InvalidUtf8(std::string field, std::size_t offset, const std::string& message)
      : InvalidArgument(message), field_(std::move(field)), offset_(offset) {}

  [[nodiscard]] const std::string& field() const noexcept { return field_; }
  [[nodiscard]] std::size_t offset() const noexcept { return offset_; }

 private:
  std::string field_;
  std::size_t offset_;
};

// A subscribe would put a connection over its channel cap
// (max_channels_per_connection); nothing was changed.
class TooManyChannels : public InvalidArgument {
 public:
  TooManyChannels(std::size_t limit, const std::string& message)
      : InvalidArgument(message), limit_(limit) {}

  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

 private:
  std::size_t limit_;
};

class PayloadTooLarge : public Error {
 public:
  using Error::Error;
};

// The hub or connection manager was closed; nothing further is accepted.
class Closed : public Error {
 public:
  using Error::Error;
};

// A shared service the call needs (Redis) cannot be reached right now; the
// call did nothing and may be retried.
class Unavailable : public Error {
 public:
  using Error::Error;
};

}  // namespace sessionstream
