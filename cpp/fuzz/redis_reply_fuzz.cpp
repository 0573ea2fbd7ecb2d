// Bytes from Redis: hiredis's RESP reader (what the source and the stream
// bus read replies with), then the source's channel mapping and payload
// check on every string in the replies.
#include <hiredis.h>
#include <read.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/json_check.hpp"
#include "sessionstream/sources/redis/source.hpp"

namespace {

struct ReaderFree {
  void operator()(redisReader* reader) const { redisReaderFree(reader); }
};
struct ReplyFree {
  void operator()(void* reply) const { freeReplyObject(reply); }
};

void visit(const redisReply& reply, const sessionstream::redis::ChannelTemplate& mapping,
           int depth) {
  if (depth > 16) return;
  if (reply.str != nullptr) {
    const std::string_view text{reply.str, reply.len};
    (void)mapping.render(text);
    if (sessionstream::redis::is_json(text) != sessionstream::is_valid_json(text, 128)) {
      std::abort();
    }
  }
  if (reply.type == REDIS_REPLY_ARRAY) {
    for (std::size_t i = 0; i < reply.elements; ++i) {
      if (reply.element[i] == nullptr) std::abort();
      visit(*reply.element[i], mapping, depth + 1);
    }
  }
}

// hiredis 0.14 callocs an array's element table from its declared count
// before any element arrives, so "*880888080\r\n" asks for gigabytes. That is
// the library trusting its server, not a parser bug of ours; such inputs are
// left out so the fuzzer keeps looking at the rest.
bool declares_huge_array(std::string_view wire) {
  for (std::size_t at = wire.find('*'); at != std::string_view::npos; at = wire.find('*', at + 1)) {
    std::uint64_t count = 0;
    for (std::size_t i = at + 1; i < wire.size() && wire[i] >= '0' && wire[i] <= '9'; ++i) {
      count = count * 10 + static_cast<std::uint64_t>(wire[i] - '0');
      if (count > 65536) return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sessionstream;
  if (size == 0) return 0;
  // The first line is a channel template, the rest Redis's bytes.
  const std::string_view all{reinterpret_cast<const char*>(data), size};
  const auto newline = all.find('\n');
  const std::string_view templ = all.substr(0, newline == std::string_view::npos ? 0 : newline);
  const std::string_view wire = newline == std::string_view::npos ? all : all.substr(newline + 1);
  if (declares_huge_array(wire)) return 0;
  std::optional<redis::ChannelTemplate> mapping;
  try {
    mapping.emplace(templ);
  } catch (const InvalidArgument&) {
    mapping.emplace("{channel}");
  }
  const std::unique_ptr<redisReader, ReaderFree> reader{redisReaderCreate()};
  if (!reader) return 0;
  if (redisReaderFeed(reader.get(), wire.data(), wire.size()) != REDIS_OK) return 0;
  for (int i = 0; i < 64; ++i) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK || raw == nullptr) break;
    const std::unique_ptr<void, ReplyFree> reply{raw};
    visit(*static_cast<const redisReply*>(raw), *mapping, 0);
  }
  return 0;
}
