#include "sessionstream/common/thread_faults.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/thread_fault_notes.hpp"
#include "sessionstream/sessions/session_store.hpp"

namespace sessionstream {
namespace {

TEST(ThreadFaults, ContainRunsTheBodyAndReturnsTrue) {
  ThreadFaults faults;
  int runs = 0;
  EXPECT_TRUE(faults.contain("test thread", [&] { ++runs; }));
  EXPECT_EQ(runs, 1);
  const ThreadFaultReport report = faults.report();
  EXPECT_EQ(report.count, 0U);
  EXPECT_TRUE(report.last.empty());
  EXPECT_FALSE(report.recent);
}

TEST(ThreadFaults, AStdExceptionIsRecordedWithWhereAndWhat) {
  ThreadFaults faults;
  EXPECT_FALSE(faults.contain("kafka poll thread", [] { throw std::runtime_error("boom"); }));
  const ThreadFaultReport report = faults.report();
  EXPECT_EQ(report.count, 1U);
  EXPECT_EQ(report.last, "kafka poll thread: boom");
  EXPECT_TRUE(report.recent);
}

TEST(ThreadFaults, AnExceptionOfAnyOtherTypeIsRecordedAsUnknown) {
  ThreadFaults faults;
  EXPECT_FALSE(faults.contain("reader", [] { throw 42; }));
  const ThreadFaultReport report = faults.report();
  EXPECT_EQ(report.count, 1U);
  EXPECT_EQ(report.last.rfind("reader: ", 0), 0U) << report.last;
  EXPECT_NE(report.last.find("unknown"), std::string::npos) << report.last;
  EXPECT_TRUE(report.recent);
}

TEST(ThreadFaults, RecordKeepsTheLatestFault) {
  ThreadFaults faults;
  faults.record("a", "first");
  faults.record("b", "second");
  const ThreadFaultReport report = faults.report();
  EXPECT_EQ(report.count, 2U);
  EXPECT_EQ(report.last, "b: second");
}

TEST(ThreadFaults, ConcurrentFaultsAreCountedExactly) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  ThreadFaults faults;
  std::atomic<int> contained{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (i % 2 == 0) {
          faults.record("worker " + std::to_string(t), "recorded");
        } else if (!faults.contain("worker", [] { throw std::logic_error("thrown"); })) {
          contained.fetch_add(1);
        }
        (void)faults.report();  // readers race with writers
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(contained.load(), kThreads * kPerThread / 2);
  const ThreadFaultReport report = faults.report();
  EXPECT_EQ(report.count, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_TRUE(report.recent);
}

TEST(ThreadFaults, ALoopOfContainedUnitsKeepsRunningAfterFaults) {
  ThreadFaults faults;
  int done = 0;
  for (int unit = 0; unit < 100; ++unit) {
    (void)faults.contain("loop", [&] {
      if (unit % 3 == 0) throw std::runtime_error("unit " + std::to_string(unit));
      if (unit % 7 == 0) throw unit;
      ++done;
    });
  }
  // 34 multiples of 3 and 10 further multiples of 7 below 100 failed.
  EXPECT_EQ(done, 100 - 34 - 10);
  EXPECT_EQ(faults.report().count, 44U);
}

TEST(ThreadFaults, ContainNotedNotesEachFaultOnce) {
  ThreadFaults faults;
  detail::NoteLog notes;
  EXPECT_TRUE(detail::contain_noted(faults, notes, "poll thread", [] {}));
  EXPECT_TRUE(notes.take().empty());
  for (int i = 0; i < 2; ++i) {
    EXPECT_FALSE(detail::contain_noted(faults, notes, "poll thread",
                                       [] { throw std::runtime_error("bad record"); }));
  }
  const auto taken = notes.take();
  ASSERT_EQ(taken.size(), 2U);
  EXPECT_EQ(taken[0].level, "error");
  EXPECT_EQ(taken[0].kind, "thread.fault");
  EXPECT_NE(taken[0].message.find("poll thread: bad record"), std::string::npos);
  EXPECT_EQ(faults.report().count, 2U);
}

TEST(ThreadFaults, PauseAfterFaultEndsAtStop) {
  std::stop_source stop;
  stop.request_stop();
  const auto start = std::chrono::steady_clock::now();
  detail::pause_after_fault(stop.get_token());
  EXPECT_LT(std::chrono::steady_clock::now() - start, detail::kFaultPause);
}

TEST(ThreadFaults, ARecentFaultDegradesARunningComponentOnly) {
  ThreadFaultReport report;
  std::string status = "healthy";
  std::string reason;
  detail::degrade_on_fault(report, status, reason);
  EXPECT_EQ(status, "healthy");

  report = {1, "reader: boom", true};
  detail::degrade_on_fault(report, status, reason);
  EXPECT_EQ(status, "degraded");
  EXPECT_EQ(reason, "a native thread failed: reader: boom");

  status = "degraded";
  reason = "broker unreachable";
  detail::degrade_on_fault(report, status, reason);
  EXPECT_EQ(reason, "broker unreachable; a native thread failed: reader: boom");

  status = "stopped";
  reason = "not running";
  detail::degrade_on_fault(report, status, reason);
  EXPECT_EQ(status, "stopped");
  EXPECT_EQ(reason, "not running");

  report.recent = false;
  status = "healthy";
  reason.clear();
  detail::degrade_on_fault(report, status, reason);
  EXPECT_EQ(status, "healthy");
}

// sweep() cannot be made to throw without a mock; the accessor starts clean
// and the sweeper keeps working behind its containment.
TEST(ThreadFaults, MemorySessionStoreSweeperReportsNoFaults) {
  SessionStoreConfig config;
  config.idle_timeout = std::chrono::milliseconds{1};
  config.sweep_interval = std::chrono::milliseconds{5};
  MemorySessionStore store(config);
  store.touch("sessionA1");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (store.contains("sessionA1") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(store.contains("sessionA1"));
  const ThreadFaultReport report = store.thread_faults();
  EXPECT_EQ(report.count, 0U);
  EXPECT_FALSE(report.recent);
}

}  // namespace
}  // namespace sessionstream
