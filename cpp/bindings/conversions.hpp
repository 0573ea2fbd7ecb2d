#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "sessionstream/errors.hpp"

namespace sessionstream::bindings {

// Python ints and floats arrive signed; these reject what the core cannot
// take with a message naming the argument.
inline std::size_t positive(long long value, const char* name) {
  if (value <= 0) {
    throw InvalidArgument(std::string{name} + " must be positive, got " + std::to_string(value));
  }
  return static_cast<std::size_t>(value);
}

inline std::chrono::milliseconds positive_seconds(double seconds, const char* name) {
  if (!(seconds > 0)) {
    throw InvalidArgument(std::string{name} + " must be a positive number of seconds, got " +
                          std::to_string(seconds));
  }
  return std::chrono::milliseconds{static_cast<std::int64_t>(seconds * 1000.0)};
}

}  // namespace sessionstream::bindings
