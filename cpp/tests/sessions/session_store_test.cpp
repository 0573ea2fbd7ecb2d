#include "sessionstream/sessions/session_store.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sessionstream/common/errors.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using namespace std::chrono_literals;
using test::eventually;

SessionStoreConfig config(std::chrono::milliseconds idle = 3'600'000ms,
                          std::chrono::milliseconds interval = 3'600'000ms,
                          std::size_t max_history = 1000, std::size_t max_value = 1 << 20) {
  return SessionStoreConfig{idle, interval, max_history, max_value};
}

TEST(SessionStore, KeyValueRoundTrip) {
  MemorySessionStore store{config()};
  EXPECT_FALSE(store.get("sessionA1", "k").has_value());
  store.set("sessionA1", "theme", "dark");
  store.set("sessionA1", "lang", "en");
  store.set("sessionA1", "theme", "light");
  EXPECT_EQ(store.get("sessionA1", "theme"), "light");
  EXPECT_EQ(store.get("sessionA1", "lang"), "en");
  EXPECT_EQ(store.keys("sessionA1"), (std::vector<std::string>{"lang", "theme"}));
  EXPECT_TRUE(store.erase("sessionA1", "lang"));
  EXPECT_FALSE(store.erase("sessionA1", "lang"));
  EXPECT_FALSE(store.erase("unknown1", "lang"));
  EXPECT_FALSE(store.get("sessionA1", "lang").has_value());
  EXPECT_EQ(store.keys("sessionA1"), (std::vector<std::string>{"theme"}));
  EXPECT_TRUE(store.keys("unknown1").empty());
  store.set("sessionA1", "empty", "");
  EXPECT_EQ(store.get("sessionA1", "empty"), "");
}

TEST(SessionStore, SessionsAreIsolated) {
  MemorySessionStore store{config()};
  store.set("sessionA1", "k", "a");
  store.set("sessionB2", "k", "b");
  EXPECT_EQ(store.get("sessionA1", "k"), "a");
  EXPECT_EQ(store.get("sessionB2", "k"), "b");
  EXPECT_EQ(store.size(), 2u);
  EXPECT_TRUE(store.erase_session("sessionA1"));
  EXPECT_FALSE(store.erase_session("sessionA1"));
  EXPECT_FALSE(store.contains("sessionA1"));
  EXPECT_FALSE(store.get("sessionA1", "k").has_value());
  EXPECT_EQ(store.get("sessionB2", "k"), "b");
  EXPECT_EQ(store.size(), 1u);
}

TEST(SessionStore, HistoryRingIsBoundedAndOrdered) {
  MemorySessionStore store{config(3'600'000ms, 3'600'000ms, 5)};
  for (std::uint64_t i = 0; i < 12; ++i) {
    EXPECT_EQ(store.append_history("sessionA1", "m" + std::to_string(i)), i);
  }
  EXPECT_EQ(store.history("sessionA1", 100),
            (std::vector<std::string>{"m7", "m8", "m9", "m10", "m11"}));
  EXPECT_EQ(store.history("sessionA1", 2), (std::vector<std::string>{"m10", "m11"}));
  EXPECT_TRUE(store.history("sessionA1", 0).empty());
  EXPECT_TRUE(store.history("unknown1", 10).empty());

  store.append_history("sessionB2", "only");
  EXPECT_EQ(store.history("sessionB2", 10), (std::vector<std::string>{"only"}));
}

TEST(SessionStore, HistoryBelowTheBoundKeepsEverything) {
  MemorySessionStore store{config(3'600'000ms, 3'600'000ms, 5)};
  for (int i = 0; i < 5; ++i) store.append_history("sessionA1", std::to_string(i));
  EXPECT_EQ(store.history("sessionA1", 5), (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_EQ(store.history("sessionA1", 3), (std::vector<std::string>{"2", "3", "4"}));
}

TEST(SessionStore, SweepRemovesOnlyIdleSessions) {
  MemorySessionStore store{config(200ms)};
  store.set("idleSess", "k", "v");
  store.set("usedSess", "k", "v");
  std::this_thread::sleep_for(120ms);
  (void)store.get("usedSess", "k");  // a read counts as use
  std::this_thread::sleep_for(120ms);
  store.touch("touchSes");
  EXPECT_EQ(store.sweep(), 1u);
  EXPECT_FALSE(store.contains("idleSess"));
  EXPECT_TRUE(store.contains("usedSess"));
  EXPECT_TRUE(store.contains("touchSes"));
  EXPECT_EQ(store.swept_total(), 1u);
  EXPECT_EQ(store.sweep(), 0u);
}

TEST(SessionStore, SweeperThreadSweepsOnItsOwn) {
  MemorySessionStore store{config(20ms, 10ms)};
  store.set("sessionA1", "k", "v");
  store.append_history("sessionB2", "x");
  EXPECT_TRUE(eventually([&] { return store.size() == 0; }))
      << "the sweeper never removed the idle sessions";
  EXPECT_EQ(store.swept_total(), 2u);
}

TEST(SessionStore, DestructorStopsTheSweeperPromptly) {
  auto store = std::make_unique<MemorySessionStore>(config(3'600'000ms, 3'600'000ms));
  store->set("sessionA1", "k", "v");
  std::this_thread::sleep_for(10ms);  // let the sweeper start waiting
  const auto start = std::chrono::steady_clock::now();
  store.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);

  // Destroyed before the thread had a chance to wait at all.
  const auto again = std::chrono::steady_clock::now();
  { MemorySessionStore immediate{config(3'600'000ms, 3'600'000ms)}; }
  EXPECT_LT(std::chrono::steady_clock::now() - again, 1s);
}

TEST(SessionStore, OversizeValuesAreRejected) {
  MemorySessionStore store{config(3'600'000ms, 3'600'000ms, 10, 8)};
  EXPECT_NO_THROW(store.set("sessionA1", "k", std::string(8, 'x')));
  try {
    store.set("sessionA1", "big", std::string(9, 'x'));
    FAIL() << "accepted";
  } catch (const PayloadTooLarge& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("'big'"), std::string::npos) << message;
    EXPECT_NE(message.find("9 bytes"), std::string::npos) << message;
  }
  EXPECT_EQ(store.get("sessionA1", "k"), std::string(8, 'x'));
  EXPECT_FALSE(store.get("sessionA1", "big").has_value());
  EXPECT_THROW(store.append_history("sessionA1", std::string(9, 'x')), PayloadTooLarge);
  EXPECT_TRUE(store.history("sessionA1", 10).empty());
}

TEST(SessionStore, InvalidSessionIdsAreRejected) {
  MemorySessionStore store{config()};
  EXPECT_THROW(store.set("bad id", "k", "v"), InvalidArgument);
  EXPECT_THROW(store.set("short", "k", "v"), InvalidArgument);
  EXPECT_THROW(store.append_history("session:x1234567", "v"), InvalidArgument);
  EXPECT_THROW(store.touch(""), InvalidArgument);
  EXPECT_EQ(store.size(), 0u);
}

TEST(SessionStore, ZeroSettingsAreRejected) {
  EXPECT_THROW(MemorySessionStore{config(0ms)}, InvalidArgument);
  EXPECT_THROW(MemorySessionStore{config(1000ms, 0ms)}, InvalidArgument);
  EXPECT_THROW(MemorySessionStore{config(1000ms, 1000ms, 0)}, InvalidArgument);
}

TEST(SessionStore, ConcurrentAccessFromEightThreads) {
  // A sweeper running throughout, with an idle timeout nothing here reaches.
  MemorySessionStore store{config(60'000ms, 1ms, 64)};
  constexpr int kThreads = 8;
  constexpr int kOps = 500;
  std::latch start{kThreads};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::string own = "thread" + std::to_string(t) + "_session";
        start.arrive_and_wait();
        for (int i = 0; i < kOps; ++i) {
          const std::string key = "k" + std::to_string(i % 16);
          store.set(own, key, std::to_string(i));
          store.set("sharedSession", "t" + std::to_string(t), std::to_string(i));
          store.append_history("sharedSession", std::to_string(t) + ":" + std::to_string(i));
          store.append_history(own, std::to_string(i));
          EXPECT_EQ(store.get(own, key), std::to_string(i));
          (void)store.keys("sharedSession");
          (void)store.history("sharedSession", 10);
          if (i % 50 == 0) (void)store.sweep();
        }
      });
    }
  }
  EXPECT_EQ(store.size(), static_cast<std::size_t>(kThreads + 1));
  EXPECT_EQ(store.keys("sharedSession").size(), static_cast<std::size_t>(kThreads));
  EXPECT_EQ(store.history("sharedSession", 1000).size(), 64u);
  EXPECT_EQ(store.append_history("sharedSession", "last"),
            static_cast<std::uint64_t>(kThreads * kOps));
  for (int t = 0; t < kThreads; ++t) {
    const std::string own = "thread" + std::to_string(t) + "_session";
    EXPECT_EQ(store.get(own, "k" + std::to_string((kOps - 1) % 16)), std::to_string(kOps - 1));
    const auto history = store.history(own, 1000);
    ASSERT_EQ(history.size(), 64u);
    EXPECT_EQ(history.front(), std::to_string(kOps - 64));
    EXPECT_EQ(history.back(), std::to_string(kOps - 1));
  }
}

}  // namespace
}  // namespace sessionstream
