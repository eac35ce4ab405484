#define _GNU_SOURCE
#include "dmatrace_live.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TRACKED_FDS 1024

/* Written from the main thread, read from signal handlers and atexit: volatile and fixed-size. */
static char instance_dir[PATH_MAX];
static char tracing_on_path[PATH_MAX];
static volatile sig_atomic_t armed;
static volatile sig_atomic_t plain_dir;
static volatile int tracked[MAX_TRACKED_FDS];
static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t signals_seen;
static int notify = -1;
/* The handlers before ours (the command line's Termination), put back after the capture. */
static struct sigaction previous[3];
static int previous_saved;
static int atexit_registered;

static void at_exit(void) { dmatrace_live_emergency_cleanup(); }

void dmatrace_live_arm(const char *dir, int plain_directory)
{
    armed = 0;
    snprintf(instance_dir, sizeof instance_dir, "%s", dir);
    snprintf(tracing_on_path, sizeof tracing_on_path, "%s/tracing_on", dir);
    plain_dir = plain_directory;
    for (int i = 0; i < MAX_TRACKED_FDS; i++)
        tracked[i] = -1;
    if (!atexit_registered) {
        atexit(at_exit);
        atexit_registered = 1;
    }
    armed = 1;
}

void dmatrace_live_disarm(void) { armed = 0; }

void dmatrace_live_track_fd(int fd)
{
    for (int i = 0; i < MAX_TRACKED_FDS; i++) {
        if (tracked[i] < 0) {
            tracked[i] = fd;
            return;
        }
    }
}

void dmatrace_live_untrack_fd(int fd)
{
    for (int i = 0; i < MAX_TRACKED_FDS; i++)
        if (tracked[i] == fd)
            tracked[i] = -1;
}

void dmatrace_live_set_child(pid_t child) { child_pid = child; }

int dmatrace_live_signal_count(void) { return signals_seen; }

/* Only async-signal-safe calls: open, write, close, rmdir. */
static void switch_off_and_remove(void)
{
    for (int i = 0; i < MAX_TRACKED_FDS; i++) {
        int fd = tracked[i];
        if (fd >= 0) {
            tracked[i] = -1;
            close(fd);
        }
    }
    int fd = open(tracing_on_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t ignored = write(fd, "0", 1);
        (void)ignored;
        close(fd);
    }
    rmdir(instance_dir);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

int dmatrace_remove_tree(const char *path)
{
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void dmatrace_live_emergency_cleanup(void)
{
    if (!armed)
        return;
    armed = 0;
    switch_off_and_remove();
    if (plain_dir && access(instance_dir, F_OK) == 0)
        dmatrace_remove_tree(instance_dir);
}

/* The handler that was in place before ours, when it is a function (the command line's
 * Termination: it only notes the signal, and its own thread removes the temporary files,
 * record's spools and unfinished trace.dat among them, and ends the process by the signal). */
static int forward_to_previous(int sig)
{
    int i = sig == SIGINT ? 0 : sig == SIGTERM ? 1 : sig == SIGHUP ? 2 : -1;
    if (i < 0 || !previous_saved || (previous[i].sa_flags & SA_SIGINFO))
        return 0;
    void (*handler)(int) = previous[i].sa_handler;
    if (handler == SIG_DFL || handler == SIG_IGN)
        return 0;
    handler(sig);
    return 1;
}

static void on_signal(int sig)
{
    int saved = errno;
    signals_seen++;
    pid_t child = child_pid;
    if (child > 0 && (sig != SIGINT || signals_seen > 1))
        kill(child, sig == SIGINT ? SIGTERM : sig);
    if (signals_seen > 1) {
        if (armed) {
            switch_off_and_remove();
            /* A plain directory (--tracefs DIR) is not removed by rmdir: the emergency
             * cleanup, outside signal context (atexit, Termination), still has it to do. */
            if (!plain_dir)
                armed = 0;
        }
        if (forward_to_previous(sig)) {
            errno = saved;
            return;
        }
        _exit(128 + sig);
    }
    if (notify >= 0) {
        unsigned char b = (unsigned char)sig;
        ssize_t ignored = write(notify, &b, 1);
        (void)ignored;
    }
    errno = saved;
}

int dmatrace_live_install_signals(int notify_fd)
{
    notify = notify_fd;
    signals_seen = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGINT, &sa, &previous[0]) || sigaction(SIGTERM, &sa, &previous[1]) || sigaction(SIGHUP, &sa, &previous[2]))
        return -1;
    previous_saved = 1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

void dmatrace_live_default_signals(void)
{
    if (previous_saved) {
        sigaction(SIGINT, &previous[0], NULL);
        sigaction(SIGTERM, &previous[1], NULL);
        sigaction(SIGHUP, &previous[2], NULL);
        previous_saved = 0;
    }
    notify = -1;
}

#include <sys/vfs.h>

int dmatrace_is_tracefs(const char *path)
{
    struct statfs fs;
    if (statfs(path, &fs) != 0)
        return -1;
    /* TRACEFS_MAGIC, and DEBUGFS_MAGIC for the old debugfs/tracing location */
    return fs.f_type == 0x74726163 || fs.f_type == 0x64626720;
}
