/* dtype.c — checkpoint element types (see include/mechdiff/dtype.h). */
#include "mechdiff/dtype.h"

#include <string.h>

size_t md_dtype_size(md_dtype t)
{
    switch (t) {
    case MD_DTYPE_F32: return 4;
    case MD_DTYPE_F16: return 2;
    case MD_DTYPE_BF16: return 2;
    default: return 0;
    }
}

const char *md_dtype_name(md_dtype t)
{
    switch (t) {
    case MD_DTYPE_F32: return "F32";
    case MD_DTYPE_F16: return "F16";
    case MD_DTYPE_BF16: return "BF16";
    default: return "INVALID";
    }
}

md_dtype md_dtype_parse(const char *s)
{
    if (!s) return MD_DTYPE_INVALID;
    if (strcmp(s, "F32") == 0) return MD_DTYPE_F32;
    if (strcmp(s, "F16") == 0) return MD_DTYPE_F16;
    if (strcmp(s, "BF16") == 0) return MD_DTYPE_BF16;
    return MD_DTYPE_INVALID;
}

float md_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    union { uint32_t u; float f; } v;
    if (exp == 0) {
        if (man == 0) {
            v.u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400u));
            v.u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        v.u = sign | 0x7f800000u | (man << 13);
    } else {
        v.u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return v.f;
}

uint16_t md_f32_to_f16(float f)
{
    union { uint32_t u; float f; } v;
    v.f = f;
    uint32_t sign = (v.u >> 16) & 0x8000u;
    uint32_t absu = v.u & 0x7fffffffu;
    if (absu > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (absu >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow → inf */
    if (absu < 0x38800000u) { /* subnormal or zero in f16 */
        if (absu < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absu >> 23;
        uint32_t m = (absu & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14 + (112 - e) + ... */
        uint32_t half = m >> (shift - 1 + 0);
        /* round to nearest even */
        uint32_t res = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        (void)half;
        if (rem > halfway || (rem == halfway && (res & 1))) res++;
        return (uint16_t)(sign | res);
    }
    uint32_t res = ((absu >> 13) - (112u << 10));
    uint32_t rem = absu & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (res & 1))) res++;
    return (uint16_t)(sign | res);
}

void md_dtype_to_f32(float *dst, const void *src, md_dtype t, size_t n)
{
    if (t == MD_DTYPE_F32) {
        memcpy(dst, src, n * sizeof(float));
    } else if (t == MD_DTYPE_BF16) {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = md_bf16_to_f32(s[i]);
    } else if (t == MD_DTYPE_F16) {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = md_f16_to_f32(s[i]);
    }
}

void md_dtype_from_f32(void *dst, const float *src, md_dtype t, size_t n)
{
    if (t == MD_DTYPE_F32) {
        memcpy(dst, src, n * sizeof(float));
    } else if (t == MD_DTYPE_BF16) {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = md_f32_to_bf16(src[i]);
    } else if (t == MD_DTYPE_F16) {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = md_f32_to_f16(src[i]);
    }
}
