// Reference SSE and WebSocket broadcaster: one thread, shared pre-framed frames,
// gather writes. It is the yardstick for what this machine can do, not a product.
#include <sys/resource.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "asio.hpp"
#include "broadcaster.hpp"
#include "http_front.hpp"
#include "publisher.hpp"

namespace {

constexpr const char* kUsage = R"(usage: cpp_reference [options]
  --bind ADDR          listen address (default 127.0.0.1)
  --port N             listen port (default 8000)
  --backlog N          listen backlog (default 4096)
  --max-pending N      frames a client may have queued before it is dropped (default 256)
  --heartbeat S        seconds between ": keep-alive" comments (SSE) and pings
                       (WebSocket), 0 = none (default 15)
)";

struct Config {
  std::string bind = "127.0.0.1";
  unsigned port = 8000;
  int backlog = 4096;
  std::size_t max_pending = 256;
  double heartbeat = 15;
};

[[noreturn]] void usage_error(const std::string& what) {
  std::fprintf(stderr, "cpp_reference: %s\n%s", what.c_str(), kUsage);
  std::exit(2);
}

double number(std::string_view name, const char* v, double min) {
  char* end = nullptr;
  double d = std::strtod(v, &end);
  if (*v == '\0' || *end != '\0' || !(d >= min)) {
    usage_error(std::string(name) + ": expected a number >= " + std::to_string(min) + ", got '" +
                v + "'");
  }
  return d;
}

Config parse(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error(std::string(a) + ": missing value or unknown option");
    const char* v = argv[++i];
    if (a == "--bind")
      c.bind = v;
    else if (a == "--port")
      c.port = static_cast<unsigned>(number(a, v, 1));
    else if (a == "--backlog")
      c.backlog = static_cast<int>(number(a, v, 1));
    else if (a == "--max-pending")
      c.max_pending = static_cast<std::size_t>(number(a, v, 1));
    else if (a == "--heartbeat")
      c.heartbeat = number(a, v, 0);
    else
      usage_error("unknown option '" + std::string(a) + "'");
  }
  if (c.port > 65535) usage_error("--port: expected 1..65535");
  return c;
}

void raise_nofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Config config = parse(argc, argv);
  raise_nofile();
  try {
    ref::asio::io_context ioc(1);
    ref::Broadcaster hub(ioc, config.max_pending, config.heartbeat);
    ref::Publisher publisher(ioc, hub);
    ref::HttpFront front(ioc,
                         ref::tcp::endpoint(ref::asio::ip::make_address(config.bind),
                                            static_cast<unsigned short>(config.port)),
                         config.backlog, hub, publisher);
    ref::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&ioc](const ref::error_code&, int) { ioc.stop(); });
    std::fprintf(stderr, "cpp_reference: listening on %s:%u\n", config.bind.c_str(), config.port);
    ioc.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cpp_reference: %s\n", e.what());
    return 1;
  }
  return 0;
}
