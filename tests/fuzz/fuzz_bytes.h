/* fuzz_bytes.h — damage to a results file below the HDF5 API, chosen by
 * the fuzz input: bits flipped, bytes set, ranges zeroed, the file cut
 * short or extended, blocks swapped or copied over others (an object
 * header over another, a B-tree node over a heap), 8-byte fields set to
 * addresses and lengths that point outside the file (0, ~0, 2^40, the
 * file's length, one of its own offsets). An offset is anywhere in the
 * file, or in its first 4 KiB (superblock, root group, the first object
 * headers and B-trees) one time in two. What the file's bytes hold is the
 * writer's (fuzz_results_base.h); which structure an offset hits is left
 * to the fuzzer. Ownership: the damaged copy is the caller's (free). */
#ifndef MECHDIFF_FUZZ_BYTES_H
#define MECHDIFF_FUZZ_BYTES_H

#include "fuzz_results_edit.h" /* fz */

/* An offset into a file of len bytes (len > 0). */
static size_t fb_offset(fz *z, size_t len)
{
    unsigned near = fz_u8(z) % 2;
    uint64_t v = fz_u64(z, 3);
    size_t lim = near && len > 4096 ? 4096 : len;
    return (size_t)(v % lim);
}

/* One damage of buf[0..*len) (capacity cap; *len may shrink or grow). */
static void fb_damage_one(fz *z, uint8_t *buf, size_t *len, size_t cap)
{
    if (!*len) return;
    size_t at = fb_offset(z, *len), n;
    switch (fz_u8(z) % 9) {
    case 0: buf[at] ^= (uint8_t)(1u << (fz_u8(z) % 8)); break;
    case 1: buf[at] = (uint8_t)fz_u8(z); break;
    case 2: /* a range zeroed */
        n = 1 + fz_u8(z) * (fz_u8(z) % 4 ? 1 : 16);
        memset(buf + at, 0, n < *len - at ? n : *len - at);
        break;
    case 3: *len = at; break; /* cut short */
    case 4: { /* extended by zeros or garbage */
        n = 1 + fz_u64(z, 2);
        if (n > cap - *len) n = cap - *len;
        unsigned fill = fz_u8(z);
        memset(buf + *len, fill % 2 ? (int)fill : 0, n);
        *len += n;
        break;
    }
    case 5:
    case 6: { /* a block swapped with, or copied over, another */
        size_t to = fb_offset(z, *len);
        n = 1 + fz_u8(z) * (fz_u8(z) % 2 ? 1 : 8);
        if (n > *len - at) n = *len - at;
        if (n > *len - to) n = *len - to;
        uint8_t tmp[2048];
        if (n > sizeof tmp) n = sizeof tmp;
        memcpy(tmp, buf + to, n);
        memmove(buf + to, buf + at, n);
        if (fz_u8(z) % 2) memcpy(buf + at, tmp, n);
        break;
    }
    default: { /* an 8-byte address or length set (little-endian, as HDF5 stores them) */
        static const uint64_t vals[] = {0, UINT64_MAX, (uint64_t)1 << 40, 1, 8, 0x7fffffffffffffffull, 4096};
        unsigned c = fz_u8(z);
        uint64_t v = c < 7 ? vals[c] : c < 128 ? (uint64_t)*len + c - 64 : c < 200 ? (uint64_t)fb_offset(z, *len)
                                                                                      : fz_u64(z, 8);
        unsigned width = 1u << (fz_u8(z) % 4); /* 1, 2, 4 or 8 bytes */
        for (unsigned i = 0; i < width && at + i < *len; i++) buf[at + i] = (uint8_t)(v >> (8 * i));
    }
    }
}

/* A copy of image[0..len) with up to max_ops damages of the input: its bytes (malloc'd) and *out_len. */
static uint8_t *fb_damage_image(fz *z, const uint8_t *image, size_t len, int max_ops, size_t *out_len)
{
    size_t cap = len + (1 << 16) + 1;
    uint8_t *buf = malloc(cap);
    if (!buf) abort();
    memcpy(buf, image, len);
    *out_len = len;
    for (int i = 0; i < max_ops && z->n; i++) fb_damage_one(z, buf, out_len, cap);
    return buf;
}

#endif
