// Exceptions at the C ABI edge become the handle's last error.
#include <new>

#include <fmt/format.h>

#include "capi/handles.hpp"

namespace sbx::capi {

int record_current_exception(LastError& error) {
  try {
    throw;
  } catch (const Error& e) {
    error.set(e.what(), e.fix());
  } catch (const std::bad_alloc&) {
    error.set("out of memory", "free memory or raise the process's limits");
  } catch (const std::exception& e) {
    error.set(fmt::format("internal error: {}", e.what()),
              "please report this with the call that failed");
  } catch (...) {
    error.set("internal error: unknown exception", "please report this with the call that failed");
  }
  return -1;
}

}  // namespace sbx::capi
