// `tcflows detach`: remove what a killed or crashed `tcflows record` left
// behind — its TC filters, its pins in bpffs, its lock files — and nothing else.
#pragma once

#include <string>
#include <vector>

namespace tcflows {

struct DetachOptions {
  std::vector<std::string> ifaces; // empty: every interface
};

int run_detach(const DetachOptions &options);

} // namespace tcflows
