#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sessionstream/core/event.hpp"
#include "sessionstream/core/lifecycle.hpp"
#include "sessionstream/core/mailbox.hpp"
#include "sessionstream/core/metrics.hpp"

namespace sessionstream {

struct HistoryLimits {
  std::size_t max_events = 1024;               // per channel
  std::chrono::milliseconds max_age{300'000};  // per channel
};

// Who assigns event ids. local: the hub numbers every publish itself (one
// process). external: a shared bus (Redis Streams) numbers events for every
// node, publish_sequenced() brings them in with those ids, and publish()
// delivers transient events (no id, no history): ids must mean the same on
// every node, and only the bus can promise that.
enum class Sequencing { local, external };

// "local" or "external"; anything else raises InvalidArgument.
[[nodiscard]] Sequencing parse_sequencing(std::string_view text);

struct HubConfig {
  HistoryLimits history;
  Sequencing sequencing = Sequencing::local;
  std::size_t max_event_bytes = 1 << 20;
  std::size_t max_channel_name = 256;
  // Bounds the hub state one connection can claim; subscribe refuses more.
  std::size_t max_channels_per_connection = 256;
  // 0 picks a fresh epoch from the clock and a random source, so ids from an
  // earlier process are recognised as foreign after a restart.
  std::uint64_t epoch = 0;
};

// What a resume found, reported to the mailbox as control frames too.
enum class ResumeOutcome {
  live,   // no last event id given
  exact,  // every missed event replayed
  gap,    // some missed events were no longer held; a gap frame says so
  reset,  // the id was malformed, from another epoch or from the future
};

// Produces events a hub no longer holds in its history ring, for example by
// seeking a Kafka partition. Called by Hub::subscribe without any hub lock
// held, on the subscribing thread; may block for a bounded time.
// Implementations must be thread-safe.
class ReplaySource {
 public:
  virtual ~ReplaySource() = default;
  // The events of channel with after_seq < seq <= through_seq, in seq order,
  // carrying the ids they had when first published; nullopt when this source
  // cannot produce all of them (the hub then reports a gap).
  virtual std::optional<std::vector<EventPtr>> replay(std::string_view channel,
                                                      std::uint64_t after_seq,
                                                      std::uint64_t through_seq) = 0;
  // A client resumes from an id of this epoch that the hub has not reached
  // yet (it saw the event on another node first). Waits, bounded, until the
  // source has published through seq; true when it has. Sources that do not
  // sequence the hub leave it false.
  virtual bool catch_up(std::uint64_t /*epoch*/, std::uint64_t /*seq*/) { return false; }
};

// Publish/subscribe core. Channels hold their mailbox set and a history
// ring. One hub mutex orders every publish: a mailbox on several channels
// sees events in id order, so a single Last-Event-ID resumes all of them
// exactly. Fan-out pushes shared pointers only; no payload bytes are copied per
// receiver. Thread-safe; never calls back into user code.
class Hub {
 public:
  // Without a lifecycle queue the hub makes its own; the connection manager
  // reports into the hub's queue unless given another.
  explicit Hub(HubConfig config = {}, std::shared_ptr<LifecycleQueue> lifecycle = nullptr);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_.load(); }
  [[nodiscard]] Sequencing sequencing() const noexcept { return config_.sequencing; }
  [[nodiscard]] const HubConfig& config() const noexcept { return config_; }

  // Arguments in the order of Python's publish(channel, data, event): the event
  // type ("message" when empty) follows the data it labels.
  // Throws InvalidArgument (bad channel name or event type, or data_is_json and
  // data not one JSON value: frames embed it raw), InvalidUtf8 (event type or
  // data not valid UTF-8: every frame must be), PayloadTooLarge, Closed.
  // With external sequencing the event is transient: delivered live to the
  // subscribers here, without an id and without history.
  EventPtr publish(std::string_view channel, std::string data, std::string type, bool data_is_json);

  // External sequencing: publishes an event under the id the bus gave it.
  // Returns nullptr, publishing nothing, when id is not of the current epoch
  // or not above the head (a re-read). Throws as publish() for bad input and
  // InvalidArgument when the hub sequences locally.
  EventPtr publish_sequenced(std::string_view channel, std::string data, std::string type,
                             bool data_is_json, EventId id);
  // External sequencing: the bus lost events after_seq < seq <= through_seq
  // before this node read them (trimmed from the stream). Every mailbox
  // gets a gap frame, resumes from before through_seq get a gap, and the head
  // moves to through_seq.
  void mark_lost(std::uint64_t through_seq);
  // Switches to another id space (the bus's, or a new one after the bus lost
  // its data). History is dropped: its ids belong to the old epoch, so a
  // resume from one of them is reset, never misread.
  void adopt_epoch(std::uint64_t epoch, std::uint64_t head_seq);
  // The checks publish() applies, for a bus that validates before sending.
  void validate_event(std::string_view channel, std::string_view data, std::string_view type,
                      bool data_is_json = false) const;

  // Creates a mailbox with a fresh id. Not yet attached to any channel.
  [[nodiscard]] MailboxPtr make_mailbox(MailboxOptions options, std::shared_ptr<Notifier> notifier);

  // Attaches the mailbox to channels and, when last_event_id is given,
  // first queues exactly the events it missed (or a gap/reset frame), atomically
  // with respect to publishes: nothing is missed or duplicated in between.
  // Throws InvalidArgument, changing nothing, when the mailbox would end up
  // on more than max_channels_per_connection channels.
  ResumeOutcome subscribe(const MailboxPtr& mailbox, const std::vector<std::string>& channels,
                          std::optional<std::string_view> last_event_id = std::nullopt);
  void unsubscribe(const MailboxPtr& mailbox, std::string_view channel);

  // Sources asked, in the order added, to fill a resume's gap before the hub
  // reports it. A source stays alive for a replay in progress after removal.
  void add_replay_source(std::shared_ptr<ReplaySource> source);
  void remove_replay_source(const ReplaySource* source);
  // Detaches from every channel; idempotent.
  void detach(const MailboxPtr& mailbox);

  [[nodiscard]] std::size_t subscriber_count(std::string_view channel) const;
  [[nodiscard]] std::size_t channel_count() const;
  [[nodiscard]] std::vector<std::string> channels_of(const Mailbox& mailbox) const;
  [[nodiscard]] std::string head_id() const;

  // Drops channels with no subscribers whose history has aged out, and
  // history entries older than the age bound. Returns channels removed.
  std::size_t sweep();

  // Closes every mailbox with reason shutdown; later publishes throw Closed.
  void close();
  [[nodiscard]] bool is_closed() const;

  [[nodiscard]] const std::shared_ptr<LifecycleQueue>& lifecycle() const noexcept {
    return lifecycle_;
  }
  [[nodiscard]] Metrics& metrics() noexcept { return metrics_; }
  [[nodiscard]] const Metrics& metrics() const noexcept { return metrics_; }

  static void validate_channel_name(std::string_view channel, std::size_t max_length);

 private:
  struct Channel {
    std::vector<MailboxPtr> subscribers;
    std::deque<EventPtr> history;
    std::uint64_t evicted_through = 0;  // highest seq dropped from history
  };
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const noexcept {
      return std::hash<std::string_view>{}(name);
    }
  };
  struct Attachment {
    MailboxPtr mailbox;
    std::vector<std::string> channels;  // subscription order, for channels_of()
    // Membership tests run under the hub lock: O(1), not a scan of channels.
    std::unordered_set<std::string, NameHash, std::equal_to<>> channel_set;
  };

  void trim_history(Channel& channel, std::chrono::system_clock::time_point now);
  void attach_locked(const MailboxPtr& mailbox, const std::string& name);
  void detach_locked(const MailboxPtr& mailbox, std::string_view name);
  void detach_locked_all(const MailboxPtr& mailbox);
  // Events a replay source produced for one channel, covering seqs up to through.
  struct Supplement {
    std::uint64_t through = 0;
    std::vector<EventPtr> events;
  };
  using Supplements = std::unordered_map<std::string, Supplement, NameHash, std::equal_to<>>;

  Supplements fetch_supplements(const std::vector<std::string>& channels, std::string_view last);
  ResumeOutcome replay_locked(const MailboxPtr& mailbox, const std::vector<std::string>& channels,
                              std::string_view last, const Supplements& supplements);

  EventPtr fan_out_locked(EventPtr event, std::vector<MailboxPtr>& overflowed);
  void report_overflow(const std::vector<MailboxPtr>& overflowed);

  HubConfig config_;
  std::atomic<std::uint64_t> epoch_;  // written under mutex_, read anywhere
  std::shared_ptr<LifecycleQueue> lifecycle_;
  Metrics metrics_;
  std::atomic<std::uint64_t> next_mailbox_id_{1};

  mutable std::mutex mutex_;
  bool closed_ = false;
  std::uint64_t seq_ = 0;
  std::uint64_t swept_through_ = 0;  // highest evicted seq of channels removed by sweep()
  std::unordered_map<std::string, Channel, NameHash, std::equal_to<>> channels_;
  std::unordered_map<std::uint64_t, Attachment> attached_;

  mutable std::mutex replay_sources_mutex_;  // leaf lock, never held while calling a source
  std::vector<std::shared_ptr<ReplaySource>> replay_sources_;
};

}  // namespace sessionstream
