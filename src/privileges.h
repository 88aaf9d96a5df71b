// Capabilities the capture path needs.
#pragma once

namespace tcflows {

// Throws Fatal with a one-line reason unless the process may load BPF
// programs and change TC filters (CAP_BPF or CAP_SYS_ADMIN, and CAP_NET_ADMIN).
void require_capture_privileges();

} // namespace tcflows
