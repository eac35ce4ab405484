#ifndef DMATRACE_SHIM_H
#define DMATRACE_SHIM_H

#include <stddef.h>

struct tracecmd_input;

/* Outcome of opening a trace.dat in a throw-away child process. */
enum dmatrace_probe_result {
    DMATRACE_PROBE_OK = 0,
    DMATRACE_PROBE_REJECTED = 1,   /* libtracecmd refused the file and said so */
    DMATRACE_PROBE_CRASHED = 2,    /* the child died on a signal inside the C libraries */
    DMATRACE_PROBE_TIMEOUT = 3,    /* the child did not finish in time */
    DMATRACE_PROBE_NO_CHILD = 4,   /* fork or waitpid failed: nothing was learned */
    DMATRACE_PROBE_REJECTED_HEADER = 5, /* tracecmd_open_head failed: header, formats, options */
    DMATRACE_PROBE_REJECTED_DATA = 6    /* tracecmd_init_data failed: CPU data sections */
};

/*
 * Opens `path` with libtracecmd in a forked child and reports how that went.
 * libtraceevent can crash while parsing a corrupted format section and
 * libtracecmd while cleaning up after a truncated file; the child takes that
 * risk so the caller's process never does. `signal_out` receives the signal
 * that killed the child, if any.
 */
int dmatrace_probe_trace_dat(const char *path, unsigned timeout_seconds, int *signal_out);

/*
 * The same, for a file whose CPU data dma-trace reads itself: only
 * tracecmd_open_head() (formats, kallsyms, printk formats, command lines,
 * options) is risked in the child.
 */
int dmatrace_probe_trace_dat_head(const char *path, unsigned timeout_seconds, int *signal_out);

/*
 * Opens with tracecmd_open_head() + tracecmd_init_data(). Returns NULL when
 * either fails. A handle whose init failed is deliberately not closed:
 * tracecmd_close() crashes on it (libtracecmd 3.1).
 */
struct tracecmd_input *dmatrace_open_trace_dat(const char *path);

/* tracecmd_open_head() alone: the event formats and metadata, no CPU data. */
struct tracecmd_input *dmatrace_open_trace_dat_head(const char *path);

struct tep_handle;
struct tep_record;

/*
 * Renders the event's own print format (TEP_PRINT_INFO) into `buf`; used for
 * trace_printk (bprint) records, whose text only libtraceevent can expand.
 * Returns the length written, or -1.
 */
int dmatrace_format_info(struct tep_handle *tep, struct tep_record *record, char *buf, int len);

/*
 * The file's kallsyms as libtraceevent holds it, "ADDR NAME [MODULE]" per line: its own
 * listing (tep_print_funcs), which is the only way it gives out module names, written by a
 * forked child into a pipe (call under the library lock, as the probe). The caller frees
 * the result; NULL on failure.
 */
char *dmatrace_function_list(struct tep_handle *tep, size_t *len);

/* Silences the libraries' own messages on stderr; errors are ours to report. */
void dmatrace_quiet_libraries(void);

#endif
