#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "histogram.hpp"
#include "json_scan.hpp"

namespace loadgen {

enum class Phase { ramp, warmup, measure, tail };

// Per-connection view of one channel's sequence, carried across a reconnect.
struct StreamCursor {
  std::int64_t last_seq = -1;   // -1: nothing seen yet
  bool gap_announced = false;   // a gap/reset marker explains the next jump
  bool resumed = false;         // this is the connection opened by the storm
  bool resume_checked = false;  // the first event after the reconnect was examined
};

// Counters for the whole run. Single-threaded: only touched from the io_context thread.
class RunStats {
 public:
  using Clock = std::chrono::steady_clock;

  Phase phase = Phase::ramp;

  // Connection lifecycle.
  std::uint64_t setup_pending = 0;  // connects or handshakes in progress
  std::uint64_t connections_ok = 0;
  std::uint64_t connect_errors = 0;
  std::uint64_t closed_by_server = 0;
  std::uint64_t stalled = 0;
  std::uint64_t draining = 0;         // stalled clients still reading at the end
  std::uint64_t stalled_dropped = 0;  // ... that found their stream ended by the server
  std::map<std::string, std::uint64_t> connect_error_reasons;
  std::map<std::string, std::uint64_t> close_reasons;
  std::map<std::string, std::uint64_t> stalled_close_reasons;

  // Delivery (measured window only, first connection only).
  std::uint64_t deliveries = 0;
  std::uint64_t deliveries_total = 0;  // every phase, both connections
  std::uint64_t negative_latency = 0;  // clock went backwards; recorded as 0
  LogHistogram latency_us;
  // Since the last mark (--marks); recorded only when intervals is set.
  bool intervals = false;
  LogHistogram interval_latency_us;

  // Ordering, whole run, first connection.
  std::uint64_t gaps = 0;
  std::uint64_t missed_events = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t gap_frames = 0;
  std::uint64_t reset_frames = 0;
  std::uint64_t other_events = 0;  // events without "t"/"seq" (e.g. a hello frame)
  std::uint64_t server_errors = 0;

  // Chat round trips (--chat-fraction): messages sent while measuring, the replies that
  // came back (latency = receive time - the "ts" the reply echoes), error frames.
  std::uint64_t chatters = 0;
  std::uint64_t chat_sent = 0;
  std::uint64_t chat_replies = 0;
  std::uint64_t chat_errors = 0;      // {"type":"error"} frames received by chatting clients
  std::uint64_t chat_send_failed = 0;  // writes that failed (connection gone)
  std::map<std::string, std::uint64_t> chat_error_codes;
  LogHistogram chat_latency_us;
  LogHistogram interval_chat_latency_us;

  // Reconnect storm: everything observed on the second connection.
  Clock::time_point storm_started{};
  Clock::time_point last_resume{};
  std::uint64_t resumes = 0;
  std::uint64_t resume_errors = 0;
  std::uint64_t resume_gaps = 0;
  std::uint64_t resume_missed_events = 0;
  std::uint64_t resume_duplicates = 0;
  std::uint64_t resume_verified = 0;  // first event after reconnect was checked against the cursor
  std::uint64_t storm_deliveries = 0;

  void on_connected(StreamCursor& c);
  void on_connect_error(const StreamCursor& c, std::string reason);
  void on_closed(bool stalled_client, std::string_view reason);

  // One received event with its scanned payload; now_us is CLOCK_REALTIME.
  void on_event(StreamCursor& c, const json::Payload& p, std::int64_t now_us);
  void on_chat_reply(std::int64_t sent_us, std::int64_t now_us);
  void on_gap_marker(StreamCursor& c);
  void on_reset_marker(StreamCursor& c);
};

}  // namespace loadgen
