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

void Publisher::make_frames(std::int64_t t_us) {
  ++seq_;
  char head[96];
  int n = std::snprintf(head, sizeof head, "{\"t\":%lld,\"seq\":%llu,\"pad\":\"",
                        static_cast<long long>(t_us), static_cast<unsigned long long>(seq_));
  const std::size_t json_base = static_cast<std::size_t>(n) + 2;  // + closing quote and brace
  const std::size_t pad = size_ > json_base ? size_ - json_base : 0;
  std::string data;
  data.reserve(json_base + pad);
  data.append(head, static_cast<std::size_t>(n));
  data.append(pad, 'x');
  data += "\"}";
  const std::string id = std::to_string(seq_);

  auto frame = std::make_shared<std::string>();
  frame->reserve(16 + id.size() + data.size());
  *frame += "id: ";
  *frame += id;
  *frame += "\ndata: ";
  *frame += data;
  *frame += "\n\n";
  batch_.push_back(std::move(frame));

  std::string payload;
  payload.reserve(80 + id.size() + data.size());
  payload += R"([{"type":"event","id":")";
  payload += id;
  payload += R"(","channel":"bench","event":"message","data":)";
  payload += data;
  payload += "}]";
  // One unmasked text frame (server to client), FIN set.
  auto ws = std::make_shared<std::string>();
  ws->reserve(payload.size() + 10);
  ws->push_back(static_cast<char>(0x81));
  const std::size_t len = payload.size();
  if (len < 126) {
    ws->push_back(static_cast<char>(len));
  } else if (len < 65536) {
    ws->push_back(static_cast<char>(126));
    ws->push_back(static_cast<char>(len >> 8));
    ws->push_back(static_cast<char>(len & 0xff));
  } else {
    ws->push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      ws->push_back(static_cast<char>((static_cast<std::uint64_t>(len) >> shift) & 0xff));
    }
  }
  *ws += payload;
  ws_batch_.push_back(std::move(ws));
}

void Publisher::tick() {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const auto due = std::min<std::uint64_t>(total_, static_cast<std::uint64_t>(elapsed * rate_) + 1);
  batch_.clear();
  ws_batch_.clear();
  const std::int64_t now = realtime_us();
  for (; sent_ < due; ++sent_) make_frames(now);
  if (!batch_.empty()) hub_.publish(batch_, ws_batch_);
  batch_.clear();
  ws_batch_.clear();
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
