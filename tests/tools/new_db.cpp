// Test driver: creates an empty tcflows database (the current schema) at
// the path given, through the store, so that tests can fill it with rows of
// their own and query it with `tcflows report`.
//
//   new_db PATH
#include "sinks/store.h"
#include "util/error.h"

#include <cstdio>

int main(int argc, char **argv) try {
  if (argc != 2) {
    std::fprintf(stderr, "usage: new_db PATH\n");
    return 2;
  }
  tcflows::StoreConfig config;
  config.path = argv[1];
  tcflows::Store store(config);
  return 0;
} catch (const tcflows::Fatal &e) {
  std::fprintf(stderr, "new_db: %s\n", e.what());
  return e.exit_code();
}
