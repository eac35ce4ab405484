#ifndef DMATRACE_CCOMPRESSION_SHIM_H
#define DMATRACE_CCOMPRESSION_SHIM_H

/* trace.dat v7 compresses its sections and CPU data with zstd or zlib (trace-cmd's
 * lib/trace-cmd/trace-compress-{zstd,zlib}.c): Debian's libzstd-dev and zlib1g-dev. */
#include <zstd.h>
#include <zlib.h>

#endif
