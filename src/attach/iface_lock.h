// One recording per interface: an flock on /run/tcflows/net<N>.<iface>.lock,
// held for the agent's life (the kernel releases it even on SIGKILL). N is
// the inode of the agent's network namespace: `ip netns exec` shares /run, and
// eth0 of one namespace is not eth0 of another. The file holds the agent's
// pid and whether tcflows created the clsact qdisc, for a later agent or
// `tcflows detach`; it is written through the held fd, so that an agent that
// switched users can still update it.
#pragma once

#include "util/fd.h"

#include <string>

namespace tcflows {

inline constexpr const char *run_dir = "/run/tcflows";

// The lock file's name for an interface of the caller's network namespace.
std::string lock_file_name(const std::string &iface);

class InterfaceLock {
public:
  // Takes the lock (the file in `dir`, made if missing); throws Fatal naming
  // the other agent's pid when taken. The file stays as it was until claim().
  explicit InterfaceLock(const std::string &iface, const std::string &dir = run_dir);
  // A lock never claimed removes the file it made (a start that failed).
  ~InterfaceLock();
  InterfaceLock(InterfaceLock &&) noexcept = default;
  InterfaceLock &operator=(InterfaceLock &&) noexcept = default;

  // Writes this agent's pid into the file: once every lock it needs is taken.
  void claim();

  const std::string &path() const { return path_; }

  // Whether the previous holder recorded that tcflows created the qdisc.
  bool qdisc_created() const { return qdisc_created_; }
  void set_qdisc_created(bool created);

  // A clean stop: nothing is left for a later agent to adopt.
  void release();

private:
  void write_state(bool qdisc_created);

  std::string path_;
  UniqueFd fd_;
  bool made_ = false; // the file did not exist before
  bool claimed_ = false;
  bool qdisc_created_ = false;
};

} // namespace tcflows
