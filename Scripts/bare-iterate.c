/*
 * The benchmark's floor: iterate every record of a trace.dat with
 * libtracecmd in time order across CPUs, and do nothing with it. dma-trace's
 * decoding cost is measured against this.
 */
#include <stdio.h>
#include <trace-cmd.h>

struct tep_record *tracecmd_read_next_data(struct tracecmd_input *handle, int *rec_cpu);

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s trace.dat\n", argv[0]);
        return 2;
    }
    struct tracecmd_input *handle = tracecmd_open_head(argv[1], 0);
    if (!handle || tracecmd_init_data(handle) < 0) {
        fprintf(stderr, "%s: cannot open\n", argv[1]);
        return 2;
    }
    unsigned long long n = 0;
    int cpu;
    struct tep_record *rec;
    while ((rec = tracecmd_read_next_data(handle, &cpu))) {
        n++;
        tracecmd_free_record(rec);
    }
    printf("%llu records\n", n);
    tracecmd_close(handle);
    return 0;
}
