// The generator's copy of seccomp/prebuilt.cpp: the same code without the
// table (SBX_SECCOMP_PREBUILT undefined), since the table is its output. A
// source of its own, so that the table dependency of prebuilt.cpp in the
// library does not become a cycle here.
#include "seccomp/prebuilt.cpp"
