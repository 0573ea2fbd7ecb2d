#include "run_stats.hpp"

namespace loadgen {

void RunStats::on_connected(StreamCursor& c) {
  if (c.resumed) {
    ++resumes;
    last_resume = Clock::now();
  } else {
    ++connections_ok;
  }
}

void RunStats::on_connect_error(const StreamCursor& c, std::string reason) {
  if (c.resumed) {
    ++resume_errors;
    ++connect_error_reasons["resume: " + reason];
  } else {
    ++connect_errors;
    ++connect_error_reasons[std::move(reason)];
  }
}

void RunStats::on_closed(bool stalled_client, std::string_view reason) {
  if (stalled_client) {
    ++stalled_dropped;
    ++stalled_close_reasons[std::string(reason)];
  } else {
    ++closed_by_server;
    ++close_reasons[std::string(reason)];
  }
}

void RunStats::on_event(StreamCursor& c, const json::Payload& p, std::int64_t now_us) {
  if (!p.has_t && !p.has_seq) {
    ++other_events;
    return;
  }
  ++deliveries_total;
  if (c.resumed) {
    ++storm_deliveries;
  } else if (phase == Phase::measure) {
    ++deliveries;
    if (p.has_t) {
      std::int64_t lat = now_us - p.t;
      if (lat < 0) {
        ++negative_latency;
        lat = 0;
      }
      latency_us.record(static_cast<std::uint64_t>(lat));
      if (intervals) interval_latency_us.record(static_cast<std::uint64_t>(lat));
    }
  }
  if (!p.has_seq) return;

  const bool first_after_resume = c.resumed && !c.resume_checked;
  if (first_after_resume) c.resume_checked = true;
  if (c.last_seq >= 0) {
    if (first_after_resume) ++resume_verified;
    const std::int64_t expected = c.last_seq + 1;
    if (p.seq > expected && !c.gap_announced) {
      auto missed = static_cast<std::uint64_t>(p.seq - expected);
      if (c.resumed) {
        ++resume_gaps;
        resume_missed_events += missed;
      } else {
        ++gaps;
        missed_events += missed;
      }
    } else if (p.seq < expected) {
      ++(c.resumed ? resume_duplicates : duplicates);
    }
  }
  if (p.seq > c.last_seq) c.last_seq = p.seq;  // a duplicate never moves the cursor back
  c.gap_announced = false;
}

void RunStats::on_chat_reply(std::int64_t sent_us, std::int64_t now_us) {
  ++chat_replies;
  std::int64_t lat = now_us - sent_us;
  if (lat < 0) lat = 0;  // one clock on both ends: only a clock step makes this negative
  chat_latency_us.record(static_cast<std::uint64_t>(lat));
  if (intervals) interval_chat_latency_us.record(static_cast<std::uint64_t>(lat));
}

void RunStats::on_gap_marker(StreamCursor& c) {
  ++gap_frames;
  c.gap_announced = true;
}

void RunStats::on_reset_marker(StreamCursor& c) {
  ++reset_frames;
  // The server restarted the sequence (e.g. a new epoch): continuity starts over.
  c.last_seq = -1;
  c.gap_announced = false;
}

}  // namespace loadgen
