// Several capture files read as one capture: their frames merged in time
// order (each file's own order kept where its times go backwards).
#pragma once

#include "capture/frame.h"
#include "capture/pcap_file.h"

#include <optional>
#include <string>
#include <vector>

namespace tcflows {

class CaptureSet {
public:
  // Opens every file; one that cannot be read is left out, its error kept.
  explicit CaptureSet(const std::vector<std::string> &paths);

  // The frame with the earliest time of all the files' next ones; nullopt
  // once every file has ended.
  std::optional<CapturedFrame> next();

  // One line per file that could not be opened.
  const std::vector<std::string> &errors() const { return errors_; }
  size_t opened() const { return files_.size(); }
  const CaptureStats &stats() const { return stats_; }

private:
  std::vector<PcapFile> files_;
  std::vector<std::optional<CapturedFrame>> heads_; // each file's next frame
  std::vector<std::string> errors_;
  CaptureStats stats_;
};

} // namespace tcflows
