#ifndef DMATRACE_LIVE_H
#define DMATRACE_LIVE_H

#include <sys/types.h>

/*
 * The last line of defence for a live capture's tracefs instance: whatever way
 * the process leaves (normal exit, exit() after an error, SIGINT/SIGTERM/SIGHUP
 * twice), the instance's tracing is switched off and its directory removed.
 *
 * A tracefs instance cannot be removed while any of its files is open (the
 * kernel answers EBUSY), so the raw per-CPU descriptors are tracked here and
 * closed first; that is also why they are opened by us and not inside
 * libtracefs, where they could not be reached from a signal handler.
 */

/* Remember the instance directory; `plain_directory` is a --tracefs fixture that is no tracefs. */
void dmatrace_live_arm(const char *instance_dir, int plain_directory);
/* The instance is gone (removed by the normal path): nothing left to do at exit. */
void dmatrace_live_disarm(void);
void dmatrace_live_track_fd(int fd);
void dmatrace_live_untrack_fd(int fd);
/* The command traced, so a second signal or SIGTERM reaches it too (0: none). */
void dmatrace_live_set_child(pid_t child);

/*
 * SIGINT, SIGTERM and SIGHUP write their number to `notify_fd` (non-blocking
 * pipe) so the capture ends in order: drain, report, remove the instance.
 * SIGTERM and SIGHUP are passed on to the traced command. A second signal of
 * any of them means "now": the handler switches tracing off, removes the
 * instance and exits with 128 + the signal.
 */
int dmatrace_live_install_signals(int notify_fd);
/* Puts back the handlers that were in place before dmatrace_live_install_signals. */
void dmatrace_live_default_signals(void);

/* What the atexit handler does, callable directly (tests, and the error paths). */
void dmatrace_live_emergency_cleanup(void);

/* Removes a plain directory tree (a --tracefs fixture's instance). 0 on success. */
int dmatrace_remove_tree(const char *path);

/* The signals received so far (for tests and to tell Ctrl-C from the end of a command). */
int dmatrace_live_signal_count(void);

/* 1 when path is on tracefs (or debugfs), 0 when not, -1 when it cannot be told. */
int dmatrace_is_tracefs(const char *path);

#endif
