/* dtype.h — element types of checkpoint tensors and conversions to fp32. */
#ifndef MECHDIFF_DTYPE_H
#define MECHDIFF_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum md_dtype {
    MD_DTYPE_F32 = 0,
    MD_DTYPE_F16 = 1,
    MD_DTYPE_BF16 = 2,
    MD_DTYPE_INVALID = -1
} md_dtype;

/* Bytes per element (0 for MD_DTYPE_INVALID). */
size_t md_dtype_size(md_dtype t);
/* "F32"/"F16"/"BF16" as safetensors spells them. */
const char *md_dtype_name(md_dtype t);
/* Parses a safetensors dtype string; MD_DTYPE_INVALID when unknown. */
md_dtype md_dtype_parse(const char *s);

/* Converts n elements of type t at src to fp32 at dst (exact for all three). */
void md_dtype_to_f32(float *dst, const void *src, md_dtype t, size_t n);
/* Converts n fp32 values to type t, rounding to nearest even. */
void md_dtype_from_f32(void *dst, const float *src, md_dtype t, size_t n);

static inline float md_bf16_to_f32(uint16_t h)
{
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

static inline uint16_t md_f32_to_bf16(float f)
{
    union { uint32_t u; float f; } v;
    v.f = f;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u); /* quiet NaN */
    uint32_t rounding = 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)((v.u + rounding) >> 16);
}

float md_f16_to_f32(uint16_t h);
uint16_t md_f32_to_f16(float f);

#endif
