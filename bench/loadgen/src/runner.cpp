#include "runner.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cstdarg>
#include <cstdio>
#include <stdexcept>

#include "json_writer.hpp"
#include "sse_connection.hpp"
#include "ws_connection.hpp"

namespace loadgen {

namespace {

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// Raise the soft descriptor limit to the hard one; every client holds a socket.
rlim_t raise_nofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

// Evenly spread: client i stalls when floor((i+1)F) > floor(iF).
bool is_stalled(std::size_t i, double f) {
  return static_cast<std::uint64_t>((i + 1) * f) > static_cast<std::uint64_t>(i * f);
}

// Quantiles of the latency CDF written beside p50/p99 (for plots).
constexpr std::array<double, 19> kCdfPoints = {0.0,  0.01,  0.05,  0.1,    0.2, 0.3,  0.4,
                                               0.5,  0.6,   0.7,   0.8,    0.9, 0.95, 0.97,
                                               0.99, 0.995, 0.999, 0.9999, 1.0};

void write_quantiles(JsonWriter& w, std::string_view key, const LogHistogram& h) {
  w.key(key).begin_object();
  w.field("p50", h.quantile(0.50));
  w.field("p90", h.quantile(0.90));
  w.field("p99", h.quantile(0.99));
  w.field("p999", h.quantile(0.999));
  w.field("max", h.max());
  w.field("mean", h.mean());
  w.field("samples", h.count());
  w.end_object();
}

void write_latency(JsonWriter& w, const LogHistogram& h) {
  write_quantiles(w, "latency_us", h);
  // [[q, us], ...]: enough points to draw a CDF without shipping the histogram.
  w.key("latency_cdf").begin_array();
  for (double q : kCdfPoints) {
    w.begin_array().value(q).value(q >= 1.0 ? h.max() : h.quantile(q)).end_array();
  }
  w.end_array();
}

void emit_line(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace

Runner::Runner(const Options& options, Url url)
    : options_(options),
      url_(std::move(url)),
      signals_(ioc_, SIGINT, SIGTERM),
      timer_(ioc_),
      ctx_{ioc_, options_, url_, {}, {}, {}, stats_, std::vector<char>(options.read_buffer)} {
  if (url_.scheme == Url::Scheme::ws && options_.ws_channels.empty()) {
    throw std::invalid_argument("a ws:// URL needs --ws-subscribe CHANNEL");
  }
  tcp::resolver resolver(ioc_);
  auto results = resolver.resolve(url_.host, std::to_string(url_.port));
  if (results.empty()) throw std::runtime_error("cannot resolve " + url_.host);
  ctx_.server = results.begin()->endpoint();
  for (const auto& ip : options_.source_ips) {
    error_code ec;
    auto addr = asio::ip::make_address(ip, ec);
    if (ec) throw std::invalid_argument("--source-ips: '" + ip + "' is not an IP address");
    ctx_.source_ips.push_back(addr);
  }
  for (const auto& h : options_.headers) {
    auto colon = h.find(':');
    std::string value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(value.begin());
    ctx_.headers.emplace_back(h.substr(0, colon), std::move(value));
  }
  nofile_ = raise_nofile();
  if (nofile_ != 0 && options_.connections + 64 > nofile_) {
    progress("warning: %zu connections but RLIMIT_NOFILE is %llu", options_.connections,
             static_cast<unsigned long long>(nofile_));
  }
  connections_.reserve(options_.connections);
  for (std::size_t i = 0; i < options_.connections; ++i) {
    const bool stalled = is_stalled(i, options_.stall_fraction);
    // Spread the same way; a client that stalls never chats.
    const bool chat = !stalled && is_stalled(i, options_.chat_fraction);
    if (url_.scheme == Url::Scheme::ws) {
      connections_.push_back(std::make_unique<WsConnection>(ctx_, i, stalled, chat));
    } else {
      connections_.push_back(std::make_unique<SseConnection>(ctx_, i, stalled));
    }
  }
}

void Runner::progress(const char* fmt, ...) const {
  if (options_.quiet) return;
  std::va_list args;
  va_start(args, fmt);
  std::fputs("loadgen: ", stderr);
  std::vfprintf(stderr, fmt, args);
  std::fputc('\n', stderr);
  va_end(args);
}

asio::awaitable<void> Runner::sleep(double s) {
  if (interrupted_ || s <= 0) co_return;
  timer_.expires_after(
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)));
  error_code ec;
  co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<void> Runner::wait_until(Clock::time_point deadline, bool (Runner::*done)() const) {
  // Polling at 10 ms keeps clients free of callbacks into the runner.
  while (!interrupted_ && !(this->*done)() && Clock::now() < deadline) {
    co_await sleep(std::min(0.01, seconds(deadline - Clock::now())));
  }
}

bool Runner::setup_finished() const {
  return stats_.setup_pending == 0;
}
bool Runner::storm_settled() const {
  const auto& s = stats_;
  if (s.setup_pending != 0 || s.resumes + s.resume_errors < reconnects_) return false;
  const auto last = std::max(s.storm_started, s.last_resume);
  return seconds(Clock::now() - last) >= options_.storm_tail;
}
bool Runner::drain_finished() const {
  return stats_.draining == 0;
}

asio::awaitable<void> Runner::ramp() {
  const auto t0 = Clock::now();
  std::size_t launched = 0;
  const std::size_t n = connections_.size();
  while (launched < n && !interrupted_) {
    const double elapsed = seconds(Clock::now() - t0);
    std::size_t due = n;
    if (options_.ramp > 0) {
      due = std::min(n, static_cast<std::size_t>(elapsed * options_.ramp) + 1);
    }
    while (launched < due) connections_[launched++]->start();
    if (launched < n) {
      co_await sleep(std::max(0.001, static_cast<double>(launched) / options_.ramp - elapsed));
    }
  }
  co_await wait_until(Clock::time_point::max(), &Runner::setup_finished);
}

asio::awaitable<void> Runner::control() {
  started_ = Clock::now();
  progress("opening %zu connections to %s", connections_.size(), options_.url.c_str());
  co_await ramp();
  ramp_s_ = seconds(Clock::now() - started_);
  progress("connected %llu/%zu in %.2f s (errors %llu)",
           static_cast<unsigned long long>(stats_.connections_ok), connections_.size(), ramp_s_,
           static_cast<unsigned long long>(stats_.connect_errors));

  stats_.phase = Phase::warmup;
  auto t = Clock::now();
  co_await sleep(options_.warmup);
  warmup_s_ = seconds(Clock::now() - t);

  stats_.phase = Phase::measure;
  t = Clock::now();
  const double cpu0 = cpu_seconds();
  if (options_.marks) {
    progress("measuring until \"end\" on stdin");
    co_await follow_marks();
  } else {
    progress("measuring for %.1f s", options_.duration);
    co_await sleep(options_.duration);
  }
  measured_s_ = seconds(Clock::now() - t);
  cpu_measured_s_ = cpu_seconds() - cpu0;
  stats_.phase = Phase::tail;

  if (!interrupted_) {
    const auto tail_start = Clock::now();
    for (auto& c : connections_) c->release_stall();
    if (options_.reconnect_storm) {
      progress("reconnect storm");
      stats_.storm_started = Clock::now();
      for (auto& c : connections_) reconnects_ += c->reconnect() ? 1 : 0;
    }
    const auto drain_end = tail_start + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(options_.drain));
    co_await wait_until(drain_end, &Runner::drain_finished);
    if (options_.reconnect_storm) {
      const auto storm_end =
          stats_.storm_started + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(options_.storm_duration));
      co_await wait_until(storm_end,
                          options_.storm_tail > 0 ? &Runner::storm_settled : &Runner::never);
      storm_s_ = seconds(Clock::now() - stats_.storm_started);
      resume_incomplete_ = stats_.setup_pending;  // reconnects still under way
    }
  }
  for (auto& c : connections_) c->stop();
  signals_.cancel();
}

asio::awaitable<void> Runner::follow_marks() {
  stats_.intervals = true;
  interval_line();  // the first interval starts now
  emit_line(ready_line());
  stdin_.emplace(ioc_, ::dup(STDIN_FILENO));
  asio::streambuf input;
  error_code ec;
  while (!interrupted_) {
    std::size_t n = co_await asio::async_read_until(*stdin_, input, '\n',
                                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;  // EOF (the driver went away) ends the window like "end"
    std::string line(asio::buffers_begin(input.data()), asio::buffers_begin(input.data()) + n);
    input.consume(n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) {
      line.pop_back();
    }
    if (line == "mark") {
      emit_line(interval_line());
    } else if (line == "end") {
      break;
    } else if (!line.empty()) {
      progress("ignoring unknown command '%s' (mark or end)", line.c_str());
    }
  }
  stdin_.reset();
}

std::string Runner::ready_line() const {
  JsonWriter w;
  w.begin_object();
  w.field("ready", true);
  w.field("connections", static_cast<std::uint64_t>(connections_.size()));
  w.field("connections_ok", stats_.connections_ok);
  w.field("connect_errors", stats_.connect_errors);
  w.field("stalled", stats_.stalled);
  w.field("ramp_s", ramp_s_);
  w.end_object();
  return w.str();
}

std::string Runner::interval_line() {
  const auto& s = stats_;
  const Mark now{Clock::now(),   cpu_seconds(),   s.deliveries,   s.deliveries_total,
                 s.gaps,         s.missed_events, s.duplicates,   s.closed_by_server,
                 s.gap_frames,   s.reset_frames,  s.chat_sent,    s.chat_replies,
                 s.chat_errors};
  const double span = intervals_ ? seconds(now.at - mark_.at) : 0.0;
  JsonWriter w;
  w.begin_object();
  w.field("interval", intervals_);
  w.field("seconds", span);
  w.field("deliveries", now.deliveries - mark_.deliveries);
  w.field("deliveries_per_s",
          span > 0 ? static_cast<double>(now.deliveries - mark_.deliveries) / span : 0.0);
  write_latency(w, s.interval_latency_us);
  w.field("gaps", now.gaps - mark_.gaps);
  w.field("missed_events", now.missed_events - mark_.missed_events);
  w.field("duplicates", now.duplicates - mark_.duplicates);
  w.field("gap_frames", now.gap_frames - mark_.gap_frames);
  w.field("reset_frames", now.reset_frames - mark_.reset_frames);
  w.field("closed_by_server", now.closed_by_server - mark_.closed_by_server);
  w.field("open", s.connections_ok - s.closed_by_server);
  w.field("cpu_s", now.cpu_s - mark_.cpu_s);
  if (options_.chat_fraction > 0) {
    w.key("chat").begin_object();
    w.field("chatters", s.chatters);
    w.field("sent", now.chat_sent - mark_.chat_sent);
    w.field("replies", now.chat_replies - mark_.chat_replies);
    w.field("errors", now.chat_errors - mark_.chat_errors);
    write_quantiles(w, "latency_us", s.interval_chat_latency_us);
    w.end_object();
  }
  w.end_object();
  mark_ = now;
  ++intervals_;
  stats_.interval_latency_us = LogHistogram{};
  stats_.interval_chat_latency_us = LogHistogram{};
  return w.str();
}

std::string Runner::run() {
  signals_.async_wait([this](const error_code& ec, int) {
    if (ec) return;
    interrupted_ = true;
    timer_.cancel();
    if (stdin_) {
      error_code ignored;
      stdin_->cancel(ignored);
    }
  });
  asio::co_spawn(ioc_, control(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  ioc_.run();
  return report();
}

std::string Runner::report() const {
  const auto& s = stats_;
  JsonWriter w;
  auto reasons = [&w](std::string_view key, const std::map<std::string, std::uint64_t>& m) {
    w.key(key).begin_object();
    for (const auto& [k, v] : m) w.field(k, v);
    w.end_object();
  };
  w.begin_object();
  w.field("url", options_.url);
  w.field("transport", url_.scheme == Url::Scheme::ws ? "ws" : "sse");
  w.field("connections", static_cast<std::uint64_t>(connections_.size()));
  w.field("connections_ok", s.connections_ok);
  w.field("connect_errors", s.connect_errors);
  reasons("connect_error_reasons", s.connect_error_reasons);
  w.field("closed_by_server", s.closed_by_server);
  reasons("close_reasons", s.close_reasons);
  w.field("stalled", s.stalled);
  w.field("stalled_dropped", s.stalled_dropped);
  reasons("stalled_close_reasons", s.stalled_close_reasons);
  w.field("deliveries", s.deliveries);
  w.field("deliveries_per_s",
          measured_s_ > 0 ? static_cast<double>(s.deliveries) / measured_s_ : 0.0);
  write_latency(w, s.latency_us);
  w.field("negative_latency", s.negative_latency);
  w.field("gaps", s.gaps);
  w.field("missed_events", s.missed_events);
  w.field("duplicates", s.duplicates);
  w.field("gap_frames", s.gap_frames);
  w.field("reset_frames", s.reset_frames);
  w.field("other_events", s.other_events);
  w.field("server_errors", s.server_errors);
  w.field("deliveries_total", s.deliveries_total);
  if (options_.chat_fraction > 0) {
    w.key("chat").begin_object();
    w.field("chatters", s.chatters);
    w.field("sent", s.chat_sent);
    w.field("replies", s.chat_replies);
    w.field("errors", s.chat_errors);
    w.field("send_failed", s.chat_send_failed);
    reasons("error_codes", s.chat_error_codes);
    write_quantiles(w, "latency_us", s.chat_latency_us);
    w.end_object();
  }
  if (options_.reconnect_storm) {
    const double resume_span = s.resumes ? seconds(s.last_resume - s.storm_started) : 0.0;
    w.field("resumes", s.resumes);
    w.field("resumes_per_s", resume_span > 0 ? static_cast<double>(s.resumes) / resume_span : 0.0);
    w.field("resume_span_s", resume_span);
    w.field("reconnects", reconnects_);
    w.field("resume_errors", s.resume_errors);
    w.field("resume_incomplete", resume_incomplete_);
    w.field("resume_verified", s.resume_verified);
    w.field("resume_gaps", s.resume_gaps);
    w.field("resume_missed_events", s.resume_missed_events);
    w.field("resume_duplicates", s.resume_duplicates);
    w.field("storm_deliveries", s.storm_deliveries);
    w.field("storm_s", storm_s_);
  }
  w.field("ramp_s", ramp_s_);
  w.field("warmup_s", warmup_s_);
  w.field("measured_s", measured_s_);
  w.field("cpu_s", cpu_seconds());
  w.field("cpu_s_measured", cpu_measured_s_);
  w.field("wall_s", seconds(Clock::now() - started_));
  w.field("interrupted", interrupted_);
  w.field("nofile_limit", static_cast<std::uint64_t>(nofile_));
  w.end_object();
  return w.str();
}

}  // namespace loadgen
