#include "chunked_decoder.hpp"

namespace loadgen {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

void ChunkedDecoder::step(char c) {
  auto size_done = [this] {
    if (!have_digit_) {
      state_ = State::error;
    } else {
      state_ = remaining_ == 0 ? State::trailer : State::data;
    }
  };
  switch (state_) {
    case State::size:
      if (int v = hex_value(c); v >= 0) {
        if (remaining_ > (UINT64_MAX >> 4)) {
          state_ = State::error;
          return;
        }
        remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(v);
        have_digit_ = true;
      } else if (c == ';' || c == ' ' || c == '\t') {
        state_ = State::ext;
      } else if (c == '\r') {
        state_ = State::size_lf;
      } else if (c == '\n') {
        size_done();
      } else {
        state_ = State::error;
      }
      return;
    case State::ext:
      if (c == '\r')
        state_ = State::size_lf;
      else if (c == '\n')
        size_done();
      return;
    case State::size_lf:
      if (c == '\n')
        size_done();
      else
        state_ = State::error;
      return;
    case State::data_cr:
      if (c == '\r') {
        state_ = State::data_lf;
      } else if (c == '\n') {
        state_ = State::size;
        have_digit_ = false;
      } else {
        state_ = State::error;
      }
      return;
    case State::data_lf:
      if (c == '\n') {
        state_ = State::size;
        have_digit_ = false;
      } else {
        state_ = State::error;
      }
      return;
    case State::trailer:  // at the start of a trailer line; an empty one ends the body
      if (c == '\r')
        state_ = State::trailer_lf;
      else if (c == '\n')
        state_ = State::done;
      else
        state_ = State::trailer_line;
      return;
    case State::trailer_line:
      if (c == '\n') state_ = State::trailer;
      return;
    case State::trailer_lf:
      state_ = c == '\n' ? State::done : State::error;
      return;
    case State::data:
    case State::done:
    case State::error:
      return;
  }
}

}  // namespace loadgen
