#include "util/net_address.h"

#include <charconv>

namespace tcflows {
namespace {

std::optional<uint16_t> parse_port(std::string_view text) {
  unsigned number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size() || number == 0 || number > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(number);
}

// "HOST:PORT" or "[IPV6]:PORT": the host without brackets and the port.
std::optional<std::pair<std::string, uint16_t>> split_host_port(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.starts_with('[')) {
    if (host.size() < 3 || !host.ends_with(']'))
      return std::nullopt;
    host = host.substr(1, host.size() - 2);
  } else if (host.empty() || host.find(':') != std::string_view::npos) {
    return std::nullopt; // an IPv6 address needs brackets
  }
  auto port = parse_port(text.substr(colon + 1));
  if (!port)
    return std::nullopt;
  return std::pair{std::string(host), *port};
}

} // namespace

std::optional<CollectorUrl> parse_collector_url(std::string_view text) {
  CollectorUrl url;
  url.text = text;
  if (text.starts_with("tcp://"))
    url.tcp = true;
  else if (!text.starts_with("udp://"))
    return std::nullopt;
  auto host_port = split_host_port(text.substr(6));
  if (!host_port)
    return std::nullopt;
  url.host = std::move(host_port->first);
  url.port = host_port->second;
  return url;
}

std::optional<std::pair<std::string, uint16_t>> parse_listen_address(std::string_view text) {
  if (text.find(':') != std::string_view::npos)
    return split_host_port(text);
  auto port = parse_port(text);
  if (!port)
    return std::nullopt;
  return std::pair{std::string(), *port};
}

} // namespace tcflows
