// Capabilities the capture path needs.
#pragma once

#include <string>

namespace tcflows {

// Throws Fatal with a one-line reason unless the process may load BPF
// programs and change TC filters (CAP_BPF or CAP_SYS_ADMIN, and CAP_NET_ADMIN).
void require_capture_privileges();

// After loading and attaching: keeps only CAP_NET_ADMIN (to detach at exit
// and re-attach to an interface that comes back), empties the bounding set,
// sets no_new_privs, and with `user` switches to that user first. The BPF
// maps and ring buffer stay usable through the fds already held.
void drop_privileges(const std::string &user);

// Hands a file (a lock file) to `user` so that it can empty it later.
void give_to_user(const std::string &path, const std::string &user);

} // namespace tcflows
