#include "options.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace loadgen {

const char* usage() {
  return R"(usage: loadgen --url URL [options]

Opens many SSE or WebSocket connections, measures delivery latency of events
whose JSON payload carries "t" (publish time, us since the epoch) and "seq",
and prints one JSON object with the results on stdout. Progress goes to stderr.

  --url URL              http://host:port/path?query (SSE) or ws://host:port/path
  --ws-subscribe CH      WebSocket: channel to subscribe to (repeatable or a,b,c)
  --connections N        number of clients (default 100)
  --ramp R               connections opened per second, 0 = all at once (default 1000)
  --warmup S             seconds after all clients connected before measuring (default 0)
  --duration S           measured window in seconds (default 10)
  --marks                the measured window is driven by stdin (a pipe): once
                         every client is connected a {"ready":...} line is
                         printed; each "mark" line prints a {"interval":...}
                         line with the counters since the previous mark; "end"
                         or EOF ends the window (--duration is ignored)
  --stall-fraction F     fraction of clients that never read after connecting (default 0)
  --stall-rcvbuf BYTES   SO_RCVBUF of stalled clients, 0 = kernel default (default 0)
  --drain S              seconds stalled clients read at the end to see if the
                         server dropped them (default 3)
  --chat-fraction F      WebSocket: fraction of the (non-stalled) clients that
                         chat: each sends {"type":"echo","ts":<us since epoch>}
                         --chat-rate times a second while measuring and times
                         the reply that carries the same "ts" (default 0)
  --chat-rate R          messages per second per chatting client (default 1)
  --chat-type NAME       "type" of the chat messages and of their replies (default echo)
  --header 'K: V'        extra request header (repeatable)
  --last-event-id ID     Last-Event-ID sent on every first connection
  --reconnect-storm      after the window every client closes and reconnects at
                         once with the last id it saw; resumes are checked
  --storm-duration S     seconds to observe after the storm starts (default 5)
  --storm-tail S         end the storm early, S seconds after every client has
                         resumed (or failed to); 0 = always wait --storm-duration
  --source-ips A,B,...   local addresses to bind, round robin (past ~28k connections)
  --connect-timeout S    connect + handshake timeout (default 10)
  --read-buffer BYTES    size of the shared read buffer (default 262144)
  --url-spread K         SSE: every "{k}" in the URL's path and query becomes the
                         client index modulo K, e.g. channel=crawl:{k}:progress
  --quiet                no progress on stderr
  --help                 this text
)";
}

namespace {

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    auto comma = s.find(',');
    auto item = s.substr(0, comma);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

double to_double(std::string_view name, const std::string& v, double min) {
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(d >= min)) {
    throw OptionError(std::string(name) + ": expected a number >= " + std::to_string(min) +
                      ", got '" + v + "'");
  }
  return d;
}

std::size_t to_size(std::string_view name, const std::string& v, std::size_t min) {
  std::size_t n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || ptr != v.data() + v.size() || n < min) {
    throw OptionError(std::string(name) + ": expected an integer >= " + std::to_string(min) +
                      ", got '" + v + "'");
  }
  return n;
}

}  // namespace

bool parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
      arg = arg.substr(0, eq);
      has_inline = true;
    }
    auto next = [&]() -> const std::string& {
      if (!has_inline) {
        if (i + 1 >= argc) throw OptionError(std::string(arg) + ": missing value");
        value = argv[++i];
      }
      return value;
    };

    if (arg == "--help" || arg == "-h") {
      std::fputs(usage(), stdout);
      return false;
    } else if (arg == "--url") {
      o.url = next();
    } else if (arg == "--ws-subscribe") {
      for (auto& c : split_list(next())) o.ws_channels.push_back(c);
    } else if (arg == "--connections") {
      o.connections = to_size(arg, next(), 1);
    } else if (arg == "--ramp") {
      o.ramp = to_double(arg, next(), 0);
    } else if (arg == "--duration") {
      o.duration = to_double(arg, next(), 0);
    } else if (arg == "--warmup") {
      o.warmup = to_double(arg, next(), 0);
    } else if (arg == "--stall-fraction") {
      o.stall_fraction = to_double(arg, next(), 0);
      if (o.stall_fraction > 1) throw OptionError("--stall-fraction: expected 0..1, got " + value);
    } else if (arg == "--stall-rcvbuf") {
      o.stall_rcvbuf = static_cast<int>(to_size(arg, next(), 0));
    } else if (arg == "--drain") {
      o.drain = to_double(arg, next(), 0);
    } else if (arg == "--chat-fraction") {
      o.chat_fraction = to_double(arg, next(), 0);
      if (o.chat_fraction > 1) throw OptionError("--chat-fraction: expected 0..1, got " + value);
    } else if (arg == "--chat-rate") {
      o.chat_rate = to_double(arg, next(), 0.001);
    } else if (arg == "--chat-type") {
      o.chat_type = next();
      if (o.chat_type.empty() || o.chat_type.find_first_of("\"\\") != std::string::npos ||
          o.chat_type.find_first_of("\r\n") != std::string::npos) {
        throw OptionError("--chat-type: expected a plain name without quotes or backslashes");
      }
    } else if (arg == "--header") {
      const auto& h = next();
      if (h.find(':') == std::string::npos || h.find_first_of("\r\n") != std::string::npos) {
        throw OptionError("--header: expected 'Name: value' on one line, got '" + h + "'");
      }
      o.headers.push_back(h);
    } else if (arg == "--last-event-id") {
      o.last_event_id = next();
      if (o.last_event_id.find_first_of("\r\n") != std::string::npos) {
        throw OptionError("--last-event-id: must not contain CR or LF");
      }
    } else if (arg == "--marks") {
      o.marks = true;
    } else if (arg == "--reconnect-storm") {
      o.reconnect_storm = true;
    } else if (arg == "--storm-duration") {
      o.storm_duration = to_double(arg, next(), 0);
    } else if (arg == "--storm-tail") {
      o.storm_tail = to_double(arg, next(), 0);
    } else if (arg == "--source-ips") {
      o.source_ips = split_list(next());
    } else if (arg == "--connect-timeout") {
      o.connect_timeout = to_double(arg, next(), 0.001);
    } else if (arg == "--read-buffer") {
      o.read_buffer = to_size(arg, next(), 1024);
    } else if (arg == "--url-spread") {
      o.url_spread = to_size(arg, next(), 1);
    } else if (arg == "--quiet") {
      o.quiet = true;
    } else {
      throw OptionError("unknown option '" + std::string(arg) + "' (see --help)");
    }
  }
  if (o.url.empty()) throw OptionError("--url is required (see --help)");
  if (o.chat_fraction > 0 && !o.url.starts_with("ws://")) {
    throw OptionError("--chat-fraction needs a ws:// URL");
  }
  return true;
}

}  // namespace loadgen
