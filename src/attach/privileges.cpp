#include "attach/privileges.h"

#include "util/error.h"

#include <grp.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

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

using CapPtr = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

passwd lookup_user(const std::string &user) {
  passwd *entry = ::getpwnam(user.c_str());
  if (!entry)
    fail(exit_usage, "unknown user '{}' for --user", user);
  return *entry;
}

void switch_user(const std::string &user) {
  passwd entry = lookup_user(user);
  // Keep the permitted capabilities across the uid change.
  if (::prctl(PR_SET_KEEPCAPS, 1) != 0 || ::initgroups(entry.pw_name, entry.pw_gid) != 0 ||
      ::setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid) != 0 ||
      ::setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid) != 0)
    fail(exit_failure, "cannot switch to user '{}': {}", user, errno_text(errno));
  ::prctl(PR_SET_KEEPCAPS, 0);
}

void empty_bounding_set(cap_value_t keep) {
  for (cap_value_t cap = 0; cap <= CAP_LAST_CAP; cap++)
    if (cap != keep && CAP_IS_SUPPORTED(cap) && cap_drop_bound(cap) != 0)
      fail(exit_failure, "cannot drop capability {} from the bounding set: {}", cap,
           errno_text(errno));
}

} // namespace

void drop_privileges(const std::string &user) {
  empty_bounding_set(CAP_NET_ADMIN); // needs CAP_SETPCAP, so before the rest
  if (!user.empty())
    switch_user(user);
  CapPtr caps(cap_init());
  cap_value_t keep[] = {CAP_NET_ADMIN};
  if (!caps || cap_set_flag(caps.get(), CAP_PERMITTED, 1, keep, CAP_SET) != 0 ||
      cap_set_flag(caps.get(), CAP_EFFECTIVE, 1, keep, CAP_SET) != 0 ||
      cap_set_proc(caps.get()) != 0)
    fail(exit_failure, "cannot drop capabilities: {}", errno_text(errno));
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    fail(exit_failure, "cannot set no_new_privs: {}", errno_text(errno));
}

void give_to_user(const std::string &path, const std::string &user) {
  if (user.empty())
    return;
  passwd entry = lookup_user(user);
  if (::chown(path.c_str(), entry.pw_uid, entry.pw_gid) != 0)
    fail(exit_failure, "cannot hand {} to user '{}': {}", path, user, errno_text(errno));
}

void require_capture_privileges() {
  CapPtr caps(cap_get_proc());
  if (!caps)
    fail(exit_failure, "cannot read this process's capabilities: {}", errno_text(errno));
  bool bpf = has(caps.get(), CAP_BPF) || has(caps.get(), CAP_SYS_ADMIN);
  if (!bpf || !has(caps.get(), CAP_NET_ADMIN))
    fail(exit_failure, "recording needs root (CAP_BPF and CAP_NET_ADMIN): run it with sudo");
}

} // namespace tcflows
