// embed.cpp — run a command in an sbx sandbox through the C++ API
// (sbx::run, include/sbx/sbx.hpp) and print every event it produces.
//
//   CMake:  find_package(sbx REQUIRED COMPONENTS cpp)
//           target_link_libraries(embed-cpp PRIVATE sbx::cpp)
//   ./embed-cpp                 # the default demo command (below)
//   ./embed-cpp -- ls -l /      # any command
//
// sbx::run blocks and runs its supervisor loop on the calling thread, with
// the process's own stdin/stdout/stderr; the C ABI (embed.c) runs it in a
// child process instead. docs/embedding.md explains both.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <profiles/profiles.hpp>
#include <sbx/sbx.hpp>

int main(int argc, char** argv) {
  std::vector<std::string> command = {
      "python3", "-c",
      "import ctypes, os\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "rc = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n"
      "print('mount returned', rc, os.strerror(ctypes.get_errno()), flush=True)\n"};
  if (argc > 2 && std::string(argv[1]) == "--") command.assign(argv + 2, argv + argc);

  try {
    // A profile plus overrides, as `sbx run -p airgapped --memory 256M ...`.
    sbx::profiles::Overrides overrides;
    overrides.network = "none";
    overrides.memory = "256M";
    overrides.pids = "64";
    overrides.timeout = "60s";
    overrides.env_set = {"EMBEDDED_BY=embed.cpp"};
    std::vector<std::string> warnings;
    sbx::Policy policy = sbx::profiles::resolve(
        "airgapped", overrides, sbx::profiles::Environment::from_process(), &warnings);
    for (const auto& w : warnings) std::cout << "warning: " << w << "\n";

    int events = 0;
    sbx::RunOptions options;
    options.argv = command;
    options.on_event = [&events](const sbx::Event& e) {
      ++events;
      std::cout << "event: " << nlohmann::json{{"type", e.type}, {"data", e.data}}.dump()
                << std::endl;
    };
    options.on_warning = [](const std::string& w) { std::cout << "warning: " << w << std::endl; };

    std::cout << std::flush;
    sbx::RunResult result = sbx::run(policy, options);
    std::cout << "exit code " << result.exit_code << ", " << events << " events, "
              << result.duration.count() << " ms" << (result.timed_out ? " (timed out)" : "")
              << std::endl;
    return result.exit_code;
  } catch (const sbx::Error& e) {
    std::cerr << "embed: " << e.what() << "\nfix: " << e.fix() << std::endl;
    return sbx::kExitSbxError;
  }
}
