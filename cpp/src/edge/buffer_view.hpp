#pragma once

#include <boost/asio/buffer.hpp>
#include <vector>

namespace sessionstream::edge {

// A non-owning ConstBufferSequence over a vector of buffers, so an async write
// does not copy (and allocate) the vector it is given. The vector must stay
// unchanged until the write completes.
class BufferView {
 public:
  using value_type = boost::asio::const_buffer;
  using const_iterator = const boost::asio::const_buffer*;

  explicit BufferView(const std::vector<value_type>& buffers) noexcept
      : begin_(buffers.data()), end_(buffers.data() + buffers.size()) {}

  [[nodiscard]] const_iterator begin() const noexcept { return begin_; }
  [[nodiscard]] const_iterator end() const noexcept { return end_; }

 private:
  const_iterator begin_;
  const_iterator end_;
};

}  // namespace sessionstream::edge
