// Connection records as JSON lines (`record --jsonl PATH|-`), for jq and log
// shippers: one object per final record, and per checkpoint of an open one.
#pragma once

#include "sinks/interfaces.h"
#include "track/conn.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tcflows {

// One record as a JSON object (no newline). Checkpoints carry
// "checkpoint": true and "close_reason": null.
std::string conn_json(const ConnUpdate &update, const InterfaceNames &names);

// Adds the TCP health keys ("orig_retx_pkts", ...; null for other protocols).
void add_tcp_health(nlohmann::json &object, const ConnRecord &r);

class JsonlWriter {
public:
  // "-" is standard output; a path is opened for appending (created 0640).
  // Throws Fatal when the file cannot be opened.
  explicit JsonlWriter(const std::string &path);

  // Writes and flushes; returns false (and counts) when the write failed.
  bool write(std::span<const ConnUpdate> updates, const InterfaceNames &names);
  uint64_t errors() const { return errors_; }

private:
  struct Close {
    void operator()(std::FILE *file) const;
  };
  std::unique_ptr<std::FILE, Close> file_;
  bool is_stdout_ = false;
  uint64_t errors_ = 0;
};

} // namespace tcflows
