// Unprivileged fallback: ask the systemd user manager for a transient scope
// with Delegate=yes that contains this process (as `systemd-run --user
// --scope -p Delegate=yes` does). The scope then is a delegated cgroup v2
// subtree owned by the user, and the delegated v2 path takes over.
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "cgroups/backend.hpp"

#ifdef SBX_HAVE_LIBSYSTEMD
#include <dlfcn.h>
#include <systemd/sd-bus.h>
#endif

namespace sbx::cgroups {

#ifdef SBX_HAVE_LIBSYSTEMD
namespace {

// libsystemd (with libgcrypt, liblzma, libzstd, liblz4, libcap) is loaded
// only when a scope is needed: linked, the dynamic loader would map and
// relocate those six libraries at every sbx start for a rare fallback.
struct SdBus {
  decltype(&sd_bus_open_user) open_user = nullptr;
  decltype(&sd_bus_flush_close_unref) flush_close_unref = nullptr;
  decltype(&sd_bus_message_new_method_call) message_new_method_call = nullptr;
  decltype(&sd_bus_message_append) message_append = nullptr;
  decltype(&sd_bus_message_open_container) message_open_container = nullptr;
  decltype(&sd_bus_message_close_container) message_close_container = nullptr;
  decltype(&sd_bus_message_unref) message_unref = nullptr;
  decltype(&sd_bus_call) call = nullptr;
  decltype(&sd_bus_error_free) error_free = nullptr;
  std::string failure;  // why it could not be loaded, or empty
};

template <typename F>
bool load_symbol(void* handle, const char* name, F& out) {
  out = reinterpret_cast<F>(::dlsym(handle, name));
  return out != nullptr;
}

const SdBus& sd_bus_library() {
  static const SdBus lib = [] {
    SdBus l;
    void* h = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = ::dlerror();
      l.failure = fmt::format("cannot load libsystemd.so.0 ({})", e ? e : "unknown error");
      return l;
    }
    bool ok = load_symbol(h, "sd_bus_open_user", l.open_user) &&
              load_symbol(h, "sd_bus_flush_close_unref", l.flush_close_unref) &&
              load_symbol(h, "sd_bus_message_new_method_call", l.message_new_method_call) &&
              load_symbol(h, "sd_bus_message_append", l.message_append) &&
              load_symbol(h, "sd_bus_message_open_container", l.message_open_container) &&
              load_symbol(h, "sd_bus_message_close_container", l.message_close_container) &&
              load_symbol(h, "sd_bus_message_unref", l.message_unref) &&
              load_symbol(h, "sd_bus_call", l.call) &&
              load_symbol(h, "sd_bus_error_free", l.error_free);
    if (!ok) l.failure = "libsystemd.so.0 lacks the sd-bus calls sbx needs";
    return l;
  }();
  return lib;
}

struct BusDeleter {
  void operator()(sd_bus* b) const { sd_bus_library().flush_close_unref(b); }
};
struct MessageDeleter {
  void operator()(sd_bus_message* m) const { sd_bus_library().message_unref(m); }
};

// Unit names allow [A-Za-z0-9:_.\-]; '@' would make it an instance name.
std::string scope_unit_name(const std::string& group) {
  std::string unit = "sbx-";
  for (char c : group) unit.push_back(c == '@' ? '-' : c);
  return unit + ".scope";
}

bool in_unit(const std::string& unit) {
  auto text = try_read_text_file("/proc/self/cgroup");
  if (!text) return false;
  auto path = unified_path(parse_proc_cgroup(*text));
  return path && path->size() >= unit.size() &&
         path->compare(path->size() - unit.size(), unit.size(), unit) == 0;
}

}  // namespace

bool move_into_systemd_scope(const std::string& name, std::vector<std::string>& why,
                             const Companion& companion) {
  const SdBus& sd = sd_bus_library();
  if (!sd.failure.empty()) {
    why.push_back(
        fmt::format("no systemd user manager reachable to delegate a cgroup: {}", sd.failure));
    return false;
  }
  sd_bus* raw = nullptr;
  int r = sd.open_user(&raw);
  std::unique_ptr<sd_bus, BusDeleter> bus(raw);
  if (r < 0) {
    // ENOMEDIUM: neither $DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR is set.
    why.push_back(fmt::format(
        "no systemd user manager reachable to delegate a cgroup ({})",
        -r == ENOMEDIUM ? std::string("no user D-Bus address") : "user D-Bus: " + errno_text(-r)));
    return false;
  }
  std::string unit = scope_unit_name(name);
  sd_bus_message* m_raw = nullptr;
  r = sd.message_new_method_call(bus.get(), &m_raw, "org.freedesktop.systemd1",
                                 "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                 "StartTransientUnit");
  std::unique_ptr<sd_bus_message, MessageDeleter> msg(m_raw);
  if (r >= 0) r = sd.message_append(msg.get(), "ss", unit.c_str(), "fail");
  if (r >= 0) r = sd.message_open_container(msg.get(), 'a', "(sv)");
  if (r >= 0)
    r = sd.message_append(msg.get(), "(sv)", "Description", "s", "sbx sandbox supervisor");
  // sbx's early init, made before, goes along (companion).
  const pid_t with = r >= 0 && companion ? companion() : 0;
  if (r >= 0 && with > 0)
    r = sd.message_append(msg.get(), "(sv)", "PIDs", "au", 2,
                          static_cast<std::uint32_t>(::getpid()), static_cast<std::uint32_t>(with));
  else if (r >= 0)
    r = sd.message_append(msg.get(), "(sv)", "PIDs", "au", 1,
                          static_cast<std::uint32_t>(::getpid()));
  // Delegate=yes: systemd leaves the subtree below the scope to us.
  if (r >= 0) r = sd.message_append(msg.get(), "(sv)", "Delegate", "b", 1);
  if (r >= 0) r = sd.message_append(msg.get(), "(sv)", "CollectMode", "s", "inactive-or-failed");
  if (r >= 0) r = sd.message_close_container(msg.get());
  if (r >= 0) r = sd.message_append(msg.get(), "a(sa(sv))", 0);
  if (r < 0) {
    why.push_back(fmt::format("building the systemd StartTransientUnit call: {}", errno_text(-r)));
    return false;
  }
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  r = sd.call(bus.get(), msg.get(), 0, &error, &reply);
  sd.message_unref(reply);
  if (r < 0) {
    why.push_back(fmt::format("systemd refused the delegated scope {}: {}", unit,
                              error.message ? error.message : errno_text(-r)));
    sd.error_free(&error);
    return false;
  }
  sd.error_free(&error);
  // The call returns when the job is queued; the move follows shortly.
  for (int i = 0; i < 200; ++i) {
    if (in_unit(unit)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  why.push_back(fmt::format("systemd did not move sbx into the scope {} within 2 s", unit));
  return false;
}

#else

bool move_into_systemd_scope(const std::string&, std::vector<std::string>& why, const Companion&) {
  why.push_back("sbx was built without libsystemd, so it cannot ask systemd for a delegated scope");
  return false;
}

#endif

}  // namespace sbx::cgroups
