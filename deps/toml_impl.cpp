// toml++'s implementation, compiled into sbx instead of loading
// libtomlplusplus.so at every start (deps/CMakeLists.txt). Same headers and
// configuration (TOML_HEADER_ONLY=0) as the Debian library.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
