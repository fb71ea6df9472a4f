#include "runtime/shared_baseline.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <sbx/error.hpp>

namespace sbx::runtime {
namespace {

constexpr std::string_view kMagic = "sbx-baseline-1";

// The segment: this header, then `size` bytes of snapshot.
struct Header {
  char magic[16];
  char id[112];  // "KIND:DEV:INO", NUL-terminated
  std::uint64_t size;
  std::uint32_t published;  // set last, under the directory's lock
};

// The directory's lock is held for one snapshot (milliseconds).
constexpr int kAttempts = 100;
constexpr useconds_t kPause = 10000;

int key_of(const std::string& id) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : id) h = (h ^ c) * 16777619u;
  return h == IPC_PRIVATE ? 1 : static_cast<int>(h);
}

bool take_lock(int fd) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (attempt > 0) ::usleep(kPause);
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
  }
  return false;
}

// Segments of sbx's runs that were killed (kill -9: nobody removed them)
// for directories no run has guarded since: made by this user, attached by
// none, their creator gone, and sbx's by their header. Removed at the
// start of a first run. (A creator that is alive is between its segment's
// creation and its attach, or its pid was reused: left alone.)
void remove_stale_segments() {
  std::FILE* f = std::fopen("/proc/sysvipc/shm", "re");
  if (f == nullptr) return;
  char line[512];
  std::vector<int> stale;
  (void)std::fgets(line, sizeof line, f);  // the header
  while (std::fgets(line, sizeof line, f) != nullptr) {
    long long key = 0, shmid = 0, size = 0, cpid = 0, lpid = 0, nattch = 0, uid = 0, gid = 0,
              cuid = 0;
    unsigned perms = 0;
    if (std::sscanf(line, "%lld %lld %o %lld %lld %lld %lld %lld %lld %lld", &key, &shmid, &perms,
                    &size, &cpid, &lpid, &nattch, &uid, &gid, &cuid) != 10)
      continue;
    if (nattch != 0 || cuid != ::geteuid() || (perms & 0777) != 0600 || cpid <= 0 ||
        static_cast<unsigned long long>(size) < sizeof(Header) ||
        !(::kill(static_cast<pid_t>(cpid), 0) != 0 && errno == ESRCH))
      continue;
    stale.push_back(static_cast<int>(shmid));
  }
  std::fclose(f);
  for (const int shmid : stale) {
    void* at = ::shmat(shmid, nullptr, SHM_RDONLY);
    if (at == reinterpret_cast<void*>(-1)) continue;
    const bool ours = std::memcmp(at, kMagic.data(), kMagic.size()) == 0;
    ::shmdt(at);
    struct shmid_ds ds {};
    if (ours && ::shmctl(shmid, IPC_STAT, &ds) == 0 && ds.shm_nattch == 0)
      ::shmctl(shmid, IPC_RMID, nullptr);
  }
}

}  // namespace

SharedBaseline::SharedBaseline(const char* kind, int dir, std::string label)
    : label_(std::move(label)) {
  // Its own open file description: the caller's fd may carry other locks.
  dir_.reset(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat st {};
  if (!dir_ || ::fstat(dir_.get(), &st) != 0)
    throw Error(fmt::format("cannot open {}: {}", label_, std::strerror(errno)));
  // Not the uid: a run of another user (sudo) on the same directory then
  // finds a segment that is not its own, and says so.
  id_ = fmt::format("{}:{}:{}", kind, static_cast<unsigned long long>(st.st_dev),
                    static_cast<unsigned long long>(st.st_ino));
  key_ = key_of(id_);
  if (!take_lock(dir_.get())) {
    throw Error(fmt::format("cannot start: another process has held a lock on {} for over a "
                            "second (sbx takes it for a moment to compare runs there)",
                            label_),
                fmt::format("find it with `fuser {}` and end it, then run again", label_));
  }
  locked_ = true;
  find_published();
}

// The first run's snapshot, when one is published for this directory.
void SharedBaseline::find_published() {
  // Each run keeps its own snapshot (and gives unshared()'s warning).
  const auto not_shared = [this] {
    shared_ = false;
    release_lock();
  };
  const int shmid = ::shmget(key_, 0, 0);
  if (shmid < 0) {
    if (errno != ENOENT) return not_shared();  // EACCES: another user's segment on this key
    // No run guards it: this one is the first. Once per process (the
    // guards' first runs follow each other), killed runs' leftovers go.
    static pid_t swept_in = 0;
    if (std::exchange(swept_in, ::getpid()) != ::getpid()) remove_stale_segments();
    return;
  }
  struct shmid_ds ds {};
  if (::shmctl(shmid, IPC_STAT, &ds) != 0) {
    if (errno != EIDRM && errno != EINVAL) not_shared();
    return;  // else removed meanwhile: the first
  }
  // Made by this user, for this user only (a sandbox cannot make one here).
  const uid_t uid = ::geteuid();
  if (ds.shm_perm.cuid != uid || ds.shm_perm.uid != uid || (ds.shm_perm.mode & 0777) != 0600 ||
      ds.shm_segsz < sizeof(Header))
    return not_shared();
  // Attached by none: the runs it served are gone (killed: nobody removed
  // it). This run is the first.
  if (ds.shm_nattch == 0) {
    ::shmctl(shmid, IPC_RMID, nullptr);
    return;
  }
  void* at = ::shmat(shmid, nullptr, SHM_RDONLY);
  if (at == reinterpret_cast<void*>(-1)) return not_shared();
  Header header;
  std::memcpy(&header, at, sizeof header);
  const bool ours =
      std::string_view(header.magic, strnlen(header.magic, sizeof header.magic)) == kMagic &&
      std::string_view(header.id, strnlen(header.id, sizeof header.id)) == id_ &&
      header.published == 1 && header.size <= ds.shm_segsz - sizeof(Header);
  if (!ours) {  // a key collision with another directory of this user's
    ::shmdt(at);
    return not_shared();
  }
  stored_.emplace(static_cast<const char*>(at) + sizeof(Header), header.size);
  (void)::madvise(at, ds.shm_segsz, MADV_DONTFORK);  // a child of an embedder keeps no attach
  segment_ = at;
  shmid_ = shmid;
  release_lock();
}

SharedBaseline::SharedBaseline(SharedBaseline&& other) noexcept
    : label_(std::move(other.label_)),
      id_(std::move(other.id_)),
      key_(other.key_),
      dir_(std::move(other.dir_)),
      locked_(std::exchange(other.locked_, false)),
      shared_(other.shared_),
      segment_(std::exchange(other.segment_, nullptr)),
      shmid_(other.shmid_),
      stored_(std::move(other.stored_)),
      why_(std::move(other.why_)) {}

void SharedBaseline::publish(const std::string& snapshot) {
  if (!locked_ || segment_ != nullptr) return;  // not the first, or not shared
  const int shmid = ::shmget(key_, sizeof(Header) + snapshot.size(), IPC_CREAT | IPC_EXCL | 0600);
  void* at = shmid < 0 ? reinterpret_cast<void*>(-1) : ::shmat(shmid, nullptr, 0);
  if (at == reinterpret_cast<void*>(-1)) {
    // EEXIST: a key collision; ENOSPC/ENOMEM/EINVAL: the system's limits.
    why_ = std::strerror(errno);
    if (shmid >= 0) ::shmctl(shmid, IPC_RMID, nullptr);
    shared_ = false;
    return release_lock();
  }
  Header header{};
  std::memcpy(header.magic, kMagic.data(), kMagic.size());
  std::memcpy(header.id, id_.data(), std::min(id_.size(), sizeof header.id - 1));
  header.size = snapshot.size();
  std::memcpy(static_cast<char*>(at) + sizeof(Header), snapshot.data(), snapshot.size());
  header.published = 1;
  std::memcpy(at, &header, sizeof header);
  // Read-only from here (no write can slip in through this mapping); kept
  // attached all along, so its count never drops to 0 while this run lives.
  (void)::mprotect(at, sizeof(Header) + snapshot.size(), PROT_READ);
  (void)::madvise(at, sizeof(Header) + snapshot.size(), MADV_DONTFORK);
  segment_ = at;
  shmid_ = shmid;
  release_lock();
}

SharedBaseline::~SharedBaseline() {
  if (segment_ != nullptr) {
    // Under the lock, so that no run attaches between our count and the
    // removal. Without it (held by someone else for a second) the segment
    // stays, and the next start removes it once nobody is attached.
    const bool locked = locked_ || (dir_ && take_lock(dir_.get()));
    locked_ = locked;
    ::shmdt(segment_);
    // Still the segment of our key that this user made (not one that took
    // its id after someone's ipcrm).
    struct shmid_ds ds {};
    if (locked && ::shmctl(shmid_, IPC_STAT, &ds) == 0 && ds.shm_nattch == 0 &&
        ds.shm_perm.__key == key_ && ds.shm_perm.cuid == ::geteuid())
      ::shmctl(shmid_, IPC_RMID, nullptr);
  }
  release_lock();
}

void SharedBaseline::release_lock() {
  if (locked_ && dir_) ::flock(dir_.get(), LOCK_UN);
  locked_ = false;
}

std::string SharedBaseline::unshared() const {
  return fmt::format(
      "runs at the same time cannot share their snapshot of {}: {}. One started while this "
      "sandbox runs would take what it changes there as the original and put it back at its "
      "end: run strict sandboxes there one after another (docs/filesystem.md, Several agents "
      "at once)",
      label_,
      why_.empty() ? fmt::format("the System V shared memory key {:#x} holds a segment that is "
                                 "not sbx's for it (ipcs -m)",
                                 static_cast<unsigned>(key_))
                   : "no shared memory segment could be made (" + why_ + ")");
}

}  // namespace sbx::runtime
