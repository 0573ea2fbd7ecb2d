#pragma once

#include <stdexcept>
#include <string>

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

class PayloadTooLarge : public Error {
 public:
  using Error::Error;
};

// The hub or connection manager was closed; nothing further is accepted.
class Closed : public Error {
 public:
  using Error::Error;
};

}  // namespace sessionstream
