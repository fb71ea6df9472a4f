// Placeholder entry point until the CLI lands (issue: Foundation).
#include <sbx/error.hpp>

#include <cstdio>

int main() {
  std::fputs("sbx: not built yet\n", stderr);
  return sbx::kExitSbxError;
}
