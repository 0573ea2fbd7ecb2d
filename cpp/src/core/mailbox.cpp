#include "sessionstream/core/mailbox.hpp"

#include <algorithm>
#include <string>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/utf8.hpp"
#include "sessionstream/core/event.hpp"

namespace sessionstream {

OverflowPolicy parse_overflow_policy(std::string_view text) {
  if (text == "disconnect") return OverflowPolicy::disconnect;
  if (text == "drop_oldest") return OverflowPolicy::drop_oldest;
  throw InvalidArgument("overflow policy '" + utf8_excerpt(text, 64) +
                        "' is invalid: use disconnect or drop_oldest");
}

Framing parse_framing(std::string_view text) {
  if (text == "sse") return Framing::sse;
  if (text == "websocket") return Framing::websocket;
  throw InvalidArgument("framing '" + utf8_excerpt(text, 64) +
                        "' is invalid: use sse or websocket");
}

Mailbox::Mailbox(std::uint64_t id, MailboxOptions options, std::shared_ptr<Notifier> notifier)
    : id_(id), options_(options), notifier_(std::move(notifier)) {}

void Mailbox::notify_locked() {
  if (ready_marked_ || !notifier_) return;
  ready_marked_ = true;
  notifier_->mark_ready(id_);
}

Mailbox::DeliverResult Mailbox::deliver(const EventPtr& event, bool bounded) {
  std::lock_guard lock(mutex_);
  if (closed_) return DeliverResult::already_closed;
  const std::size_t cost = event->cost_bytes();
  const auto& limits = options_.limits;
  // A lone event larger than the byte bound still fits a mailbox holding no
  // events; the hub's max_event_bytes bounds that case.
  const auto over = [&] {
    return queued_events_ > 0 && (queued_events_ + 1 > limits.max_events + replay_events_ ||
                                  pending_bytes_ + cost > limits.max_bytes + replay_bytes_);
  };
  DeliverResult result = DeliverResult::queued;
  if (bounded && over()) {
    if (options_.overflow == OverflowPolicy::disconnect) {
      closed_ = true;
      close_reason_ = close_reason::slow_consumer;
      mailbox_.clear();
      queued_events_ = 0;
      pending_bytes_ = 0;
      notify_locked();
      return DeliverResult::overflow_closed;
    }
    while (over()) drop_oldest_event_locked();
    result = DeliverResult::dropped_oldest;
  }
  mailbox_.push_back(event);
  if (!event->is_control()) ++queued_events_;
  pending_bytes_ += cost;
  if (!bounded) {
    // A resume replay may exceed the bounds it is about to be drained from;
    // the allowance shrinks as it drains, so live events are not the ones
    // that overflow because of it.
    ++replay_events_;
    replay_bytes_ += cost;
  }
  notify_locked();
  return result;
}

void Mailbox::drop_oldest_event_locked() {
  // Control frames stay: they are the receiver's only notice of a gap or reset.
  const auto oldest = std::find_if(mailbox_.begin(), mailbox_.end(),
                                   [](const EventPtr& event) { return !event->is_control(); });
  if (oldest == mailbox_.end()) return;
  pending_bytes_ -= (*oldest)->cost_bytes();
  --queued_events_;
  ++dropped_since_take_;
  mailbox_.erase(oldest);
}

void Mailbox::deliver_control(EventPtr frame) {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  mailbox_.push_back(std::move(frame));
  notify_locked();
}

void Mailbox::append_frame(std::string& out, const Event& event, bool first) const {
  if (options_.framing == Framing::sse) {
    out += event.sse_frame();
  } else {
    if (!first) out.push_back(',');
    out += event.ws_object();
  }
}

Mailbox::EventBatch Mailbox::take_pending(std::size_t max_bytes, std::uint64_t& dropped) {
  EventBatch batch;
  std::lock_guard lock(mutex_);
  dropped = dropped_since_take_;
  dropped_since_take_ = 0;
  std::size_t budget = 0;
  while (!mailbox_.empty() && (batch.events.empty() || budget < max_bytes)) {
    EventPtr& front = mailbox_.front();
    budget += front->data().size() + Event::kOverheadBytes;
    pending_bytes_ -= front->cost_bytes();
    if (!front->is_control()) {
      --queued_events_;
      if (replay_events_ > 0) {
        --replay_events_;
        // Live events queued before the replay drain first and may cost
        // less: no byte allowance may outlive the event allowance.
        replay_bytes_ =
            replay_events_ == 0 ? 0 : replay_bytes_ - std::min(replay_bytes_, front->cost_bytes());
      }
    }
    batch.events.push_back(std::move(front));
    mailbox_.pop_front();
  }
  // Only the newest id matters; control frames count when their id is a real
  // event id (position, gap or reset at the head), never a marker such as
  // the replaced close frame's.
  for (auto it = batch.events.rbegin(); it != batch.events.rend(); ++it) {
    const Event& event = **it;
    if (event.id_text().empty()) continue;
    if (event.is_control() && !EventId::parse(event.id_text())) continue;
    last_taken_id_ = event.id_text();
    break;
  }
  if (mailbox_.empty()) {
    ready_marked_ = false;
    if (closed_) {
      batch.closed = true;
      batch.close_reason = close_reason_;
    }
  } else if (notifier_) {
    // The token that led here is spent and ready_marked_ stays set, so no
    // delivery would mark it again: re-mark, or the rest waits forever.
    notifier_->mark_ready(id_);
  }
  return batch;
}

namespace {
EventPtr gap_event(std::uint64_t dropped) {
  return Event::control("gap",
                        "\"reason\":\"dropped_oldest\",\"missed\":" + std::to_string(dropped));
}
}  // namespace

Mailbox::EventBatch Mailbox::take_events(std::size_t max_bytes) {
  std::uint64_t dropped = 0;
  EventBatch batch = take_pending(max_bytes, dropped);
  if (dropped) batch.events.insert(batch.events.begin(), gap_event(dropped));
  return batch;
}

Mailbox::Batch Mailbox::take(std::size_t max_bytes) {
  std::uint64_t dropped = 0;
  EventBatch taken = take_pending(max_bytes, dropped);
  // Frames are copied into the send buffer outside the lock so the fan-out
  // never waits for a consumer's copy.
  const bool sse = options_.framing == Framing::sse;
  std::size_t size = 2;
  for (const auto& event : taken.events) {
    size += (sse ? event->sse_frame().size() : event->ws_object().size()) + 1;
  }
  Batch batch;
  batch.data.reserve(size + (dropped ? 96 : 0));
  if (!sse && (dropped || !taken.events.empty())) batch.data.push_back('[');
  bool first = true;
  if (dropped) {
    append_frame(batch.data, *gap_event(dropped), first);
    first = false;
  }
  for (const auto& event : taken.events) {
    append_frame(batch.data, *event, first);
    first = false;
  }
  if (!sse && !first) batch.data.push_back(']');
  batch.events = taken.events.size();
  batch.closed = taken.closed;
  batch.close_reason = std::move(taken.close_reason);
  return batch;
}

bool Mailbox::close(std::string_view reason) {
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  closed_ = true;
  close_reason_ = std::string{reason};
  if (reason == close_reason::slow_consumer) {
    mailbox_.clear();
    queued_events_ = 0;
    pending_bytes_ = 0;
  }
  notify_locked();
  return true;
}

bool Mailbox::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

std::string Mailbox::closed_reason() const {
  std::lock_guard lock(mutex_);
  return close_reason_;
}

std::size_t Mailbox::pending_events() const {
  std::lock_guard lock(mutex_);
  return mailbox_.size();
}

std::string Mailbox::last_taken_id() const {
  std::lock_guard lock(mutex_);
  return last_taken_id_;
}

void Mailbox::set_last_taken_id(std::string id) {
  std::lock_guard lock(mutex_);
  last_taken_id_ = std::move(id);
}

std::size_t Mailbox::pending_bytes() const {
  std::lock_guard lock(mutex_);
  return pending_bytes_;
}

}  // namespace sessionstream
