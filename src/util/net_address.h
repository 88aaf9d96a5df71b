// Network addresses as the command line gives them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tcflows {

// An IPFIX collector: `--ipfix udp://HOST:PORT` or `tcp://HOST:PORT`.
struct CollectorUrl {
  bool tcp = false;
  std::string host; // without brackets
  uint16_t port = 0;
  std::string text; // as given
};

// "udp://HOST:PORT", "tcp://HOST:PORT", "udp://[2001:db8::1]:4739"; nullopt
// when the text is not like that.
std::optional<CollectorUrl> parse_collector_url(std::string_view text);

// `--metrics`: "9469" (loopback), "127.0.0.1:9469", "[::1]:9469",
// "0.0.0.0:9469", "localhost:9469": host (empty for a bare port) and port;
// nullopt otherwise.
std::optional<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view text);

} // namespace tcflows
