/* fuzz_input.h — a harness's decisions read from the fuzz input one byte
 * at a time (zeros once it is used up, so a short input makes the
 * harmless choices). Plain data over the caller's bytes. */
#ifndef MECHDIFF_FUZZ_INPUT_H
#define MECHDIFF_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct fz {
    const uint8_t *p;
    size_t n;
} fz;

static inline unsigned fz_u8(fz *z)
{
    if (!z->n) return 0;
    z->n--;
    return *z->p++;
}

static inline uint64_t fz_u64(fz *z, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = v << 8 | fz_u8(z);
    return v;
}

#endif
