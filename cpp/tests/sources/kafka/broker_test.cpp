// The native Kafka classes against a real broker, for runs under the
// sanitizers. Skipped unless SESSIONSTREAM_TEST_KAFKA names a broker
// (e.g. 127.0.0.1:19092, as started by scripts/kafka.sh).

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <thread>

#include "sessionstream/sessions/connection_manager.hpp"
#include "sessionstream/sources/kafka/admin.hpp"
#include "sessionstream/sources/kafka/session_pool.hpp"
#include "sessionstream/sources/kafka/sink.hpp"
#include "sessionstream/sources/kafka/source.hpp"
#include "test_support.hpp"

namespace sessionstream::kafka {
namespace {

using namespace std::chrono_literals;

std::string broker() {
  const char* value = std::getenv("SESSIONSTREAM_TEST_KAFKA");
  return value == nullptr ? std::string{} : std::string{value};
}

std::string unique(std::string_view tag) {
  std::random_device rd;
  return std::string{tag} + "-" + std::to_string(rd()) + std::to_string(rd());
}

class KafkaBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    if (broker().empty()) GTEST_SKIP() << "SESSIONSTREAM_TEST_KAFKA is not set";
    props_ = {{"bootstrap.servers", broker()}};
    admin_ = std::make_unique<KafkaAdmin>(props_);
  }

  std::string topic(int partitions = 3) {
    const std::string name = unique("native");
    admin_->create_topic(name, partitions, 10s);
    EXPECT_TRUE(test::eventually([&] { return admin_->partitions(name, 5s) == partitions; }, 15s));
    return name;
  }

  std::size_t pending_events(const std::vector<MailboxPtr>& subscribers) {
    std::size_t total = 0;
    for (const auto& s : subscribers) total += s->pending_events();
    return total;
  }

  Properties props_;
  std::unique_ptr<KafkaAdmin> admin_;
};

TEST_F(KafkaBroker, SourceFansOutWhileClientsSubscribeAndResume) {
  const std::string name = topic();
  HubConfig hub_config;
  hub_config.history.max_events = 4;
  Hub hub(hub_config);
  KafkaSourceConfig config;
  config.properties = props_;
  config.topics = {name};
  config.channel = "{key}";
  config.node_id = unique("n");
  KafkaSource source(hub, config);
  source.start();
  ASSERT_TRUE(source.wait_ready(20s));

  KafkaSinkConfig sink_config;
  sink_config.properties = props_;
  KafkaSink sink(sink_config);
  sink.start();

  std::vector<MailboxPtr> live;
  MailboxOptions options;
  options.framing = Framing::websocket;  // no SSE position frame to count
  for (int i = 0; i < 4; ++i) {
    live.push_back(hub.make_mailbox(options, std::make_shared<Notifier>()));
    hub.subscribe(live.back(), {"k" + std::to_string(i)});
  }
  constexpr int kPerKey = 50;
  std::atomic<bool> done{false};
  // Resumes race with publishes and with the poll thread's index updates.
  std::thread resumer([&] {
    while (!done.load()) {
      auto s = hub.make_mailbox({}, std::make_shared<Notifier>());
      hub.subscribe(s, {"k0"}, EventId{hub.epoch(), 1}.to_string());
      (void)s->take(1 << 20);
      hub.detach(s);
      (void)source.health();
    }
  });
  for (int n = 0; n < kPerKey; ++n) {
    for (int k = 0; k < 4; ++k)
      sink.produce(name, "{\"n\":" + std::to_string(n) + "}", "k" + std::to_string(k));
  }
  EXPECT_EQ(sink.flush(20s), 0U);
  EXPECT_TRUE(test::eventually([&] { return source.health().published == 4 * kPerKey; }, 20s));
  done.store(true);
  resumer.join();
  EXPECT_EQ(pending_events(live), static_cast<std::size_t>(4 * kPerKey));
  sink.stop();
  source.stop();
  // Left its group: no member remains (the group itself has nothing committed).
  const auto group = admin_->describe_group(source.group_id(), 10s);
  EXPECT_TRUE(!group || group->members.empty());
}

TEST_F(KafkaBroker, SessionPoolChurnFromManyThreads) {
  const std::string name = topic(1);
  Hub hub;
  KafkaSessionPoolConfig config;
  config.properties = props_;
  config.domains = {{"party", name}};
  config.max_consumers = 6;
  config.idle_timeout = 200ms;
  config.sweep_interval = 100ms;
  KafkaSessionPool pool(hub, config);
  pool.start();
  std::vector<std::thread> threads;
  std::atomic<int> full{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        const std::string sid = "session-" + std::to_string(t) + "-" + std::to_string(i) + "xx";
        try {
          (void)pool.open(sid, "party");
        } catch (const KafkaPoolFull&) {
          full.fetch_add(1);
        }
        (void)pool.health();
        if (i % 2 == 0) pool.close(sid, "party");
      }
    });
  }
  for (auto& thread : threads) thread.join();
  // The idle sweep closes the rest.
  EXPECT_TRUE(test::eventually([&] { return pool.health().total_consumers == 0; }, 20s));
  EXPECT_TRUE(pool.wait_closed(30s));
  const auto health = pool.health();
  EXPECT_EQ(health.opened, health.closed);
  EXPECT_EQ(health.opened + static_cast<std::uint64_t>(full.load()), 20U);
  pool.stop();
}

}  // namespace
}  // namespace sessionstream::kafka
