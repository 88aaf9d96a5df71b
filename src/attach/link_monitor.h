// Interfaces appearing and disappearing, from rtnetlink link notifications,
// read in the Asio loop.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <functional>
#include <memory>
#include <string>

struct mnl_socket;

namespace tcflows {

struct LinkChange {
  bool removed = false;
  int ifindex = 0;
  std::string name;
};

class LinkMonitor {
public:
  using Handler = std::function<void(const LinkChange &)>;

  // Subscribes to RTNLGRP_LINK now, so that no change after this is missed.
  LinkMonitor(boost::asio::io_context &io, Handler handler);
  ~LinkMonitor();

  void start();
  void stop();

private:
  struct Close {
    void operator()(mnl_socket *socket) const;
  };
  void wait();
  void read();

  Handler handler_;
  std::unique_ptr<mnl_socket, Close> socket_;
  boost::asio::posix::stream_descriptor descriptor_;
};

} // namespace tcflows
