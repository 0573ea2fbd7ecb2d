#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace loadgen {

// Command-line configuration. Durations are in seconds.
struct Options {
  std::string url;
  std::vector<std::string> ws_channels;  // WebSocket: channels named in the subscribe frame
  std::size_t connections = 100;
  double ramp = 1000;  // connections opened per second; 0 opens them all at once
  double duration = 10;
  double warmup = 0;
  double stall_fraction = 0;
  int stall_rcvbuf = 0;  // SO_RCVBUF for stalled clients; 0 keeps the kernel default
  double drain = 3;  // time stalled clients get at the end to find out whether they were dropped
  // WebSocket chat: this share of the (non-stalled) clients sends {"type":<chat_type>,"ts":<us>}
  // chat_rate times a second while measuring; the reply carrying the same ts gives the round trip.
  double chat_fraction = 0;
  double chat_rate = 1;
  std::string chat_type = "echo";
  std::vector<std::string> headers;  // "Name: value"
  std::string last_event_id;         // sent on the first connection of every client
  bool marks = false;                // the measured window is driven by "mark"/"end" lines on stdin
  bool reconnect_storm = false;
  double storm_duration = 5;
  double storm_tail = 0;  // > 0: end the storm this long after the last client resumed
  std::vector<std::string> source_ips;
  double connect_timeout = 10;
  std::size_t read_buffer = 256 * 1024;
  // > 0: every "{k}" in the SSE request target becomes the client index modulo this,
  // so one process spreads its clients over several channels.
  std::size_t url_spread = 0;
  bool quiet = false;
};

class OptionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Returns false when --help was given (usage already printed to stdout).
// Throws OptionError with the offending argument and what would be valid.
bool parse_options(int argc, char** argv, Options& out);

const char* usage();

}  // namespace loadgen
