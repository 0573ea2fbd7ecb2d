// Fan-out microbenchmark: one channel, many subscribers, small events.
// Measures mailbox deliveries per second on one thread and verifies that no
// payload bytes are copied per delivery (every mailbox entry shares the one
// published Event). Heap traffic during fan-out is counted by replacing the
// global allocation functions.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "sessionstream/core/hub.hpp"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
std::atomic<std::uint64_t> g_allocated_bytes{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  g_allocated_bytes.fetch_add(size, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc{};
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

int main(int argc, char** argv) {
  using namespace sessionstream;
  const std::size_t subscribers = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10'000;
  const std::size_t rounds = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 20;
  const std::size_t events_per_round = 256;  // below the mailbox bound: nothing overflows
  const std::string payload(100, 'x');

  Hub hub;
  auto notifier = std::make_shared<Notifier>();
  std::vector<MailboxPtr> subs;
  subs.reserve(subscribers);
  for (std::size_t i = 0; i < subscribers; ++i) {
    // WebSocket framing: no position frame at subscribe, so every mailbox holds
    // exactly the published events.
    subs.push_back(
        hub.make_mailbox({Framing::websocket, OverflowPolicy::disconnect, {}}, notifier));
    hub.subscribe(subs.back(), {"bench"});
  }

  std::vector<double> rates;
  std::uint64_t allocations = 0, allocated = 0, deliveries = 0;
  for (std::size_t round = 0; round < rounds; ++round) {
    std::vector<EventPtr> published;
    published.reserve(events_per_round);
    const auto a0 = g_allocations.load(), b0 = g_allocated_bytes.load();
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t e = 0; e < events_per_round; ++e) {
      published.push_back(hub.publish("bench", payload, "message", false));
    }
    const auto elapsed = std::chrono::steady_clock::now() - start;
    allocations += g_allocations.load() - a0;
    allocated += g_allocated_bytes.load() - b0;
    const double n = static_cast<double>(events_per_round * subscribers);
    deliveries += events_per_round * subscribers;
    rates.push_back(n / std::chrono::duration<double>(elapsed).count());

    for (const auto& sub : subs) {
      if (sub->pending_events() != events_per_round) {
        std::fprintf(stderr, "mailbox %llu holds %zu events, expected %zu\n",
                     static_cast<unsigned long long>(sub->id()), sub->pending_events(),
                     events_per_round);
        return 1;
      }
    }
    for (auto& sub : subs) (void)sub->take(1 << 30);
    (void)notifier->take_ready();
  }
  // Heap bytes per delivery at most the size of a mailbox slot (a shared
  // pointer) shows no payload was copied: a copy would cost >= 100 bytes.
  const double heap_per_delivery = static_cast<double>(allocated) / static_cast<double>(deliveries);
  const bool payload_copied = heap_per_delivery >= static_cast<double>(payload.size());
  std::sort(rates.begin(), rates.end());
  std::printf(
      "{\"subscribers\": %zu, \"event_bytes\": %zu, \"rounds\": %zu, "
      "\"deliveries_per_s_median\": %.0f, \"deliveries_per_s_min\": %.0f, "
      "\"deliveries_per_s_max\": %.0f, \"heap_allocations_per_delivery\": %.4f, "
      "\"heap_bytes_per_delivery\": %.2f, \"payload_bytes_copied_per_delivery\": %d}\n",
      subscribers, payload.size(), rounds, rates[rates.size() / 2], rates.front(), rates.back(),
      static_cast<double>(allocations) / static_cast<double>(deliveries), heap_per_delivery,
      payload_copied ? static_cast<int>(payload.size()) : 0);
  return 0;
}
