/*
 * Writes raw records of a trace.dat as seeds for the FuzzRecordDecoder target:
 * for every event type, the first records and the largest one, each as one
 * file holding a format-selector byte followed by the record's payload exactly
 * as the ring buffer stores it (common fields first). The selector says which
 * file's event formats FuzzRecordDecoder decodes the bytes with.
 *
 *   cc -O2 -o extract-records extract-records.c $(pkg-config --cflags --libs libtracecmd)
 *   extract-records TRACE.dat SELECTOR OUTDIR [PER_TYPE]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event-parse.h>
#include <trace-cmd.h>

struct tep_record *tracecmd_read_next_data(struct tracecmd_input *handle, int *rec_cpu);

#define MAX_TYPES 65536

static void write_seed(const char *dir, int selector, struct tep_handle *tep, struct tep_record *r, const char *tag)
{
    int type = tep_data_type(tep, r);
    struct tep_event *ev = tep_find_event(tep, type);
    char path[4096];
    snprintf(path, sizeof(path), "%s/f%d-%s-%s-%llu", dir, selector, ev ? ev->name : "unknown", tag,
             (unsigned long long)r->ts);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    unsigned char sel = (unsigned char)selector;
    fwrite(&sel, 1, 1, f);
    fwrite(r->data, 1, (size_t)r->size, f);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s TRACE.dat SELECTOR OUTDIR [PER_TYPE]\n", argv[0]);
        return 2;
    }
    int selector = atoi(argv[2]);
    int per_type = argc > 4 ? atoi(argv[4]) : 2;
    struct tracecmd_input *h = tracecmd_open(argv[1], 0);
    if (!h) {
        fprintf(stderr, "%s: cannot open\n", argv[1]);
        return 2;
    }
    struct tep_handle *tep = tracecmd_get_tep(h);
    static int seen[MAX_TYPES];
    static struct tep_record *largest[MAX_TYPES];
    static int first_size[MAX_TYPES];
    int cpu;
    struct tep_record *r;
    while ((r = tracecmd_read_next_data(h, &cpu))) {
        int type = tep_data_type(tep, r);
        if (type < 0 || type >= MAX_TYPES) {
            tracecmd_free_record(r);
            continue;
        }
        if (seen[type]++ < per_type) {
            write_seed(argv[3], selector, tep, r, "first");
            if (first_size[type] < r->size)
                first_size[type] = r->size;
        }
        if (!largest[type] || r->size > largest[type]->size) {
            if (largest[type])
                tracecmd_free_record(largest[type]);
            largest[type] = r;
        } else {
            tracecmd_free_record(r);
        }
    }
    for (int t = 0; t < MAX_TYPES; t++) {
        if (largest[t] && largest[t]->size > first_size[t])
            write_seed(argv[3], selector, tep, largest[t], "largest");
        if (largest[t])
            tracecmd_free_record(largest[t]);
    }
    tracecmd_close(h);
    return 0;
}
