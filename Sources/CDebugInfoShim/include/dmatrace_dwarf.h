#ifndef DMATRACE_DWARF_H
#define DMATRACE_DWARF_H

#include <stddef.h>
#include <stdint.h>

/*
 * One ELF file with DWARF (a vmlinux, a .ko or a split .ko.debug), opened with libdwfl's
 * offline reporting. Addresses are in the file's own layout: link addresses for a vmlinux;
 * for a relocatable .ko the sections as libdwfl laid them out (symbol and section
 * addresses below are in that same layout, so "symbol + offset" and ".text + offset" both
 * land on the right instruction whatever the module's load address was).
 *
 * Strings returned stay valid until dmatrace_dbg_close.
 */
typedef struct dmatrace_dbg dmatrace_dbg;

typedef struct {
    const char *function; /* NULL when the DIE has no name */
    const char *file;     /* as DWARF records it (NULL when the line table has nothing) */
    int line;
    int column;
    /* The function returns a dma_addr_t: a driver's own mapping helper. */
    int returns_dma_addr;
    int inlined;          /* an inlined instance (its caller follows in the array) */
} dmatrace_dbg_frame;

/* NULL on failure, with a sentence in err. */
dmatrace_dbg *dmatrace_dbg_open(const char *path, char *err, size_t errlen);
void dmatrace_dbg_close(dmatrace_dbg *dbg);

/* 1 for a relocatable object (a module), 0 for an executable (vmlinux). */
int dmatrace_dbg_is_module(const dmatrace_dbg *dbg);
/* 1 when the file carries DWARF line information libdw can read. */
int dmatrace_dbg_has_dwarf(dmatrace_dbg *dbg);
/* The value of KEY in .modinfo ("name", "vermagic") copied into buf; -1 when absent. */
int dmatrace_dbg_modinfo(dmatrace_dbg *dbg, const char *key, char *buf, size_t len);
/* The GNU build ID bytes; returns their count, or -1. */
int dmatrace_dbg_build_id(dmatrace_dbg *dbg, unsigned char *buf, size_t len);
/* The NUL-terminated string at a symbol's address when its section has contents
 * (vmlinux's linux_banner); -1 otherwise. */
int dmatrace_dbg_symbol_string(dmatrace_dbg *dbg, const char *symbol, char *buf, size_t len);

/* Function symbols: count, then each one's name, address and size. */
int dmatrace_dbg_function_count(dmatrace_dbg *dbg);
int dmatrace_dbg_function(dmatrace_dbg *dbg, int index, const char **name, uint64_t *addr, uint64_t *size);
/* A section's address (in the layout above) and size; -1 when absent. */
int dmatrace_dbg_section(dmatrace_dbg *dbg, const char *name, uint64_t *addr, uint64_t *size);

/* Sections in header order: name, address (layout above), size, alignment, flags (SHF_*). */
int dmatrace_dbg_section_count(dmatrace_dbg *dbg);
int dmatrace_dbg_section_at(dmatrace_dbg *dbg, int index, const char **name, uint64_t *addr, uint64_t *size,
                            uint64_t *align, uint64_t *flags);

/* The source location of addr and its inline chain, innermost first: out[0] is the
 * innermost (inlined) function at the line-table line, each following entry the function
 * it was inlined into at the inlined call's line. Returns the count (0: no DWARF there). */
int dmatrace_dbg_resolve(dmatrace_dbg *dbg, uint64_t addr, dmatrace_dbg_frame *out, int max);

#endif
