// Small network helpers.
#pragma once

namespace embrec {

// A TCP port on 127.0.0.1 that no one listens on now (bound, then released for the caller to take): the rendezvous
// port of a local data-parallel job, a test's server.
int free_local_port();

}  // namespace embrec
