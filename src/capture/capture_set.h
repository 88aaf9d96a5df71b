// Several capture files read as one capture: their frames merged in time
// order (each file's own order kept where its times go backwards).
#pragma once

#include "capture/frame.h"
#include "capture/pcap_file.h"

#include <string>
#include <vector>

namespace tcflows {

class CaptureSet {
public:
  // Opens every file; one that cannot be read is left out, its error kept.
  explicit CaptureSet(const std::vector<std::string> &paths);

  // The frame with the earliest time of all the files' next ones, valid
  // until the next call; nullptr once every file has ended.
  const CapturedFrame *next();

  // One line per file that could not be opened.
  const std::vector<std::string> &errors() const { return errors_; }
  size_t opened() const { return files_.size(); }
  const CaptureStats &stats() const { return stats_; }

private:
  std::vector<PcapFile> files_;
  std::vector<bool> ready_; // whether each file's frame() is its next one
  size_t taken_ = 0;        // the file whose frame next() returned last
  std::vector<std::string> errors_;
  CaptureStats stats_;
};

} // namespace tcflows
