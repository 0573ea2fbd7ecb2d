#include "common/log_notes.hpp"

#include <gtest/gtest.h>

#include <string>

#include "sessionstream/common/errors.hpp"

namespace sessionstream::detail {
namespace {

TEST(LogNotes, RepeatsOfAKindAreSuppressedAndCounted) {
  NoteLog notes;
  notes.once("warning", "skip.bad_json", "first");
  notes.once("warning", "skip.bad_json", "second");
  notes.once("warning", "skip.bad_json", "third");
  const auto taken = notes.take();
  ASSERT_EQ(taken.size(), 1U);
  EXPECT_EQ(taken[0].message, "first");
  EXPECT_EQ(notes.suppressed(), 2U);
  EXPECT_EQ(notes.suppressed("skip.bad_json"), 2U);
  EXPECT_EQ(notes.suppressed("skip.other"), 0U);
}

TEST(LogNotes, RearmLetsAPrefixBeNotedAgain) {
  NoteLog notes;
  notes.once("warning", "error.a", "down");
  notes.once("warning", "hub.closed", "closed");
  notes.rearm("error.");
  notes.once("warning", "error.a", "down again");
  notes.once("warning", "hub.closed", "closed again");
  const auto taken = notes.take();
  ASSERT_EQ(taken.size(), 3U);
  EXPECT_EQ(taken[2].message, "down again");
  EXPECT_EQ(notes.suppressed("hub.closed"), 1U);
}

TEST(LogNotes, DistinctKindsStayBoundedAndRecentRepeatsStaySuppressed) {
  constexpr std::size_t kMaxKinds = 64;
  NoteLog notes(16, kMaxKinds);
  notes.once("warning", "hot", "hot kind");
  for (int i = 0; i < 100'000; ++i) {
    notes.once("info", "log.FETCH." + std::to_string(i), "line " + std::to_string(i));
    // A kind that keeps happening stays remembered among the flood.
    notes.once("warning", "hot", "hot kind again");
    ASSERT_LE(notes.kinds(), kMaxKinds);
  }
  EXPECT_EQ(notes.kinds(), kMaxKinds);
  EXPECT_EQ(notes.suppressed("hot"), 100'000U);
  EXPECT_EQ(notes.suppressed(), 100'000U);
  // The queue is bounded too: the oldest notes went, counted as dropped.
  const auto taken = notes.take();
  EXPECT_EQ(taken.size(), 16U);
  EXPECT_EQ(notes.dropped(), 100'001U - 16U);
  EXPECT_EQ(taken.back().kind, "log.FETCH.99999");
  // A long-forgotten kind is noted again rather than remembered forever.
  notes.once("info", "log.FETCH.0", "line 0 again");
  EXPECT_EQ(notes.take().size(), 1U);
}

TEST(LogNotes, AlwaysIgnoresDeduplication) {
  NoteLog notes;
  notes.once("info", "redis.up", "up");
  notes.always("info", "redis.up", "up");
  notes.always("info", "redis.up", "up");
  EXPECT_EQ(notes.take().size(), 3U);
  EXPECT_EQ(notes.suppressed(), 0U);
}

TEST(LogNotes, ZeroBoundsAreRefused) {
  EXPECT_THROW(NoteLog(0, 1), InvalidArgument);
  EXPECT_THROW(NoteLog(1, 0), InvalidArgument);
}

}  // namespace
}  // namespace sessionstream::detail
