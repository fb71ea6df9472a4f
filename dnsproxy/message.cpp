// Strict DNS query parser and response builder. Everything a sandboxed
// program sends is hostile input: bounds are checked before every read, the
// question must be written without compression, and any deviation is an
// error the client sees (FORMERR) rather than something we try to repair.
#include <algorithm>

#include "dnsproxy/dnsproxy.hpp"

namespace sbx::dns {

std::string_view to_string(Rcode rcode) {
  switch (rcode) {
    case Rcode::noerror:
      return "NOERROR";
    case Rcode::formerr:
      return "FORMERR";
    case Rcode::servfail:
      return "SERVFAIL";
    case Rcode::nxdomain:
      return "NXDOMAIN";
    case Rcode::notimp:
      return "NOTIMP";
    case Rcode::refused:
      return "REFUSED";
  }
  return "?";
}

namespace {

constexpr std::size_t kHeader = 12;

std::uint16_t u16(std::span<const std::uint8_t> m, std::size_t at) {
  return static_cast<std::uint16_t>((m[at] << 8) | m[at + 1]);
}

bool name_byte_ok(std::uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

ParseResult fail(ParseResult r, Rcode rcode, std::string why) {
  r.status = ParseStatus::error;
  r.rcode = rcode;
  r.error = std::move(why);
  return r;
}

}  // namespace

ParseResult parse_query(std::span<const std::uint8_t> m, const NameLimits& limits) {
  ParseResult r;
  if (m.size() < kHeader) {
    r.error = "shorter than a DNS header";
    return r;  // drop: no ID to answer to
  }
  Query& q = r.query;
  q.id = u16(m, 0);
  std::uint8_t flags1 = m[2], flags2 = m[3];
  if (flags1 & 0x80) {
    r.error = "a response (QR=1) sent to the resolver";
    return r;  // drop: answering responses enables reflection loops
  }
  q.opcode = (flags1 >> 3) & 0x0f;
  q.rd = flags1 & 0x01;
  q.cd = flags2 & 0x10;
  if (q.opcode != 0) return fail(std::move(r), Rcode::notimp, "opcode is not QUERY");
  std::uint16_t qd = u16(m, 4), an = u16(m, 6), ns = u16(m, 8), ar = u16(m, 10);
  if (qd != 1) return fail(std::move(r), Rcode::formerr, "QDCOUNT is not 1");
  if (an != 0 || ns != 0) return fail(std::move(r), Rcode::formerr, "answer/authority in a query");
  if (ar > 1) return fail(std::move(r), Rcode::formerr, "more than one additional record");

  // QNAME: plain labels only. A pointer here is legal DNS but never needed
  // in a one-question query, and refusing it removes loop handling entirely.
  std::size_t at = kHeader;
  std::string name;
  std::size_t wire = 0;
  while (true) {
    if (at >= m.size()) return fail(std::move(r), Rcode::formerr, "question truncated");
    std::uint8_t len = m[at++];
    ++wire;
    if (len == 0) break;
    if (len & 0xc0) {
      return fail(
          std::move(r), Rcode::formerr,
          (len & 0xc0) == 0xc0 ? "compression pointer in the question" : "extended label type");
    }
    if (len > limits.max_label || len > 63) {
      return fail(std::move(r), Rcode::formerr,
                  "label longer than " +
                      std::to_string(std::min<std::size_t>(limits.max_label, 63)) + " bytes");
    }
    if (m.size() - at < len) return fail(std::move(r), Rcode::formerr, "label truncated");
    wire += len;
    if (wire > 255)
      return fail(std::move(r), Rcode::formerr, "name longer than 255 bytes on the wire");
    if (!name.empty()) name += '.';
    for (std::size_t i = 0; i < len; ++i) {
      std::uint8_t c = m[at + i];
      if (c >= 'A' && c <= 'Z') c = static_cast<std::uint8_t>(c - 'A' + 'a');
      if (!name_byte_ok(c)) {
        return fail(std::move(r), Rcode::formerr,
                    "byte outside letters, digits, '-', '_' in the name");
      }
      name += static_cast<char>(c);
    }
    at += len;
  }
  if (name.size() > limits.max_name || name.size() > 253) {
    return fail(std::move(r), Rcode::formerr,
                "name longer than " + std::to_string(std::min<std::size_t>(limits.max_name, 253)) +
                    " characters");
  }
  if (m.size() - at < 4) return fail(std::move(r), Rcode::formerr, "question truncated");
  q.name = std::move(name);
  q.type = u16(m, at);
  q.klass = u16(m, at + 2);
  at += 4;
  r.question_parsed = true;

  if (ar == 1) {
    // OPT (RFC 6891): root owner, type 41, class = payload size, TTL = ext
    // rcode | version | flags, then options (skipped, lengths checked).
    if (m.size() - at < 11)
      return fail(std::move(r), Rcode::formerr, "additional record truncated");
    if (m[at] != 0)
      return fail(std::move(r), Rcode::formerr, "additional record is not an OPT with root owner");
    std::uint16_t type = u16(m, at + 1);
    if (type != qtype::OPT)
      return fail(std::move(r), Rcode::formerr, "additional record is not OPT");
    std::uint16_t payload = u16(m, at + 3);
    std::uint8_t version = m[at + 6];
    std::uint16_t rdlen = u16(m, at + 9);
    at += 11;
    if (version != 0) return fail(std::move(r), Rcode::formerr, "EDNS version is not 0");
    if (m.size() - at < rdlen) return fail(std::move(r), Rcode::formerr, "OPT data truncated");
    std::size_t end = at + rdlen;
    while (at < end) {
      if (end - at < 4) return fail(std::move(r), Rcode::formerr, "EDNS option truncated");
      std::uint16_t olen = u16(m, at + 2);
      at += 4;
      if (end - at < olen) return fail(std::move(r), Rcode::formerr, "EDNS option truncated");
      at += olen;
    }
    q.has_opt = true;
    q.udp_payload = std::clamp<std::uint16_t>(payload, 512, kEdnsPayload);
  }
  if (at != m.size()) return fail(std::move(r), Rcode::formerr, "bytes after the message");
  if (q.klass != kClassIn) return fail(std::move(r), Rcode::refused, "class is not IN");
  r.status = ParseStatus::ok;
  return r;
}

namespace {

class Writer {
 public:
  void u8(std::uint8_t v) { out.push_back(v); }
  void u16(std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  // Names come from our own parser or from c-ares: already valid, but check
  // label sizes again so a bad caller cannot produce a corrupt message.
  bool name(std::string_view n) {
    std::size_t start = 0;
    while (start < n.size()) {
      auto dot = n.find('.', start);
      if (dot == std::string_view::npos) dot = n.size();
      std::size_t len = dot - start;
      if (len == 0 || len > 63) return false;
      u8(static_cast<std::uint8_t>(len));
      out.insert(out.end(), n.begin() + static_cast<std::ptrdiff_t>(start),
                 n.begin() + static_cast<std::ptrdiff_t>(dot));
      start = dot + 1;
    }
    u8(0);
    return true;
  }
  std::vector<std::uint8_t> out;
};

void write_header(Writer& w, const Query& q, Rcode rcode, bool tc, std::uint16_t qd,
                  std::uint16_t an, std::uint16_t ar) {
  w.u16(q.id);
  std::uint8_t f1 =
      static_cast<std::uint8_t>(0x80 | (q.opcode << 3) | (tc ? 0x02 : 0) | (q.rd ? 1 : 0));
  std::uint8_t f2 =
      static_cast<std::uint8_t>(0x80 | (q.cd ? 0x10 : 0) | static_cast<std::uint8_t>(rcode));
  w.u8(f1);
  w.u8(f2);
  w.u16(qd);
  w.u16(an);
  w.u16(0);
  w.u16(ar);
}

void write_opt(Writer& w) {
  w.u8(0);
  w.u16(qtype::OPT);
  w.u16(kEdnsPayload);
  w.u32(0);
  w.u16(0);
}

}  // namespace

std::vector<std::uint8_t> build_response(const Query& q, Rcode rcode,
                                         std::span<const Record> answers, std::uint32_t ttl_cap,
                                         std::size_t max_size) {
  auto build = [&](bool with_answers) {
    Writer w;
    std::uint16_t an = with_answers ? static_cast<std::uint16_t>(answers.size()) : 0;
    write_header(w, q, rcode, !with_answers && !answers.empty(), 1, an, q.has_opt ? 1 : 0);
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.klass);
    std::uint16_t written = 0;
    if (with_answers) {
      for (const auto& rec : answers) {
        std::size_t mark = w.out.size();
        bool ok = w.name(rec.name);
        w.u16(rec.type);
        w.u16(kClassIn);
        w.u32(std::min(rec.ttl, ttl_cap));
        if (ok && rec.type == qtype::A && rec.address.family == AF_INET) {
          w.u16(4);
          w.out.insert(w.out.end(), rec.address.bytes.begin(), rec.address.bytes.begin() + 4);
        } else if (ok && rec.type == qtype::AAAA && rec.address.family == AF_INET6) {
          w.u16(16);
          w.out.insert(w.out.end(), rec.address.bytes.begin(), rec.address.bytes.end());
        } else if (ok && rec.type == qtype::CNAME) {
          std::size_t len_at = w.out.size();
          w.u16(0);
          std::size_t start = w.out.size();
          if (!w.name(rec.target)) ok = false;
          std::size_t len = w.out.size() - start;
          w.out[len_at] = static_cast<std::uint8_t>(len >> 8);
          w.out[len_at + 1] = static_cast<std::uint8_t>(len);
        } else {
          ok = false;
        }
        if (!ok) {
          w.out.resize(mark);  // skip a record we cannot represent
          continue;
        }
        ++written;
      }
      w.out[6] = static_cast<std::uint8_t>(written >> 8);
      w.out[7] = static_cast<std::uint8_t>(written);
    }
    if (q.has_opt) write_opt(w);
    return std::move(w.out);
  };
  auto full = build(true);
  if (full.size() <= max_size) return full;
  return build(false);
}

std::vector<std::uint8_t> build_error_response(const ParseResult& parsed) {
  if (parsed.question_parsed) return build_response(parsed.query, parsed.rcode);
  // No usable question: header only (QDCOUNT=0), as RFC 1035 servers do.
  Writer w;
  write_header(w, parsed.query, parsed.rcode, false, 0, 0, 0);
  return std::move(w.out);
}

}  // namespace sbx::dns
