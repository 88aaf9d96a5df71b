// `tcflows detach`: remove what a killed or crashed `tcflows record` left
// behind — its TC filters and lock files — and nothing else. Nothing is pinned
// in bpffs: the program and its maps go with the last filter that runs them.
#pragma once

#include <string>
#include <vector>

namespace tcflows {

struct DetachOptions {
  std::vector<std::string> ifaces; // empty: every interface
};

int run_detach(const DetachOptions &options);

} // namespace tcflows
