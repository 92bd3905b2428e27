/* LD_PRELOAD fault injector for the crash-safety tests (tests/test_crash_points.py).
 *
 * Counts the write-type system calls (write, pwrite, pwrite64, writev, pwritev) that the
 * process makes to files whose path contains $KILLWRITE_MATCH and ends the process with
 * _exit(86) just before the n-th of them, so that call never happens: what is on disk is then
 * exactly what a SIGKILL between two system calls leaves (the page cache outlives a killed
 * process; a power cut is another matter).  n comes from $KILLWRITE_AT (counting from the
 * start) or from a call of killwrite_arm(file, n) (counting from that call, for the path fragment
 * file, or the one already set if NULL; through ctypes, e.g. once the file is laid out).  With $KILLWRITE_COUNT set, the number of matching calls since the
 * last arming is written to that file at a normal exit, so a test can size its sweep.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long target = 0, seen = 0;
static int ready = 0;
static const char *match = NULL;

static void report(void) {
    const char *out = getenv("KILLWRITE_COUNT");
    if (out) {
        FILE *f = fopen(out, "w");
        if (f) { fprintf(f, "%ld\n", seen); fclose(f); }
    }
}

static void init(void) {
    if (ready) return;
    ready = 1;
    const char *at = getenv("KILLWRITE_AT");
    match = getenv("KILLWRITE_MATCH");
    if (at) target = atol(at);
    atexit(report);
}

void killwrite_arm(const char *file, long n) {
    static char buf[PATH_MAX];
    init();
    if (file) {
        strncpy(buf, file, sizeof buf - 1);
        match = buf;
    }
    target = n;
    seen = 0;
}

static int matches(int fd) {
    char link[64], path[PATH_MAX];
    if (!match) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strstr(path, match) != NULL;
}

static void maybe_die(int fd) {
    init();
    if (!matches(fd)) return;
    seen++;
    if (target > 0 && seen >= target) _exit(86);
}

#define REAL(name, ret, ...) \
    static ret (*real)(__VA_ARGS__) = NULL; \
    if (!real) real = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, name);

ssize_t write(int fd, const void *buf, size_t n) {
    REAL("write", ssize_t, int, const void *, size_t)
    maybe_die(fd);
    return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL("pwrite", ssize_t, int, const void *, size_t, off_t)
    maybe_die(fd);
    return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    REAL("pwrite64", ssize_t, int, const void *, size_t, off_t)
    maybe_die(fd);
    return real(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL("writev", ssize_t, int, const struct iovec *, int)
    maybe_die(fd);
    return real(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    REAL("pwritev", ssize_t, int, const struct iovec *, int, off_t)
    maybe_die(fd);
    return real(fd, iov, cnt, off);
}
