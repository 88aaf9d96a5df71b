#include "kernel/event_source.h"

#include "util/error.h"
#include "util/log.h"

#include <bpf/libbpf.h>
#include <fcntl.h>

#include <cstring>

namespace tcflows {

void EventSource::Free::operator()(ring_buffer *rb) const { ring_buffer__free(rb); }

EventSource::EventSource(boost::asio::io_context &io, int map_fd, Handler handler)
    : handler_(std::move(handler)), ring_(ring_buffer__new(map_fd, on_sample, this, nullptr)),
      descriptor_(io) {
  if (!ring_)
    fail(exit_failure, "cannot open the event ring buffer: {}", errno_text(errno));
  // A duplicate, so that Asio and libbpf never close the same fd.
  int fd = fcntl(ring_buffer__epoll_fd(ring_.get()), F_DUPFD_CLOEXEC, 0);
  if (fd < 0)
    fail(exit_failure, "cannot duplicate the ring buffer's epoll fd: {}", errno_text(errno));
  descriptor_.assign(fd);
}

EventSource::~EventSource() = default;

int EventSource::on_sample(void *ctx, void *data, size_t size) {
  auto *self = static_cast<EventSource *>(ctx);
  if (size < sizeof(tcf_event)) {
    self->malformed_++;
    return 0;
  }
  tcf_event event;
  std::memcpy(&event, data, sizeof(event));
  self->consumed_++;
  self->handler_(event);
  return 0;
}

void EventSource::start() { wait(); }

void EventSource::stop() {
  boost::system::error_code ignored;
  descriptor_.cancel(ignored);
}

void EventSource::drain() {
  int n = ring_buffer__consume(ring_.get());
  if (n < 0)
    log::warn("reading the event ring buffer failed: {}", errno_text(n));
}

void EventSource::wait() {
  descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code &error) {
                           if (error)
                             return;
                           drain();
                           wait();
                         });
}

} // namespace tcflows
