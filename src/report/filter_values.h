// The fields and values of filter tests: what each kind of field takes, and
// the text people type turned into what the database holds.
#pragma once

#include "report/filter.h"

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tcflows {

enum class ValueKind {
  address,      // an IP or MAC address: equal to the stored text
  network,      // CIDR
  port,         // 0-65535, compared
  port_range,   // N-M
  count,        // a number: 1500, 2k, 3M
  bytes,        // 1k, 1.5M (x1000), 64KiB (x1024)
  duration,     // nanoseconds: 250us, 10ms, 1h30m
  protocol,     // tcp, 6, icmp6, arp, ... as proto_name() spells them
  iface,        // an interface name
  text,         // any word, equal
  conn_state,   // a Zeek conn_state
  close_reason, // fin rst idle shutdown
};

// Which side of a connection a test looks at: any (the field's own value,
// or either side for fields that have only sides), src (originator), dst
// (responder), either, both.
enum class Side { any, src, dst, either, both };

// One field of the grammar (the table is in filter.cpp).
struct FilterField {
  std::string_view name;
  ValueKind kind;
  std::string_view value;              // SQL without src/dst; empty: either side
  std::string_view src = {}, dst = {}; // SQL with src, dst; empty: no sides
  std::string_view guard = {};         // SQL the value needs to be meaningful
  bool indexed = false;                // src and dst are in the hour indexes
};

struct FilterTest {
  const FilterField *field = nullptr;
  Side side = Side::any;
  std::string_view op = "="; // SQL comparison
  // One value; port_range: from, to; network: the address, or the network's
  // text and prefix length, and with them the text range that holds every
  // address of the network (SQLite seeks it in an index).
  std::vector<SqlValue> values;
};

// The protocols whose connections have ports (port and portrange see only them).
inline constexpr std::string_view port_protocols[] = {"TCP", "UDP", "SCTP", "DCCP", "UDPLite"};

bool has_ports(std::string_view proto);

// Whether the kind takes a comparison (bytes > 1M) rather than only a value.
bool compares(ValueKind kind);

// "an IP or MAC address", for messages.
std::string expected_value(ValueKind kind);

// The values of a test on a field of this kind, or why the text is not one.
std::variant<std::vector<SqlValue>, std::string> parse_values(ValueKind kind,
                                                              std::string_view text);

} // namespace tcflows
