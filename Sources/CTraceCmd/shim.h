#ifndef DMATRACE_CTRACECMD_SHIM_H
#define DMATRACE_CTRACECMD_SHIM_H

#include <event-parse.h>
#include <trace-cmd.h>
/* libtraceevent's sub-buffer parser: the reference the page reader is tested against. */
#include <kbuffer.h>
#include <tracefs.h>

/*
 * libtracecmd exports these but keeps them out of its public header; they are
 * the same calls its Python binding (trace-cmd-private-python.h) relies on, so
 * they are stable in practice. Declared here so Swift can see them.
 */
struct tep_record *tracecmd_read_next_data(struct tracecmd_input *handle, int *rec_cpu);
struct tep_record *tracecmd_peek_data(struct tracecmd_input *handle, int cpu);
struct tep_record *tracecmd_read_data(struct tracecmd_input *handle, int cpu);
struct tep_record *tracecmd_read_cpu_last(struct tracecmd_input *handle, int cpu);
int tracecmd_cpus(struct tracecmd_input *handle);
int tracecmd_long_size(struct tracecmd_input *handle);
const char *tracecmd_get_uname(struct tracecmd_input *handle);
const char *tracecmd_get_trace_clock(struct tracecmd_input *handle);
unsigned long tracecmd_get_in_file_version(struct tracecmd_input *handle);

#endif
