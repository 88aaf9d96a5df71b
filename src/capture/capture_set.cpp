#include "capture/capture_set.h"

namespace tcflows {

CaptureSet::CaptureSet(const std::vector<std::string> &paths) {
  for (const auto &path : paths) {
    auto opened = PcapFile::open(path);
    if (auto *error = std::get_if<std::string>(&opened)) {
      errors_.push_back(std::move(*error));
      continue;
    }
    files_.push_back(std::move(std::get<PcapFile>(opened)));
    stats_.files++;
    heads_.push_back(files_.back().next(stats_));
  }
}

std::optional<CapturedFrame> CaptureSet::next() {
  size_t first = heads_.size();
  for (size_t i = 0; i < heads_.size(); i++)
    if (heads_[i] && (first == heads_.size() || heads_[i]->ts_ns < heads_[first]->ts_ns))
      first = i;
  if (first == heads_.size())
    return std::nullopt;
  std::optional<CapturedFrame> frame = std::move(heads_[first]);
  heads_[first] = files_[first].next(stats_);
  return frame;
}

} // namespace tcflows
