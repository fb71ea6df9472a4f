// A small classic-BPF interpreter for seccomp programs, so unit tests can
// run the compiled filter against any syscall number, architecture and
// argument values (including ones no real process could easily produce).
#pragma once

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace sbx::seccomp::test {

inline std::uint32_t bpf_eval(const std::vector<sock_filter>& prog, const seccomp_data& data) {
  std::uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};
  const auto* bytes = reinterpret_cast<const unsigned char*>(&data);
  for (std::size_t pc = 0; pc < prog.size(); ++pc) {
    const sock_filter& i = prog[pc];
    switch (BPF_CLASS(i.code)) {
      case BPF_LD:
        if (BPF_MODE(i.code) == BPF_ABS && BPF_SIZE(i.code) == BPF_W) {
          if (i.k + 4 > sizeof data) throw std::runtime_error("bpf: load out of range");
          std::memcpy(&a, bytes + i.k, 4);
        } else if (BPF_MODE(i.code) == BPF_IMM) {
          a = i.k;
        } else if (BPF_MODE(i.code) == BPF_MEM) {
          a = mem[i.k];
        } else {
          throw std::runtime_error("bpf: unsupported load");
        }
        break;
      case BPF_LDX:
        if (BPF_MODE(i.code) == BPF_IMM)
          x = i.k;
        else if (BPF_MODE(i.code) == BPF_MEM)
          x = mem[i.k];
        else
          throw std::runtime_error("bpf: unsupported ldx");
        break;
      case BPF_ST:
        mem[i.k] = a;
        break;
      case BPF_STX:
        mem[i.k] = x;
        break;
      case BPF_ALU: {
        const std::uint32_t v = BPF_SRC(i.code) == BPF_X ? x : i.k;
        switch (BPF_OP(i.code)) {
          case BPF_ADD:
            a += v;
            break;
          case BPF_SUB:
            a -= v;
            break;
          case BPF_MUL:
            a *= v;
            break;
          case BPF_DIV:
            a = v ? a / v : 0;
            break;
          case BPF_AND:
            a &= v;
            break;
          case BPF_OR:
            a |= v;
            break;
          case BPF_LSH:
            a <<= v;
            break;
          case BPF_RSH:
            a >>= v;
            break;
          case BPF_NEG:
            a = -a;
            break;
          default:
            throw std::runtime_error("bpf: unsupported alu");
        }
        break;
      }
      case BPF_JMP: {
        if (BPF_OP(i.code) == BPF_JA) {
          pc += i.k;
          break;
        }
        const std::uint32_t v = BPF_SRC(i.code) == BPF_X ? x : i.k;
        bool t = false;
        switch (BPF_OP(i.code)) {
          case BPF_JEQ:
            t = a == v;
            break;
          case BPF_JGT:
            t = a > v;
            break;
          case BPF_JGE:
            t = a >= v;
            break;
          case BPF_JSET:
            t = (a & v) != 0;
            break;
          default:
            throw std::runtime_error("bpf: unsupported jump");
        }
        pc += t ? i.jt : i.jf;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(i.code) == BPF_A ? a : i.k;
      case BPF_MISC:
        if (BPF_MISCOP(i.code) == BPF_TAX)
          x = a;
        else
          a = x;
        break;
      default:
        throw std::runtime_error("bpf: unsupported class");
    }
  }
  throw std::runtime_error("bpf: fell off the end");
}

}  // namespace sbx::seccomp::test
