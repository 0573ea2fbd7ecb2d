// The failover policy: one tab of a session receives, later tabs wait on
// standby and the most recent one takes over, resuming exactly, when the
// active tab closes. Also the mailbox's last taken id it relies on.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/sessions/connection_manager.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using test::drain_sse;
using test::SseMessage;

ConnectionRequest request(std::string session, std::vector<std::string> channels = {"news"},
                          Framing framing = Framing::sse) {
  ConnectionRequest r;
  r.session_id = std::move(session);
  r.ip = "10.0.0.1";
  r.channels = std::move(channels);
  r.mailbox.framing = framing;
  r.group = framing == Framing::sse ? "sse" : "websocket";
  return r;
}

// Numbers published as event data, in the order a consumer took them.
std::vector<int> numbers(const std::vector<SseMessage>& messages) {
  std::vector<int> out;
  for (const auto& message : messages) {
    if (message.event == "message") out.push_back(std::stoi(message.data));
  }
  return out;
}

// Takes frames one at a time until `count` events were taken; returns their data.
std::vector<int> take_events(Mailbox& mailbox, std::size_t count) {
  std::vector<int> out;
  while (out.size() < count) {
    const auto batch = mailbox.take_events(1);
    if (batch.events.empty()) break;
    for (const auto& event : batch.events) {
      if (!event->is_control()) out.push_back(std::stoi(event->data()));
    }
  }
  return out;
}

void publish_range(Hub& hub, int from, int to, const std::string& channel = "news") {
  for (int i = from; i <= to; ++i) hub.publish(channel, std::to_string(i), "message", false);
}

std::vector<int> range(int from, int to) {
  std::vector<int> out;
  for (int i = from; i <= to; ++i) out.push_back(i);
  return out;
}

const LifecycleEvent* find_event(const std::vector<LifecycleEvent>& events, LifecycleKind kind,
                                 std::uint64_t connection_id) {
  const auto it = std::find_if(events.begin(), events.end(), [&](const LifecycleEvent& event) {
    return event.kind == kind && event.connection_id == connection_id;
  });
  return it == events.end() ? nullptr : &*it;
}

class FailoverTest : public ::testing::Test {
 protected:
  static HubConfig hub_config() {
    HubConfig config;
    config.epoch = 0xfa;
    // Enough history that every hand-over of the concurrent test resumes exactly.
    config.history.max_events = 1 << 14;
    return config;
  }

  Hub hub_{hub_config()};
  std::shared_ptr<Notifier> notifier_ = std::make_shared<Notifier>();
  ConnectionManager manager_{hub_, ConnectionLimits{100, 100, 8}, ConnectionPolicy::failover};
};

TEST_F(FailoverTest, StandbyIsRegisteredToldAndReceivesNothing) {
  const auto active = manager_.open(request("browser01"), notifier_);
  const auto standby = manager_.open(request("browser01"), notifier_);

  publish_range(hub_, 1, 3);
  manager_.send_personal("browser01", "message", "4", false);
  EXPECT_EQ(numbers(drain_sse(*active->mailbox())), range(1, 4));

  const auto told = drain_sse(*standby->mailbox());
  ASSERT_EQ(told.size(), 1u) << "a standby receives its standby frame and nothing else";
  EXPECT_EQ(told[0].event, "standby");
  EXPECT_EQ(told[0].data, "{\"active_connection_id\":" + std::to_string(active->id()) + "}");
  EXPECT_FALSE(told[0].has_id) << "the standby frame must not move the client's position";

  EXPECT_EQ(hub_.subscriber_count("news"), 1u) << "a standby is not attached to its channels";
  EXPECT_EQ(hub_.subscriber_count("session:browser01"), 1u);
  EXPECT_EQ(standby->channels(), (std::vector<std::string>{"news", "session:browser01"}));
  EXPECT_EQ(standby->resume_outcome(), ResumeOutcome::live);

  const auto infos = manager_.connections_of("browser01");
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_FALSE(infos[0].standby);
  EXPECT_TRUE(infos[1].standby);
  const auto m = manager_.metrics();
  EXPECT_EQ(m.active_connections, 2u);
  EXPECT_EQ(m.standby_connections, 1u);

  const auto events = hub_.lifecycle()->take();
  const auto* standby_event = find_event(events, LifecycleKind::standby, standby->id());
  ASSERT_NE(standby_event, nullptr);
  EXPECT_EQ(standby_event->other_connection_id, active->id());
  EXPECT_EQ(find_event(events, LifecycleKind::standby, active->id()), nullptr);
}

TEST_F(FailoverTest, PromotionResumesExactlyWhereTheActiveStopped) {
  const auto active = manager_.open(request("browser01"), notifier_);
  const auto standby = manager_.open(request("browser01"), notifier_);
  (void)drain_sse(*standby->mailbox());  // the standby frame

  publish_range(hub_, 1, 5);
  const auto taken_by_active = take_events(*active->mailbox(), 3);
  ASSERT_EQ(taken_by_active, range(1, 3));
  publish_range(hub_, 6, 7);  // queued for the active one, never taken
  active->close();
  publish_range(hub_, 8, 10);

  const auto batch = standby->mailbox()->take(1 << 20);
  // EventSource's lastEventId becomes the hand-over point before anything else.
  EXPECT_EQ(batch.data.rfind("id: fa-3\n\nevent: active\n", 0), 0u) << batch.data;
  const auto promoted = test::parse_sse(batch.data);
  ASSERT_FALSE(promoted.empty());
  EXPECT_EQ(promoted[0].event, "active");
  EXPECT_EQ(promoted[0].data, "{\"previous_connection_id\":" + std::to_string(active->id()) + "}");
  const auto taken_by_promoted = numbers(promoted);
  EXPECT_EQ(taken_by_promoted, range(4, 10));

  std::vector<int> all = taken_by_active;
  all.insert(all.end(), taken_by_promoted.begin(), taken_by_promoted.end());
  EXPECT_EQ(all, range(1, 10)) << "nothing lost, nothing twice";
  EXPECT_EQ(standby->resume_outcome(), ResumeOutcome::live);
  EXPECT_EQ(hub_.subscriber_count("news"), 1u);
  EXPECT_EQ(manager_.metrics().standby_connections, 0u);
  EXPECT_FALSE(manager_.connections_of("browser01").at(0).standby);

  const auto events = hub_.lifecycle()->take();
  const auto* promoted_event = find_event(events, LifecycleKind::promoted, standby->id());
  ASSERT_NE(promoted_event, nullptr);
  EXPECT_EQ(promoted_event->other_connection_id, active->id());
}

TEST_F(FailoverTest, ActiveThatTookNothingHandsOverFromWhereItOpened) {
  // WebSocket framing has no position frame: the manager's own starting point
  // (the head when the active one opened) is where the standby resumes.
  publish_range(hub_, 1, 2);  // before anyone: no one gets these
  const auto active = manager_.open(request("browser01", {"news"}, Framing::websocket), notifier_);
  const auto standby = manager_.open(request("browser01", {"news"}, Framing::websocket), notifier_);
  publish_range(hub_, 3, 5);
  active->close();
  publish_range(hub_, 6, 6);
  const auto batch = standby->mailbox()->take_events(1 << 20);
  std::vector<std::string> types;
  std::vector<int> data;
  for (const auto& event : batch.events) {
    if (event->is_control()) {
      types.push_back(event->type());
    } else {
      data.push_back(std::stoi(event->data()));
    }
  }
  EXPECT_EQ(types, (std::vector<std::string>{"standby", "active"}));
  EXPECT_EQ(data, range(3, 6));
}

TEST_F(FailoverTest, ASessionWithoutEventsPromotesLive) {
  const auto active = manager_.open(request("browser01"), notifier_);
  const auto standby = manager_.open(request("browser01"), notifier_);
  active->close();
  publish_range(hub_, 1, 2);
  const auto promoted = drain_sse(*standby->mailbox());
  EXPECT_EQ(test::event_names(promoted),
            (std::vector<std::string>{"standby", "active", "message", "message"}));
  EXPECT_EQ(numbers(promoted), range(1, 2));
}

TEST_F(FailoverTest, TheMostRecentStandbyTakesOver) {
  const auto a = manager_.open(request("browser01"), notifier_);
  const auto b = manager_.open(request("browser01"), notifier_);
  const auto c = manager_.open(request("browser01"), notifier_);
  (void)drain_sse(*b->mailbox());
  const auto told_c = drain_sse(*c->mailbox());
  ASSERT_EQ(told_c.size(), 1u);
  EXPECT_EQ(told_c[0].data, "{\"active_connection_id\":" + std::to_string(a->id()) + "}");

  publish_range(hub_, 1, 2);
  EXPECT_EQ(numbers(drain_sse(*a->mailbox())), range(1, 2));
  a->close();
  publish_range(hub_, 3, 3);
  EXPECT_EQ(numbers(drain_sse(*c->mailbox())), range(3, 3));
  EXPECT_TRUE(drain_sse(*b->mailbox()).empty()) << "the older standby keeps waiting";
  EXPECT_EQ(manager_.metrics().standby_connections, 1u);

  c->close();
  publish_range(hub_, 4, 4);
  const auto promoted_b = drain_sse(*b->mailbox());
  EXPECT_EQ(test::event_names(promoted_b), (std::vector<std::string>{"active", "message"}));
  EXPECT_EQ(numbers(promoted_b), range(4, 4));
}

TEST_F(FailoverTest, AStandbyClosingBeforePromotionIsSkipped) {
  const auto a = manager_.open(request("browser01"), notifier_);
  const auto b = manager_.open(request("browser01"), notifier_);
  const auto c = manager_.open(request("browser01"), notifier_);
  (void)drain_sse(*b->mailbox());
  publish_range(hub_, 1, 2);
  EXPECT_EQ(numbers(drain_sse(*a->mailbox())), range(1, 2));

  // c is being closed (its owner has not released it yet) when a goes away.
  ASSERT_TRUE(manager_.close_connection("browser01", c->id(), close_reason::client_gone));
  a->close();
  publish_range(hub_, 3, 4);
  EXPECT_EQ(numbers(drain_sse(*b->mailbox())), range(3, 4));
  EXPECT_EQ(hub_.subscriber_count("news"), 1u) << "the closing standby was never attached";
  c->close();
  EXPECT_EQ(hub_.subscriber_count("news"), 1u);
}

TEST_F(FailoverTest, APromotedStandbyThatClosesAtOnceHandsOnTheSamePosition) {
  const auto a = manager_.open(request("browser01"), notifier_);
  const auto b = manager_.open(request("browser01"), notifier_);
  const auto c = manager_.open(request("browser01"), notifier_);
  publish_range(hub_, 1, 4);
  EXPECT_EQ(take_events(*a->mailbox(), 2), range(1, 2));
  a->close();  // c takes over from 2 but takes nothing
  c->close();  // so b must resume from 2 as well
  publish_range(hub_, 5, 5);
  EXPECT_EQ(numbers(drain_sse(*b->mailbox())), range(3, 5));
  EXPECT_EQ(hub_.subscriber_count("news"), 1u);
}

TEST_F(FailoverTest, StandbysCountAgainstLimits) {
  ConnectionManager manager{hub_, ConnectionLimits{3, 100, 2}, ConnectionPolicy::failover};
  const auto a = manager.open(request("browser01"), notifier_);
  const auto b = manager.open(request("browser01"), notifier_);
  EXPECT_THROW((void)manager.open(request("browser01"), notifier_), LimitExceeded);
  const auto other = manager.open(request("browser02"), notifier_);
  EXPECT_THROW((void)manager.open(request("browser03"), notifier_), LimitExceeded)
      << "a standby holds a place under max_connections";
  b->close();
  EXPECT_NO_THROW((void)manager.open(request("browser01"), notifier_));
}

TEST_F(FailoverTest, ChannelsSubscribedOnStandbyAreAttachedAtPromotion) {
  const auto a = manager_.open(request("browser01", {"news"}, Framing::websocket), notifier_);
  const auto b = manager_.open(request("browser01", {"news"}, Framing::websocket), notifier_);
  EXPECT_EQ(b->subscribe({"extra"}, "fa-1"), ResumeOutcome::live);
  EXPECT_THROW(b->subscribe({"session:browser02"}), InvalidArgument);
  b->unsubscribe("news");
  EXPECT_EQ(hub_.subscriber_count("extra"), 0u);
  EXPECT_EQ(b->channels(), (std::vector<std::string>{"session:browser01", "extra"}));
  EXPECT_EQ(manager_.session("browser01").value().channels,
            (std::vector<std::string>{"extra", "news", "session:browser01"}));

  a->close();
  EXPECT_EQ(hub_.subscriber_count("extra"), 1u);
  EXPECT_EQ(hub_.subscriber_count("news"), 0u);
  hub_.publish("extra", "1", "message", false);
  hub_.publish("news", "2", "message", false);
  std::vector<int> data;
  for (const auto& event : b->mailbox()->take_events(1 << 20).events) {
    if (!event->is_control()) data.push_back(std::stoi(event->data()));
  }
  EXPECT_EQ(data, range(1, 1));
}

TEST_F(FailoverTest, OtherGroupsAndPoliciesAreUntouched) {
  const auto sse = manager_.open(request("browser01"), notifier_);
  const auto ws = manager_.open(request("browser01", {"news"}, Framing::websocket), notifier_);
  EXPECT_EQ(manager_.metrics().standby_connections, 0u) << "the first of each group is active";
  publish_range(hub_, 1, 1);
  EXPECT_EQ(numbers(drain_sse(*sse->mailbox())), range(1, 1));
  EXPECT_EQ(ws->mailbox()->take_events(1 << 20).events.size(), 1u);
}

TEST_F(FailoverTest, ANewcomerAfterTheActiveClosedIsActiveItself) {
  const auto a = manager_.open(request("browser01"), notifier_);
  ASSERT_TRUE(manager_.close_connection("browser01", a->id(), close_reason::client_gone));
  const auto b = manager_.open(request("browser01"), notifier_);
  EXPECT_FALSE(manager_.connections_of("browser01").back().standby);
  a->close();
  publish_range(hub_, 1, 1);
  EXPECT_EQ(numbers(drain_sse(*b->mailbox())), range(1, 1));
  EXPECT_EQ(hub_.subscriber_count("news"), 1u);
}

TEST_F(FailoverTest, ShutdownPromotesNobody) {
  const auto a = manager_.open(request("browser01"), notifier_);
  const auto b = manager_.open(request("browser01"), notifier_);
  manager_.shutdown();
  a->close();
  b->close();
  EXPECT_EQ(hub_.subscriber_count("news"), 0u);
  EXPECT_EQ(find_event(hub_.lifecycle()->take(), LifecycleKind::promoted, b->id()), nullptr);
}

// Actives close themselves after taking (as their owners do) while standbys
// are closed from outside and a publisher runs throughout: every number is
// taken exactly once by the succession of active connections.
TEST_F(FailoverTest, ConcurrentClosesLoseAndDuplicateNothing) {
  constexpr int kEvents = 3000;
  constexpr int kTabs = 12;
  ConnectionManager manager{hub_, ConnectionLimits{100, 100, 64}, ConnectionPolicy::failover};
  struct Tab {
    ConnectionPtr connection;
    std::vector<int> taken;
    std::atomic<bool> quit{false};
    std::thread consumer;
  };
  std::vector<std::unique_ptr<Tab>> tabs;
  std::atomic<int> total{0};
  auto big = request("browser01");
  big.mailbox.limits = MailboxLimits{1 << 20, 1 << 30};
  for (int i = 0; i < kTabs; ++i) {
    auto tab = std::make_unique<Tab>();
    tab->connection = manager.open(big, notifier_);
    tabs.push_back(std::move(tab));
  }
  for (auto& owned : tabs) {
    Tab& tab = *owned;
    tab.consumer = std::thread([&tab, &total] {
      const auto& mailbox = tab.connection->mailbox();
      while (!tab.quit.load()) {  // quit: its client went away
        const auto batch = mailbox->take_events(512);
        for (const auto& event : batch.events) {
          if (event->is_control()) continue;
          tab.taken.push_back(std::stoi(event->data()));
          total.fetch_add(1);
        }
        if (batch.closed) break;
        if (batch.events.empty()) std::this_thread::yield();
      }
      tab.connection->close();
    });
  }
  const auto tab_of = [&](std::uint64_t id) -> Tab& {
    return **std::find_if(tabs.begin(), tabs.end(),
                          [&](const auto& tab) { return tab->connection->id() == id; });
  };
  (void)hub_.lifecycle()->take();
  std::thread publisher([&] {
    // Paced so that the publishes overlap every hand-over.
    for (int i = 1; i <= kEvents; ++i) {
      hub_.publish("news", std::to_string(i), "message", false);
      if (i % 100 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::thread closer([&] {
    for (int round = 0; round < kTabs / 2 - 1; ++round) {
      std::uint64_t active = 0;
      std::uint64_t standby = 0;
      // The previous active may still be on its way out: wait for its successor.
      (void)test::eventually([&] {
        active = standby = 0;
        for (const auto& info : manager.connections_of("browser01")) {
          if (tab_of(info.id).quit.load()) continue;
          (info.standby ? standby : active) = info.id;
        }
        return active != 0;
      });
      if (active != 0) tab_of(active).quit.store(true);
      if (standby != 0) {
        (void)manager.close_connection("browser01", standby, close_reason::client_gone);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });
  closer.join();
  publisher.join();
  EXPECT_TRUE(test::eventually([&] { return total.load() >= kEvents; }, std::chrono::seconds(20)));
  for (auto& tab : tabs) tab->quit.store(true);
  for (auto& tab : tabs) tab->consumer.join();
  std::multiset<int> all;
  for (const auto& tab : tabs) all.insert(tab->taken.begin(), tab->taken.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kEvents)) << "something was taken twice";
  for (int i = 1; i <= kEvents; ++i) {
    ASSERT_EQ(all.count(i), 1u) << "event " << i;
  }
  EXPECT_EQ(hub_.subscriber_count("news"), 0u);
  EXPECT_EQ(manager.metrics().active_connections, 0u);
  const auto events = hub_.lifecycle()->take();
  EXPECT_GE(std::count_if(events.begin(), events.end(),
                          [](const auto& e) { return e.kind == LifecycleKind::promoted; }),
            kTabs / 2 - 1)
      << "every quitting active handed over";
}

TEST(MailboxLastTakenId, FollowsTheFramesThatCarryEventIds) {
  auto mailbox = std::make_shared<Mailbox>(1, MailboxOptions{}, nullptr);
  EXPECT_EQ(mailbox->last_taken_id(), "");
  mailbox->set_last_taken_id("1-0");
  EXPECT_EQ(mailbox->last_taken_id(), "1-0");

  mailbox->deliver(test::make_event(4));
  mailbox->deliver(test::make_event(5));
  EXPECT_EQ(mailbox->last_taken_id(), "1-0") << "pending is not taken";
  (void)mailbox->take(1);  // one frame only
  EXPECT_EQ(mailbox->last_taken_id(), "1-4");
  (void)mailbox->take_events(1 << 20);
  EXPECT_EQ(mailbox->last_taken_id(), "1-5");

  mailbox->deliver(Event::transient("c", "message", "no id", false));
  mailbox->deliver_control(Event::control("standby", "\"active_connection_id\":1"));
  mailbox->deliver_control(Event::control("close", "", std::string{replaced_stream_id}));
  (void)mailbox->take(1 << 20);
  EXPECT_EQ(mailbox->last_taken_id(), "1-5") << "transient, id-less and marker frames";

  mailbox->deliver_control(Event::position("1-9"));
  (void)mailbox->take_events(1 << 20);
  EXPECT_EQ(mailbox->last_taken_id(), "1-9") << "a position frame names the head";
}

}  // namespace
}  // namespace sessionstream
