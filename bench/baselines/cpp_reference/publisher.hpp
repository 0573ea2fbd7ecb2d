#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "asio.hpp"
#include "broadcaster.hpp"

namespace ref {

// Publishes benchmark events at a fixed rate for a while. Each event carries
// "t" (publish time, us since the epoch, CLOCK_REALTIME) and "seq" and is
// padded to about `size` bytes. Every event due at a tick goes out as one batch,
// framed once for SSE and once for WebSocket (the baselines' message shape:
// [{"type":"event","id":"<seq>","channel":"bench","event":"message","data":{...}}]).
class Publisher {
 public:
  Publisher(asio::io_context& ioc, Broadcaster& hub);

  // Replaces any run in progress; returns the number of events it will publish.
  std::uint64_t start(double rate, double duration_s, std::size_t size);

  std::uint64_t published() const { return seq_; }
  bool running() const { return sent_ < total_; }

 private:
  void tick();
  void make_frames(std::int64_t t_us);  // appends one event to batch_ and ws_batch_

  Broadcaster& hub_;
  asio::steady_timer timer_;
  std::chrono::steady_clock::time_point start_{};
  double rate_ = 0;
  std::size_t size_ = 0;
  std::uint64_t total_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t run_ = 0;  // which start() the pending tick belongs to
  std::uint64_t seq_ = 0;  // per channel, never reset, so runs never repeat a seq
  std::vector<Frame> batch_;
  std::vector<Frame> ws_batch_;
};

}  // namespace ref
