// One recording per interface: an flock on /run/tcflows/<iface>.lock, held
// for the agent's life (the kernel releases it even on SIGKILL), holding the
// agent's pid and whether tcflows created the interface's clsact qdisc.
#pragma once

#include "fd.h"

#include <string>

namespace tcflows {

inline constexpr const char *run_dir = "/run/tcflows";

class InterfaceLock {
public:
  // Takes the lock; throws Fatal naming the other agent's pid when taken.
  explicit InterfaceLock(const std::string &iface);

  // Whether a previous agent on this interface recorded that it created
  // the clsact qdisc, and recording that for a later one.
  bool qdisc_created() const;
  void set_qdisc_created(bool created);

  // Removes the lock file (a clean stop; nothing to adopt any more).
  void remove();

private:
  std::string path_;
  std::string qdisc_path_;
  UniqueFd fd_;
};

} // namespace tcflows
