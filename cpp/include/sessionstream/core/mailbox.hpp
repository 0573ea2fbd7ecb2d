#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sessionstream/core/event.hpp"
#include "sessionstream/core/notifier.hpp"

namespace sessionstream {

enum class OverflowPolicy {
  disconnect,   // close with reason slow_consumer; the client resumes from history
  drop_oldest,  // drop the oldest pending events and tell the receiver with a gap marker
};

enum class Framing { sse, websocket };

// From the names used in configuration ("disconnect", "sse", ...); anything
// else raises InvalidArgument naming the choices.
[[nodiscard]] OverflowPolicy parse_overflow_policy(std::string_view text);
[[nodiscard]] Framing parse_framing(std::string_view text);

struct MailboxLimits {
  std::size_t max_events = 1024;
  std::size_t max_bytes = 1 << 20;
};

struct MailboxOptions {
  Framing framing = Framing::sse;
  OverflowPolicy overflow = OverflowPolicy::disconnect;
  MailboxLimits limits;
};

// Why a mailbox was closed; the text is what clients see.
namespace close_reason {
inline constexpr std::string_view slow_consumer = "slow_consumer";
inline constexpr std::string_view replaced = "replaced";
inline constexpr std::string_view shutdown = "shutdown";
inline constexpr std::string_view client_gone = "client_gone";
inline constexpr std::string_view session_cleanup = "session_cleanup";
// A WebSocket text message that is not UTF-8 (RFC 6455 section 8.1: close, 1007).
inline constexpr std::string_view invalid_utf8 = "invalid_utf8";
}  // namespace close_reason

// The SSE id of the close frame of a stream closed as replaced. It can never be
// an event id ("<epoch hex>-<seq>"), so a request resuming from it is an
// EventSource reconnecting by itself after being replaced: answered 204, which
// stops it, instead of letting it push the newer tab out in turn.
inline constexpr std::string_view replaced_stream_id = "replaced";

// One connection's bounded mailbox of shared event references.
// Producers (the hub's fan-out) call deliver(); the single consumer calls
// take(). Thread-safe; its mutex is taken after the hub's and before the
// notifier's, never the other way round.
class Mailbox {
 public:
  // Frames a consumer takes in one call; closed is set once the mailbox is
  // closed and nothing is left to take.
  struct Batch {
    std::string data;
    std::size_t events = 0;
    bool closed = false;
    std::string close_reason;
  };

  // The pending events themselves, for a consumer that frames and writes them
  // without copying payloads (the shared sse_frame()/ws_object() buffers).
  struct EventBatch {
    std::vector<EventPtr> events;
    bool closed = false;
    std::string close_reason;
  };

  enum class DeliverResult { queued, dropped_oldest, overflow_closed, already_closed };

  Mailbox(std::uint64_t id, MailboxOptions options, std::shared_ptr<Notifier> notifier);
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] const MailboxOptions& options() const noexcept { return options_; }
  // The notifier given at construction (may be null); it never changes.
  [[nodiscard]] const std::shared_ptr<Notifier>& notifier() const noexcept { return notifier_; }

  // bounded=false is for resume replays, which the history bound already limits.
  DeliverResult deliver(const EventPtr& event, bool bounded = true);
  // A control frame (gap, reset) for this mailbox alone; not counted
  // against the mailbox bounds so it is never the frame that overflows.
  void deliver_control(EventPtr frame);

  // Takes pending frames up to roughly max_bytes (at least one frame) as one
  // contiguous buffer ready to send: SSE frames back to back, or one JSON
  // array for WebSocket. When frames remain, the notifier is marked again so
  // a consumer driven only by ready tokens comes back for the rest.
  [[nodiscard]] Batch take(std::size_t max_bytes);
  // Same accounting as take(), without framing: when drop_oldest dropped
  // events since the last take, a gap control event comes first.
  [[nodiscard]] EventBatch take_events(std::size_t max_bytes);

  // Returns false when it was already closed. slow_consumer discards pending
  // frames (memory is released now); other reasons let pending frames drain.
  bool close(std::string_view reason);
  [[nodiscard]] bool closed() const;
  // The reason the first close() gave; empty while open.
  [[nodiscard]] std::string closed_reason() const;
  [[nodiscard]] std::size_t pending_events() const;
  [[nodiscard]] std::size_t pending_bytes() const;

  // Where this consumer's client stands: the id of the last frame take() or
  // take_events() handed out that carries an event id (an event, or a
  // position/gap/reset frame naming the head). Transient events and frames
  // without an id leave it unchanged. A failover standby promoted after this
  // connection closes resumes from here, so nothing is lost or sent twice.
  [[nodiscard]] std::string last_taken_id() const;
  // The position the consumer starts from, for the case it takes nothing with
  // an id: the id it resumed from, or the head when it started live. Call
  // before the mailbox is attached.
  void set_last_taken_id(std::string id);

 private:
  // take_events() without the gap event; dropped receives how many events
  // drop_oldest removed since the last take.
  [[nodiscard]] EventBatch take_pending(std::size_t max_bytes, std::uint64_t& dropped);
  void append_frame(std::string& out, const Event& event, bool first) const;
  void notify_locked();
  void drop_oldest_event_locked();

  const std::uint64_t id_;
  const MailboxOptions options_;
  const std::shared_ptr<Notifier> notifier_;

  mutable std::mutex mutex_;
  std::deque<EventPtr> mailbox_;
  // Events (not control frames) in the mailbox: only they count against the
  // bounds, so a gap or reset notice never causes an overflow or is dropped.
  std::size_t queued_events_ = 0;
  std::size_t pending_bytes_ = 0;
  // Headroom granted by a resume replay, released as the replay drains.
  std::size_t replay_events_ = 0;
  std::size_t replay_bytes_ = 0;
  std::uint64_t dropped_since_take_ = 0;
  bool closed_ = false;
  bool ready_marked_ = false;
  std::string close_reason_;
  std::string last_taken_id_;
};

using MailboxPtr = std::shared_ptr<Mailbox>;

}  // namespace sessionstream
