#include "dmatrace_dwarf.h"

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dmatrace_dbg {
    Dwfl *dwfl;
    Dwfl_Module *mod;
    Elf *elf;        /* owned by dwfl */
    Dwarf_Addr bias;
    int is_module;
    int nsyms;
};

/* Only the file given: never look for separate debug files elsewhere on this machine,
 * so what is resolved is exactly what the user named. */
static int no_separate_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                                 const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                                 char **debuginfo_file_name) {
    (void)mod; (void)userdata; (void)modname; (void)base; (void)file_name;
    (void)debuglink_file; (void)debuglink_crc; (void)debuginfo_file_name;
    return -1;
}

static const Dwfl_Callbacks offline_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = no_separate_debuginfo,
    .section_address = dwfl_offline_section_address,
};

static void set_err(char *err, size_t len, const char *what) {
    if (err && len) snprintf(err, len, "%s", what);
}

dmatrace_dbg *dmatrace_dbg_open(const char *path, char *err, size_t errlen) {
    /* libelf's own check of the header comes with a poor message ("invalid ELF file");
     * say what is wrong first. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { set_err(err, errlen, strerror(errno)); return NULL; }
    struct stat st;
    unsigned char ident[EI_NIDENT];
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); set_err(err, errlen, "not a regular file"); return NULL; }
    /* libdwfl decompresses xz, zstd and gzip files itself (Debian's /lib/modules .ko.xz). */
    static const unsigned char xz[] = { 0xfd, '7', 'z', 'X', 'Z', 0 }, zst[] = { 0x28, 0xb5, 0x2f, 0xfd },
                               gz[] = { 0x1f, 0x8b };
    if (pread(fd, ident, sizeof ident, 0) != (ssize_t)sizeof ident
        || (memcmp(ident, ELFMAG, SELFMAG) != 0 && memcmp(ident, xz, sizeof xz) != 0
            && memcmp(ident, zst, sizeof zst) != 0 && memcmp(ident, gz, sizeof gz) != 0)) {
        close(fd); set_err(err, errlen, "not an ELF file"); return NULL;
    }
    close(fd);
    int zstd = memcmp(ident, zst, sizeof zst) == 0;

    dmatrace_dbg *dbg = calloc(1, sizeof *dbg);
    if (!dbg) { set_err(err, errlen, "out of memory"); return NULL; }
    dbg->dwfl = dwfl_begin(&offline_callbacks);
    if (!dbg->dwfl) { set_err(err, errlen, dwfl_errmsg(-1)); free(dbg); return NULL; }
    dwfl_report_begin(dbg->dwfl);
    dbg->mod = dwfl_report_offline(dbg->dwfl, "debuginfo", path, -1);
    if (!dbg->mod || dwfl_report_end(dbg->dwfl, NULL, NULL) != 0) {
        /* elfutils built without zstd (bookworm's 0.188) sees only bytes. */
        set_err(err, errlen, zstd ? "zstd-compressed, which this libdw cannot read: decompress it first (unzstd)"
                                  : dwfl_errmsg(-1));
        dwfl_end(dbg->dwfl); free(dbg); return NULL;
    }
    dbg->elf = dwfl_module_getelf(dbg->mod, &dbg->bias);
    if (!dbg->elf) {
        set_err(err, errlen, dwfl_errmsg(-1));
        dwfl_end(dbg->dwfl); free(dbg); return NULL;
    }
    GElf_Ehdr ehdr;
    if (!gelf_getehdr(dbg->elf, &ehdr)) {
        set_err(err, errlen, elf_errmsg(-1));
        dwfl_end(dbg->dwfl); free(dbg); return NULL;
    }
    if (ehdr.e_type != ET_REL && ehdr.e_type != ET_EXEC && ehdr.e_type != ET_DYN) {
        set_err(err, errlen, "neither a kernel image nor a kernel module (ELF type is not EXEC or REL)");
        dwfl_end(dbg->dwfl); free(dbg); return NULL;
    }
    dbg->is_module = ehdr.e_type == ET_REL;
    dbg->nsyms = dwfl_module_getsymtab(dbg->mod);
    if (dbg->nsyms < 0) dbg->nsyms = 0;
    return dbg;
}

void dmatrace_dbg_close(dmatrace_dbg *dbg) {
    if (!dbg) return;
    dwfl_end(dbg->dwfl);
    free(dbg);
}

int dmatrace_dbg_is_module(const dmatrace_dbg *dbg) { return dbg->is_module; }

int dmatrace_dbg_has_dwarf(dmatrace_dbg *dbg) {
    Dwarf_Addr bias;
    Dwarf *dw = dwfl_module_getdwarf(dbg->mod, &bias);
    if (!dw) return 0;
    Dwarf_Off off = 0, next;
    size_t hsize;
    /* At least one compilation unit. */
    return dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0;
}

static Elf_Scn *find_section(Elf *elf, const char *name, GElf_Shdr *out) {
    size_t shstrndx;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0) return NULL;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr shdr;
        if (!gelf_getshdr(scn, &shdr)) continue;
        const char *n = elf_strptr(elf, shstrndx, shdr.sh_name);
        if (n && strcmp(n, name) == 0) { *out = shdr; return scn; }
    }
    return NULL;
}

int dmatrace_dbg_modinfo(dmatrace_dbg *dbg, const char *key, char *buf, size_t len) {
    GElf_Shdr shdr;
    Elf_Scn *scn = find_section(dbg->elf, ".modinfo", &shdr);
    if (!scn || shdr.sh_type == SHT_NOBITS) return -1;
    Elf_Data *data = elf_getdata(scn, NULL);
    if (!data || !data->d_buf) return -1;
    const char *p = data->d_buf, *end = p + data->d_size;
    size_t klen = strlen(key);
    while (p < end) {
        const char *nul = memchr(p, '\0', (size_t)(end - p));
        size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);
        if (n > klen && p[klen] == '=' && memcmp(p, key, klen) == 0) {
            size_t vlen = n - klen - 1;
            if (len == 0) return (int)vlen;
            if (vlen >= len) vlen = len - 1;
            memcpy(buf, p + klen + 1, vlen);
            buf[vlen] = '\0';
            return (int)vlen;
        }
        p += n + 1;
    }
    return -1;
}

int dmatrace_dbg_build_id(dmatrace_dbg *dbg, unsigned char *buf, size_t len) {
    const unsigned char *bits;
    GElf_Addr vaddr;
    int n = dwfl_module_build_id(dbg->mod, &bits, &vaddr);
    if (n <= 0) return -1;
    size_t copy = (size_t)n < len ? (size_t)n : len;
    memcpy(buf, bits, copy);
    return n;
}

int dmatrace_dbg_function_count(dmatrace_dbg *dbg) { return dbg->nsyms; }

int dmatrace_dbg_function(dmatrace_dbg *dbg, int index, const char **name, uint64_t *addr, uint64_t *size) {
    if (index < 0 || index >= dbg->nsyms) return 0;
    GElf_Sym sym;
    GElf_Addr a;
    GElf_Word shndx;
    Elf *elf;
    Dwarf_Addr bias;
    const char *n = dwfl_module_getsym_info(dbg->mod, index, &sym, &a, &shndx, &elf, &bias);
    if (!n || GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF) return 0;
    *name = n;
    *addr = a;
    *size = sym.st_size;
    return 1;
}

int dmatrace_dbg_section(dmatrace_dbg *dbg, const char *name, uint64_t *addr, uint64_t *size) {
    GElf_Shdr shdr;
    if (!find_section(dbg->elf, name, &shdr)) return -1;
    /* For a relocatable module libdwfl has written its layout into sh_addr. */
    *addr = shdr.sh_addr + dbg->bias;
    *size = shdr.sh_size;
    return 0;
}

int dmatrace_dbg_section_count(dmatrace_dbg *dbg) {
    size_t n;
    return elf_getshdrnum(dbg->elf, &n) == 0 ? (int)n : 0;
}

int dmatrace_dbg_section_at(dmatrace_dbg *dbg, int index, const char **name, uint64_t *addr, uint64_t *size,
                            uint64_t *align, uint64_t *flags) {
    size_t shstrndx;
    if (index <= 0 || elf_getshdrstrndx(dbg->elf, &shstrndx) != 0) return 0;
    Elf_Scn *scn = elf_getscn(dbg->elf, (size_t)index);
    GElf_Shdr shdr;
    if (!scn || !gelf_getshdr(scn, &shdr)) return 0;
    const char *n = elf_strptr(dbg->elf, shstrndx, shdr.sh_name);
    if (!n) return 0;
    *name = n;
    *addr = shdr.sh_addr + dbg->bias;
    *size = shdr.sh_size;
    *align = shdr.sh_addralign;
    *flags = shdr.sh_flags;
    return 1;
}

int dmatrace_dbg_symbol_string(dmatrace_dbg *dbg, const char *symbol, char *buf, size_t len) {
    if (len == 0) return -1;
    for (int i = 0; i < dbg->nsyms; i++) {
        GElf_Sym sym;
        GElf_Addr a;
        GElf_Word shndx;
        Elf *elf;
        Dwarf_Addr bias;
        const char *n = dwfl_module_getsym_info(dbg->mod, i, &sym, &a, &shndx, &elf, &bias);
        if (!n || strcmp(n, symbol) != 0) continue;
        Elf_Scn *scn = elf_getscn(elf, shndx);
        GElf_Shdr shdr;
        if (!scn || !gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS) return -1;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || !data->d_buf) return -1;
        GElf_Addr off = sym.st_value - (dbg->is_module ? 0 : shdr.sh_addr);
        if (off >= data->d_size) return -1;
        const char *s = (const char *)data->d_buf + off;
        size_t max = data->d_size - off, n2 = 0;
        while (n2 < max && s[n2] && n2 + 1 < len) n2++;
        memcpy(buf, s, n2);
        buf[n2] = '\0';
        return (int)n2;
    }
    return -1;
}

static const char *die_name(Dwarf_Die *die) {
    Dwarf_Attribute attr;
    /* Inlined instances and out-of-line copies name their function through
     * DW_AT_abstract_origin / DW_AT_specification. */
    if (dwarf_attr_integrate(die, DW_AT_name, &attr)) return dwarf_formstring(&attr);
    return NULL;
}

static int returns_dma_addr(Dwarf_Die *die) {
    Dwarf_Attribute attr;
    Dwarf_Die type;
    if (!dwarf_attr_integrate(die, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &type)) return 0;
    for (int depth = 0; depth < 8; depth++) {
        int tag = dwarf_tag(&type);
        if (tag == DW_TAG_typedef) {
            const char *n = dwarf_diename(&type);
            return n && strcmp(n, "dma_addr_t") == 0;
        }
        if (tag != DW_TAG_const_type && tag != DW_TAG_volatile_type) return 0;
        if (!dwarf_attr(&type, DW_AT_type, &attr) || !dwarf_formref_die(&attr, &type)) return 0;
    }
    return 0;
}

static int attr_udata(Dwarf_Die *die, unsigned name, Dwarf_Word *out) {
    Dwarf_Attribute attr;
    return dwarf_attr(die, name, &attr) && dwarf_formudata(&attr, out) == 0;
}

int dmatrace_dbg_resolve(dmatrace_dbg *dbg, uint64_t addr, dmatrace_dbg_frame *out, int max) {
    if (max <= 0) return 0;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(dbg->mod, addr, &bias);
    if (!cudie) return 0;
    const char *file = NULL;
    int line = 0, column = 0;
    Dwfl_Line *ln = dwfl_module_getsrc(dbg->mod, addr);
    if (ln) file = dwfl_lineinfo(ln, NULL, &line, &column, NULL, NULL);

    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    if (dwarf_getsrcfiles(cudie, &files, &nfiles) != 0) files = NULL;

    /* dwarf_getscopes continues into an inlined function's abstract definition; the chain
     * of concrete instances (the inlined call sites) comes from dwarf_getscopes_die on the
     * innermost scope, as eu-addr2line -i does it. */
    Dwarf_Die *scopes = NULL;
    int nscopes = dwarf_getscopes(cudie, addr - bias, &scopes);
    if (nscopes > 0) {
        Dwarf_Die innermost = scopes[0];
        free(scopes);
        scopes = NULL;
        nscopes = dwarf_getscopes_die(&innermost, &scopes);
    }
    int k = 0;
    for (int i = 0; i < nscopes && k < max; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine) continue;
        out[k].function = die_name(&scopes[i]);
        out[k].file = file;
        out[k].line = line;
        out[k].column = column;
        out[k].returns_dma_addr = returns_dma_addr(&scopes[i]);
        out[k].inlined = tag == DW_TAG_inlined_subroutine;
        k++;
        if (tag == DW_TAG_subprogram) break;
        /* The caller's position is where this instance was inlined. */
        Dwarf_Word v;
        file = NULL;
        if (files && attr_udata(&scopes[i], DW_AT_call_file, &v) && v < nfiles) file = dwarf_filesrc(files, v, NULL, NULL);
        line = attr_udata(&scopes[i], DW_AT_call_line, &v) ? (int)v : 0;
        column = attr_udata(&scopes[i], DW_AT_call_column, &v) ? (int)v : 0;
    }
    free(scopes);
    if (k == 0 && file) {
        /* A line table entry with no enclosing function DIE (assembly). */
        out[0] = (dmatrace_dbg_frame){ .function = NULL, .file = file, .line = line, .column = column };
        k = 1;
    }
    return k;
}
