// The doorbell: the program's one ring-buffer event, rung when free slots run
// low, so that the agent sweeps (and frees slots) now rather than at its next
// tick. Read in the Asio loop. A lost doorbell costs latency, never data.
#pragma once

#include "kernel/abi.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <cstdint>
#include <functional>
#include <memory>

struct ring_buffer;

namespace tcflows {

class Doorbell {
public:
  using Handler = std::function<void()>;

  // Listens on the ring-buffer map `map_fd`; `handler` runs once per wake-up
  // in which at least one doorbell came. Never blocks.
  Doorbell(boost::asio::io_context &io, int map_fd, Handler handler);
  ~Doorbell();
  Doorbell(const Doorbell &) = delete;
  Doorbell &operator=(const Doorbell &) = delete;

  void start();
  void stop();

  uint64_t rung() const { return rung_; }

private:
  struct Free {
    void operator()(ring_buffer *rb) const;
  };
  static int on_sample(void *ctx, void *data, size_t size);
  void wait();

  Handler handler_;
  std::unique_ptr<ring_buffer, Free> ring_;
  boost::asio::posix::stream_descriptor descriptor_;
  uint64_t rung_ = 0;
};

} // namespace tcflows
