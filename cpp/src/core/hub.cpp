#include "sessionstream/core/hub.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_set>

#include "common/random.hpp"
#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/json_check.hpp"
#include "sessionstream/common/utf8.hpp"

namespace sessionstream {

Sequencing parse_sequencing(std::string_view text) {
  if (text == "local") return Sequencing::local;
  if (text == "external") return Sequencing::external;
  throw InvalidArgument("sequencing must be 'local' or 'external', got '" + utf8_excerpt(text, 64) +
                        "'");
}

namespace {

std::uint64_t fresh_epoch() {
  std::uint16_t salt = 0;
  detail::secure_random(&salt, sizeof salt);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  // Millisecond clock in the high bits orders restarts; the salt separates two
  // processes started in the same millisecond.
  return (static_cast<std::uint64_t>(ms) << 12) | (salt & 0xFFFU);
}

// WebSocket text frames and SSE streams are UTF-8, so everything a frame
// carries must be: a frame with invalid bytes would break every receiver.
void validate_utf8(std::string_view text, std::string_view field, std::string_view what,
                   std::string_view hint = {}) {
  const std::size_t offset = find_invalid_utf8(text);
  if (offset == kUtf8Valid) return;
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(text[offset]));
  throw InvalidUtf8(std::string{field}, offset,
                    std::string{what} + " is not valid UTF-8: the sequence at byte offset " +
                        std::to_string(offset) + " (" + byte + ") is invalid" + std::string{hint});
}

void validate_event_type(std::string_view type) {
  if (type.empty() || type.size() > 64 || std::any_of(type.begin(), type.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || c == 0x7F;
      })) {
    throw InvalidArgument("event type '" + utf8_excerpt(type, 80) +
                          "' is invalid: use 1-64 printable characters without spaces");
  }
  validate_utf8(type, "event", "event type");
}

TooManyChannels channel_limit_error(std::size_t cap, std::size_t have, std::size_t more) {
  return TooManyChannels(cap, "a connection may subscribe to at most " + std::to_string(cap) +
                                  " channels; it has " + std::to_string(have) + " and asked for " +
                                  std::to_string(more) + " more");
}

std::string json_escaped(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

}  // namespace

Hub::Hub(HubConfig config, std::shared_ptr<LifecycleQueue> lifecycle)
    : config_(config),
      epoch_(config.epoch),
      lifecycle_(lifecycle ? std::move(lifecycle) : std::make_shared<LifecycleQueue>()) {
  if (config_.history.max_events == 0) {
    // A zero ring would make every resume a gap; a ring of one is the minimum.
    throw InvalidArgument("history max_events must be at least 1, got 0");
  }
  if (config_.history.max_age.count() <= 0) {
    throw InvalidArgument("history max_age must be positive, got " +
                          std::to_string(config_.history.max_age.count()) + " ms");
  }
  if (config_.max_event_bytes == 0) {
    throw InvalidArgument("max_event_bytes must be at least 1, got 0");
  }
  if (config_.max_channels_per_connection == 0) {
    throw InvalidArgument("max_channels_per_connection must be at least 1, got 0");
  }
  if (config_.epoch == 0) config_.epoch = fresh_epoch();
  epoch_.store(config_.epoch);
}

Hub::~Hub() = default;

void Hub::validate_channel_name(std::string_view channel, std::size_t max_length) {
  const bool printable =
      std::all_of(channel.begin(), channel.end(), [](char c) { return c > 0x20 && c < 0x7F; });
  if (channel.empty() || channel.size() > max_length || !printable) {
    throw InvalidArgument("channel name '" + utf8_excerpt(channel, 80) + "' is invalid: use 1-" +
                          std::to_string(max_length) +
                          " printable ASCII characters without spaces");
  }
}

void Hub::validate_event(std::string_view channel, std::string_view data, std::string_view type,
                         bool data_is_json) const {
  validate_channel_name(channel, config_.max_channel_name);
  validate_event_type(type.empty() ? std::string_view{"message"} : type);
  if (data.size() > config_.max_event_bytes) {
    throw PayloadTooLarge("event data is " + std::to_string(data.size()) +
                          " bytes; the maximum is " + std::to_string(config_.max_event_bytes) +
                          " (max_event_bytes)");
  }
  validate_utf8(data, "data", "event data", "; publish text (encode binary data, e.g. as base64)");
  if (data_is_json) {
    // WebSocket frames embed JSON data raw: one bad payload would break the
    // whole batch it is sent in.
    if (const JsonError error = find_json_error(data)) {
      throw InvalidArgument(
          "event data is marked as JSON but is not valid JSON: " + std::string{error.what} +
          ", at byte offset " + std::to_string(error.offset));
    }
  }
}

EventPtr Hub::publish(std::string_view channel, std::string data, std::string type,
                      bool data_is_json) {
  if (type.empty()) type = "message";
  validate_event(channel, data, type, data_is_json);
  const auto now = std::chrono::system_clock::now();
  std::vector<MailboxPtr> overflowed;
  EventPtr event;
  {
    std::lock_guard lock(mutex_);
    if (closed_) throw Closed("hub is closed; publish is no longer accepted");
    if (config_.sequencing == Sequencing::external) {
      event =
          Event::transient(std::string{channel}, std::move(type), std::move(data), data_is_json);
      metrics_.add(metrics_.transient);
    } else {
      event = std::make_shared<const Event>(std::string{channel}, EventId{epoch_.load(), ++seq_},
                                            std::move(type), std::move(data), data_is_json, now);
    }
    fan_out_locked(event, overflowed);
  }
  report_overflow(overflowed);
  return event;
}

EventPtr Hub::publish_sequenced(std::string_view channel, std::string data, std::string type,
                                bool data_is_json, EventId id) {
  if (config_.sequencing != Sequencing::external) {
    throw InvalidArgument("publish_sequenced needs a hub with external sequencing");
  }
  if (type.empty()) type = "message";
  validate_event(channel, data, type, data_is_json);
  const auto now = std::chrono::system_clock::now();
  std::vector<MailboxPtr> overflowed;
  EventPtr event;
  {
    std::lock_guard lock(mutex_);
    if (closed_) throw Closed("hub is closed; publish is no longer accepted");
    if (id.epoch != epoch_.load() || id.seq <= seq_) return nullptr;
    seq_ = id.seq;
    event = std::make_shared<const Event>(std::string{channel}, id, std::move(type),
                                          std::move(data), data_is_json, now);
    fan_out_locked(event, overflowed);
  }
  report_overflow(overflowed);
  return event;
}

EventPtr Hub::fan_out_locked(EventPtr event, std::vector<MailboxPtr>& overflowed) {
  const bool kept = !event->id_text().empty();
  auto [it, inserted] = channels_.try_emplace(event->channel());
  // A channel swept earlier may come back: what it lost then is still lost.
  if (inserted) it->second.evicted_through = swept_through_;
  Channel& ch = it->second;
  if (kept) {
    ch.history.push_back(event);
    trim_history(ch, event->timestamp());
  }
  std::uint64_t delivered = 0;
  for (const auto& mailbox : ch.subscribers) {
    switch (mailbox->deliver(event)) {
      case Mailbox::DeliverResult::queued:
        ++delivered;
        break;
      case Mailbox::DeliverResult::dropped_oldest:
        ++delivered;
        metrics_.add(metrics_.dropped);
        break;
      case Mailbox::DeliverResult::overflow_closed:
        overflowed.push_back(mailbox);
        break;
      case Mailbox::DeliverResult::already_closed:
        break;
    }
  }
  for (const auto& mailbox : overflowed) detach_locked_all(mailbox);
  metrics_.add(metrics_.published);
  metrics_.add(metrics_.delivered, delivered);
  return event;
}

void Hub::report_overflow(const std::vector<MailboxPtr>& overflowed) {
  for (const auto& mailbox : overflowed) {
    metrics_.add(metrics_.slow_consumer_disconnects);
    lifecycle_->push({LifecycleKind::slow_consumer,
                      mailbox->id(),
                      {},
                      0,
                      std::string{close_reason::slow_consumer}});
  }
}

void Hub::mark_lost(std::uint64_t through_seq) {
  std::lock_guard lock(mutex_);
  if (closed_ || through_seq <= seq_) return;
  seq_ = through_seq;
  swept_through_ = std::max(swept_through_, through_seq);
  for (auto& [name, channel] : channels_) {
    channel.evicted_through = std::max(channel.evicted_through, through_seq);
  }
  const std::string head = EventId{epoch_.load(), seq_}.to_string();
  // Live subscribers missed events they would have been sent: tell them, with
  // the head id, so their next resume starts after the hole, not inside it.
  const auto gap = Event::control(
      "gap", "\"reason\":\"bus_lost\",\"channels\":[],\"head\":\"" + head + "\"", head);
  for (auto& [id, attachment] : attached_) attachment.mailbox->deliver_control(gap);
  metrics_.add(metrics_.lost_gaps);
}

void Hub::adopt_epoch(std::uint64_t epoch, std::uint64_t head_seq) {
  std::lock_guard lock(mutex_);
  if (epoch == epoch_.load() && head_seq <= seq_) return;
  epoch_.store(epoch);
  seq_ = head_seq;
  swept_through_ = head_seq;
  for (auto& [name, channel] : channels_) {
    channel.history.clear();
    channel.evicted_through = head_seq;
  }
}

void Hub::trim_history(Channel& channel, std::chrono::system_clock::time_point now) {
  const auto oldest_allowed = now - config_.history.max_age;
  while (!channel.history.empty() && (channel.history.size() > config_.history.max_events ||
                                      channel.history.front()->timestamp() < oldest_allowed)) {
    channel.evicted_through = channel.history.front()->id().seq;
    channel.history.pop_front();
  }
}

MailboxPtr Hub::make_mailbox(MailboxOptions options, std::shared_ptr<Notifier> notifier) {
  if (options.limits.max_events == 0 || options.limits.max_bytes == 0) {
    throw InvalidArgument("mailbox bounds must be positive, got max_events=" +
                          std::to_string(options.limits.max_events) +
                          " max_bytes=" + std::to_string(options.limits.max_bytes));
  }
  return std::make_shared<Mailbox>(next_mailbox_id_.fetch_add(1), options, std::move(notifier));
}

ResumeOutcome Hub::subscribe(const MailboxPtr& mailbox, const std::vector<std::string>& channels,
                             std::optional<std::string_view> last_event_id) {
  for (const auto& name : channels) validate_channel_name(name, config_.max_channel_name);
  // Distinct names, counted before the lock so an oversized request never takes
  // it; the total is checked under the lock before anything changes, so a
  // refused subscribe leaves the mailbox as it was.
  const std::unordered_set<std::string_view> requested(channels.begin(), channels.end());
  const std::size_t cap = config_.max_channels_per_connection;
  if (requested.size() > cap) throw channel_limit_error(cap, 0, requested.size());
  ResumeOutcome outcome = ResumeOutcome::live;
  // Replay sources may block, so they run before the hub lock is taken; what
  // they produce is merged with the ring under the lock.
  const Supplements supplements =
      last_event_id ? fetch_supplements(channels, *last_event_id) : Supplements{};
  {
    std::lock_guard lock(mutex_);
    if (closed_) throw Closed("hub is closed; subscribe is no longer accepted");
    if (const auto it = attached_.find(mailbox->id()); it != attached_.end()) {
      const auto& current = it->second.channel_set;
      const auto more = static_cast<std::size_t>(
          std::count_if(requested.begin(), requested.end(),
                        [&](std::string_view name) { return !current.contains(name); }));
      if (current.size() + more > cap) throw channel_limit_error(cap, current.size(), more);
    }
    if (last_event_id) {
      outcome = replay_locked(mailbox, channels, *last_event_id, supplements);
    } else if (mailbox->options().framing == Framing::sse &&
               attached_.find(mailbox->id()) == attached_.end()) {
      // An SSE client learns its position at once (an id-only frame sets
      // EventSource's lastEventId without dispatching), so a drop before its
      // first event still resumes instead of silently skipping.
      mailbox->deliver_control(Event::position(EventId{epoch_.load(), seq_}.to_string()));
    }
    for (const auto& name : channels) attach_locked(mailbox, name);
  }
  switch (outcome) {
    case ResumeOutcome::exact:
      metrics_.add(metrics_.resumes_exact);
      break;
    case ResumeOutcome::gap:
      metrics_.add(metrics_.resumes_gap);
      break;
    case ResumeOutcome::reset:
      metrics_.add(metrics_.resumes_reset);
      break;
    case ResumeOutcome::live:
      break;
  }
  return outcome;
}

void Hub::add_replay_source(std::shared_ptr<ReplaySource> source) {
  if (!source) throw InvalidArgument("replay source must not be null");
  std::lock_guard lock(replay_sources_mutex_);
  replay_sources_.push_back(std::move(source));
}

void Hub::remove_replay_source(const ReplaySource* source) {
  std::lock_guard lock(replay_sources_mutex_);
  std::erase_if(replay_sources_, [source](const auto& s) { return s.get() == source; });
}

Hub::Supplements Hub::fetch_supplements(const std::vector<std::string>& channels,
                                        std::string_view last) {
  std::vector<std::shared_ptr<ReplaySource>> sources;
  {
    std::lock_guard lock(replay_sources_mutex_);
    sources = replay_sources_;
  }
  Supplements supplements;
  if (sources.empty()) return supplements;
  const auto id = EventId::parse(last);
  if (!id || id->epoch != epoch_.load()) return supplements;
  const auto ahead = [&] {
    std::lock_guard lock(mutex_);
    return id->seq > seq_;
  };
  if (ahead()) {
    // The client saw this id on another node before the bus brought it here.
    bool caught_up = false;
    for (const auto& source : sources) {
      if (source->catch_up(id->epoch, id->seq)) {
        caught_up = true;
        break;
      }
    }
    if (!caught_up) return supplements;
  }
  // Channels whose history no longer reaches back to the client's id.
  std::vector<std::pair<std::string, std::uint64_t>> gapped;
  {
    std::lock_guard lock(mutex_);
    if (id->seq > seq_) return supplements;
    for (const auto& name : channels) {
      const auto it = channels_.find(name);
      const std::uint64_t evicted =
          it == channels_.end() ? swept_through_ : it->second.evicted_through;
      if (evicted > id->seq) gapped.emplace_back(name, evicted);
    }
  }
  for (const auto& [name, through] : gapped) {
    for (const auto& source : sources) {
      auto events = source->replay(name, id->seq, through);
      if (!events) continue;
      supplements.insert_or_assign(name, Supplement{through, std::move(*events)});
      break;
    }
  }
  return supplements;
}

ResumeOutcome Hub::replay_locked(const MailboxPtr& mailbox,
                                 const std::vector<std::string>& channels, std::string_view last,
                                 const Supplements& supplements) {
  const std::string head = EventId{epoch_.load(), seq_}.to_string();
  const auto reset = [&](std::string_view reason) {
    // The reset carries the head id so the client's next Last-Event-ID is
    // current: subscription starts live from exactly this point.
    mailbox->deliver_control(
        Event::control("reset",
                       "\"reason\":\"" + std::string{reason} + "\",\"last_event_id\":" +
                           json_escaped(utf8_excerpt(last, 64)) + ",\"head\":\"" + head + "\"",
                       head));
    return ResumeOutcome::reset;
  };
  const auto id = EventId::parse(last);
  if (!id) return reset("malformed_id");
  if (id->epoch != epoch_.load()) return reset("unknown_epoch");
  if (id->seq > seq_) return reset("future_id");

  std::vector<EventPtr> missed;
  std::vector<std::string> gapped;
  const auto attached = attached_.find(mailbox->id());
  for (const auto& name : channels) {
    // Already attached: its events since then were delivered live, and
    // replaying them would duplicate.
    if (attached != attached_.end() && attached->second.channel_set.contains(name)) continue;
    const auto it = channels_.find(name);
    const std::uint64_t evicted =
        it == channels_.end() ? swept_through_ : it->second.evicted_through;
    if (evicted > id->seq) {
      // A replay source fills the gap when it covers everything evicted so far
      // (more may have been evicted while it ran).
      const auto supplement = supplements.find(name);
      if (supplement != supplements.end() && supplement->second.through >= evicted) {
        for (const auto& event : supplement->second.events) {
          if (event->id().seq > id->seq && event->id().seq <= supplement->second.through) {
            missed.push_back(event);
          }
        }
      } else {
        gapped.push_back(name);
      }
    }
    if (it == channels_.end()) continue;
    const Channel& ch = it->second;
    const auto first = std::upper_bound(
        ch.history.begin(), ch.history.end(), id->seq,
        [](std::uint64_t seq, const EventPtr& event) { return seq < event->id().seq; });
    missed.insert(missed.end(), first, ch.history.end());
  }
  std::sort(missed.begin(), missed.end(),
            [](const EventPtr& a, const EventPtr& b) { return a->id().seq < b->id().seq; });
  // Replayed copies and ring entries of one event share its seq: keep one.
  missed.erase(
      std::unique(missed.begin(), missed.end(),
                  [](const EventPtr& a, const EventPtr& b) { return a->id().seq == b->id().seq; }),
      missed.end());
  if (!gapped.empty()) {
    std::string list;
    for (const auto& name : gapped) {
      if (!list.empty()) list.push_back(',');
      append_json_string(list, name);
    }
    // The gap takes the head id only when nothing is replayed after it: with
    // replayed events, a client cut off right after the gap must still
    // resume from before them.
    mailbox->deliver_control(Event::control(
        "gap",
        "\"reason\":\"history_evicted\",\"channels\":[" + list + "],\"head\":\"" + head + "\"",
        missed.empty() ? head : std::string{}));
  }
  for (const auto& event : missed) mailbox->deliver(event, /*bounded=*/false);
  return gapped.empty() ? ResumeOutcome::exact : ResumeOutcome::gap;
}

void Hub::attach_locked(const MailboxPtr& mailbox, const std::string& name) {
  auto& attachment = attached_[mailbox->id()];
  if (!attachment.mailbox) attachment.mailbox = mailbox;
  if (!attachment.channel_set.insert(name).second) return;
  attachment.channels.push_back(name);
  auto [it, inserted] = channels_.try_emplace(name);
  if (inserted) it->second.evicted_through = swept_through_;  // see publish()
  it->second.subscribers.push_back(mailbox);
}

void Hub::detach_locked(const MailboxPtr& mailbox, std::string_view name) {
  const auto it = channels_.find(name);
  if (it == channels_.end()) return;
  auto& subscribers = it->second.subscribers;
  const auto found = std::find(subscribers.begin(), subscribers.end(), mailbox);
  if (found != subscribers.end()) {
    // Order among subscribers carries no meaning; swap-remove is O(1) after the find.
    *found = std::move(subscribers.back());
    subscribers.pop_back();
  }
}

void Hub::detach_locked_all(const MailboxPtr& mailbox) {
  const auto it = attached_.find(mailbox->id());
  if (it == attached_.end()) return;
  for (const auto& name : it->second.channels) detach_locked(mailbox, name);
  attached_.erase(it);
}

void Hub::unsubscribe(const MailboxPtr& mailbox, std::string_view channel) {
  std::lock_guard lock(mutex_);
  const auto it = attached_.find(mailbox->id());
  if (it == attached_.end()) return;
  auto& attachment = it->second;
  const auto member = attachment.channel_set.find(channel);
  if (member == attachment.channel_set.end()) return;
  attachment.channel_set.erase(member);
  // Linear, but bounded by max_channels_per_connection and off the publish path.
  std::erase(attachment.channels, channel);
  detach_locked(mailbox, channel);
}

void Hub::detach(const MailboxPtr& mailbox) {
  std::lock_guard lock(mutex_);
  detach_locked_all(mailbox);
}

std::size_t Hub::subscriber_count(std::string_view channel) const {
  std::lock_guard lock(mutex_);
  const auto it = channels_.find(channel);
  return it == channels_.end() ? 0 : it->second.subscribers.size();
}

std::size_t Hub::channel_count() const {
  std::lock_guard lock(mutex_);
  return channels_.size();
}

std::vector<std::string> Hub::channels_of(const Mailbox& mailbox) const {
  std::lock_guard lock(mutex_);
  const auto it = attached_.find(mailbox.id());
  return it == attached_.end() ? std::vector<std::string>{} : it->second.channels;
}

std::string Hub::head_id() const {
  std::lock_guard lock(mutex_);
  return EventId{epoch_.load(), seq_}.to_string();
}

std::size_t Hub::sweep() {
  const auto now = std::chrono::system_clock::now();
  std::lock_guard lock(mutex_);
  std::size_t removed = 0;
  for (auto it = channels_.begin(); it != channels_.end();) {
    trim_history(it->second, now);
    if (it->second.subscribers.empty() && it->second.history.empty()) {
      // Remember how far evicted history reached so a later resume on this
      // channel still reports its gap instead of a silent hole.
      swept_through_ = std::max(swept_through_, it->second.evicted_through);
      it = channels_.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  return removed;
}

void Hub::close() {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  closed_ = true;
  for (auto& [id, attachment] : attached_) attachment.mailbox->close(close_reason::shutdown);
  attached_.clear();
  for (auto& [name, channel] : channels_) channel.subscribers.clear();
}

bool Hub::is_closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

}  // namespace sessionstream
