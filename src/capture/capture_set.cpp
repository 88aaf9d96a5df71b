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
    ready_.push_back(files_.back().next(stats_) != nullptr);
  }
  taken_ = files_.size(); // none yet
}

const CapturedFrame *CaptureSet::next() {
  if (taken_ < files_.size()) // its frame was used: the file's next one
    ready_[taken_] = files_[taken_].next(stats_) != nullptr;
  taken_ = files_.size();
  for (size_t i = 0; i < files_.size(); i++)
    if (ready_[i] &&
        (taken_ == files_.size() || files_[i].frame().ts_ns < files_[taken_].frame().ts_ns))
      taken_ = i;
  return taken_ == files_.size() ? nullptr : &files_[taken_].frame();
}

} // namespace tcflows
