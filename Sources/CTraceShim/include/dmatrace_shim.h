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
 * Opens with tracecmd_open_head() + tracecmd_init_data(). Returns NULL when
 * either fails. A handle whose init failed is deliberately not closed:
 * tracecmd_close() crashes on it (libtracecmd 3.1).
 */
struct tracecmd_input *dmatrace_open_trace_dat(const char *path);

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

/*
 * The metadata sections of a trace.dat, found and bounds-checked by dma-trace's
 * own reader (TraceDatLayout). Pointers into the mapped file or decompressed copies.
 */
struct dmatrace_blob {
    const char *data;
    unsigned long long size;
    const char *system; /* event system of a format; "ftrace" for the ftrace formats */
};

struct dmatrace_sections {
    int file_bigendian;
    int long_size;
    int page_size;
    const char *header_page;
    unsigned long long header_page_size;
    const struct dmatrace_blob *formats;
    int nformats;
    const char *printk;
    unsigned long long printk_size;
    const char *cmdlines;
    unsigned long long cmdlines_size;
    const char *kallsyms;
    unsigned long long kallsyms_size;
};

/*
 * A libtraceevent handle made from the sections as libtracecmd's tracecmd_open_head
 * makes it (same parse calls, plugins loaded), without libtracecmd. kallsyms are
 * parsed only when `with_kallsyms` is set: they cost more than everything else and
 * only kernel stacks need them (dmatrace_tep_add_kallsyms adds them later).
 * Returns NULL if the handle cannot be made. Free with dmatrace_tep_free.
 */
struct tep_plugin_list;
struct tep_handle *dmatrace_tep_build(const struct dmatrace_sections *s, int with_kallsyms,
                                      struct tep_plugin_list **plugins);
int dmatrace_tep_add_kallsyms(struct tep_handle *tep, const char *kallsyms, unsigned long long size);
void dmatrace_tep_free(struct tep_handle *tep, struct tep_plugin_list *plugins);

/*
 * dmatrace_tep_build in a forked child (libtraceevent crashes on some corrupted
 * format texts): DMATRACE_PROBE_OK, _REJECTED_HEADER, _CRASHED, _TIMEOUT or _NO_CHILD.
 */
int dmatrace_probe_sections(const struct dmatrace_sections *s, int with_kallsyms, unsigned timeout_seconds, int *signal_out);

/* Silences the libraries' own messages on stderr; errors are ours to report. */
void dmatrace_quiet_libraries(void);

#endif
