#include "privileges.h"

#include "error.h"

#include <sys/capability.h>

#include <memory>

namespace tcflows {
namespace {

struct CapFree {
  void operator()(cap_t caps) const { cap_free(caps); }
};

bool has(cap_t caps, cap_value_t cap) {
  cap_flag_value_t value = CAP_CLEAR;
  return cap_get_flag(caps, cap, CAP_EFFECTIVE, &value) == 0 && value == CAP_SET;
}

} // namespace

void require_capture_privileges() {
  std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree> caps(cap_get_proc());
  if (!caps)
    fail(exit_failure, "cannot read this process's capabilities: {}", errno_text(errno));
  bool bpf = has(caps.get(), CAP_BPF) || has(caps.get(), CAP_SYS_ADMIN);
  if (!bpf || !has(caps.get(), CAP_NET_ADMIN))
    fail(exit_failure, "recording needs root (CAP_BPF and CAP_NET_ADMIN): run it with sudo");
}

} // namespace tcflows
