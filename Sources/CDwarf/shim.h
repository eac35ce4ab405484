#ifndef DMATRACE_CDWARF_SHIM_H
#define DMATRACE_CDWARF_SHIM_H

/* elfutils' libdw and libdwfl (Debian libdw-dev). Only Sources/CDebugInfoShim uses them
 * directly; Swift sees the small dmatrace_dbg_* API declared there. */
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <dwarf.h>
#include <gelf.h>

#endif
