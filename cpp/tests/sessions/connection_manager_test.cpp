#include "sessionstream/sessions/connection_manager.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/sessions/session_id.hpp"
#include "test_support.hpp"

namespace sessionstream {
namespace {

using test::drain_sse;
using test::SseMessage;

ConnectionRequest request(std::string session, std::string ip = "10.0.0.1",
                          std::vector<std::string> channels = {},
                          std::optional<ConnectionPolicy> policy = std::nullopt) {
  ConnectionRequest r;
  r.session_id = std::move(session);
  r.ip = std::move(ip);
  r.channels = std::move(channels);
  r.policy = policy;
  return r;
}

// Data of the event messages a connection has pending.
std::vector<std::string> received(const ConnectionPtr& connection, bool* closed = nullptr,
                                  std::string* reason = nullptr) {
  std::vector<std::string> data;
  for (const SseMessage& message : drain_sse(*connection->mailbox(), closed, reason)) {
    data.push_back(message.data);
  }
  return data;
}

std::vector<std::string> kinds(const std::vector<LifecycleEvent>& events) {
  std::vector<std::string> names;
  for (const auto& event : events) names.emplace_back(to_string(event.kind));
  return names;
}

const LifecycleEvent* find_event(const std::vector<LifecycleEvent>& events, LifecycleKind kind,
                                 std::uint64_t connection_id) {
  const auto it = std::find_if(events.begin(), events.end(), [&](const LifecycleEvent& event) {
    return event.kind == kind && event.connection_id == connection_id;
  });
  return it == events.end() ? nullptr : &*it;
}

class ConnectionManagerTest : public ::testing::Test {
 protected:
  static HubConfig hub_config() {
    HubConfig config;
    config.epoch = 0xc0;
    return config;
  }

  Hub hub_{hub_config()};
  std::shared_ptr<Notifier> notifier_ = std::make_shared<Notifier>();
};

TEST_F(ConnectionManagerTest, OpenRegistersTheConnectionAndItsPrivateChannel) {
  ConnectionManager manager{hub_};
  const auto connection = manager.open(request("sessionA1", "10.0.0.1", {"news"}), notifier_);
  EXPECT_EQ(connection->session_id(), "sessionA1");
  EXPECT_EQ(connection->ip(), "10.0.0.1");
  EXPECT_EQ(connection->resume_outcome(), ResumeOutcome::live);
  EXPECT_EQ(connection->id(), connection->mailbox()->id());
  EXPECT_EQ(connection->channels(), (std::vector<std::string>{"news", "session:sessionA1"}));

  const auto infos = manager.connections_of("sessionA1");
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].id, connection->id());
  EXPECT_FALSE(infos[0].processing);

  const auto events = hub_.lifecycle()->take();
  ASSERT_EQ(kinds(events), (std::vector<std::string>{"connected"}));
  EXPECT_EQ(events[0].connection_id, connection->id());
  EXPECT_EQ(events[0].session_id, "sessionA1");

  hub_.publish("news", "headline", "t", false);
  EXPECT_EQ(received(connection), (std::vector<std::string>{"headline"}));
}

TEST_F(ConnectionManagerTest, InvalidRequestsAreRejectedBeforeRegistering) {
  ConnectionManager manager{hub_};
  EXPECT_THROW((void)manager.open(request("bad id!"), notifier_), InvalidArgument);
  EXPECT_THROW((void)manager.open(request(""), notifier_), InvalidArgument);
  EXPECT_THROW((void)manager.open(request("sessionA1", "ip", {"has space"}), notifier_),
               InvalidArgument);
  try {
    (void)manager.open(request("sessionA1", "ip", {"session:otherSess1"}), notifier_);
    FAIL() << "a foreign private channel was opened";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string{error.what()}.find("session:otherSess1"), std::string::npos);
  }
  const auto m = manager.metrics();
  EXPECT_EQ(m.active_connections, 0u);
  EXPECT_EQ(m.opened_lifetime, 0u);
  EXPECT_EQ(hub_.subscriber_count("session:otherSess1"), 0u);
}

TEST_F(ConnectionManagerTest, ConnectionSubscribeIsAuthorised) {
  ConnectionManager manager{hub_};
  const auto connection = manager.open(request("sessionA1"), notifier_);
  EXPECT_THROW(connection->subscribe({"session:otherSess1"}), InvalidArgument);
  EXPECT_EQ(hub_.subscriber_count("session:otherSess1"), 0u);
  EXPECT_EQ(connection->subscribe({"extra"}), ResumeOutcome::live);
  EXPECT_EQ(hub_.subscriber_count("extra"), 1u);
  connection->unsubscribe("extra");
  EXPECT_EQ(hub_.subscriber_count("extra"), 0u);
  connection->close();
  EXPECT_THROW(connection->subscribe({"extra"}), Closed);
}

TEST_F(ConnectionManagerTest, ZeroLimitsAreRejected) {
  EXPECT_THROW((ConnectionManager{hub_, ConnectionLimits{0, 1, 1}}), InvalidArgument);
  EXPECT_THROW((ConnectionManager{hub_, ConnectionLimits{1, 0, 1}}), InvalidArgument);
  EXPECT_THROW((ConnectionManager{hub_, ConnectionLimits{1, 1, 0}}), InvalidArgument);
}

TEST_F(ConnectionManagerTest, GlobalLimit) {
  ConnectionManager manager{hub_, ConnectionLimits{2, 100, 100}};
  auto a = manager.open(request("sessionA1", "10.0.0.1"), notifier_);
  auto b = manager.open(request("sessionB2", "10.0.0.2"), notifier_);
  try {
    (void)manager.open(request("sessionC3", "10.0.0.3"), notifier_);
    FAIL() << "over the global limit";
  } catch (const LimitExceeded& error) {
    EXPECT_EQ(error.kind(), LimitKind::server_full);
    EXPECT_EQ(error.limit(), 2u);
    EXPECT_NE(std::string{error.what()}.find("max_connections"), std::string::npos);
  }
  const auto m = manager.metrics();
  EXPECT_EQ(m.rejections[static_cast<std::size_t>(LimitKind::server_full)], 1u);
  EXPECT_EQ(m.rejections[static_cast<std::size_t>(LimitKind::per_ip)], 0u);
  EXPECT_EQ(m.active_connections, 2u);
  const auto events = hub_.lifecycle()->take();
  ASSERT_EQ(kinds(events).back(), "rejected");
  EXPECT_EQ(events.back().detail, "server_full");
  EXPECT_EQ(events.back().session_id, "sessionC3");

  a->close();
  EXPECT_NO_THROW(a = manager.open(request("sessionC3", "10.0.0.3"), notifier_));
}

TEST_F(ConnectionManagerTest, PerIpLimit) {
  ConnectionManager manager{hub_, ConnectionLimits{100, 2, 100}};
  auto a = manager.open(request("sessionA1", "10.0.0.1"), notifier_);
  auto b = manager.open(request("sessionB2", "10.0.0.1"), notifier_);
  try {
    (void)manager.open(request("sessionC3", "10.0.0.1"), notifier_);
    FAIL() << "over the per-ip limit";
  } catch (const LimitExceeded& error) {
    EXPECT_EQ(error.kind(), LimitKind::per_ip);
    EXPECT_EQ(error.limit(), 2u);
  }
  auto other_ip = manager.open(request("sessionC3", "10.0.0.2"), notifier_);
  EXPECT_EQ(manager.metrics().rejections[static_cast<std::size_t>(LimitKind::per_ip)], 1u);
  b.reset();  // the owner dropping it releases the slot
  EXPECT_NO_THROW(b = manager.open(request("sessionD4", "10.0.0.1"), notifier_));
  // Connections without a known address are not counted per ip.
  std::vector<ConnectionPtr> anonymous;
  for (int i = 0; i < 3; ++i) {
    anonymous.push_back(manager.open(request("anonymous" + std::to_string(i), ""), notifier_));
  }
  EXPECT_EQ(manager.metrics().active_connections, 6u);
}

TEST_F(ConnectionManagerTest, PerSessionLimit) {
  ConnectionManager manager{hub_, ConnectionLimits{100, 100, 2}};
  auto a = manager.open(request("sessionA1", "10.0.0.1"), notifier_);
  auto b = manager.open(request("sessionA1", "10.0.0.2"), notifier_);
  try {
    (void)manager.open(request("sessionA1", "10.0.0.3"), notifier_);
    FAIL() << "over the per-session limit";
  } catch (const LimitExceeded& error) {
    EXPECT_EQ(error.kind(), LimitKind::per_session);
    EXPECT_EQ(error.limit(), 2u);
  }
  EXPECT_EQ(manager.metrics().rejections[static_cast<std::size_t>(LimitKind::per_session)], 1u);
  auto other = manager.open(request("sessionB2", "10.0.0.3"), notifier_);
  a->close();
  EXPECT_NO_THROW(a = manager.open(request("sessionA1", "10.0.0.3"), notifier_));
  EXPECT_EQ(manager.metrics().active_connections, 3u);
}

TEST_F(ConnectionManagerTest, ReconnectUnderLatestIsNeverRefusedForTheTabItReplaces) {
  ConnectionManager manager{hub_, ConnectionLimits{100, 100, 1}, ConnectionPolicy::latest};
  auto old_tab = manager.open(request("sessionA1"), notifier_);
  // The cap is 1 and the old tab is still open: the newcomer replaces it.
  const auto new_tab = manager.open(request("sessionA1"), notifier_);
  EXPECT_TRUE(old_tab->mailbox()->closed());
  EXPECT_FALSE(new_tab->mailbox()->closed());
}

TEST_F(ConnectionManagerTest, PoliciesActWithinOneGroup) {
  ConnectionManager manager{hub_, {}, ConnectionPolicy::latest};
  auto sse = request("sessionA1");
  sse.group = "sse";
  auto chat = request("sessionA1");
  chat.group = "websocket";
  const auto stream = manager.open(sse, notifier_);
  const auto first_chat = manager.open(chat, notifier_);
  const auto second_chat = manager.open(chat, notifier_);
  EXPECT_FALSE(stream->mailbox()->closed()) << "another group must not be replaced";
  EXPECT_TRUE(first_chat->mailbox()->closed());
  EXPECT_FALSE(second_chat->mailbox()->closed());
}

TEST_F(ConnectionManagerTest, PolicyAllKeepsEveryTab) {
  ConnectionManager manager{hub_, {}, ConnectionPolicy::all};
  const auto a = manager.open(request("sessionA1"), notifier_);
  const auto b = manager.open(request("sessionA1"), notifier_);
  manager.send_personal("sessionA1", "t", "both", false);
  EXPECT_EQ(received(a), (std::vector<std::string>{"both"}));
  EXPECT_EQ(received(b), (std::vector<std::string>{"both"}));
  EXPECT_FALSE(a->mailbox()->closed());
  EXPECT_EQ(manager.metrics().active_connections, 2u);
  EXPECT_EQ(manager.metrics().unique_browser_sessions, 1u);
}

TEST_F(ConnectionManagerTest, PolicyLatestReplacesTheOldTab) {
  ConnectionManager manager{hub_, {}, ConnectionPolicy::latest};
  const auto old_tab = manager.open(request("sessionA1"), notifier_);
  manager.send_personal("sessionA1", "t", "early", false);
  const auto new_tab = manager.open(request("sessionA1"), notifier_);
  manager.send_personal("sessionA1", "t", "late", false);

  bool closed = false;
  std::string reason;
  EXPECT_EQ(received(old_tab, &closed, &reason), (std::vector<std::string>{"early"}));
  EXPECT_TRUE(closed);
  EXPECT_EQ(reason, close_reason::replaced);
  EXPECT_EQ(received(new_tab), (std::vector<std::string>{"late"}));

  const auto events = hub_.lifecycle()->take();
  const auto* replaced = find_event(events, LifecycleKind::replaced, old_tab->id());
  ASSERT_NE(replaced, nullptr) << testing::PrintToString(kinds(events));
  EXPECT_EQ(replaced->other_connection_id, new_tab->id());
  EXPECT_EQ(replaced->detail, close_reason::replaced);

  old_tab->close();
  EXPECT_EQ(manager.metrics().active_connections, 1u);
  EXPECT_FALSE(new_tab->mailbox()->closed());
}

TEST_F(ConnectionManagerTest, RequestPolicyOverridesTheDefault) {
  ConnectionManager manager{hub_, {}, ConnectionPolicy::all};
  const auto b1 = manager.open(request("sessionB2"), notifier_);
  const auto b2 = manager.open(request("sessionB2", "ip", {}, ConnectionPolicy::latest), notifier_);
  EXPECT_TRUE(b1->mailbox()->closed()) << "the request's policy was ignored";
  const auto b3 = manager.open(request("sessionB2"), notifier_);
  EXPECT_FALSE(b2->mailbox()->closed()) << "the default policy is all";
}

TEST_F(ConnectionManagerTest, ParseConnectionPolicy) {
  for (const auto policy : {ConnectionPolicy::all, ConnectionPolicy::latest,
                            ConnectionPolicy::swap_after_processing, ConnectionPolicy::failover}) {
    EXPECT_EQ(parse_connection_policy(to_string(policy)), policy);
  }
  EXPECT_STREQ(to_string(ConnectionPolicy::failover), "failover");
  EXPECT_THROW((void)parse_connection_policy("newest"), InvalidArgument);
  EXPECT_THROW((void)parse_connection_policy(""), InvalidArgument);
}

// Seed 004: a second browser tab arrives while the first is busy processing a
// chat message. The newcomer must be usable at once, the busy tab must finish
// its in-flight work, and only then is the busy tab retired.
TEST_F(ConnectionManagerTest, SwapAfterProcessingRegistersTheNewcomerAtOnce) {
  ConnectionManager manager{hub_, {}, ConnectionPolicy::swap_after_processing};
  const auto busy = manager.open(request("browser01"), notifier_);
  manager.mark_processing(busy->id());
  EXPECT_TRUE(manager.is_processing(busy->id()));
  (void)hub_.lifecycle()->take();

  const auto newcomer = manager.open(request("browser01"), notifier_);
  const auto infos = manager.connections_of("browser01");
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[0].id, busy->id());
  EXPECT_TRUE(infos[0].processing);
  EXPECT_EQ(infos[1].id, newcomer->id());
  auto m = manager.metrics();
  EXPECT_EQ(m.active_connections, 2u);
  EXPECT_EQ(m.unique_browser_sessions, 1u);
  EXPECT_EQ(m.processing_connections, 1u);
  EXPECT_EQ(m.pending_swaps, 1u);

  // Both receive while the busy one finishes.
  EXPECT_FALSE(busy->mailbox()->closed());
  manager.send_personal("browser01", "reply", "partial answer", false);
  EXPECT_EQ(received(newcomer), (std::vector<std::string>{"partial answer"}));
  EXPECT_EQ(received(busy), (std::vector<std::string>{"partial answer"}));

  manager.unmark_processing(busy->id());
  m = manager.metrics();
  EXPECT_EQ(m.pending_swaps, 0u);
  EXPECT_EQ(m.processing_connections, 0u);
  manager.send_personal("browser01", "reply", "next", false);
  bool closed = false;
  std::string reason;
  EXPECT_TRUE(received(busy, &closed, &reason).empty());
  EXPECT_TRUE(closed);
  EXPECT_EQ(reason, close_reason::replaced);
  EXPECT_EQ(received(newcomer), (std::vector<std::string>{"next"}));

  const auto events = hub_.lifecycle()->take();
  const auto* swapped = find_event(events, LifecycleKind::swapped, busy->id());
  ASSERT_NE(swapped, nullptr) << testing::PrintToString(kinds(events));
  EXPECT_EQ(swapped->other_connection_id, newcomer->id());
  EXPECT_EQ(swapped->session_id, "browser01");

  busy->close();
  EXPECT_EQ(manager.metrics().active_connections, 1u);
  EXPECT_FALSE(newcomer->mailbox()->closed());
}

TEST_F(ConnectionManagerTest, SwapAfterProcessingReplacesAnIdleTabAtOnce) {
  ConnectionManager manager{hub_, {}, ConnectionPolicy::swap_after_processing};
  const auto idle = manager.open(request("browser01"), notifier_);
  const auto newcomer = manager.open(request("browser01"), notifier_);
  EXPECT_TRUE(idle->mailbox()->closed());
  EXPECT_EQ(manager.metrics().pending_swaps, 0u);
  EXPECT_FALSE(newcomer->mailbox()->closed());
}

TEST_F(ConnectionManagerTest, SwapIsCancelledWhenTheNewcomerLeavesFirst) {
  ConnectionManager manager{hub_, {}, ConnectionPolicy::swap_after_processing};
  const auto busy = manager.open(request("browser01"), notifier_);
  manager.mark_processing(busy->id());
  const auto newcomer = manager.open(request("browser01"), notifier_);
  EXPECT_EQ(manager.metrics().pending_swaps, 1u);

  newcomer->close();
  EXPECT_EQ(manager.metrics().pending_swaps, 0u);
  manager.unmark_processing(busy->id());
  EXPECT_FALSE(busy->mailbox()->closed()) << "the last tab was closed for a departed newcomer";
  manager.send_personal("browser01", "t", "still here", false);
  EXPECT_EQ(received(busy), (std::vector<std::string>{"still here"}));
  const auto events = hub_.lifecycle()->take();
  EXPECT_EQ(find_event(events, LifecycleKind::swapped, busy->id()), nullptr);
}

TEST_F(ConnectionManagerTest, SwapCompletesWhenTheBusyTabLeavesFirst) {
  ConnectionManager manager{hub_, {}, ConnectionPolicy::swap_after_processing};
  const auto busy = manager.open(request("browser01"), notifier_);
  manager.mark_processing(busy->id());
  const auto newcomer = manager.open(request("browser01"), notifier_);
  busy->close();
  const auto m = manager.metrics();
  EXPECT_EQ(m.pending_swaps, 0u);
  EXPECT_EQ(m.processing_connections, 0u);
  EXPECT_EQ(m.active_connections, 1u);
  const auto events = hub_.lifecycle()->take();
  const auto* swapped = find_event(events, LifecycleKind::swapped, busy->id());
  ASSERT_NE(swapped, nullptr);
  EXPECT_EQ(swapped->other_connection_id, newcomer->id());
  EXPECT_FALSE(newcomer->mailbox()->closed());
}

TEST_F(ConnectionManagerTest, ALaterNewcomerTakesOverThePendingSwap) {
  ConnectionManager manager{hub_, {}, ConnectionPolicy::swap_after_processing};
  const auto busy = manager.open(request("browser01"), notifier_);
  manager.mark_processing(busy->id());
  const auto second = manager.open(request("browser01"), notifier_);
  const auto third = manager.open(request("browser01"), notifier_);
  EXPECT_TRUE(second->mailbox()->closed()) << "an idle tab outlived a newer one";
  EXPECT_FALSE(busy->mailbox()->closed());
  EXPECT_EQ(manager.metrics().pending_swaps, 1u);
  second->close();
  EXPECT_EQ(manager.metrics().pending_swaps, 1u);

  manager.unmark_processing(busy->id());
  EXPECT_TRUE(busy->mailbox()->closed());
  EXPECT_EQ(manager.metrics().pending_swaps, 0u);
  const auto events = hub_.lifecycle()->take();
  const auto* swapped = find_event(events, LifecycleKind::swapped, busy->id());
  ASSERT_NE(swapped, nullptr);
  EXPECT_EQ(swapped->other_connection_id, third->id());
}

TEST_F(ConnectionManagerTest, ProcessingMarksNeedAnOpenConnection) {
  ConnectionManager manager{hub_};
  EXPECT_THROW(manager.mark_processing(12345), InvalidArgument);
  EXPECT_NO_THROW(manager.unmark_processing(12345));
  EXPECT_FALSE(manager.is_processing(12345));
  const auto connection = manager.open(request("sessionA1"), notifier_);
  manager.mark_processing(connection->id());
  EXPECT_EQ(manager.metrics().processing_connections, 1u);
  connection->close();
  EXPECT_EQ(manager.metrics().processing_connections, 0u);
  EXPECT_NO_THROW(manager.unmark_processing(connection->id()));
}

TEST_F(ConnectionManagerTest, SendPersonalReachesOnlyThatSession) {
  ConnectionManager manager{hub_};
  const auto a1 = manager.open(request("sessionA1"), notifier_);
  const auto a2 = manager.open(request("sessionA1"), notifier_);
  const auto b1 = manager.open(request("sessionB2"), notifier_);
  const auto event = manager.send_personal("sessionA1", "note", R"({"to":"A"})", true);
  EXPECT_EQ(event->channel(), "session:sessionA1");
  EXPECT_EQ(received(a1), (std::vector<std::string>{R"({"to":"A"})"}));
  EXPECT_EQ(received(a2), (std::vector<std::string>{R"({"to":"A"})"}));
  EXPECT_TRUE(received(b1).empty());
  EXPECT_THROW(manager.send_personal("bad id", "t", "x", false), InvalidArgument);
}

TEST_F(ConnectionManagerTest, DisconnectChannelDropsItFromEveryTabOfTheSession) {
  ConnectionManager manager{hub_};
  const auto a1 = manager.open(request("sessionA1", "ip", {"news", "sport"}), notifier_);
  const auto a2 = manager.open(request("sessionA1", "ip", {"news"}), notifier_);
  const auto a3 = manager.open(request("sessionA1", "ip", {"sport"}), notifier_);
  const auto b1 = manager.open(request("sessionB2", "ip", {"news"}), notifier_);

  EXPECT_EQ(manager.disconnect_channel("sessionA1", "news"), 2u);
  EXPECT_EQ(manager.disconnect_channel("sessionA1", "news"), 0u);
  EXPECT_EQ(manager.disconnect_channel("unknown1", "news"), 0u);
  EXPECT_THROW((void)manager.disconnect_channel("sessionA1", "bad channel"), InvalidArgument);
  EXPECT_THROW((void)manager.disconnect_channel("sessionA1", ""), InvalidArgument);
  EXPECT_EQ(a1->channels(), (std::vector<std::string>{"sport", "session:sessionA1"}));
  EXPECT_EQ(hub_.subscriber_count("news"), 1u);
  hub_.publish("news", "n", "t", false);
  EXPECT_TRUE(received(a1).empty());
  EXPECT_TRUE(received(a2).empty());
  EXPECT_EQ(received(b1), (std::vector<std::string>{"n"}));
  EXPECT_FALSE(a2->mailbox()->closed()) << "dropping a channel closed the connection";
}

TEST_F(ConnectionManagerTest, CloseConnectionOnlyClosesAConnectionOfTheCallersSession) {
  ConnectionManager manager{hub_};
  auto a1 = manager.open(request("sessionA1"), notifier_);
  auto b1 = manager.open(request("sessionB2"), notifier_);
  EXPECT_FALSE(manager.close_connection("sessionA1", b1->id(), close_reason::client_gone))
      << "a session closed another session's connection";
  EXPECT_FALSE(b1->mailbox()->closed());
  EXPECT_FALSE(manager.close_connection("sessionA1", 999999, close_reason::client_gone));
  EXPECT_TRUE(manager.close_connection("sessionA1", a1->id(), close_reason::client_gone));
  EXPECT_TRUE(a1->mailbox()->closed());
  EXPECT_EQ(a1->mailbox()->closed_reason(), close_reason::client_gone);
  EXPECT_FALSE(manager.close_connection("sessionA1", a1->id(), close_reason::client_gone))
      << "closing twice reported success";
}

TEST_F(ConnectionManagerTest, CloseSessionClosesEveryTabOfThatSessionOnly) {
  ConnectionManager manager{hub_};
  auto a1 = manager.open(request("sessionA1"), notifier_);
  auto a2 = manager.open(request("sessionA1"), notifier_);
  auto b1 = manager.open(request("sessionB2"), notifier_);
  EXPECT_EQ(manager.close_session("sessionA1", close_reason::session_cleanup), 2u);
  EXPECT_EQ(manager.close_session("sessionA1", close_reason::session_cleanup), 0u);
  EXPECT_EQ(manager.close_session("unknown1", close_reason::session_cleanup), 0u);
  for (const auto& connection : {a1, a2}) {
    bool closed = false;
    std::string reason;
    (void)received(connection, &closed, &reason);
    EXPECT_TRUE(closed);
    EXPECT_EQ(reason, close_reason::session_cleanup);
  }
  EXPECT_FALSE(b1->mailbox()->closed());
  a1.reset();
  a2.reset();
  const auto m = manager.metrics();
  EXPECT_EQ(m.active_connections, 1u);
  EXPECT_EQ(m.unique_browser_sessions, 1u);
  EXPECT_TRUE(manager.connections_of("sessionA1").empty());
}

TEST_F(ConnectionManagerTest, OpenResumesFromTheLastEventId) {
  ConnectionManager manager{hub_};
  const auto first = hub_.publish("news", "one", "t", false);
  hub_.publish("news", "two", "t", false);
  auto r = request("sessionA1", "ip", {"news"});
  r.last_event_id = first->id_text();
  const auto connection = manager.open(std::move(r), notifier_);
  EXPECT_EQ(connection->resume_outcome(), ResumeOutcome::exact);
  EXPECT_EQ(received(connection), (std::vector<std::string>{"two"}));
}

TEST_F(ConnectionManagerTest, SessionViewsListChannelsAndTabs) {
  ConnectionManager manager{hub_};
  const auto a1 = manager.open(request("sessionA1", "ip", {"news"}), notifier_);
  const auto a2 = manager.open(request("sessionA1", "ip", {"sport"}), notifier_);
  const auto views = manager.sessions(10);
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(views[0].session_id, "sessionA1");
  EXPECT_EQ(views[0].connections, 2u);
  EXPECT_EQ(views[0].channels, (std::vector<std::string>{"news", "session:sessionA1", "sport"}));
}

TEST_F(ConnectionManagerTest, OneSessionIsLookedUpByIdAlone) {
  ConnectionManager manager{hub_};
  const auto a1 = manager.open(request("sessionA1", "ip", {"news"}), notifier_);
  const auto a2 = manager.open(request("sessionA1", "ip", {"sport"}), notifier_);
  const auto b1 = manager.open(request("sessionB2", "ip", {"weather"}), notifier_);
  const auto view = manager.session("sessionA1");
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(view->session_id, "sessionA1");
  EXPECT_EQ(view->connections, 2u);
  EXPECT_EQ(view->channels, (std::vector<std::string>{"news", "session:sessionA1", "sport"}));
  EXPECT_LE(view->created, std::chrono::system_clock::now());
  EXPECT_FALSE(manager.session("sessionC3").has_value());
  // A prefix of a known id is another session.
  EXPECT_FALSE(manager.session("session").has_value());

  a1->close();
  a2->close();
  EXPECT_FALSE(manager.session("sessionA1").has_value());
  EXPECT_EQ(manager.session("sessionB2").value().connections, 1u);
}

TEST_F(ConnectionManagerTest, SessionListingsArePagedInIdOrder) {
  ConnectionManager manager{hub_};
  std::vector<ConnectionPtr> open;
  // Opened out of order: the listing follows the ids, not the opening order.
  for (const char* id : {"session-d", "session-b", "session-e", "session-a", "session-c"}) {
    open.push_back(manager.open(request(id), notifier_));
  }
  const auto ids = [](const std::vector<SessionView>& views) {
    std::vector<std::string> out;
    for (const auto& view : views) out.push_back(view.session_id);
    return out;
  };
  EXPECT_EQ(ids(manager.sessions(2)), (std::vector<std::string>{"session-a", "session-b"}));
  EXPECT_EQ(ids(manager.sessions(2, "session-b")),
            (std::vector<std::string>{"session-c", "session-d"}));
  EXPECT_EQ(ids(manager.sessions(2, "session-d")), (std::vector<std::string>{"session-e"}));
  EXPECT_TRUE(manager.sessions(2, "session-e").empty());
  EXPECT_TRUE(manager.sessions(0).empty());
  // A cursor that is no longer a session still continues after its place.
  EXPECT_EQ(ids(manager.sessions(1, "session-bb")), (std::vector<std::string>{"session-c"}));

  // A session closed between two pages is skipped; the others are not repeated.
  open[1]->close();  // session-b
  EXPECT_EQ(ids(manager.sessions(10, "session-a")),
            (std::vector<std::string>{"session-c", "session-d", "session-e"}));
}

TEST_F(ConnectionManagerTest, SessionCountFollowsOpensAndCloses) {
  ConnectionManager manager{hub_};
  EXPECT_EQ(manager.session_count(), 0u);
  auto a1 = manager.open(request("sessionA1"), notifier_);
  auto a2 = manager.open(request("sessionA1"), notifier_);
  auto b1 = manager.open(request("sessionB2"), notifier_);
  EXPECT_EQ(manager.session_count(), 2u);
  EXPECT_EQ(manager.metrics().unique_browser_sessions, 2u);
  a1->close();
  EXPECT_EQ(manager.session_count(), 2u);
  a2->close();
  EXPECT_EQ(manager.session_count(), 1u);
  b1.reset();  // the owner dropping it releases it too
  EXPECT_EQ(manager.session_count(), 0u);
  EXPECT_EQ(manager.metrics().unique_browser_sessions, 0u);
}

TEST_F(ConnectionManagerTest, MetricsFollowTheConnections) {
  ConnectionManager manager{hub_};
  auto a = manager.open(request("sessionA1"), notifier_);
  auto b = manager.open(request("sessionA1"), notifier_);
  auto c = manager.open(request("sessionB2"), notifier_);
  manager.mark_processing(a->id());
  for (int i = 0; i < 6; ++i) manager.record_client_message();
  manager.record_error();
  manager.record_error();

  auto m = manager.metrics();
  EXPECT_EQ(m.active_connections, 3u);
  EXPECT_EQ(m.unique_browser_sessions, 2u);
  EXPECT_EQ(m.processing_connections, 1u);
  EXPECT_EQ(m.pending_swaps, 0u);
  EXPECT_EQ(m.opened_lifetime, 3u);
  EXPECT_EQ(m.client_messages, 6u);
  EXPECT_EQ(m.errors, 2u);
  EXPECT_DOUBLE_EQ(m.client_messages_per_connection, 2.0);
  EXPECT_GE(m.uptime_seconds, 0.0);
  EXPECT_LT(m.uptime_seconds, 60.0);

  c->close();
  b.reset();
  m = manager.metrics();
  EXPECT_EQ(m.active_connections, 1u);
  EXPECT_EQ(m.unique_browser_sessions, 1u);
  EXPECT_EQ(m.processing_connections, 1u);
  EXPECT_EQ(m.opened_lifetime, 3u) << "lifetime count must not go down";
  a->close();
  m = manager.metrics();
  EXPECT_EQ(m.active_connections, 0u);
  EXPECT_EQ(m.unique_browser_sessions, 0u);
  EXPECT_EQ(m.processing_connections, 0u);
}

TEST_F(ConnectionManagerTest, LifecycleEventsReachTheQueue) {
  ConnectionManager manager{hub_, ConnectionLimits{100, 100, 2},
                            ConnectionPolicy::swap_after_processing};
  const auto busy = manager.open(request("browser01"), notifier_);
  manager.mark_processing(busy->id());
  const auto newcomer = manager.open(request("browser01"), notifier_);
  manager.unmark_processing(busy->id());
  busy->close();

  const auto old_tab =
      manager.open(request("browser02", "ip", {}, ConnectionPolicy::latest), notifier_);
  const auto new_tab =
      manager.open(request("browser02", "ip", {}, ConnectionPolicy::latest), notifier_);
  // The replaced tab no longer holds a place; two live tabs under `all` fill the cap.
  const auto third_tab =
      manager.open(request("browser02", "ip", {}, ConnectionPolicy::all), notifier_);
  EXPECT_THROW((void)manager.open(request("browser02", "ip", {}, ConnectionPolicy::all), notifier_),
               LimitExceeded);

  auto r = request("browser03", "ip", {"firehose"});
  r.mailbox.limits = MailboxLimits{1, 1 << 20};
  const auto slow = manager.open(std::move(r), notifier_);
  hub_.publish("firehose", "1", "t", false);
  hub_.publish("firehose", "2", "t", false);

  const auto events = hub_.lifecycle()->take();
  const auto names = kinds(events);
  for (const char* kind :
       {"connected", "swapped", "disconnected", "replaced", "rejected", "slow_consumer"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), kind), names.end())
        << kind << " missing from " << testing::PrintToString(names);
  }
  const auto* disconnected = find_event(events, LifecycleKind::disconnected, busy->id());
  ASSERT_NE(disconnected, nullptr);
  EXPECT_EQ(disconnected->session_id, "browser01");
  EXPECT_EQ(disconnected->detail, close_reason::replaced) << "the first close reason wins";
  const auto* replaced = find_event(events, LifecycleKind::replaced, old_tab->id());
  ASSERT_NE(replaced, nullptr);
  EXPECT_EQ(replaced->other_connection_id, new_tab->id());
  EXPECT_NE(find_event(events, LifecycleKind::slow_consumer, slow->id()), nullptr);
  EXPECT_NE(find_event(events, LifecycleKind::connected, newcomer->id()), nullptr);
}

TEST_F(ConnectionManagerTest, LifecycleNotifierFiresOnTheFirstEvent) {
  auto lifecycle_notifier = std::make_shared<Notifier>();
  auto queue = std::make_shared<LifecycleQueue>(2, lifecycle_notifier);
  ConnectionManager manager{hub_, {}, ConnectionPolicy::all, queue};
  const auto a = manager.open(request("sessionA1"), notifier_);
  const auto b = manager.open(request("sessionA1"), notifier_);
  const auto c = manager.open(request("sessionA1"), notifier_);
  EXPECT_EQ(lifecycle_notifier->take_ready(),
            (std::vector<std::uint64_t>{LifecycleQueue::kNotifyToken}));
  const auto events = queue->take();
  ASSERT_EQ(events.size(), 2u) << "the queue is bounded";
  EXPECT_EQ(events[1].connection_id, c->id()) << "the oldest are dropped first";
  EXPECT_EQ(queue->dropped(), 1u);
  EXPECT_TRUE(hub_.lifecycle()->take().empty()) << "events went to the wrong queue";
}

TEST_F(ConnectionManagerTest, ShutdownClosesEverythingAndRefusesNewConnections) {
  ConnectionManager manager{hub_};
  std::vector<ConnectionPtr> connections;
  for (const char* session : {"sessionA1", "sessionA1", "sessionB2"}) {
    connections.push_back(manager.open(request(session), notifier_));
  }
  manager.shutdown();
  for (const auto& connection : connections) {
    bool closed = false;
    std::string reason;
    (void)received(connection, &closed, &reason);
    EXPECT_TRUE(closed);
    EXPECT_EQ(reason, close_reason::shutdown);
  }
  EXPECT_THROW((void)manager.open(request("sessionC3"), notifier_), Closed);
  for (const auto& connection : connections) connection->close();
  EXPECT_EQ(manager.metrics().active_connections, 0u);
  EXPECT_EQ(hub_.subscriber_count("session:sessionA1"), 0u);
}

}  // namespace
}  // namespace sessionstream
