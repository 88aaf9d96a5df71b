// Reading TC filters over rtnetlink (libmnl): what sits on a clsact hook.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tcflows {

struct TcFilter {
  uint32_t priority = 0;
  uint32_t handle = 0;
  std::string kind;     // "bpf", "u32", "flower", ...
  std::string bpf_name; // for bpf filters: "<prog name>:[<prog id>]"
  uint32_t bpf_prog_id = 0;
};

// The filters on the ingress (or egress) clsact hook of an interface; empty
// when the interface has no clsact qdisc. Throws Fatal on netlink errors.
std::vector<TcFilter> list_tc_filters(int ifindex, bool ingress);

} // namespace tcflows
