#include "sources/redis/connection.hpp"

#include <hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <random>
#include <string>

#include "sessionstream/common/errors.hpp"

namespace sessionstream::redis {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  const auto count = std::max<std::int64_t>(ms.count(), 1);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(count / 1000);
  tv.tv_usec = static_cast<suseconds_t>((count % 1000) * 1000);
  return tv;
}

std::string address(const Endpoint& endpoint) {
  const bool ipv6 = endpoint.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + endpoint.host + "]" : endpoint.host) + ":" + std::to_string(endpoint.port);
}

// hiredis writes with write(2): a peer that closed its end would raise SIGPIPE
// and end the process. The signal is blocked for the calling thread while
// hiredis writes, and one raised meanwhile is consumed, so the write fails with
// EPIPE instead; the host's own SIGPIPE handling is left as it was.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    // Already pending for someone else: leave it alone rather than eat it.
    if (sigismember(&pending, SIGPIPE) == 1) return;
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &previous_) == 0;
  }
  ~SigpipeGuard() {
    if (!blocked_) return;
    const int saved_errno = errno;
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    errno = saved_errno;
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_{};
  sigset_t previous_{};
  bool blocked_ = false;
};

struct Argv {
  explicit Argv(const std::vector<std::string_view>& args) {
    pointers.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& arg : args) {
      // An empty view may have no data pointer; hiredis copies from it anyway.
      pointers.push_back(arg.empty() ? "" : arg.data());
      lengths.push_back(arg.size());
    }
  }
  std::vector<const char*> pointers;
  std::vector<std::size_t> lengths;
};

std::string reply_error(const redisReply& reply) {
  return std::string{reply.str, reply.len};
}

}  // namespace

void ReplyFree::operator()(redisReply* reply) const noexcept {
  freeReplyObject(reply);
}

void Connection::ContextFree::operator()(redisContext* context) const noexcept {
  redisFree(context);
}

Connection::Connection(const Endpoint& endpoint, std::chrono::milliseconds connect_timeout,
                       std::chrono::milliseconds io_timeout)
    : endpoint_(endpoint), io_timeout_(io_timeout) {
  context_.reset(
      redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, to_timeval(connect_timeout)));
  if (!context_) {
    broken_ = true;
    throw Unavailable("cannot connect to Redis at " + address(endpoint_) +
                      ": out of memory allocating the connection");
  }
  if (context_->err != 0) {
    broken_ = true;
    throw Unavailable("cannot connect to Redis at " + address(endpoint_) + ": " + context_->errstr);
  }
  if (redisSetTimeout(context_.get(), to_timeval(io_timeout_)) != REDIS_OK) {
    fail("cannot set the socket timeout");
  }
  if (!endpoint_.password.empty()) {
    const Reply reply = endpoint_.username.empty()
                            ? command({"AUTH", endpoint_.password})
                            : command({"AUTH", endpoint_.username, endpoint_.password});
    if (reply->type == REDIS_REPLY_ERROR) {
      broken_ = true;
      // Redis's own message (WRONGPASS ..., ERR AUTH ...) never quotes the password.
      throw Unavailable(
          "Redis at " + address(endpoint_) + " refused AUTH" +
          (endpoint_.username.empty() ? std::string{} : " for user '" + endpoint_.username + "'") +
          ": " + reply_error(*reply));
    }
  }
  if (endpoint_.database != 0) {
    const std::string db = std::to_string(endpoint_.database);
    const Reply reply = command({"SELECT", db});
    if (reply->type == REDIS_REPLY_ERROR) {
      broken_ = true;
      throw Unavailable("Redis at " + address(endpoint_) + " refused SELECT " + db + ": " +
                        reply_error(*reply));
    }
  }
}

Connection::~Connection() = default;

void Connection::fail(std::string_view what) {
  broken_ = true;
  std::string message = "Redis at " + address(endpoint_) + ": " + std::string{what};
  if (context_ && context_->err != 0) {
    message += ": ";
    message += context_->errstr;
  }
  throw Unavailable(message);
}

Reply Connection::command(const std::vector<std::string_view>& args) {
  if (broken_) fail("the connection is broken");
  Argv argv(args);
  void* raw = nullptr;
  {
    const SigpipeGuard guard;
    raw = redisCommandArgv(context_.get(), static_cast<int>(args.size()), argv.pointers.data(),
                           argv.lengths.data());
  }
  if (raw == nullptr) fail("command failed");
  return Reply{static_cast<redisReply*>(raw)};
}

void Connection::append(const std::vector<std::string_view>& args) {
  if (broken_) fail("the connection is broken");
  Argv argv(args);
  if (redisAppendCommandArgv(context_.get(), static_cast<int>(args.size()), argv.pointers.data(),
                             argv.lengths.data()) != REDIS_OK) {
    fail("cannot queue a pipelined command");
  }
}

Reply Connection::read_reply() {
  if (broken_) fail("the connection is broken");
  void* raw = nullptr;
  int status = REDIS_OK;
  {
    // Flushes what append() queued, then reads.
    const SigpipeGuard guard;
    status = redisGetReply(context_.get(), &raw);
  }
  if (status != REDIS_OK || raw == nullptr) fail("reading a reply failed");
  return Reply{static_cast<redisReply*>(raw)};
}

std::optional<Reply> Connection::poll_reply(std::chrono::milliseconds timeout) {
  if (broken_) fail("the connection is broken");
  redisContext* c = context_.get();
  void* raw = nullptr;
  // A reply already parsed from an earlier read comes first.
  if (redisGetReplyFromReader(c, &raw) != REDIS_OK) fail("protocol error");
  if (raw != nullptr) return Reply{static_cast<redisReply*>(raw)};
  {
    int done = 0;
    const SigpipeGuard guard;
    while (done == 0) {
      if (redisBufferWrite(c, &done) != REDIS_OK) fail("writing a command failed");
    }
  }
  // hiredis 0.14 marks a context failed for good when a blocking read times
  // out, so readiness is waited for here and hiredis only reads what is there.
  pollfd pfd{c->fd, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, static_cast<int>(std::max<std::int64_t>(timeout.count(), 0)));
  if (ready < 0) {
    if (errno == EINTR) return std::nullopt;
    fail("poll failed: " + std::string{std::strerror(errno)});
  }
  if (ready == 0) return std::nullopt;
  if (redisBufferRead(c) != REDIS_OK) fail("reading failed");
  if (redisGetReplyFromReader(c, &raw) != REDIS_OK) fail("protocol error");
  if (raw == nullptr) return std::nullopt;  // part of a reply; the rest comes with the next read
  return Reply{static_cast<redisReply*>(raw)};
}

bool Connection::alive() const noexcept {
  if (broken_ || !context_) return false;
  pollfd pfd{context_->fd, POLLIN, 0};
  // Readable with nothing asked means EOF, a reset or stray data: not usable.
  return ::poll(&pfd, 1, 0) == 0;
}

Backoff::Backoff(std::chrono::milliseconds first, std::chrono::milliseconds cap)
    : first_(first), cap_(std::max(cap, first)), current_(first) {}

std::chrono::milliseconds Backoff::next() {
  // ±20% so that nodes cut off together do not reconnect in lockstep.
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  const auto base = current_;
  current_ = std::min(current_ * 2, cap_);
  return std::chrono::milliseconds{
      static_cast<std::int64_t>(static_cast<double>(base.count()) * jitter(rng))};
}

void Backoff::reset() noexcept {
  current_ = first_;
}

}  // namespace sessionstream::redis
