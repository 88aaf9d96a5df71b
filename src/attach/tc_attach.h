// tcflows' TC filters on one interface, owned: attach on construction,
// detach exactly them on destruction.
#pragma once

#include "attach/netif.h"

#include <bpf/libbpf.h>

#include <cstdint>
#include <vector>

namespace tcflows {

struct TcOptions {
  uint32_t priority = 1;     // TC "pref": lower runs first; tcflows wants to see all
  uint32_t handle = 0x7cf10; // fixed, so that a later `tcflows detach` finds it
};

// What an earlier agent of the same recording left attached (after SIGKILL
// or a crash): its filters are replaced in place, so counting never stops.
struct Adoption {
  std::vector<uint32_t> prog_ids; // programs of the recording's filters, replaced
  bool qdisc_created = false;     // the earlier agent created the clsact qdisc
};

class InterfaceHook {
public:
  // Creates the clsact qdisc when missing and attaches the two programs
  // (ingress only on loopback, where every packet passes both hooks).
  // Throws Fatal with a one-line reason when the TC setup is busy or conflicting.
  InterfaceHook(Interface iface, int ingress_fd, int egress_fd, TcOptions options,
                const Adoption &adoption = {});
  InterfaceHook(InterfaceHook &&other) noexcept;
  InterfaceHook &operator=(InterfaceHook &&) = delete;
  InterfaceHook(const InterfaceHook &) = delete;
  ~InterfaceHook();

  const Interface &iface() const { return iface_; }
  bool created_qdisc() const { return created_qdisc_; }
  // The interface disappeared: its filters went with it; nothing to detach.
  void forget() {
    attached_.clear();
    created_qdisc_ = false;
  }
  // A start that failed: the filters that replaced an earlier agent's stay,
  // so that their maps (and counts) wait for the next start.
  void keep_adopted() noexcept;

private:
  void attach(bpf_tc_attach_point point, int prog_fd, const Adoption &adoption);
  void detach_all() noexcept;

  Interface iface_;
  TcOptions options_;
  bool created_qdisc_ = false;
  std::vector<bpf_tc_attach_point> attached_;
  std::vector<bpf_tc_attach_point> adopted_; // of attached_, those that replaced a filter
};

// The program id of tcflows' filter on one hook of an interface, at the
// priority and handle of `options`; 0 when there is none.
uint32_t tcflows_filter_prog(int ifindex, bool ingress, const TcOptions &options);

// The name tcflows' programs carry in TC filter listings.
bool is_tcflows_filter_name(const std::string &bpf_name);

// Removes every tcflows filter from both hooks of an interface, and the
// clsact qdisc when `remove_qdisc` and nothing else is attached to it.
// Returns the number of filters removed.
int detach_tcflows_filters(int ifindex, bool remove_qdisc);

} // namespace tcflows
