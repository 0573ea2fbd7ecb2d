// Races between publishers, joining and leaving subscribers, consumers and the
// seed-004 swap state. Run under ThreadSanitizer for data races; the
// assertions check that no event is lost, duplicated or reordered and that
// every slot, subscription and pending swap is released at the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/core/hub.hpp"
#include "sessionstream/sessions/connection_manager.hpp"
#include "sessionstream/sessions/session_id.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using namespace std::chrono_literals;
using test::event_seqs;
using test::parse_sse;

HubConfig hub_config() {
  HubConfig config;
  config.epoch = 0xcc;
  config.history.max_events = 1 << 20;
  return config;
}

ConnectionRequest request(std::string session, std::vector<std::string> channels,
                          MailboxLimits limits = {}) {
  ConnectionRequest r;
  r.session_id = std::move(session);
  r.ip = "10.1.1.1";
  r.channels = std::move(channels);
  r.mailbox.limits = limits;
  return r;
}

const std::vector<std::string> kChannels = {"c0", "c1", "c2", "c3"};

// Consumers with small mailboxes fall behind, are disconnected as slow, and
// reconnect with their last event id. Across reconnects each must see every
// event of its channels exactly once, in order, because history holds them
// all. Meanwhile other threads open and close short-lived connections.
TEST(Concurrency, PublishersChurnAndResumingConsumers) {
  Hub hub{hub_config()};
  ConnectionManager manager{hub, ConnectionLimits{10'000, 10'000, 64}};
  constexpr int kPublishers = 2;
  constexpr int kEventsPerPublisher = 3000;
  constexpr std::uint64_t kTotal = kPublishers * kEventsPerPublisher;
  constexpr int kConsumers = 2;
  constexpr int kChurners = 2;

  std::latch ready{kConsumers + 1};
  std::atomic<bool> publishing_done{false};
  std::atomic<int> churn_opens{0};
  std::atomic<int> reconnects{0};
  std::vector<std::thread> threads;

  std::vector<std::vector<std::uint64_t>> consumer_seqs(kConsumers);
  std::vector<int> consumer_gaps(kConsumers, 0);
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      const auto notifier = std::make_shared<Notifier>();
      const std::string session = "consumer" + std::to_string(c);
      // Start from an explicit position, as a client does once it holds an
      // id: a live start has nothing to resume from if the first overflow
      // comes before the first event is taken.
      std::string last_id = EventId{hub.epoch(), 0}.to_string();
      auto first = request(session, kChannels, MailboxLimits{64, 1 << 20});
      first.last_event_id = last_id;
      auto connection = manager.open(std::move(first), notifier);
      ready.arrive_and_wait();
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (consumer_seqs[c].empty() || consumer_seqs[c].back() < kTotal) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "consumer " << c << " stalled";
        const auto batch = connection->mailbox()->take(4096);
        for (const auto& message : parse_sse(batch.data)) {
          if (message.event == "gap" || message.event == "reset") {
            ++consumer_gaps[c];
            continue;
          }
          last_id = message.id;
          consumer_seqs[c].push_back(EventId::parse(message.id).value().seq);
        }
        if (batch.closed) {
          ASSERT_EQ(batch.close_reason, close_reason::slow_consumer);
          connection->close();
          auto r = request(session, kChannels, MailboxLimits{64, 1 << 20});
          r.last_event_id = last_id;
          connection = manager.open(std::move(r), notifier);
          reconnects.fetch_add(1);
        } else if (batch.events == 0) {
          std::this_thread::yield();
        }
      }
      connection->close();
    });
  }

  for (int t = 0; t < kChurners; ++t) {
    threads.emplace_back([&, t] {
      const auto notifier = std::make_shared<Notifier>();
      std::minstd_rand random(static_cast<unsigned>(t));
      int i = 0;
      while (!publishing_done.load()) {
        const std::string session = "churner" + std::to_string(t) + "x" + std::to_string(i++ % 4);
        auto connection =
            manager.open(request(session, {kChannels[random() % kChannels.size()]}), notifier);
        churn_opens.fetch_add(1);
        const auto batch = connection->mailbox()->take(1 << 16);
        const auto seqs = event_seqs(parse_sse(batch.data));
        EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
        if (i % 3 == 0) connection->subscribe({kChannels[random() % kChannels.size()]});
        if (i % 5 == 0) connection->unsubscribe(kChannels[0]);
        connection->close();
      }
    });
  }

  ready.arrive_and_wait();
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      for (int i = 0; i < kEventsPerPublisher; ++i) {
        const auto& channel = kChannels[static_cast<std::size_t>(p * 2 + i % 2)];
        hub.publish(channel, std::to_string(i), "t", false);
      }
    });
  }
  for (auto& publisher : publishers) publisher.join();
  publishing_done.store(true);
  for (auto& thread : threads) thread.join();

  std::vector<std::uint64_t> all(kTotal);
  for (std::uint64_t i = 0; i < kTotal; ++i) all[i] = i + 1;
  for (int c = 0; c < kConsumers; ++c) {
    EXPECT_EQ(consumer_gaps[c], 0) << "history held everything; no gap was due";
    EXPECT_EQ(consumer_seqs[c], all) << "consumer " << c << " lost, repeated or reordered events";
  }
  EXPECT_GT(churn_opens.load(), 0);

  const auto m = manager.metrics();
  EXPECT_EQ(m.active_connections, 0u);
  EXPECT_EQ(m.unique_browser_sessions, 0u);
  EXPECT_EQ(m.pending_swaps, 0u);
  for (const auto& channel : kChannels) EXPECT_EQ(hub.subscriber_count(channel), 0u) << channel;
  // Short-lived connections can be slow too, when their thread is descheduled.
  EXPECT_GE(Metrics::read(hub.metrics().slow_consumer_disconnects),
            static_cast<std::uint64_t>(reconnects.load()));
}

// Seed 004 under contention: tabs of one browser session open and close
// while another thread marks and unmarks processing on whichever is open.
TEST(Concurrency, SwapAfterProcessingRace) {
  Hub hub{hub_config()};
  ConnectionManager manager{hub, ConnectionLimits{10'000, 10'000, 10'000},
                            ConnectionPolicy::swap_after_processing};
  const std::string session = "swapSession";
  constexpr int kOpeners = 4;
  constexpr int kRounds = 150;
  constexpr int kWantedSwaps = 10;
  std::atomic<int> openers_left{kOpeners};
  std::atomic<int> opened{0};
  std::atomic<int> swaps{0};  // swapped lifecycle events seen so far
  std::atomic<bool> invariant_broken{false};
  // Rounds continue past kRounds until enough swaps happened, so a loaded
  // machine cannot finish the openers before the marker gets going.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  const auto keep_going = [&](int round) {
    return round < kRounds ||
           (swaps.load() < kWantedSwaps && std::chrono::steady_clock::now() < deadline);
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kOpeners; ++t) {
    threads.emplace_back([&, t] {
      const auto notifier = std::make_shared<Notifier>();
      std::minstd_rand random(static_cast<unsigned>(t + 100));
      std::vector<ConnectionPtr> open;
      for (int i = 0; keep_going(i); ++i) {
        open.push_back(manager.open(request(session, {"shared"}), notifier));
        opened.fetch_add(1);
        (void)open.back()->mailbox()->take(1 << 16);
        if (open.size() > 2 || random() % 2 == 0) {
          const auto victim = random() % open.size();
          open[victim]->close();
          open.erase(open.begin() + static_cast<std::ptrdiff_t>(victim));
        }
        std::this_thread::sleep_for(20us);
        // Owners close what the manager retired.
        std::erase_if(open, [](const ConnectionPtr& c) {
          if (!c->mailbox()->closed()) return false;
          c->close();
          return true;
        });
      }
      for (const auto& connection : open) connection->close();
      openers_left.fetch_sub(1);
    });
  }

  threads.emplace_back([&] {
    std::minstd_rand random(7);
    while (openers_left.load() > 0) {
      const auto infos = manager.connections_of(session);
      if (infos.empty()) {
        std::this_thread::yield();
        continue;
      }
      const auto id = infos[random() % infos.size()].id;
      try {
        manager.mark_processing(id);
      } catch (const InvalidArgument&) {
        continue;  // closed in between: that is the race under test
      }
      // Stay busy until a newcomer is waiting (or briefly), so swaps happen.
      const auto until = std::chrono::steady_clock::now() + 1ms;
      while (std::chrono::steady_clock::now() < until) {
        const auto m = manager.metrics();
        if (m.pending_swaps > m.active_connections) invariant_broken.store(true);
        if (m.pending_swaps > 0) break;
        std::this_thread::yield();
      }
      manager.unmark_processing(id);
    }
  });

  const auto count_swaps = [&] {
    for (const auto& event : hub.lifecycle()->take()) {
      if (event.kind == LifecycleKind::swapped) swaps.fetch_add(1);
    }
  };
  threads.emplace_back([&] {
    int i = 0;
    while (openers_left.load() > 0) {
      manager.send_personal(session, "t", std::to_string(i++), false);
      hub.publish("shared", "s", "t", false);
      count_swaps();
      std::this_thread::sleep_for(100us);
    }
  });

  for (auto& thread : threads) thread.join();

  EXPECT_FALSE(invariant_broken.load());
  count_swaps();
  EXPECT_GT(swaps.load(), 0) << "no swap happened: the race was not exercised";
  const auto m = manager.metrics();
  EXPECT_EQ(m.active_connections, 0u);
  EXPECT_EQ(m.pending_swaps, 0u);
  EXPECT_EQ(m.processing_connections, 0u);
  EXPECT_EQ(m.unique_browser_sessions, 0u);
  EXPECT_EQ(m.opened_lifetime, static_cast<std::uint64_t>(opened.load()));
  EXPECT_EQ(hub.subscriber_count("shared"), 0u);
  EXPECT_EQ(hub.subscriber_count(private_channel(session)), 0u);

  // Nothing was left orphaned: a fresh tab of the session works.
  const auto notifier = std::make_shared<Notifier>();
  const auto last = manager.open(request(session, {}), notifier);
  manager.send_personal(session, "t", "hello", false);
  const auto messages = parse_sse(last->mailbox()->take(1 << 16).data);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].data, "hello");
}

// Closing the hub while publishers and subscribers are busy: every publish
// either succeeds or throws Closed, and every mailbox ends closed.
TEST(Concurrency, HubCloseDuringTraffic) {
  Hub hub{hub_config()};
  std::atomic<bool> stop{false};
  std::vector<MailboxPtr> subscribers;
  for (int i = 0; i < 8; ++i) {
    subscribers.push_back(hub.make_mailbox(
        {Framing::websocket, OverflowPolicy::drop_oldest, {16, 1 << 20}}, nullptr));
    hub.subscribe(subscribers.back(), {kChannels[static_cast<std::size_t>(i % 4)]});
  }
  std::atomic<int> closed_errors{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < 3; ++p) {
    threads.emplace_back([&, p] {
      // Publishes until the hub refuses: close() must reach every publisher.
      for (int i = 0;; ++i) {
        try {
          hub.publish(kChannels[static_cast<std::size_t>((p + i) % 4)], "x", "t", false);
        } catch (const Closed&) {
          closed_errors.fetch_add(1);
          return;
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) {
      for (const auto& mailbox : subscribers) {
        const auto batch = mailbox->take(1 << 12);
        if (!batch.data.empty()) EXPECT_TRUE(test::is_valid_json(batch.data));
      }
    }
  });
  std::this_thread::sleep_for(50ms);
  hub.close();
  std::this_thread::sleep_for(10ms);
  stop.store(true);
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(closed_errors.load(), 3);
  for (const auto& mailbox : subscribers) {
    EXPECT_TRUE(mailbox->closed());
    Mailbox::Batch batch;
    do {
      batch = mailbox->take(1 << 20);
    } while (!batch.closed);
    EXPECT_EQ(batch.close_reason, close_reason::shutdown);
  }
}

// Shutdown racing with opens: each open either succeeds or throws Closed, and
// once the owners close what they hold nothing is left registered.
TEST(Concurrency, ShutdownRacingWithOpens) {
  Hub hub{hub_config()};
  ConnectionManager manager{hub};
  std::vector<std::thread> threads;
  std::mutex held_mutex;
  std::vector<ConnectionPtr> held;
  std::atomic<int> refused{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const auto notifier = std::make_shared<Notifier>();
      for (int i = 0; i < 200; ++i) {
        try {
          auto connection = manager.open(
              request("opener" + std::to_string(t) + "s" + std::to_string(i), {"c0"}), notifier);
          std::lock_guard lock(held_mutex);
          held.push_back(std::move(connection));
        } catch (const Closed&) {
          refused.fetch_add(1);
        }
      }
    });
  }
  std::this_thread::sleep_for(2ms);
  manager.shutdown();
  for (auto& thread : threads) thread.join();

  for (const auto& connection : held) {
    Mailbox::Batch batch;
    do {
      batch = connection->mailbox()->take(1 << 20);
    } while (!batch.closed && !batch.data.empty());
    if (batch.closed) {
      EXPECT_EQ(batch.close_reason, close_reason::shutdown);
    } else {
      ADD_FAILURE() << "connection " << connection->id() << " survived shutdown";
    }
  }
  EXPECT_EQ(static_cast<int>(held.size()) + refused.load(), 800);
  held.clear();
  EXPECT_EQ(manager.metrics().active_connections, 0u);
  EXPECT_EQ(hub.subscriber_count("c0"), 0u);
}

}  // namespace
}  // namespace sessionstream
