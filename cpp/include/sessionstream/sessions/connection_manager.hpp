#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sessionstream/core/hub.hpp"
#include "sessionstream/core/lifecycle.hpp"
#include "sessionstream/core/mailbox.hpp"
#include "sessionstream/sessions/limits.hpp"

namespace sessionstream {

enum class ConnectionPolicy {
  all,                    // every tab of a session receives
  latest,                 // a new connection takes over; the old one is closed as replaced
  swap_after_processing,  // like latest, but a connection busy processing finishes first
  // The first connection receives; later ones wait on standby (open, heartbeats
  // only) and the most recent standby takes over, resuming exactly, when the
  // active one closes.
  failover,
};

[[nodiscard]] ConnectionPolicy parse_connection_policy(std::string_view text);
[[nodiscard]] const char* to_string(ConnectionPolicy policy) noexcept;

struct ConnectionRequest {
  std::string session_id;  // validated; empty is invalid (generate one first)
  std::string ip;
  std::vector<std::string> channels;
  std::optional<std::string> last_event_id;
  MailboxOptions mailbox;
  std::optional<ConnectionPolicy> policy;  // the manager's default when empty
  // latest, swap_after_processing and failover act only among connections of
  // the same session and group, so e.g. a chat WebSocket never replaces the
  // same browser's SSE streams.
  std::string group;
};

struct ConnectionInfo {
  std::uint64_t id = 0;
  std::string session_id;
  std::string ip;
  std::string group;
  bool processing = false;
  std::chrono::system_clock::time_point connected_at;
  bool standby = false;  // failover: open, but not attached to its channels yet
};

struct SessionView {
  std::string session_id;
  std::vector<std::string> channels;
  std::size_t connections = 0;
  std::chrono::system_clock::time_point created;
};

struct ConnectionMetrics {
  std::size_t active_connections = 0;
  std::size_t unique_browser_sessions = 0;
  std::size_t processing_connections = 0;
  std::size_t pending_swaps = 0;
  std::size_t standby_connections = 0;
  std::uint64_t opened_lifetime = 0;
  std::uint64_t errors = 0;
  std::uint64_t client_messages = 0;
  double uptime_seconds = 0;
  double client_messages_per_connection = 0;
  std::array<std::uint64_t, 3> rejections{};  // indexed by LimitKind
};

class ConnectionManager;

// A registered connection: owns its mailbox's place in the hub and its
// slot in the manager. close() (or destruction) releases both exactly once.
// The manager must outlive its connections.
class Connection {
 public:
  Connection(ConnectionManager& manager, ConnectionInfo info, MailboxPtr mailbox);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  [[nodiscard]] std::uint64_t id() const noexcept { return info_.id; }
  [[nodiscard]] const std::string& session_id() const noexcept { return info_.session_id; }
  [[nodiscard]] const std::string& ip() const noexcept { return info_.ip; }
  [[nodiscard]] const MailboxPtr& mailbox() const noexcept { return mailbox_; }
  // What the resume at open found; set once by the manager before open returns.
  [[nodiscard]] ResumeOutcome resume_outcome() const noexcept { return resume_; }
  void set_resume_outcome(ResumeOutcome outcome) noexcept { resume_ = outcome; }

  // Authorised subscribe: foreign private channels throw InvalidArgument. On
  // a failover standby the channels are only recorded (outcome live) and
  // attached at promotion, resuming from where the active connection was.
  ResumeOutcome subscribe(const std::vector<std::string>& channels,
                          std::optional<std::string_view> last_event_id = std::nullopt);
  void unsubscribe(std::string_view channel);
  // A standby's recorded channels, else the hub's attachments.
  [[nodiscard]] std::vector<std::string> channels() const;

  // Idempotent; the first reason wins.
  void close(std::string_view reason = close_reason::client_gone);
  [[nodiscard]] bool is_closed() const noexcept { return closed_.load(); }

 private:
  ConnectionManager& manager_;
  const ConnectionInfo info_;
  const MailboxPtr mailbox_;
  ResumeOutcome resume_ = ResumeOutcome::live;
  std::atomic<bool> closed_{false};
};

using ConnectionPtr = std::shared_ptr<Connection>;

// Browser sessions and their connections (tabs): limits, per-session policy,
// the processing/swap state of seed 004, failover standbys, counts for health.
// A connection is registered to its session before open() returns, whatever
// the policy, so a newcomer can never be orphaned behind a busy connection.
// Thread-safe. Lock order: manager, then hub, then mailbox. Hub::subscribe
// (which may wait on a replay source) is never called under the manager's
// lock: open() and a failover promotion subscribe after releasing it.
class ConnectionManager {
 public:
  ConnectionManager(Hub& hub, ConnectionLimits limits = {},
                    ConnectionPolicy default_policy = ConnectionPolicy::all,
                    std::shared_ptr<LifecycleQueue> lifecycle = nullptr);
  ~ConnectionManager();
  ConnectionManager(const ConnectionManager&) = delete;
  ConnectionManager& operator=(const ConnectionManager&) = delete;

  // Throws LimitExceeded, InvalidArgument (session id, channel, foreign
  // private channel), Closed.
  [[nodiscard]] ConnectionPtr open(ConnectionRequest request, std::shared_ptr<Notifier> notifier);

  void mark_processing(std::uint64_t connection_id);
  // Completes a pending swap: the busy connection is closed as replaced.
  void unmark_processing(std::uint64_t connection_id);
  [[nodiscard]] bool is_processing(std::uint64_t connection_id) const;

  // Publishes to the session's private channel, which all its live connections receive.
  EventPtr send_personal(std::string_view session_id, std::string type, std::string data,
                         bool data_is_json);

  // Seed-000 semantics: drop one channel from every connection of a session;
  // close every connection of a session. Return how many were affected.
  // disconnect_channel throws InvalidArgument for an invalid channel name.
  std::size_t disconnect_channel(std::string_view session_id, std::string_view channel);
  std::size_t close_session(std::string_view session_id, std::string_view reason);
  // Closes one connection, only when it belongs to session_id (the page-hide beacon), whichever
  // delivery path owns it. Returns false for an unknown, foreign or already closed connection.
  bool close_connection(std::string_view session_id, std::uint64_t connection_id,
                        std::string_view reason);

  void record_client_message() noexcept {
    client_messages_.fetch_add(1, std::memory_order_relaxed);
  }
  void record_error() noexcept { errors_.fetch_add(1, std::memory_order_relaxed); }

  [[nodiscard]] ConnectionMetrics metrics() const;
  // One session by id, or nothing when it has no connection: a lookup, never a scan.
  [[nodiscard]] std::optional<SessionView> session(std::string_view session_id) const;
  // At most limit sessions whose ids sort after `after` (empty: from the first), in id
  // order, so a caller pages through every session by passing the last id it got.
  [[nodiscard]] std::vector<SessionView> sessions(std::size_t limit,
                                                  std::string_view after = {}) const;
  // Sessions with at least one connection.
  [[nodiscard]] std::size_t session_count() const;
  [[nodiscard]] std::vector<ConnectionInfo> connections_of(std::string_view session_id) const;
  [[nodiscard]] const ConnectionLimits& limits() const noexcept { return limits_; }
  [[nodiscard]] Hub& hub() noexcept { return hub_; }

  // Stops accepting and closes every connection with reason shutdown.
  void shutdown();

 private:
  friend class Connection;

  struct SessionState {
    std::vector<std::uint64_t> connections;  // oldest first
    std::chrono::system_clock::time_point created;
  };
  // The manager never owns a Connection (its owner does), so a Connection's
  // destructor can never run under the manager's lock. Closing from this side
  // closes the mailbox; the owner then sees it closed and releases the slot.
  struct Entry {
    ConnectionInfo info;
    MailboxPtr mailbox;
    // A standby's channels (authorized, private channel included), attached
    // when it is promoted.
    std::vector<std::string> deferred_channels;
  };
  // What a session view needs, copied under the lock; the hub is asked for channels
  // after the lock is released.
  struct SessionSnapshot {
    std::string session_id;
    std::chrono::system_clock::time_point created;
    std::size_t connections = 0;
    std::vector<MailboxPtr> attached;
    std::vector<std::string> deferred;
  };
  // A standby chosen to take over, attached once the manager's lock is released.
  struct Promotion {
    MailboxPtr mailbox;
    std::vector<std::string> channels;
    std::string resume_from;  // empty: live
  };

  // Releases the slot and, when it was a failover session's active
  // connection, promotes the most recent standby (may block on a replay).
  void release(std::uint64_t connection_id, std::string_view reason);
  // The session, per-IP and swap bookkeeping of a connection erased from connections_.
  void release_locked(const ConnectionInfo& info, std::string_view reason);
  [[nodiscard]] std::optional<Promotion> choose_promotion_locked(const ConnectionInfo& closed,
                                                                 const std::string& resume_from);
  void promote(Promotion promotion);
  // The newest open, non-standby connection of a session and group, or 0.
  [[nodiscard]] std::uint64_t active_of_locked(const std::string& session_id,
                                               const std::string& group) const;
  // A standby's channel bookkeeping; false when the connection is not (or no
  // longer) a standby and the hub must be used instead.
  bool defer_subscribe(std::uint64_t connection_id, const std::vector<std::string>& channels);
  bool defer_unsubscribe(std::uint64_t connection_id, std::string_view channel);
  [[nodiscard]] std::optional<std::vector<std::string>> deferred_channels(
      std::uint64_t connection_id) const;
  void close_entry_locked(const Entry& entry, std::string_view reason);
  [[nodiscard]] SessionSnapshot snapshot_locked(const std::string& session_id,
                                                const SessionState& session) const;
  [[nodiscard]] SessionView view_of(SessionSnapshot snapshot) const;
  void apply_policy_locked(const std::string& session_id, std::uint64_t newcomer,
                           ConnectionPolicy policy);
  void post(LifecycleEvent event);

  Hub& hub_;
  const ConnectionLimits limits_;
  const ConnectionPolicy default_policy_;
  const std::shared_ptr<LifecycleQueue> lifecycle_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  std::atomic<std::uint64_t> client_messages_{0};
  std::atomic<std::uint64_t> errors_{0};

  mutable std::mutex mutex_;
  bool shut_down_ = false;
  std::uint64_t lifetime_ = 0;
  std::array<std::uint64_t, 3> rejections_{};
  std::unordered_map<std::uint64_t, Entry> connections_;
  std::map<std::string, SessionState, std::less<>> sessions_;
  std::unordered_map<std::string, std::size_t> per_ip_;
  // busy connection -> connection waiting to take over from it
  std::unordered_map<std::uint64_t, std::uint64_t> pending_swaps_;
};

}  // namespace sessionstream
