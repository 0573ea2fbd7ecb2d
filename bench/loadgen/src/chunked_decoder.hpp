#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace loadgen {

// Incremental decoder for HTTP/1.1 chunked transfer coding. Input may be split
// anywhere; decoded body bytes are handed to the sink as views into the input.
class ChunkedDecoder {
 public:
  enum class Status { more, done, error };

  // sink(std::string_view) receives body bytes. Stops at the end of the body;
  // bytes after it are ignored.
  template <class Sink>
  Status feed(const char* p, std::size_t n, Sink&& sink) {
    const char* end = p + n;
    while (p < end && state_ != State::done && state_ != State::error) {
      if (state_ == State::data) {
        auto take = static_cast<std::size_t>(
            std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(end - p)));
        sink(std::string_view(p, take));
        p += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::data_cr;
        continue;
      }
      step(*p++);
    }
    if (state_ == State::done) return Status::done;
    if (state_ == State::error) return Status::error;
    return Status::more;
  }

 private:
  enum class State {
    size,
    ext,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer,
    trailer_line,
    trailer_lf,
    done,
    error
  };

  void step(char c);  // one framing byte, anything but chunk data

  State state_ = State::size;
  std::uint64_t remaining_ = 0;
  bool have_digit_ = false;
};

}  // namespace loadgen
