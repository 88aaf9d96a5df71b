#include "report/filter_values.h"

#include "track/flow.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <net/if.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <span>

namespace tcflows {
namespace {

using Values = std::variant<std::vector<SqlValue>, std::string>;

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// An IP address in binary, with the length of its network prefix.
struct IpNet {
  int family = 0; // AF_INET, AF_INET6
  std::array<unsigned char, 16> bytes{};
  int bits = 0;

  int length() const { return family == AF_INET ? 32 : 128; }
};

std::optional<IpNet> parse_ip(const char *text) {
  IpNet ip;
  for (int family : {AF_INET, AF_INET6})
    if (inet_pton(family, text, ip.bytes.data()) == 1) {
      ip.family = family;
      ip.bits = ip.length();
      return ip;
    }
  return std::nullopt;
}

std::string ip_text(const IpNet &ip) {
  char out[INET6_ADDRSTRLEN];
  inet_ntop(ip.family, ip.bytes.data(), out, sizeof(out));
  return out;
}

// Whether the first `bits` bits of a and b are equal.
bool same_prefix(const unsigned char *a, const unsigned char *b, int bits) {
  int whole = bits / 8, rest = bits % 8;
  if (std::memcmp(a, b, static_cast<size_t>(whole)) != 0)
    return false;
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return rest == 0 || ((a[whole] ^ b[whole]) & mask) == 0;
}

// A MAC address, aa:bb:cc:dd:ee:ff or with dashes, any case: as stored.
std::optional<std::string> canonical_mac(std::string_view text) {
  if (text.size() != 17)
    return std::nullopt;
  std::string mac;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    bool ok = i % 3 == 2 ? c == text[2] && (c == ':' || c == '-')
                         : std::isxdigit(static_cast<unsigned char>(c)) != 0;
    if (!ok)
      return std::nullopt;
    mac += i % 3 == 2 ? ':' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return mac;
}

Values address(std::string_view text) {
  if (auto ip = parse_ip(std::string(text).c_str()))
    return std::vector<SqlValue>{ip_text(*ip)}; // as stored: dotted IPv4, RFC 5952 IPv6
  if (auto mac = canonical_mac(text))
    return std::vector<SqlValue>{*mac};
  return fmt::format("not an IP or MAC address");
}

// The text every canonical address of the network begins with: its whole
// leading octets (IPv4) or leading non-zero groups (IPv6: a zero group may
// be written as part of "::"), each with the separator after it. Empty when
// there is none.
std::string text_prefix(const IpNet &net) {
  std::string prefix;
  if (net.family == AF_INET) {
    for (int i = 0; i < net.bits / 8; i++)
      prefix += fmt::format("{}.", net.bytes[static_cast<size_t>(i)]);
    return prefix;
  }
  for (int i = 0; i < net.bits / 16; i++) {
    unsigned group =
        net.bytes[static_cast<size_t>(2 * i)] << 8 | net.bytes[static_cast<size_t>(2 * i + 1)];
    if (group == 0)
      break;
    prefix += fmt::format("{:x}:", group);
  }
  return prefix;
}

Values network(std::string_view text) {
  auto slash = text.find('/');
  auto ip = parse_ip(std::string(text.substr(0, slash)).c_str());
  if (!ip)
    return fmt::format("not a network like 10.0.0.0/8 or 2001:db8::/32");
  if (slash != std::string_view::npos) {
    auto bits_text = text.substr(slash + 1);
    int bits = -1;
    auto [end, ec] = std::from_chars(bits_text.data(), bits_text.data() + bits_text.size(), bits);
    if (ec != std::errc() || end != bits_text.data() + bits_text.size() || bits < 0 ||
        bits > ip->length())
      return fmt::format("the prefix length must be 0 to {}", ip->length());
    ip->bits = bits;
  }
  IpNet masked = *ip;
  for (int i = ip->bits; i < ip->length(); i++)
    masked.bytes[static_cast<size_t>(i / 8)] &= static_cast<unsigned char>(~(0x80 >> (i % 8)));
  if (masked.bytes != ip->bytes)
    return fmt::format("host bits are set; the network is {}/{}", ip_text(masked), ip->bits);
  if (ip->bits == ip->length())
    return std::vector<SqlValue>{ip_text(*ip)};
  std::vector<SqlValue> values{ip_text(masked), int64_t{ip->bits}};
  auto prefix = text_prefix(masked);
  if (!prefix.empty()) { // [prefix, prefix with its last character the next one)
    auto end = prefix;
    end.back()++;
    values.insert(values.end(), {prefix, end});
  }
  return values;
}

std::optional<int64_t> port_number(std::string_view text) {
  int64_t port = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port < 0 || port > 65535)
    return std::nullopt;
  return port;
}

Values port_range(std::string_view text) {
  auto dash = text.find('-');
  if (dash == std::string_view::npos)
    return fmt::format("not a port range like 1-1023");
  auto from = port_number(text.substr(0, dash)), to = port_number(text.substr(dash + 1));
  if (!from || !to)
    return fmt::format("not a port range like 1-1023");
  if (*from > *to)
    return fmt::format("the range ends before it begins");
  return std::vector<SqlValue>{*from, *to};
}

struct Scale {
  std::string_view suffix;
  int64_t factor;
};

constexpr int64_t k = 1000, ki = 1024, ns_per_s = 1'000'000'000;
constexpr Scale count_scales[] = {{"", 1}, {"k", k}, {"m", k *k}, {"g", k *k *k}};
constexpr Scale byte_scales[] = {
    {"", 1},
    {"b", 1},
    {"k", k},
    {"kb", k},
    {"m", k *k},
    {"mb", k *k},
    {"g", k *k *k},
    {"gb", k *k *k},
    {"t", k *k *k *k},
    {"tb", k *k *k *k},
    {"kib", ki},
    {"mib", ki *ki},
    {"gib", ki *ki *ki},
    {"tib", ki *ki *ki *ki},
};
constexpr Scale time_scales[] = {
    {"ns", 1},
    {"us", 1000},
    {"ms", 1'000'000},
    {"s", ns_per_s},
    {"m", 60 * ns_per_s},
    {"h", 3600 * ns_per_s},
    {"d", 86400 * ns_per_s},
    {"w", 604800 * ns_per_s},
};

// "1.5" and a scale from the table: the exact whole number, or nullopt when
// it is not one (1.0001k) or too large.
std::optional<__int128> scaled(std::string_view number, std::string_view suffix,
                               std::span<const Scale> scales) {
  auto it = std::find_if(scales.begin(), scales.end(),
                         [&](const Scale &s) { return s.suffix == lower(suffix); });
  if (it == scales.end() || number.empty() || number.size() > 30)
    return std::nullopt;
  auto dot = number.find('.');
  auto whole = number.substr(0, dot);
  auto fraction = dot == std::string_view::npos ? std::string_view() : number.substr(dot + 1);
  if (whole.empty() || (dot != std::string_view::npos && fraction.empty()))
    return std::nullopt;
  __int128 value = 0, divisor = 1;
  for (char c : std::string(whole) + std::string(fraction)) {
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return std::nullopt;
    value = value * 10 + (c - '0');
  }
  for (size_t i = 0; i < fraction.size(); i++)
    divisor *= 10;
  value *= it->factor;
  if (value % divisor != 0)
    return std::nullopt;
  return value / divisor;
}

// A number and its unit, several for durations (1h30m).
Values number(std::string_view text, std::span<const Scale> scales, bool compound,
              std::string_view what) {
  __int128 total = 0;
  std::string_view rest = text;
  do {
    size_t digits = 0;
    while (digits < rest.size() &&
           (std::isdigit(static_cast<unsigned char>(rest[digits])) || rest[digits] == '.'))
      digits++;
    size_t letters = digits;
    while (letters < rest.size() && !std::isdigit(static_cast<unsigned char>(rest[letters])))
      letters++;
    if (!compound)
      letters = rest.size();
    auto part = scaled(rest.substr(0, digits), rest.substr(digits, letters - digits), scales);
    if (!part)
      return fmt::format("not {}", what);
    total += *part;
    if (total > std::numeric_limits<int64_t>::max())
      return fmt::format("too large");
    rest.remove_prefix(letters);
  } while (!rest.empty());
  return std::vector<SqlValue>{static_cast<int64_t>(total)};
}

Values protocol(std::string_view text) {
  if (lower(text) == "icmp6")
    return std::vector<SqlValue>{std::string("ICMPv6")};
  if (auto name = canonical_proto_name(text))
    return std::vector<SqlValue>{*name};
  return fmt::format("not a protocol: tcp, udp, icmp, icmp6, sctp, arp, ... or a number 0-255");
}

constexpr std::string_view conn_states[] = {"S0",   "S1",     "SF",    "REJ", "S2",  "S3", "RSTO",
                                            "RSTR", "RSTOS0", "RSTRH", "SH",  "SHR", "OTH"};
constexpr std::string_view close_reasons[] = {"fin", "rst", "idle", "shutdown", "eof"};

Values word_of(std::string_view text, std::span<const std::string_view> words, bool upper) {
  std::string typed = lower(text);
  if (upper)
    std::transform(typed.begin(), typed.end(), typed.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  for (auto word : words)
    if (word == typed)
      return std::vector<SqlValue>{std::string(word)};
  std::string list;
  for (auto word : words)
    list += (list.empty() ? "" : " ") + std::string(word);
  return fmt::format("not one of {}", list);
}

} // namespace

bool has_ports(std::string_view proto) {
  return std::find(std::begin(port_protocols), std::end(port_protocols), proto) !=
         std::end(port_protocols);
}

bool compares(ValueKind kind) {
  return kind == ValueKind::port || kind == ValueKind::count || kind == ValueKind::bytes ||
         kind == ValueKind::duration;
}

std::string expected_value(ValueKind kind) {
  switch (kind) {
  case ValueKind::address:
    return "an IP or MAC address";
  case ValueKind::network:
    return "a network like 10.0.0.0/8";
  case ValueKind::port:
    return "a port number";
  case ValueKind::port_range:
    return "a port range like 1-1023";
  case ValueKind::count:
    return "a number";
  case ValueKind::bytes:
    return "a number of bytes like 1500, 1.5M or 64KiB";
  case ValueKind::duration:
    return "a duration like 250us, 10ms, 1.5s or 2m";
  case ValueKind::protocol:
    return "a protocol";
  case ValueKind::iface:
    return "an interface name";
  case ValueKind::text:
    return "a value";
  case ValueKind::conn_state:
    return "a connection state";
  case ValueKind::close_reason:
    return "a close reason";
  }
  return "a value";
}

Values parse_values(ValueKind kind, std::string_view text) {
  switch (kind) {
  case ValueKind::address:
    return address(text);
  case ValueKind::network:
    return network(text);
  case ValueKind::port:
    if (auto port = port_number(text))
      return std::vector<SqlValue>{*port};
    return fmt::format("not a port number (0-65535)");
  case ValueKind::port_range:
    return port_range(text);
  case ValueKind::count:
    return number(text, count_scales, false, "a number like 100, 2k or 3M");
  case ValueKind::bytes:
    return number(text, byte_scales, false, "a number of bytes like 1500, 1.5M or 64KiB");
  case ValueKind::duration:
    return number(text, time_scales, true, "a duration like 250us, 10ms, 1.5s or 1h30m");
  case ValueKind::protocol:
    return protocol(text);
  case ValueKind::iface:
    if (text.empty() || text.size() >= IF_NAMESIZE)
      return fmt::format("not an interface name (1 to {} characters)", IF_NAMESIZE - 1);
    return std::vector<SqlValue>{std::string(text)};
  case ValueKind::text:
    return std::vector<SqlValue>{std::string(text)};
  case ValueKind::conn_state:
    return word_of(text, conn_states, true);
  case ValueKind::close_reason:
    return word_of(text, close_reasons, false);
  }
  return fmt::format("not {}", expected_value(kind));
}

namespace {

// tcflows_in_net(addr, net, bits): 1 when the text addr is an address of the
// same family inside net/bits, else 0 (also for MAC addresses and NULL).
void in_net(sqlite3_context *context, int, sqlite3_value **argv) {
  auto *cached = static_cast<IpNet *>(sqlite3_get_auxdata(context, 1));
  std::optional<IpNet> net;
  if (cached) {
    net = *cached;
  } else if (const auto *text = sqlite3_value_text(argv[1])) {
    net = parse_ip(reinterpret_cast<const char *>(text));
    if (net) // SQLite keeps it while the statement runs with the same argument
      sqlite3_set_auxdata(context, 1, new IpNet(*net),
                          [](void *p) { delete static_cast<IpNet *>(p); });
  }
  const auto *addr = sqlite3_value_text(argv[0]);
  auto ip = addr ? parse_ip(reinterpret_cast<const char *>(addr)) : std::nullopt;
  int bits = sqlite3_value_int(argv[2]);
  bool inside = net && ip && ip->family == net->family && bits >= 0 && bits <= net->length() &&
                same_prefix(ip->bytes.data(), net->bytes.data(), bits);
  sqlite3_result_int(context, inside ? 1 : 0);
}

} // namespace

void add_filter_functions(sql::Database &db) {
  int rc = sqlite3_create_function_v2(db.get(), "tcflows_in_net", 3,
                                      SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                      nullptr, in_net, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK)
    db.fail(rc, "tcflows_in_net");
}

} // namespace tcflows
