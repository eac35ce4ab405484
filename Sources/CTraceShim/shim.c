#define _GNU_SOURCE
#include "dmatrace_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event-parse.h>
#include <trace-cmd.h>
#include <trace-seq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tep_record *tracecmd_peek_data(struct tracecmd_input *handle, int cpu);
int tracecmd_cpus(struct tracecmd_input *handle);
struct tep_record *tracecmd_read_cpu_last(struct tracecmd_input *handle, int cpu);

void dmatrace_quiet_libraries(void)
{
    tracecmd_set_loglevel(TEP_LOG_NONE);
    tep_set_loglevel(TEP_LOG_NONE);
}

struct tracecmd_input *dmatrace_open_trace_dat(const char *path)
{
    struct tracecmd_input *handle = tracecmd_open_head(path, 0);
    if (!handle)
        return NULL;
    if (tracecmd_init_data(handle) < 0)
        return NULL; /* leaked on purpose, see header */
    return handle;
}

/*
 * Runs body(arg) in a forked child that may crash or hang without harm. Returns
 * DMATRACE_PROBE_OK when the child exited (its exit code in *exit_code), otherwise
 * DMATRACE_PROBE_CRASHED / DMATRACE_PROBE_TIMEOUT (the signal in *signal_out) or
 * DMATRACE_PROBE_NO_CHILD. Shared by every probe.
 */
static int run_in_probe_child(int (*body)(void *), void *arg, unsigned timeout_seconds, int *signal_out, int *exit_code)
{
    if (signal_out)
        *signal_out = 0;
    /*
     * The caller's SIGINT/SIGTERM/SIGHUP handlers must not run in the child (they
     * would report the signal to the parent's cleanup): keep them blocked across the
     * fork and restore the default action in the child before unblocking.
     */
    sigset_t stop, saved;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, &saved);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        return DMATRACE_PROBE_NO_CHILD;
    }
    if (child == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        /* Whatever ends the parent (a signal, SIGKILL, a crash) ends the probe too: never an orphan. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(DMATRACE_PROBE_REJECTED);
        /* The child's only job is to survive. */
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        /* The forking thread's mask is inherited: a Dispatch or Swift concurrency thread
         * blocks SIGALRM, and the alarm would never fire. */
        sigset_t alarm_only;
        sigemptyset(&alarm_only);
        sigaddset(&alarm_only, SIGALRM);
        sigprocmask(SIG_UNBLOCK, &alarm_only, NULL);
        signal(SIGALRM, SIG_DFL);
        alarm(timeout_seconds);
        dmatrace_quiet_libraries();
        _exit(body(arg));
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    /* The parent keeps its own deadline too: a child stuck before its alarm is armed,
     * or with the signal held off, is killed rather than waited for forever. */
    int status = 0;
    pid_t got;
    struct timespec start, now, pause = { 0, 1000000 };
    clock_gettime(CLOCK_MONOTONIC, &start);
    long deadline_ms = ((long)timeout_seconds + 5) * 1000;
    /* A pidfd wakes the parent the moment the child ends (Linux 5.3 and later); polling
     * waitpid in 1 ms steps and more cost every open a millisecond or two of nothing. */
    int pidfd = -1;
#ifdef SYS_pidfd_open
    pidfd = (int)syscall(SYS_pidfd_open, child, 0);
#endif
    for (;;) {
        got = waitpid(child, &status, WNOHANG);
        if (got != 0 && !(got < 0 && errno == EINTR))
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long waited_ms = (long)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (waited_ms > deadline_ms) {
            kill(child, SIGKILL);
            while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
            }
            if (pidfd >= 0)
                close(pidfd);
            if (signal_out)
                *signal_out = SIGKILL;
            return DMATRACE_PROBE_TIMEOUT;
        }
        if (pidfd >= 0) {
            struct pollfd ready = { .fd = pidfd, .events = POLLIN };
            long left = deadline_ms - waited_ms + 1;
            (void)poll(&ready, 1, left > 1000 ? 1000 : (int)left);
            continue;
        }
        nanosleep(&pause, NULL);
        /* 1 ms steps at first (most files open in well under 100 ms), then 20 ms. */
        if (pause.tv_nsec < 20000000)
            pause.tv_nsec += 1000000;
    }
    if (pidfd >= 0)
        close(pidfd);
    if (got < 0)
        return DMATRACE_PROBE_NO_CHILD;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (signal_out)
            *signal_out = sig;
        return sig == SIGALRM ? DMATRACE_PROBE_TIMEOUT : DMATRACE_PROBE_CRASHED;
    }
    if (WIFEXITED(status)) {
        *exit_code = WEXITSTATUS(status);
        return DMATRACE_PROBE_OK;
    }
    return DMATRACE_PROBE_NO_CHILD;
}

static int probe_trace_dat_body(void *arg)
{
    const char *path = arg;
    /* No plugins: they are dlopen()ed, and the loader's lock may be held by another thread
     * of the parent at fork() (seen: a child stuck in dlopen for good). Opening does not
     * need them; they only print. */
    struct tracecmd_input *handle = tracecmd_open_head(path, TRACECMD_FL_LOAD_NO_PLUGINS);
    if (!handle)
        return DMATRACE_PROBE_REJECTED_HEADER;
    if (tracecmd_init_data(handle) < 0)
        return DMATRACE_PROBE_REJECTED_DATA;
    /* Touch the first and last page of every CPU: that decompresses and walks real data. */
    int cpus = tracecmd_cpus(handle);
    for (int cpu = 0; cpu < cpus; cpu++) {
        (void)tracecmd_peek_data(handle, cpu);
        /* The reader checks each CPU's last record after iterating: take that risk here too. */
        struct tep_record *last = tracecmd_read_cpu_last(handle, cpu);
        if (last)
            tracecmd_free_record(last);
    }
    return DMATRACE_PROBE_OK;
}

int dmatrace_probe_trace_dat(const char *path, unsigned timeout_seconds, int *signal_out)
{
    int code = 0;
    int outcome = run_in_probe_child(probe_trace_dat_body, (void *)path, timeout_seconds, signal_out, &code);
    if (outcome != DMATRACE_PROBE_OK)
        return outcome;
    if (code == DMATRACE_PROBE_OK || code == DMATRACE_PROBE_REJECTED_HEADER || code == DMATRACE_PROBE_REJECTED_DATA)
        return code;
    return DMATRACE_PROBE_REJECTED;
}

int dmatrace_format_info(struct tep_handle *tep, struct tep_record *record, char *buf, int len)
{
    struct trace_seq seq;
    if (len <= 0)
        return -1;
    trace_seq_init(&seq);
    tep_print_event(tep, &seq, record, "%s", TEP_PRINT_INFO);
    trace_seq_terminate(&seq);
    int n = (int)seq.len;
    if (n >= len)
        n = len - 1;
    if (n < 0)
        n = 0;
    memcpy(buf, seq.buffer, (size_t)n);
    buf[n] = 0;
    trace_seq_destroy(&seq);
    return n;
}

char *dmatrace_function_list(struct tep_handle *tep, size_t *len)
{
	/* tep_print_funcs writes to stdout: let a child do it into a pipe, so no other
	 * thread's output (nor this process's stdout) is touched. */
	int fds[2];
	if (pipe(fds) != 0)
		return NULL;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (pid == 0) {
		close(fds[0]);
		if (dup2(fds[1], STDOUT_FILENO) < 0)
			_exit(1);
		tep_print_funcs(tep);
		fflush(stdout);
		_exit(0);
	}
	close(fds[1]);
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			break;
		if (n == cap) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = bigger;
			cap *= 2;
		}
		ssize_t r = read(fds[0], buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fds[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!buf || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* libtraceevent's text parsers want NUL-terminated input, as libtracecmd gives them. */
static char *terminated(const char *data, unsigned long long size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return NULL;
    memcpy(copy, data, size);
    copy[size] = 0;
    return copy;
}

struct tep_handle *dmatrace_tep_build(const struct dmatrace_sections *s, int with_kallsyms,
                                      struct tep_plugin_list **plugins)
{
    struct tep_handle *tep = tep_alloc();
    if (!tep)
        return NULL;
    /* The order of trace-input.c: plugins, byte order and long size, header page, formats,
     * kallsyms, printk formats, command lines. No plugins without `plugins`: a forked
     * child must not dlopen (another thread may have held the loader's lock at fork). */
    struct tep_plugin_list *list = plugins ? tep_load_plugins(tep) : NULL;
    if (plugins)
        *plugins = list;
    tep_set_file_bigendian(tep, s->file_bigendian ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN);
    tep_set_local_bigendian(tep, tep_is_bigendian() ? TEP_BIG_ENDIAN : TEP_LITTLE_ENDIAN);
    tep_set_long_size(tep, s->long_size);
    char *header = terminated(s->header_page, s->header_page_size);
    if (!header)
        goto fail;
    tep_parse_header_page(tep, header, s->header_page_size, s->long_size);
    free(header);
    for (int i = 0; i < s->nformats; i++) {
        /* A format the library cannot parse is skipped, as libtracecmd skips it. */
        (void)tep_parse_event(tep, s->formats[i].data, s->formats[i].size, s->formats[i].system);
    }
    if (with_kallsyms && s->kallsyms_size)
        dmatrace_tep_add_kallsyms(tep, s->kallsyms, s->kallsyms_size);
    if (s->printk_size) {
        char *p = terminated(s->printk, s->printk_size);
        if (!p)
            goto fail;
        tep_parse_printk_formats(tep, p);
        free(p);
    }
    if (s->cmdlines_size) {
        char *c = terminated(s->cmdlines, s->cmdlines_size);
        if (!c)
            goto fail;
        tep_parse_saved_cmdlines(tep, c);
        free(c);
    }
    return tep;
fail:
    dmatrace_tep_free(tep, list);
    if (plugins)
        *plugins = NULL;
    return NULL;
}

int dmatrace_tep_add_kallsyms(struct tep_handle *tep, const char *kallsyms, unsigned long long size)
{
    char *k = terminated(kallsyms, size);
    if (!k)
        return -1;
    int r = tep_parse_kallsyms(tep, k);
    free(k);
    return r;
}

void dmatrace_tep_free(struct tep_handle *tep, struct tep_plugin_list *plugins)
{
    if (plugins)
        tep_unload_plugins(plugins, tep);
    tep_free(tep);
}

struct probe_sections_arg {
    const struct dmatrace_sections *sections;
    int with_kallsyms;
};

static int probe_sections_body(void *arg)
{
    const struct probe_sections_arg *a = arg;
    return dmatrace_tep_build(a->sections, a->with_kallsyms, NULL) ? DMATRACE_PROBE_OK : DMATRACE_PROBE_REJECTED_HEADER;
}

int dmatrace_probe_sections(const struct dmatrace_sections *s, int with_kallsyms, unsigned timeout_seconds, int *signal_out)
{
    struct probe_sections_arg arg = { s, with_kallsyms };
    int code = 0;
    int outcome = run_in_probe_child(probe_sections_body, &arg, timeout_seconds, signal_out, &code);
    if (outcome != DMATRACE_PROBE_OK)
        return outcome;
    return code == DMATRACE_PROBE_OK ? DMATRACE_PROBE_OK : DMATRACE_PROBE_REJECTED_HEADER;
}
