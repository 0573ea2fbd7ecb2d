// Kafka routing templates come from configuration, records from any
// producer: parse a template, route a record with a key, one header and a
// payload, and check what comes out against the hub's own rules.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

#include "sessionstream/common/errors.hpp"
#include "sessionstream/common/json_check.hpp"
#include "sessionstream/sources/kafka/router.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  using namespace sessionstream;
  using namespace sessionstream::kafka;
  FuzzedDataProvider input(bytes, size);
  const auto format = static_cast<PayloadFormat>(input.ConsumeIntegralInRange<int>(0, 2));
  const std::string channel_template = input.ConsumeRandomLengthString(64);
  const std::string type_template = input.ConsumeRandomLengthString(32);
  const std::string key = input.ConsumeRandomLengthString(32);
  const std::string header_name = input.ConsumeRandomLengthString(16);
  const std::string header_value = input.ConsumeRandomLengthString(32);
  const std::string path = input.ConsumeRandomLengthString(32);
  const std::string value = input.ConsumeRemainingBytesAsString();

  // The JSON helpers: validity implies the core checker's, and a scalar is
  // only ever found in a valid document.
  const bool valid = json::valid(value);
  if (valid && !is_valid_json(value)) std::abort();
  if (valid) {
    std::vector<std::string> keys;
    std::size_t start = 0;
    while (true) {
      const auto dot = path.find('.', start);
      keys.push_back(path.substr(start, dot == std::string::npos ? dot : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    (void)json::scalar_at(value, keys);
  }

  std::optional<Router> router;
  try {
    router.emplace(channel_template, type_template, format, std::vector<std::string>{"session"});
  } catch (const InvalidArgument&) {
    return 0;
  }
  RecordView record;
  record.topic = "orders";
  record.partition = 3;
  record.offset = 42;
  if (!key.empty()) record.key = key;
  record.headers.push_back({header_name, header_value});
  record.value = value;
  const auto routed = router->route(record, {{"session", "abcdefgh"}});
  if (const auto* ok = std::get_if<RoutedRecord>(&routed)) {
    if (ok->json && !is_valid_json(value)) std::abort();
    if (ok->json && format == PayloadFormat::text) std::abort();
  } else if (std::get<Skip>(routed).kind == SkipKind::bad_json && valid &&
             format != PayloadFormat::text) {
    std::abort();
  }
  return 0;
}
