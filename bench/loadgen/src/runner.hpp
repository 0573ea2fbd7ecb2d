#pragma once

#include <sys/resource.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asio.hpp"
#include "connection.hpp"
#include "context.hpp"
#include "options.hpp"
#include "run_stats.hpp"
#include "url.hpp"

namespace loadgen {

// Drives one run: ramp, warmup, measured window, then the tail (stalled
// clients drain, the reconnect storm), and renders the result as JSON.
class Runner {
 public:
  Runner(const Options& options, Url url);
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Runs to completion on the calling thread; returns the JSON result.
  std::string run();

 private:
  using Clock = std::chrono::steady_clock;

  asio::awaitable<void> control();
  asio::awaitable<void> ramp();
  asio::awaitable<void> follow_marks();         // --marks: the window ends on "end" or EOF
  asio::awaitable<void> sleep(double seconds);  // cut short by SIGINT/SIGTERM
  asio::awaitable<void> wait_until(Clock::time_point deadline, bool (Runner::*done)() const);
  bool setup_finished() const;
  bool drain_finished() const;
  bool never() const { return false; }
  bool storm_settled() const;  // every reconnect resolved, --storm-tail ago
  void progress(const char* fmt, ...) const;
  std::string report() const;
  std::string ready_line() const;
  std::string interval_line();  // counters since the previous mark; starts a new interval

  // Cumulative counters at the previous mark, to report differences.
  struct Mark {
    Clock::time_point at{};
    double cpu_s = 0;
    std::uint64_t deliveries = 0;
    std::uint64_t deliveries_total = 0;
    std::uint64_t gaps = 0;
    std::uint64_t missed_events = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t closed_by_server = 0;
    std::uint64_t gap_frames = 0;
    std::uint64_t reset_frames = 0;
    std::uint64_t chat_sent = 0;
    std::uint64_t chat_replies = 0;
    std::uint64_t chat_errors = 0;
  };

  const Options& options_;
  const Url url_;
  asio::io_context ioc_{1};
  asio::signal_set signals_;
  asio::steady_timer timer_;
  RunStats stats_;
  Context ctx_;
  std::vector<std::unique_ptr<Connection>> connections_;
  bool interrupted_ = false;
  std::optional<asio::posix::stream_descriptor> stdin_;  // --marks
  Mark mark_;
  std::uint64_t intervals_ = 0;
  rlim_t nofile_ = 0;

  Clock::time_point started_{};
  double ramp_s_ = 0;
  double warmup_s_ = 0;
  double measured_s_ = 0;
  double cpu_measured_s_ = 0;
  double storm_s_ = 0;
  std::uint64_t resume_incomplete_ = 0;
  std::uint64_t reconnects_ = 0;  // clients told to reconnect in the storm
};

}  // namespace loadgen
