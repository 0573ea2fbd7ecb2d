#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cctype>

#include "sessionstream/common/utf8.hpp"
#include "sessionstream/sources/kafka/config.hpp"

namespace sessionstream::kafka {

Properties consumer_defaults() {
  Properties out = {
      // Seed 000's consumer settings. librdkafka names the consumer's request
      // timeout socket.timeout.ms; its request.timeout.ms is producer-only.
      {"max.poll.interval.ms", "300000"},
      {"connections.max.idle.ms", "540000"},
      {"socket.timeout.ms", "30000"},
      // Low latency: answer a fetch as soon as one byte is there, at most 10 ms later.
      {"fetch.wait.max.ms", "10"},
      {"fetch.min.bytes", "1"},
      {"fetch.error.backoff.ms", "100"},
      {"socket.nagle.disable", "true"},
      {"socket.keepalive.enable", "true"},
      // Reconnect quickly after a broker restart.
      {"reconnect.backoff.ms", "100"},
      {"reconnect.backoff.max.ms", "2000"},
      // Positions live in the process: nothing is committed, so a group leaves
      // nothing behind on the broker once its consumer closed.
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "latest"},
      {"enable.partition.eof", "false"},
      {"client.id", "sessionstream"},
  };
  // retry.backoff.ms applies to consumers from librdkafka 2.5 on; older
  // versions ignore it there with a warning (their consumer backs off by
  // fetch.error.backoff.ms and reconnect.backoff.ms, set above).
  if (rd_kafka_version() >= kRetryBackoffForConsumers) out.emplace_back("retry.backoff.ms", "100");
  return out;
}

Properties producer_defaults() {
  return {
      {"client.id", "sessionstream"},   {"linger.ms", "1"},
      {"request.timeout.ms", "30000"},  {"retry.backoff.ms", "100"},
      {"socket.nagle.disable", "true"}, {"socket.keepalive.enable", "true"},
      {"reconnect.backoff.ms", "100"},  {"reconnect.backoff.max.ms", "2000"},
      {"message.timeout.ms", "300000"},
  };
}

Properties merged(const Properties& base, const Properties& overrides) {
  Properties out;
  out.reserve(base.size() + overrides.size());
  const auto put = [&out](const std::pair<std::string, std::string>& kv) {
    const auto it = std::find_if(out.begin(), out.end(),
                                 [&](const auto& existing) { return existing.first == kv.first; });
    if (it == out.end()) {
      out.push_back(kv);
    } else {
      it->second = kv.second;
    }
  };
  for (const auto& kv : base) put(kv);
  for (const auto& kv : overrides) put(kv);
  return out;
}

Properties without_consumer_only(const Properties& properties) {
  static constexpr std::string_view kConsumerOnly[] = {
      "group.id",
      "group.instance.id",
      "partition.assignment.strategy",
      "session.timeout.ms",
      "heartbeat.interval.ms",
      "max.poll.interval.ms",
      "auto.offset.reset",
      "enable.auto.commit",
      "auto.commit.interval.ms",
      "enable.auto.offset.store",
      "queued.min.messages",
      "queued.max.messages.kbytes",
      "fetch.wait.max.ms",
      "fetch.min.bytes",
      "fetch.max.bytes",
      "fetch.error.backoff.ms",
      "enable.partition.eof",
      "isolation.level",
      "check.crcs",
  };
  Properties out = properties;
  std::erase_if(out, [](const auto& kv) {
    return std::find(std::begin(kConsumerOnly), std::end(kConsumerOnly), kv.first) !=
           std::end(kConsumerOnly);
  });
  return out;
}

std::optional<std::string> find(const Properties& properties, std::string_view key) {
  std::optional<std::string> value;
  for (const auto& [k, v] : properties) {
    if (k == key) value = v;
  }
  return value;
}

Properties redacted(const Properties& properties) {
  static constexpr std::string_view kSecret[] = {"password", "secret", "key", "token",
                                                 "connection"};
  Properties out = properties;
  for (auto& [k, v] : out) {
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    // Masks a little more than needed (ssl.key.location) rather than ever
    // showing a credential.
    if (std::any_of(std::begin(kSecret), std::end(kSecret),
                    [&](std::string_view word) { return lower.find(word) != std::string::npos; })) {
      v = "***";
    }
  }
  return out;
}

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

EventHubsConnection parse_event_hubs_connection_string(std::string_view text) {
  const std::string_view input = trim(text);
  const std::string_view expected =
      "expected 'Endpoint=sb://NAMESPACE.servicebus.windows.net/;SharedAccessKeyName=NAME;"
      "SharedAccessKey=KEY[;EntityPath=HUB]'";
  if (input.empty()) {
    throw InvalidArgument("Event Hubs connection string is empty: " + std::string{expected});
  }
  EventHubsConnection out;
  out.connection_string = std::string{input};
  std::string endpoint;
  bool have_key = false;
  bool have_sas = false;
  std::size_t pos = 0;
  while (pos <= input.size()) {
    const auto end = std::min(input.find(';', pos), input.size());
    const std::string_view part = trim(input.substr(pos, end - pos));
    pos = end + 1;
    if (part.empty()) continue;
    const auto eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      throw InvalidArgument("Event Hubs connection string part '" + utf8_excerpt(part, 40) +
                            "' is not NAME=VALUE: " + std::string{expected});
    }
    const std::string_view name = trim(part.substr(0, eq));
    // Keys are base64 and may end in '='; everything after the first '=' is the value.
    const std::string_view value = trim(part.substr(eq + 1));
    if (iequals(name, "Endpoint")) {
      endpoint = std::string{value};
    } else if (iequals(name, "SharedAccessKeyName")) {
      out.key_name = std::string{value};
      have_key = !value.empty();
    } else if (iequals(name, "SharedAccessKey")) {
      have_sas = !value.empty();
    } else if (iequals(name, "SharedAccessSignature")) {
      have_sas = !value.empty();
      have_key = true;
    } else if (iequals(name, "EntityPath")) {
      out.entity_path = std::string{value};
    }
  }
  if (endpoint.empty()) {
    throw InvalidArgument("Event Hubs connection string has no Endpoint: " + std::string{expected});
  }
  std::string_view host = endpoint;
  for (const std::string_view scheme : {"sb://", "amqps://", "https://"}) {
    if (host.size() > scheme.size() && iequals(host.substr(0, scheme.size()), scheme)) {
      host.remove_prefix(scheme.size());
      break;
    }
  }
  while (!host.empty() && host.back() == '/') host.remove_suffix(1);
  if (const auto slash = host.find('/'); slash != std::string_view::npos)
    host = host.substr(0, slash);
  if (const auto colon = host.find(':'); colon != std::string_view::npos)
    host = host.substr(0, colon);
  const bool host_ok = !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
  });
  if (!host_ok) {
    throw InvalidArgument("Event Hubs Endpoint '" + utf8_excerpt(endpoint, 80) +
                          "' has no valid host: " + std::string{expected});
  }
  if (!have_key || !have_sas) {
    throw InvalidArgument(
        "Event Hubs connection string needs SharedAccessKeyName and SharedAccessKey "
        "(or SharedAccessSignature): " +
        std::string{expected});
  }
  out.host = std::string{host};
  out.bootstrap = out.host + ":9093";
  return out;
}

Properties event_hubs_properties(std::string_view connection_string) {
  const EventHubsConnection parsed = parse_event_hubs_connection_string(connection_string);
  return {
      {"bootstrap.servers", parsed.bootstrap},
      {"security.protocol", "SASL_SSL"},
      {"sasl.mechanisms", "PLAIN"},
      {"sasl.username", "$ConnectionString"},
      {"sasl.password", parsed.connection_string},
      {"socket.keepalive.enable", "true"},
      // The service drops connections idle for 240 s; stay well below it.
      {"connections.max.idle.ms", "180000"},
      {"metadata.max.age.ms", "180000"},
      {"session.timeout.ms", "30000"},
      {"socket.timeout.ms", "60000"},
  };
}

}  // namespace sessionstream::kafka
