/* locksim's server clock shim: LD_PRELOAD it into redis-server to move the server's wall clock.
 *
 * Why not libfaketime: Debian's libfaketime 0.9.10 cannot start Debian's redis-server 7.0.15
 * ("Unexpected recursive calls to clock_gettime()": libfaketime's dlsym allocates, Redis's
 * jemalloc reads the clock while initialising; libfaketime#130, #327, #478). This shim never
 * calls dlsym or malloc: it reaches the kernel by raw syscall(SYS_clock_gettime).
 *
 * Control: LOCKSIM_CLOCK_FILE names a 32-byte file, mapped shared and read-only at load time:
 *   u64 seq        even when stable; the writer makes it odd while it rewrites the rest
 *   i64 offset_ns  how far the clock is ahead of true time at the anchor
 *   f64 rate       how fast the clock runs (1.005 = 0.5 % fast)
 *   i64 anchor_ns  the true CLOCK_REALTIME at which offset_ns held
 * so that faked = real + offset_ns + (rate - 1) * (real - anchor_ns). seq == 0 means "not set".
 * The writer (locksim) updates it with pwrite; the change is seen by the next clock read.
 *
 * What moves: CLOCK_REALTIME(_COARSE), gettimeofday and time: Redis 7.0's key expiry reads
 * mstime() = gettimeofday. What does not: CLOCK_MONOTONIC and every other clock (Redis's
 * timers, ae.c's getMonotonicUs), so they stay monotonic whatever jumps.
 *
 * Cost per clock read: one real syscall (no vDSO: ~0.1-0.3 us instead of ~20 ns) and a
 * seqlock read of one shared page (a few loads, no syscall, no stat).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct control {
    uint64_t seq;
    int64_t offset_ns;
    double rate;
    int64_t anchor_ns;
};

static const volatile struct control *control;

__attribute__((constructor)) static void locksim_clock_init(void) {
    const char *path = getenv("LOCKSIM_CLOCK_FILE");
    if (!path) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    void *m = mmap(NULL, sizeof(struct control), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m != MAP_FAILED) control = m;
}

static int64_t shifted(int64_t real) {
    const volatile struct control *c = control;
    if (!c) return real;
    uint64_t s1, s2;
    int64_t off, anchor;
    double rate;
    int tries = 0;
    do {
        s1 = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
        off = c->offset_ns;
        rate = c->rate;
        anchor = c->anchor_ns;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        s2 = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
    } while (((s1 & 1) || s1 != s2) && ++tries < 100000);
    if (s1 == 0 || (s1 & 1) || s1 != s2) return real;
    double drift = (rate - 1.0) * (double)(real - anchor);
    return real + off + (int64_t)(drift + (drift >= 0 ? 0.5 : -0.5));
}

static void shift_timespec(struct timespec *ts) {
    int64_t ns = shifted((int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec);
    int64_t sec = ns / 1000000000LL, rem = ns % 1000000000LL;
    if (rem < 0) { rem += 1000000000LL; sec -= 1; }
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)rem;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    long r = syscall(SYS_clock_gettime, id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) shift_timespec(ts);
    return (int)r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    if (tz) {
        struct timezone *z = tz;
        z->tz_minuteswest = 0;
        z->tz_dsttime = 0;
    }
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
