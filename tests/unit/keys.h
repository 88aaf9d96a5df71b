// Flow keys for unit tests.
#pragma once

#include "kernel/abi.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>

#include <utility>

namespace fake {

// An IPv4 key as sent: side 0 is the sender. Not canonicalised.
inline tcf_flow_key v4(const char *src, uint16_t sport, const char *dst, uint16_t dport,
                       uint8_t proto, uint8_t kind = TCF_KIND_PORTS) {
  tcf_flow_key key{};
  inet_pton(AF_INET, src, &key.addr[0][0]);
  inet_pton(AF_INET, dst, &key.addr[1][0]);
  key.port[0] = sport;
  key.port[1] = dport;
  key.ifindex = 3;
  key.ethertype = ETH_P_IP;
  key.proto = proto;
  key.kind = kind;
  return key;
}

// The key of the other direction.
inline tcf_flow_key reversed(tcf_flow_key key) {
  std::swap(key.addr[0], key.addr[1]);
  std::swap(key.port[0], key.port[1]);
  return key;
}

} // namespace fake
