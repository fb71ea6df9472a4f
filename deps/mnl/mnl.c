/*
 * sbx's own implementation of the libmnl functions that sbx's netfilter/
 * code and libnftnl.a call (plus the few siblings they need: batch reset,
 * seq/portid checks), ABI- and behaviour-compatible with libmnl 1.0.4.
 *
 * Why: the sbx executable is linked fully static (start-up time: the dynamic
 * loader costs more than the rest of a sandbox start), and Debian ships
 * libmnl only as a shared library (no libmnl.a). libsbx.so and the tests keep
 * linking the system libmnl; tests/unit/netfilter/mnl_compat_test.cpp builds
 * this file a second time with every symbol prefixed (SBX_MNL_PREFIX) and
 * compares it with the system library, byte for byte and errno for errno.
 *
 * Written from libmnl's documented API (libmnl/libmnl.h) and the netlink ABI
 * (linux/netlink.h); the prototypes come from the system header, so the
 * compiler checks every signature.
 */
#define _GNU_SOURCE

#ifdef SBX_MNL_PREFIX
#define SBX_MNL_CAT2(a, b) a##b
#define SBX_MNL_CAT(a, b) SBX_MNL_CAT2(a, b)
#define SBX_MNL_NAME(n) SBX_MNL_CAT(SBX_MNL_PREFIX, n)
#define mnl_attr_get_len SBX_MNL_NAME(mnl_attr_get_len)
#define mnl_attr_get_payload SBX_MNL_NAME(mnl_attr_get_payload)
#define mnl_attr_get_payload_len SBX_MNL_NAME(mnl_attr_get_payload_len)
#define mnl_attr_get_str SBX_MNL_NAME(mnl_attr_get_str)
#define mnl_attr_get_type SBX_MNL_NAME(mnl_attr_get_type)
#define mnl_attr_get_u16 SBX_MNL_NAME(mnl_attr_get_u16)
#define mnl_attr_get_u32 SBX_MNL_NAME(mnl_attr_get_u32)
#define mnl_attr_get_u64 SBX_MNL_NAME(mnl_attr_get_u64)
#define mnl_attr_get_u8 SBX_MNL_NAME(mnl_attr_get_u8)
#define mnl_attr_nest_end SBX_MNL_NAME(mnl_attr_nest_end)
#define mnl_attr_nest_start SBX_MNL_NAME(mnl_attr_nest_start)
#define mnl_attr_next SBX_MNL_NAME(mnl_attr_next)
#define mnl_attr_ok SBX_MNL_NAME(mnl_attr_ok)
#define mnl_attr_parse SBX_MNL_NAME(mnl_attr_parse)
#define mnl_attr_parse_nested SBX_MNL_NAME(mnl_attr_parse_nested)
#define mnl_attr_put SBX_MNL_NAME(mnl_attr_put)
#define mnl_attr_put_str SBX_MNL_NAME(mnl_attr_put_str)
#define mnl_attr_put_strz SBX_MNL_NAME(mnl_attr_put_strz)
#define mnl_attr_put_u16 SBX_MNL_NAME(mnl_attr_put_u16)
#define mnl_attr_put_u32 SBX_MNL_NAME(mnl_attr_put_u32)
#define mnl_attr_put_u64 SBX_MNL_NAME(mnl_attr_put_u64)
#define mnl_attr_put_u8 SBX_MNL_NAME(mnl_attr_put_u8)
#define mnl_attr_type_valid SBX_MNL_NAME(mnl_attr_type_valid)
#define mnl_attr_validate SBX_MNL_NAME(mnl_attr_validate)
#define mnl_cb_run SBX_MNL_NAME(mnl_cb_run)
#define mnl_nlmsg_batch_current SBX_MNL_NAME(mnl_nlmsg_batch_current)
#define mnl_nlmsg_batch_head SBX_MNL_NAME(mnl_nlmsg_batch_head)
#define mnl_nlmsg_batch_is_empty SBX_MNL_NAME(mnl_nlmsg_batch_is_empty)
#define mnl_nlmsg_batch_next SBX_MNL_NAME(mnl_nlmsg_batch_next)
#define mnl_nlmsg_batch_reset SBX_MNL_NAME(mnl_nlmsg_batch_reset)
#define mnl_nlmsg_batch_size SBX_MNL_NAME(mnl_nlmsg_batch_size)
#define mnl_nlmsg_batch_start SBX_MNL_NAME(mnl_nlmsg_batch_start)
#define mnl_nlmsg_batch_stop SBX_MNL_NAME(mnl_nlmsg_batch_stop)
#define mnl_nlmsg_get_payload SBX_MNL_NAME(mnl_nlmsg_get_payload)
#define mnl_nlmsg_next SBX_MNL_NAME(mnl_nlmsg_next)
#define mnl_nlmsg_ok SBX_MNL_NAME(mnl_nlmsg_ok)
#define mnl_nlmsg_portid_ok SBX_MNL_NAME(mnl_nlmsg_portid_ok)
#define mnl_nlmsg_put_extra_header SBX_MNL_NAME(mnl_nlmsg_put_extra_header)
#define mnl_nlmsg_put_header SBX_MNL_NAME(mnl_nlmsg_put_header)
#define mnl_nlmsg_seq_ok SBX_MNL_NAME(mnl_nlmsg_seq_ok)
#define mnl_socket_bind SBX_MNL_NAME(mnl_socket_bind)
#define mnl_socket_close SBX_MNL_NAME(mnl_socket_close)
#define mnl_socket_get_fd SBX_MNL_NAME(mnl_socket_get_fd)
#define mnl_socket_get_portid SBX_MNL_NAME(mnl_socket_get_portid)
#define mnl_socket_open SBX_MNL_NAME(mnl_socket_open)
#define mnl_socket_recvfrom SBX_MNL_NAME(mnl_socket_recvfrom)
#define mnl_socket_sendto SBX_MNL_NAME(mnl_socket_sendto)
#endif

#include <errno.h>
#include <libmnl/libmnl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Sockets                                                            */
/* ------------------------------------------------------------------ */

struct mnl_socket {
  int fd;
  struct sockaddr_nl addr; /* the local address, filled in by bind */
};

struct mnl_socket* mnl_socket_open(int bus) {
  struct mnl_socket* nl = calloc(1, sizeof(*nl));
  if (nl == NULL) return NULL;
  nl->fd = socket(AF_NETLINK, SOCK_RAW, bus);
  if (nl->fd == -1) {
    int saved = errno;
    free(nl);
    errno = saved;
    return NULL;
  }
  return nl;
}

int mnl_socket_get_fd(const struct mnl_socket* nl) {
  return nl->fd;
}

unsigned int mnl_socket_get_portid(const struct mnl_socket* nl) {
  return nl->addr.nl_pid;
}

int mnl_socket_bind(struct mnl_socket* nl, unsigned int groups, pid_t pid) {
  nl->addr.nl_family = AF_NETLINK;
  nl->addr.nl_groups = groups;
  nl->addr.nl_pid = (__u32)pid;
  int ret = bind(nl->fd, (struct sockaddr*)&nl->addr, sizeof(nl->addr));
  if (ret < 0) return ret;
  /* The kernel picks the port id when pid is MNL_SOCKET_AUTOPID. */
  socklen_t addr_len = sizeof(nl->addr);
  ret = getsockname(nl->fd, (struct sockaddr*)&nl->addr, &addr_len);
  if (ret < 0) return ret;
  if (addr_len != sizeof(nl->addr) || nl->addr.nl_family != AF_NETLINK) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

ssize_t mnl_socket_sendto(const struct mnl_socket* nl, const void* buf, size_t len) {
  static const struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  return sendto(nl->fd, buf, len, 0, (const struct sockaddr*)&kernel, sizeof(kernel));
}

ssize_t mnl_socket_recvfrom(const struct mnl_socket* nl, void* buf, size_t bufsiz) {
  struct sockaddr_nl addr;
  struct iovec iov = {.iov_base = buf, .iov_len = bufsiz};
  struct msghdr msg = {
      .msg_name = &addr,
      .msg_namelen = sizeof(addr),
      .msg_iov = &iov,
      .msg_iovlen = 1,
  };
  ssize_t ret = recvmsg(nl->fd, &msg, 0);
  if (ret == -1) return ret;
  if (msg.msg_flags & MSG_TRUNC) {
    errno = ENOSPC;
    return -1;
  }
  if (msg.msg_namelen != sizeof(addr)) {
    errno = EINVAL;
    return -1;
  }
  return ret;
}

int mnl_socket_close(struct mnl_socket* nl) {
  int ret = close(nl->fd);
  free(nl);
  return ret;
}

/* ------------------------------------------------------------------ */
/* Messages                                                           */
/* ------------------------------------------------------------------ */

struct nlmsghdr* mnl_nlmsg_put_header(void* buf) {
  struct nlmsghdr* nlh = buf;
  memset(buf, 0, MNL_NLMSG_HDRLEN);
  nlh->nlmsg_len = MNL_NLMSG_HDRLEN;
  return nlh;
}

void* mnl_nlmsg_put_extra_header(struct nlmsghdr* nlh, size_t size) {
  char* ptr = (char*)nlh + nlh->nlmsg_len;
  size_t len = MNL_ALIGN(size);
  nlh->nlmsg_len += len;
  memset(ptr, 0, len);
  return ptr;
}

void* mnl_nlmsg_get_payload(const struct nlmsghdr* nlh) {
  return (char*)nlh + MNL_NLMSG_HDRLEN;
}

static void* nlmsg_tail(const struct nlmsghdr* nlh) {
  return (char*)nlh + MNL_ALIGN(nlh->nlmsg_len);
}

bool mnl_nlmsg_ok(const struct nlmsghdr* nlh, int len) {
  return len >= (int)sizeof(struct nlmsghdr) && nlh->nlmsg_len >= sizeof(struct nlmsghdr) &&
         (int)nlh->nlmsg_len <= len;
}

struct nlmsghdr* mnl_nlmsg_next(const struct nlmsghdr* nlh, int* len) {
  *len -= MNL_ALIGN(nlh->nlmsg_len);
  return (struct nlmsghdr*)((char*)nlh + MNL_ALIGN(nlh->nlmsg_len));
}

/* A zero sequence number / port id on either side matches anything. */
bool mnl_nlmsg_seq_ok(const struct nlmsghdr* nlh, unsigned int seq) {
  return nlh->nlmsg_seq && seq ? nlh->nlmsg_seq == seq : true;
}

bool mnl_nlmsg_portid_ok(const struct nlmsghdr* nlh, unsigned int portid) {
  return nlh->nlmsg_pid && portid ? nlh->nlmsg_pid == portid : true;
}

/* ------------------------------------------------------------------ */
/* Batches                                                            */
/* ------------------------------------------------------------------ */

struct mnl_nlmsg_batch {
  char* buf;     /* start of the caller's buffer */
  size_t limit;  /* bytes the batch may use */
  size_t buflen; /* bytes of complete messages so far */
  char* cur;     /* the message being built */
  bool overflow; /* cur did not fit: reset moves it to the start */
};

struct mnl_nlmsg_batch* mnl_nlmsg_batch_start(void* buf, size_t limit) {
  struct mnl_nlmsg_batch* b = malloc(sizeof(*b));
  if (b == NULL) return NULL;
  b->buf = buf;
  b->limit = limit;
  b->buflen = 0;
  b->cur = buf;
  b->overflow = false;
  return b;
}

void mnl_nlmsg_batch_stop(struct mnl_nlmsg_batch* b) {
  free(b);
}

bool mnl_nlmsg_batch_next(struct mnl_nlmsg_batch* b) {
  const struct nlmsghdr* nlh = (const struct nlmsghdr*)b->cur;
  if (b->buflen + nlh->nlmsg_len > b->limit) {
    b->overflow = true;
    return false;
  }
  b->cur = b->buf + b->buflen + nlh->nlmsg_len;
  b->buflen += nlh->nlmsg_len;
  return true;
}

void mnl_nlmsg_batch_reset(struct mnl_nlmsg_batch* b) {
  if (b->overflow) {
    const struct nlmsghdr* nlh = (const struct nlmsghdr*)b->cur;
    memcpy(b->buf, b->cur, nlh->nlmsg_len);
    b->buflen = nlh->nlmsg_len;
    b->cur = b->buf + b->buflen;
    b->overflow = false;
  } else {
    b->buflen = 0;
    b->cur = b->buf;
  }
}

size_t mnl_nlmsg_batch_size(struct mnl_nlmsg_batch* b) {
  return b->buflen;
}

void* mnl_nlmsg_batch_head(struct mnl_nlmsg_batch* b) {
  return b->buf;
}

void* mnl_nlmsg_batch_current(struct mnl_nlmsg_batch* b) {
  return b->cur;
}

bool mnl_nlmsg_batch_is_empty(struct mnl_nlmsg_batch* b) {
  return b->buflen == 0;
}

/* ------------------------------------------------------------------ */
/* Attributes                                                         */
/* ------------------------------------------------------------------ */

uint16_t mnl_attr_get_type(const struct nlattr* attr) {
  return attr->nla_type & NLA_TYPE_MASK;
}

uint16_t mnl_attr_get_len(const struct nlattr* attr) {
  return attr->nla_len;
}

uint16_t mnl_attr_get_payload_len(const struct nlattr* attr) {
  return (uint16_t)(attr->nla_len - MNL_ATTR_HDRLEN);
}

void* mnl_attr_get_payload(const struct nlattr* attr) {
  return (char*)attr + MNL_ATTR_HDRLEN;
}

bool mnl_attr_ok(const struct nlattr* attr, int len) {
  return len >= (int)sizeof(struct nlattr) && attr->nla_len >= sizeof(struct nlattr) &&
         (int)attr->nla_len <= len;
}

struct nlattr* mnl_attr_next(const struct nlattr* attr) {
  return (struct nlattr*)((char*)attr + MNL_ALIGN(attr->nla_len));
}

int mnl_attr_type_valid(const struct nlattr* attr, uint16_t max) {
  if (mnl_attr_get_type(attr) > max) {
    errno = EOPNOTSUPP;
    return -1;
  }
  return 1;
}

/* Exact payload length of the fixed-size types; 0 = no fixed length. */
static const size_t attr_type_len[MNL_TYPE_MAX] = {
    [MNL_TYPE_U8] = sizeof(uint8_t),     [MNL_TYPE_U16] = sizeof(uint16_t),
    [MNL_TYPE_U32] = sizeof(uint32_t),   [MNL_TYPE_U64] = sizeof(uint64_t),
    [MNL_TYPE_MSECS] = sizeof(uint64_t),
};

static int attr_validate(const struct nlattr* attr, enum mnl_attr_data_type type, size_t exp_len) {
  uint16_t attr_len = mnl_attr_get_payload_len(attr);
  const char* attr_data = mnl_attr_get_payload(attr);

  if (attr_len < exp_len) {
    errno = ERANGE;
    return -1;
  }
  switch (type) {
    case MNL_TYPE_FLAG:
      if (attr_len > 0) {
        errno = ERANGE;
        return -1;
      }
      break;
    case MNL_TYPE_NUL_STRING:
      if (attr_len == 0) {
        errno = ERANGE;
        return -1;
      }
      if (attr_data[attr_len - 1] != '\0') {
        errno = EINVAL;
        return -1;
      }
      break;
    case MNL_TYPE_STRING:
      if (attr_len == 0) {
        errno = ERANGE;
        return -1;
      }
      break;
    case MNL_TYPE_NESTED:
      /* Empty nests are allowed; otherwise at least one attribute header. */
      if (attr_len == 0) break;
      if (attr_len < MNL_ATTR_HDRLEN) {
        errno = ERANGE;
        return -1;
      }
      break;
    default:
      break;
  }
  if (exp_len && attr_len > exp_len) {
    errno = ERANGE;
    return -1;
  }
  return 0;
}

int mnl_attr_validate(const struct nlattr* attr, enum mnl_attr_data_type type) {
  if ((unsigned)type >= MNL_TYPE_MAX) {
    errno = EINVAL;
    return -1;
  }
  return attr_validate(attr, type, attr_type_len[type]);
}

/* Calls cb for each attribute in [start, start + len) until cb returns
 * MNL_CB_STOP or MNL_CB_ERROR; returns the last callback's result. */
static int attr_parse(const char* start, size_t len, mnl_attr_cb_t cb, void* data) {
  int ret = MNL_CB_OK;
  const struct nlattr* attr = (const struct nlattr*)start;
  while (mnl_attr_ok(attr, (int)(start + len - (const char*)attr))) {
    ret = cb(attr, data);
    if (ret <= MNL_CB_STOP) return ret;
    attr = mnl_attr_next(attr);
  }
  return ret;
}

int mnl_attr_parse(const struct nlmsghdr* nlh, unsigned int offset, mnl_attr_cb_t cb, void* data) {
  const char* start = (const char*)mnl_nlmsg_get_payload(nlh) + MNL_ALIGN(offset);
  const char* tail = nlmsg_tail(nlh);
  return attr_parse(start, (size_t)(tail - start), cb, data);
}

int mnl_attr_parse_nested(const struct nlattr* nested, mnl_attr_cb_t cb, void* data) {
  return attr_parse(mnl_attr_get_payload(nested), mnl_attr_get_payload_len(nested), cb, data);
}

uint8_t mnl_attr_get_u8(const struct nlattr* attr) {
  return *(const uint8_t*)mnl_attr_get_payload(attr);
}

uint16_t mnl_attr_get_u16(const struct nlattr* attr) {
  return *(const uint16_t*)mnl_attr_get_payload(attr);
}

uint32_t mnl_attr_get_u32(const struct nlattr* attr) {
  return *(const uint32_t*)mnl_attr_get_payload(attr);
}

uint64_t mnl_attr_get_u64(const struct nlattr* attr) {
  /* The payload is only 4-byte aligned. */
  uint64_t v;
  memcpy(&v, mnl_attr_get_payload(attr), sizeof(v));
  return v;
}

const char* mnl_attr_get_str(const struct nlattr* attr) {
  return mnl_attr_get_payload(attr);
}

void mnl_attr_put(struct nlmsghdr* nlh, uint16_t type, size_t len, const void* data) {
  struct nlattr* attr = nlmsg_tail(nlh);
  uint16_t payload_len = (uint16_t)(MNL_ATTR_HDRLEN + len);
  attr->nla_type = type;
  attr->nla_len = payload_len;
  char* payload = mnl_attr_get_payload(attr);
  if (len > 0) memcpy(payload, data, len);
  size_t pad = MNL_ALIGN(len) - len;
  if (pad > 0) memset(payload + len, 0, pad);
  nlh->nlmsg_len += MNL_ALIGN(payload_len);
}

void mnl_attr_put_u8(struct nlmsghdr* nlh, uint16_t type, uint8_t data) {
  mnl_attr_put(nlh, type, sizeof(data), &data);
}

void mnl_attr_put_u16(struct nlmsghdr* nlh, uint16_t type, uint16_t data) {
  mnl_attr_put(nlh, type, sizeof(data), &data);
}

void mnl_attr_put_u32(struct nlmsghdr* nlh, uint16_t type, uint32_t data) {
  mnl_attr_put(nlh, type, sizeof(data), &data);
}

void mnl_attr_put_u64(struct nlmsghdr* nlh, uint16_t type, uint64_t data) {
  mnl_attr_put(nlh, type, sizeof(data), &data);
}

void mnl_attr_put_str(struct nlmsghdr* nlh, uint16_t type, const char* data) {
  mnl_attr_put(nlh, type, strlen(data), data);
}

void mnl_attr_put_strz(struct nlmsghdr* nlh, uint16_t type, const char* data) {
  mnl_attr_put(nlh, type, strlen(data) + 1, data);
}

struct nlattr* mnl_attr_nest_start(struct nlmsghdr* nlh, uint16_t type) {
  struct nlattr* start = nlmsg_tail(nlh);
  /* nla_len is set by mnl_attr_nest_end. */
  start->nla_type = NLA_F_NESTED | type;
  nlh->nlmsg_len += MNL_ATTR_HDRLEN;
  return start;
}

void mnl_attr_nest_end(struct nlmsghdr* nlh, struct nlattr* start) {
  start->nla_len = (uint16_t)((char*)nlmsg_tail(nlh) - (char*)start);
}

/* ------------------------------------------------------------------ */
/* Callbacks                                                          */
/* ------------------------------------------------------------------ */

static int cb_noop(const struct nlmsghdr* nlh, void* data) {
  (void)nlh;
  (void)data;
  return MNL_CB_OK;
}

static int cb_stop(const struct nlmsghdr* nlh, void* data) {
  (void)nlh;
  (void)data;
  return MNL_CB_STOP;
}

/* NLMSG_ERROR: error 0 is an acknowledgement (stop, errno 0); anything else
 * sets errno (subsystems use either sign) and fails. */
static int cb_error(const struct nlmsghdr* nlh, void* data) {
  (void)data;
  const struct nlmsgerr* err = mnl_nlmsg_get_payload(nlh);
  if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(struct nlmsgerr)) {
    errno = EBADMSG;
    return MNL_CB_ERROR;
  }
  errno = err->error < 0 ? -err->error : err->error;
  return err->error == 0 ? MNL_CB_STOP : MNL_CB_ERROR;
}

static const mnl_cb_t default_ctl_cb[NLMSG_MIN_TYPE] = {
    [NLMSG_NOOP] = cb_noop,
    [NLMSG_ERROR] = cb_error,
    [NLMSG_DONE] = cb_stop,
    [NLMSG_OVERRUN] = cb_noop,
};

int mnl_cb_run(const void* buf, size_t numbytes, unsigned int seq, unsigned int portid,
               mnl_cb_t cb_data, void* data) {
  int ret = MNL_CB_OK;
  int len = (int)numbytes;
  const struct nlmsghdr* nlh = buf;

  while (mnl_nlmsg_ok(nlh, len)) {
    if (!mnl_nlmsg_portid_ok(nlh, portid)) {
      errno = ESRCH;
      return -1;
    }
    if (!mnl_nlmsg_seq_ok(nlh, seq)) {
      errno = EPROTO;
      return -1;
    }
    if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) {
      errno = EINTR;
      return -1;
    }
    if (nlh->nlmsg_type >= NLMSG_MIN_TYPE) {
      if (cb_data != NULL) {
        ret = cb_data(nlh, data);
        if (ret <= MNL_CB_STOP) return ret;
      }
    } else if (default_ctl_cb[nlh->nlmsg_type] != NULL) {
      ret = default_ctl_cb[nlh->nlmsg_type](nlh, data);
      if (ret <= MNL_CB_STOP) return ret;
    }
    nlh = mnl_nlmsg_next(nlh, &len);
  }
  return ret;
}
