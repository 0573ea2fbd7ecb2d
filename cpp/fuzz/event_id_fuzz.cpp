// EventId::parse reads Last-Event-ID headers and ?last_event_id= straight
// from clients: it must accept exactly the canonical text form.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sessionstream/core/event.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  const auto id = sessionstream::EventId::parse(text);
  if (!id) return 0;
  // Anything accepted prints back to an id that parses to the same value.
  const std::string canonical = id->to_string();
  const auto again = sessionstream::EventId::parse(canonical);
  if (!again || !(*again == *id)) std::abort();
  // Leading zeros and hex case are the only freedom the input has.
  if (canonical.size() > text.size()) std::abort();
  return 0;
}
