#include "publisher.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ref {

namespace {
std::int64_t realtime_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}
}  // namespace

Publisher::Publisher(asio::io_context& ioc, Broadcaster& hub) : hub_(hub), timer_(ioc) {}

std::uint64_t Publisher::start(double rate, double duration_s, std::size_t size) {
  timer_.cancel();
  const auto run = ++run_;
  rate_ = rate;
  size_ = size;
  total_ = static_cast<std::uint64_t>(std::llround(rate * duration_s));
  sent_ = 0;
  start_ = std::chrono::steady_clock::now();
  // Run the first tick from the loop, not from inside the HTTP handler.
  asio::post(timer_.get_executor(), [this, run] {
    if (run == run_) tick();
  });
  return total_;
}

Frame Publisher::make_frame(std::int64_t t_us) {
  ++seq_;
  char head[96];
  int n = std::snprintf(head, sizeof head, "{\"t\":%lld,\"seq\":%llu,\"pad\":\"",
                        static_cast<long long>(t_us), static_cast<unsigned long long>(seq_));
  const std::size_t json_base = static_cast<std::size_t>(n) + 2;  // + closing quote and brace
  const std::size_t pad = size_ > json_base ? size_ - json_base : 0;
  auto frame = std::make_shared<std::string>();
  frame->reserve(32 + json_base + pad);
  *frame += "id: ";
  *frame += std::to_string(seq_);
  *frame += "\ndata: ";
  frame->append(head, static_cast<std::size_t>(n));
  frame->append(pad, 'x');
  *frame += "\"}\n\n";
  return frame;
}

void Publisher::tick() {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const auto due = std::min<std::uint64_t>(total_, static_cast<std::uint64_t>(elapsed * rate_) + 1);
  batch_.clear();
  const std::int64_t now = realtime_us();
  for (; sent_ < due; ++sent_) batch_.push_back(make_frame(now));
  if (!batch_.empty()) hub_.publish(batch_);
  batch_.clear();
  if (sent_ >= total_) return;

  const auto next = start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(static_cast<double>(sent_) / rate_));
  timer_.expires_at(next);
  // The run check: a cancelled wait may already be queued when start() replaces the run.
  timer_.async_wait([this, run = run_](const error_code& ec) {
    if (!ec && run == run_) tick();
  });
}

}  // namespace ref
