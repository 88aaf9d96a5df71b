// The ring buffer of lifecycle events, consumed from the Asio loop.
#pragma once

#include "kernel/abi.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstdint>
#include <functional>
#include <memory>

struct ring_buffer;

namespace tcflows {

class EventSource {
public:
  using Handler = std::function<void(const tcf_event &)>;

  // Reads events of the ring-buffer map `map_fd`, calling `handler` for each,
  // whenever the ring buffer's epoll fd becomes readable. Never blocks.
  EventSource(boost::asio::io_context &io, int map_fd, Handler handler);
  ~EventSource();
  EventSource(const EventSource &) = delete;
  EventSource &operator=(const EventSource &) = delete;

  void start();
  void stop();
  // Consumes whatever is there now (also used before a final sweep).
  void drain();

  uint64_t consumed() const { return consumed_; }
  uint64_t malformed() const { return malformed_; } // samples of the wrong size

private:
  struct Free {
    void operator()(ring_buffer *rb) const;
  };
  static int on_sample(void *ctx, void *data, size_t size);
  void wait();

  Handler handler_;
  std::unique_ptr<ring_buffer, Free> ring_;
  boost::asio::posix::stream_descriptor descriptor_;
  uint64_t consumed_ = 0;
  uint64_t malformed_ = 0;
};

} // namespace tcflows
