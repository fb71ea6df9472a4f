// Temporary: sbx::run until the launcher lands (issue: Launcher core).
#include <sbx/sbx.hpp>

namespace sbx {

RunResult run(const Policy&, const RunOptions&) {
  throw Error("sandbox launch is not implemented yet", "build a newer sbx");
}

}  // namespace sbx
