/* safetensors.c — mmap'd safetensors reader (single file or sharded) and
 * streaming writer (see include/mechdiff/safetensors.h).
 *
 * File layout: u64 little-endian header length N, N bytes of JSON header
 * (an object: tensor name -> {dtype, shape, data_offsets:[begin,end]}, plus
 * an optional "__metadata__" string map), then the data section; offsets are
 * relative to the start of the data section. Every header field is checked
 * before any tensor is exposed. */
#include "mechdiff/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mechdiff/fsutil.h"

#define ST_MAX_HEADER (100u * 1024u * 1024u) /* larger headers are treated as corrupt */
#define ST_MAX_INDEX (64u * 1024u * 1024u)  /* model.safetensors.index.json */
#define ST_INDEX_NAME "model.safetensors.index.json"
#define ST_SINGLE_NAME "model.safetensors"

typedef struct st_file {
    char *path;              /* owned */
    void *map;               /* owned mapping of the whole file (NULL if size 0) */
    size_t size;
    const uint8_t *data;     /* start of the data section, inside map */
    size_t data_size;
} st_file;

struct md_safetensors {
    st_file *files;          /* owned array */
    size_t n_files;
    md_tensor_info *tensors; /* owned array; names owned (strdup) */
    size_t n_tensors, cap_tensors;
    size_t *by_name;         /* owned: tensor indices sorted by name */
};

/* Temporary per-file record used to check ranges. */
typedef struct st_range {
    uint64_t begin, end;
    size_t tensor;           /* index into st->tensors */
} st_range;

static int range_cmp(const void *a, const void *b)
{
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int push_tensor(md_safetensors *st, md_tensor_info **out, md_error *err, const char *path)
{
    if (st->n_tensors == st->cap_tensors) {
        size_t cap = st->cap_tensors ? st->cap_tensors * 2 : 256;
        md_tensor_info *t = realloc(st->tensors, cap * sizeof *t);
        if (!t) return md_error_set(err, "%s: out of memory for the tensor table", path);
        st->tensors = t;
        st->cap_tensors = cap;
    }
    *out = &st->tensors[st->n_tensors++];
    memset(*out, 0, sizeof **out);
    return MD_OK;
}

/* Validates one header entry and appends it as a tensor of file `fi`. */
static int parse_entry(md_safetensors *st, size_t fi, const char *name, json_t *v,
                       st_range *range, md_error *err)
{
    const st_file *f = &st->files[fi];
    const char *path = f->path;
    if (!json_is_object(v))
        return md_error_set(err, "%s: tensor '%s': header entry is not a JSON object; the file is corrupt",
                            path, name);
    json_t *jd = json_object_get(v, "dtype");
    if (!json_is_string(jd))
        return md_error_set(err, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    md_dtype dt = md_dtype_parse(json_string_value(jd));
    if (dt == MD_DTYPE_INVALID)
        return md_error_set(err, "%s: tensor '%s': dtype '%s' is not supported (only F32, F16, BF16); "
                            "convert the checkpoint to bf16/f16/f32 first", path, name, json_string_value(jd));
    json_t *js = json_object_get(v, "shape");
    if (!json_is_array(js))
        return md_error_set(err, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
    size_t ndim = json_array_size(js);
    if (ndim > MD_TENSOR_MAX_DIMS)
        return md_error_set(err, "%s: tensor '%s': %zu dimensions, at most %d supported", path, name, ndim,
                            MD_TENSOR_MAX_DIMS);
    int64_t shape[MD_TENSOR_MAX_DIMS];
    uint64_t nelem = 1;
    int overflow = 0;
    for (size_t i = 0; i < ndim; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return md_error_set(err, "%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name, i);
        shape[i] = (int64_t)json_integer_value(d);
        if (shape[i] != 0 && nelem > UINT64_MAX / (uint64_t)shape[i]) overflow = 1;
        else nelem *= (uint64_t)shape[i];
    }
    json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return md_error_set(err, "%s: tensor '%s': \"data_offsets\" must be [begin, end] integers", path, name);
    json_int_t b = json_integer_value(json_array_get(jo, 0));
    json_int_t e = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || e < b)
        return md_error_set(err, "%s: tensor '%s': data_offsets [%lld, %lld] must satisfy 0 <= begin <= end",
                            path, name, (long long)b, (long long)e);
    if ((uint64_t)e > f->data_size)
        return md_error_set(err, "%s: tensor '%s': data_offsets end %lld is beyond the data section (%zu bytes); "
                            "the file is truncated or corrupt", path, name, (long long)e, f->data_size);
    size_t esz = md_dtype_size(dt);
    if (overflow || nelem > UINT64_MAX / esz)
        return md_error_set(err, "%s: tensor '%s': the shape's size overflows 64 bits; the header is corrupt", path,
                            name);
    if (nelem * esz != (uint64_t)(e - b))
        return md_error_set(err, "%s: tensor '%s': shape x %s size = %llu bytes but data_offsets span %lld bytes; "
                            "the header is inconsistent", path, name, md_dtype_name(dt),
                            (unsigned long long)(nelem * esz), (long long)(e - b));
    const uint8_t *data = f->data + b;
    if (((uintptr_t)data % esz) != 0)
        return md_error_set(err, "%s: tensor '%s': data is not aligned to its %zu-byte elements (header length "
                            "not a multiple of 8?); re-save the file with the safetensors library", path, name, esz);
    md_tensor_info *t = NULL;
    if (push_tensor(st, &t, err, path) != MD_OK) return MD_ERR;
    t->name = strdup(name);
    if (!t->name) {
        st->n_tensors--;
        return md_error_set(err, "%s: out of memory copying tensor name '%s'", path, name);
    }
    t->dtype = dt;
    t->ndim = (int)ndim;
    for (size_t i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = (size_t)(e - b);
    t->file_index = (int)fi;
    range->begin = (uint64_t)b;
    range->end = (uint64_t)e;
    range->tensor = st->n_tensors - 1;
    return MD_OK;
}

/* Maps the open file fd into f (size, map, data section) and reads its JSON
 * header into *root (an object; the caller frees it, also on MD_ERR). */
static int read_header(st_file *f, int fd, json_t **root, md_error *err)
{
    const char *path = f->path;
    struct stat sb;
    if (fstat(fd, &sb) != 0) return md_error_set(err, "%s: cannot stat: %s", path, strerror(errno));
    f->size = (size_t)sb.st_size;
    if (f->size < 8)
        return md_error_set(err, "%s: file is %zu bytes, shorter than the 8-byte header length; not a safetensors "
                            "file or truncated", path, f->size);
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return md_error_set(err, "%s: mmap failed: %s", path, strerror(errno));
    }
    const uint8_t *base = f->map;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | base[i];
    if (n > ST_MAX_HEADER)
        return md_error_set(err, "%s: header length %llu is absurd (> %u bytes); not a safetensors file or corrupt",
                            path, (unsigned long long)n, ST_MAX_HEADER);
    if (n > f->size - 8)
        return md_error_set(err, "%s: header length %llu is larger than the file (%zu bytes); the file is "
                            "truncated or corrupt", path, (unsigned long long)n, f->size);
    f->data = base + 8 + n;
    f->data_size = f->size - 8 - (size_t)n;
    json_error_t jerr;
    *root = json_loadb((const char *)base + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root)
        return md_error_set(err, "%s: header is not valid JSON (%s at byte %d); the file is corrupt", path,
                            jerr.text, jerr.position);
    if (!json_is_object(*root)) return md_error_set(err, "%s: header is not a JSON object; the file is corrupt", path);
    return MD_OK;
}

/* The header's "__metadata__" entry: an object of strings. */
static int check_metadata(json_t *val, const char *path, md_error *err)
{
    if (!json_is_object(val)) return md_error_set(err, "%s: \"__metadata__\" must be an object of strings", path);
    const char *mk;
    json_t *mv;
    json_object_foreach(val, mk, mv) {
        if (!json_is_string(mv)) return md_error_set(err, "%s: \"__metadata__\" key '%s' is not a string", path, mk);
    }
    return MD_OK;
}

/* Ranges must not overlap (empty tensors occupy no bytes); sorts ranges. */
static int check_overlaps(const md_safetensors *st, st_range *ranges, size_t nr, const char *path, md_error *err)
{
    qsort(ranges, nr, sizeof *ranges, range_cmp);
    uint64_t max_end = 0;
    size_t max_tensor = 0;
    for (size_t i = 0; i < nr; i++) {
        if (ranges[i].begin == ranges[i].end) continue;
        if (ranges[i].begin < max_end)
            return md_error_set(err, "%s: tensors '%s' and '%s' have overlapping data_offsets; the file is corrupt",
                                path, st->tensors[max_tensor].name, st->tensors[ranges[i].tensor].name);
        max_end = ranges[i].end;
        max_tensor = ranges[i].tensor;
    }
    return MD_OK;
}

/* Maps st->files[fi] (path already set) and appends its tensors. */
static int load_file(md_safetensors *st, size_t fi, md_error *err)
{
    st_file *f = &st->files[fi];
    const char *path = f->path;
    int rc = MD_ERR;
    json_t *root = NULL;
    st_range *ranges = NULL;
    int fd = md_fsutil_open_input(path, err); /* a FIFO or device is refused, never read */
    if (fd < 0) goto fail;
    if (read_header(f, fd, &root, err) != MD_OK) goto fail;
    size_t n = json_object_size(root);
    ranges = calloc(n ? n : 1, sizeof *ranges);
    if (!ranges) {
        md_error_set(err, "%s: out of memory", path);
        goto fail;
    }
    size_t nr = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (check_metadata(val, path, err) != MD_OK) goto fail;
            continue;
        }
        if (parse_entry(st, fi, key, val, &ranges[nr], err) != MD_OK) goto fail;
        nr++;
    }
    if (check_overlaps(st, ranges, nr, path, err) != MD_OK) goto fail;
    rc = MD_OK;
fail:
    free(ranges);
    json_decref(root);
    if (fd >= 0) close(fd);
    return rc;
}

/* Sorts tensor indices by name (merge sort: qsort has no context pointer in
 * C11 and we keep no global state). */
static void merge_sort_names(size_t *idx, size_t *tmp, size_t n, const md_tensor_info *t)
{
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort_names(idx, tmp, h, t);
    merge_sort_names(idx + h, tmp, n - h, t);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = strcmp(t[idx[j]].name, t[idx[i]].name) < 0 ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* Orders tensors by (file, offset), builds the by-name index, rejects duplicates. */
static int finalize(md_safetensors *st, md_error *err)
{
    size_t n = st->n_tensors;
    st->by_name = malloc((n ? n : 1) * sizeof *st->by_name);
    size_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!st->by_name || !tmp) {
        free(tmp);
        return md_error_set(err, "out of memory building the tensor index");
    }
    for (size_t i = 0; i < n; i++) st->by_name[i] = i;
    merge_sort_names(st->by_name, tmp, n, st->tensors);
    free(tmp);
    for (size_t i = 1; i < n; i++) {
        const md_tensor_info *a = &st->tensors[st->by_name[i - 1]], *b = &st->tensors[st->by_name[i]];
        if (strcmp(a->name, b->name) == 0)
            return md_error_set(err, "tensor '%s' appears in both %s and %s; the checkpoint is inconsistent",
                                a->name, st->files[a->file_index].path, st->files[b->file_index].path);
    }
    return MD_OK;
}

static md_safetensors *st_new(size_t n_files)
{
    md_safetensors *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->files = calloc(n_files ? n_files : 1, sizeof *st->files);
    if (!st->files) {
        free(st);
        return NULL;
    }
    st->n_files = n_files;
    return st;
}

int md_safetensors_open_file(md_safetensors **out, const char *path, md_error *err)
{
    *out = NULL;
    md_safetensors *st = st_new(1);
    if (!st) return md_error_set(err, "%s: out of memory", path);
    st->files[0].path = strdup(path);
    if (!st->files[0].path) {
        md_error_set(err, "%s: out of memory", path);
        goto fail;
    }
    if (load_file(st, 0, err) != MD_OK) goto fail;
    if (finalize(st, err) != MD_OK) goto fail;
    *out = st;
    return MD_OK;
fail:
    md_safetensors_close(st);
    return MD_ERR;
}

/* weight_map's distinct shard file names (borrowed), first seen first, into names; *ns their count. */
static int collect_shard_names(json_t *wm, const char *dir, const char *index_path, const char **names, size_t *ns,
                               md_error *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val))
            return md_error_set(err, "%s: weight_map entry '%s' is not a file name string", index_path, key);
        const char *s = json_string_value(val);
        if (s[0] == '\0' || strchr(s, '/') || strcmp(s, "..") == 0)
            return md_error_set(err, "%s: weight_map entry '%s' names shard '%s', which is not a plain file name "
                                "in %s", index_path, key, s, dir);
        size_t k = 0;
        while (k < *ns && strcmp(names[k], s) != 0) k++;
        if (k == *ns) names[(*ns)++] = s;
    }
    if (*ns == 0) return md_error_set(err, "%s: weight_map is empty", index_path);
    return MD_OK;
}

/* Sets the path of each of st's files (dir/names[k]) and loads it. */
static int load_shards(md_safetensors *st, const char *dir, const char *const *names, const char *index_path,
                       md_error *err)
{
    for (size_t k = 0; k < st->n_files; k++) {
        st->files[k].path = path_join(dir, names[k]);
        if (!st->files[k].path) return md_error_set(err, "%s: out of memory", index_path);
        if (load_file(st, k, err) != MD_OK) { /* name the index too: the shard may be a typo in it */
            md_error_prefix(err, "%s: shard '%s' of weight_map", index_path, names[k]);
            return MD_ERR;
        }
    }
    return MD_OK;
}

/* Every tensor of weight_map is in the shard it is mapped to. */
static int check_weight_map(const md_safetensors *st, json_t *wm, const char *dir, const char *index_path,
                            md_error *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val) {
        const md_tensor_info *t = md_safetensors_find(st, key);
        const char *shard = json_string_value(val);
        if (!t)
            return md_error_set(err, "%s: tensor '%s' is listed in weight_map but missing from shard %s/%s; "
                                "re-download the shard or fix the index", index_path, key, dir, shard);
        if (strcmp(st->files[t->file_index].path + strlen(dir) + 1, shard) != 0)
            return md_error_set(err, "%s: tensor '%s' is mapped to shard %s but found in %s", index_path, key,
                                shard, st->files[t->file_index].path);
    }
    return MD_OK;
}

static int open_sharded(md_safetensors **out, const char *dir, const char *index_path, md_error *err)
{
    json_error_t jerr;
    size_t text_len = 0;
    char *text = md_fsutil_read_input(index_path, ST_MAX_INDEX, &text_len, err);
    json_t *root = text ? json_loadb(text, text_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    md_safetensors *st = NULL;
    const char **shard_names = NULL; /* borrowed from root */
    if (!text) goto fail;
    free(text);
    text = NULL;
    if (!root) {
        md_error_set(err, "%s: not valid JSON (%s, line %d)", index_path, jerr.text, jerr.line);
        goto fail;
    }
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        md_error_set(err, "%s: missing \"weight_map\" object (tensor name -> shard file)", index_path);
        goto fail;
    }
    size_t nw = json_object_size(wm);
    shard_names = calloc(nw ? nw : 1, sizeof *shard_names);
    if (!shard_names) {
        md_error_set(err, "%s: out of memory", index_path);
        goto fail;
    }
    size_t ns = 0;
    if (collect_shard_names(wm, dir, index_path, shard_names, &ns, err) != MD_OK) goto fail;
    st = st_new(ns);
    if (!st) {
        md_error_set(err, "%s: out of memory", index_path);
        goto fail;
    }
    if (load_shards(st, dir, shard_names, index_path, err) != MD_OK || finalize(st, err) != MD_OK ||
        check_weight_map(st, wm, dir, index_path, err) != MD_OK)
        goto fail;
    free(shard_names);
    json_decref(root);
    *out = st;
    return MD_OK;
fail:
    free(shard_names);
    json_decref(root);
    md_safetensors_close(st);
    return MD_ERR;
}

int md_safetensors_open_dir(md_safetensors **out, const char *dir, md_error *err)
{
    *out = NULL;
    int rc = MD_ERR;
    char *index_path = path_join(dir, ST_INDEX_NAME);
    char *single_path = path_join(dir, ST_SINGLE_NAME);
    if (!index_path || !single_path) {
        md_error_set(err, "%s: out of memory", dir);
        goto done;
    }
    if (access(index_path, F_OK) == 0) {
        rc = open_sharded(out, dir, index_path, err);
    } else if (access(single_path, F_OK) == 0) {
        rc = md_safetensors_open_file(out, single_path, err);
    } else {
        md_error_set(err, "%s: neither %s nor %s exists; point at a Hugging Face model folder with "
                     "safetensors weights", dir, ST_INDEX_NAME, ST_SINGLE_NAME);
    }
done:
    free(index_path);
    free(single_path);
    return rc;
}

void md_safetensors_close(md_safetensors *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->n_tensors; i++) free((char *)st->tensors[i].name);
    free(st->tensors);
    free(st->by_name);
    for (size_t i = 0; i < st->n_files; i++) {
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    free(st->files);
    free(st);
}

size_t md_safetensors_count(const md_safetensors *st) { return st->n_tensors; }

const md_tensor_info *md_safetensors_at(const md_safetensors *st, size_t i)
{
    return i < st->n_tensors ? &st->tensors[i] : NULL;
}

const md_tensor_info *md_safetensors_find(const md_safetensors *st, const char *name)
{
    size_t lo = 0, hi = st->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const md_tensor_info *t = &st->tensors[st->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

size_t md_safetensors_file_count(const md_safetensors *st) { return st->n_files; }

const char *md_safetensors_file_path(const md_safetensors *st, size_t i)
{
    return i < st->n_files ? st->files[i].path : NULL;
}

/* Exponent-all-ones test (NaN or infinity) of one element of esz bytes. */
static int nonfinite_at(const uint8_t *p, size_t esz, uint32_t mask)
{
    uint32_t x = 0;
    if (esz == 2) {
        uint16_t h;
        memcpy(&h, p, 2);
        x = h;
    } else {
        memcpy(&x, p, 4);
    }
    return (x & mask) == mask;
}

/* Index of the first of n elements (esz 2 or 4 bytes, exponent bits `mask`)
 * that is a NaN or an infinity, or n. Eight bytes at a time (SWAR): lanes
 * whose masked bits equal the mask become zero after the XOR, and the
 * classic has-zero-lane test finds them; the masked lanes never have their
 * top bit set, so the test has no false positives. */
static size_t first_nonfinite(const uint8_t *d, size_t n, size_t esz, uint32_t mask)
{
    uint64_t m = esz == 2 ? mask * 0x0001000100010001ull : mask * 0x0000000100000001ull;
    uint64_t ones = esz == 2 ? 0x0001000100010001ull : 0x0000000100000001ull;
    uint64_t high = ones << (8 * esz - 1);
    size_t words = n * esz / 8, w = 0;
    for (; w < words; w++) {
        uint64_t x;
        memcpy(&x, d + 8 * w, 8);
        uint64_t v = (x & m) ^ m;
        if ((v - ones) & ~v & high) break;
    }
    for (size_t i = w * 8 / esz; i < n; i++)
        if (nonfinite_at(d + i * esz, esz, mask)) return i;
    return n;
}

/* Drops the pages wholly inside [p, p + n) from this process's resident set.
 * The mapping is read-only and private (never written), so a later access
 * faults the same bytes back in from the page cache: the scan below reads
 * every weight once, and without this a worker's RSS would count every
 * byte of every mapped checkpoint (embedding and lm_head included), not the
 * rows it uses (bench/bench_load.sh). Advisory: a failure changes nothing. */
static void release_pages(const void *p, size_t n)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0 || n == 0) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1);
    uintptr_t b = ((uintptr_t)p + n) & ~((uintptr_t)ps - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

int md_safetensors_check_finite(const md_tensor_info *t, const char *model, md_error *err)
{
    size_t n = md_tensor_numel(t), bad = n;
    if (t->dtype == MD_DTYPE_BF16) bad = first_nonfinite(t->data, n, 2, 0x7f80u);
    else if (t->dtype == MD_DTYPE_F16) bad = first_nonfinite(t->data, n, 2, 0x7c00u);
    else if (t->dtype == MD_DTYPE_F32) bad = first_nonfinite(t->data, n, 4, 0x7f800000u);
    release_pages(t->data, n * md_dtype_size(t->dtype));
    if (bad == n) return MD_OK;
    float v;
    md_dtype_to_f32(&v, (const char *)t->data + bad * md_dtype_size(t->dtype), t->dtype, 1);
    return md_error_set(err, "%s: tensor '%s' holds %s at element %zu (of %zu): the checkpoint is corrupt or was "
                        "saved after training diverged; every weight must be finite", model, t->name,
                        isnan(v) ? "NaN" : "an infinity", bad, n);
}

size_t md_safetensors_total_bytes(const md_safetensors *st)
{
    size_t s = 0;
    for (size_t i = 0; i < st->n_files; i++) s += st->files[i].size;
    return s;
}

size_t md_tensor_numel(const md_tensor_info *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

/* ---------------------------------------------------------------- writer */

typedef struct st_decl {
    char *name;              /* owned */
    md_dtype dtype;
    int ndim;
    int64_t shape[MD_TENSOR_MAX_DIMS];
    uint64_t nbytes;
} st_decl;

struct md_safetensors_writer {
    char *path;              /* owned: final path */
    char *tmp_path;          /* owned: PATH.tmp */
    FILE *fp;                /* owned: open after begin */
    st_decl *decls;          /* owned */
    size_t n_decls, cap_decls;
    json_t *metadata;        /* owned: "__metadata__" object */
    uint64_t total, written; /* data bytes declared / written so far */
    int begun;
};

int md_safetensors_writer_create(md_safetensors_writer **out, const char *path, md_error *err)
{
    *out = NULL;
    md_safetensors_writer *w = calloc(1, sizeof *w);
    if (!w) return md_error_set(err, "%s: out of memory", path);
    size_t n = strlen(path) + 5;
    w->path = strdup(path);
    w->tmp_path = malloc(n);
    w->metadata = json_object();
    if (!w->path || !w->tmp_path || !w->metadata) {
        md_safetensors_writer_abort(w);
        return md_error_set(err, "%s: out of memory", path);
    }
    snprintf(w->tmp_path, n, "%s.tmp", path);
    json_object_set_new(w->metadata, "format", json_string("pt"));
    *out = w;
    return MD_OK;
}

int md_safetensors_writer_set_metadata(md_safetensors_writer *w, const char *key, const char *value,
                                       md_error *err)
{
    if (w->begun) return md_error_set(err, "%s: metadata '%s' set after the header was written", w->path, key);
    if (json_object_set_new(w->metadata, key, json_string(value)) != 0)
        return md_error_set(err, "%s: cannot set metadata '%s' (not UTF-8?)", w->path, key);
    return MD_OK;
}

int md_safetensors_writer_declare(md_safetensors_writer *w, const char *name, md_dtype dtype, int ndim,
                                  const int64_t *shape, md_error *err)
{
    if (w->begun) return md_error_set(err, "%s: tensor '%s' declared after the header was written", w->path, name);
    if (md_dtype_size(dtype) == 0)
        return md_error_set(err, "%s: tensor '%s': invalid dtype", w->path, name);
    if (ndim < 0 || ndim > MD_TENSOR_MAX_DIMS)
        return md_error_set(err, "%s: tensor '%s': %d dimensions (0..%d allowed)", w->path, name, ndim, MD_TENSOR_MAX_DIMS);
    if (strcmp(name, "__metadata__") == 0)
        return md_error_set(err, "%s: '__metadata__' is reserved and cannot name a tensor", w->path);
    for (size_t i = 0; i < w->n_decls; i++)
        if (strcmp(w->decls[i].name, name) == 0)
            return md_error_set(err, "%s: tensor '%s' declared twice", w->path, name);
    uint64_t nb = md_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return md_error_set(err, "%s: tensor '%s': negative shape[%d]", w->path, name, i);
        if (shape[i] && nb > UINT64_MAX / 4 / (uint64_t)shape[i])
            return md_error_set(err, "%s: tensor '%s': size overflows", w->path, name);
        nb *= (uint64_t)shape[i];
    }
    if (w->n_decls == w->cap_decls) {
        size_t cap = w->cap_decls ? w->cap_decls * 2 : 64;
        st_decl *d = realloc(w->decls, cap * sizeof *d);
        if (!d) return md_error_set(err, "%s: out of memory", w->path);
        w->decls = d;
        w->cap_decls = cap;
    }
    st_decl *d = &w->decls[w->n_decls];
    memset(d, 0, sizeof *d);
    d->name = strdup(name);
    if (!d->name) return md_error_set(err, "%s: out of memory", w->path);
    d->dtype = dtype;
    d->ndim = ndim;
    for (int i = 0; i < ndim; i++) d->shape[i] = shape[i];
    d->nbytes = nb;
    w->n_decls++;
    w->total += nb;
    return MD_OK;
}

int md_safetensors_writer_begin(md_safetensors_writer *w, md_error *err)
{
    int rc = MD_ERR;
    char *text = NULL;
    json_t *root = NULL;
    if (w->begun) return md_error_set(err, "%s: writer_begin called twice", w->path);
    root = json_object();
    if (!root) goto oom;
    if (json_object_size(w->metadata) > 0 && json_object_set(root, "__metadata__", w->metadata) != 0) goto oom;
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_decls; i++) {
        const st_decl *d = &w->decls[i];
        json_t *shape = json_array();
        json_t *offs = json_array();
        json_t *e = json_object();
        if (!shape || !offs || !e) {
            json_decref(shape);
            json_decref(offs);
            json_decref(e);
            goto oom;
        }
        for (int k = 0; k < d->ndim; k++) json_array_append_new(shape, json_integer(d->shape[k]));
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + d->nbytes)));
        json_object_set_new(e, "dtype", json_string(md_dtype_name(d->dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets", offs);
        if (json_object_set_new(root, d->name, e) != 0) {
            md_error_set(err, "%s: tensor name '%s' is not valid UTF-8", w->path, d->name);
            goto fail;
        }
        off += d->nbytes;
    }
    text = json_dumps(root, JSON_COMPACT);
    if (!text) goto oom;
    size_t len = strlen(text);
    size_t padded = (len + 7) & ~(size_t)7; /* data section starts 8-byte aligned */
    int fd = md_fsutil_open_output(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644, err); /* no symlinks */
    if (fd < 0) goto fail;
    w->fp = fdopen(fd, "wb");
    if (!w->fp) {
        md_error_set(err, "%s: cannot create: %s", w->tmp_path, strerror(errno));
        close(fd);
        goto fail;
    }
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    if (fwrite(lenbuf, 1, 8, w->fp) != 8 || fwrite(text, 1, len, w->fp) != len ||
        fwrite(spaces, 1, padded - len, w->fp) != padded - len) {
        md_error_set(err, "%s: write failed: %s", w->tmp_path, strerror(errno));
        goto fail;
    }
    w->begun = 1;
    rc = MD_OK;
    goto done;
oom:
    md_error_set(err, "%s: out of memory building the header", w->path);
fail:
done:
    free(text);
    json_decref(root);
    return rc;
}

int md_safetensors_writer_put(md_safetensors_writer *w, const void *data, size_t nbytes, md_error *err)
{
    if (!w->begun || !w->fp)
        return md_error_set(err, "%s: writer_put before writer_begin", w->path);
    if (nbytes > w->total - w->written)
        return md_error_set(err, "%s: %zu more bytes written than the %llu declared", w->path,
                            (size_t)(nbytes - (w->total - w->written)), (unsigned long long)w->total);
    if (nbytes && fwrite(data, 1, nbytes, w->fp) != nbytes)
        return md_error_set(err, "%s: write failed: %s (disk full?)", w->tmp_path, strerror(errno));
    w->written += nbytes;
    return MD_OK;
}

static void writer_free(md_safetensors_writer *w)
{
    for (size_t i = 0; i < w->n_decls; i++) free(w->decls[i].name);
    free(w->decls);
    json_decref(w->metadata);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

int md_safetensors_writer_finish(md_safetensors_writer *w, md_error *err)
{
    if (!w->begun || !w->fp) {
        md_error_set(err, "%s: writer_finish before writer_begin", w->path);
        goto fail;
    }
    if (w->written != w->total) {
        md_error_set(err, "%s: only %llu of %llu declared data bytes were written", w->path,
                     (unsigned long long)w->written, (unsigned long long)w->total);
        goto fail;
    }
    if (fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0) {
        md_error_set(err, "%s: flush failed: %s (disk full?)", w->tmp_path, strerror(errno));
        goto fail;
    }
    FILE *fp = w->fp;
    w->fp = NULL;
    if (fclose(fp) != 0) {
        md_error_set(err, "%s: close failed: %s", w->tmp_path, strerror(errno));
        goto fail;
    }
    if (rename(w->tmp_path, w->path) != 0) {
        md_error_set(err, "%s: cannot rename %s into place: %s", w->path, w->tmp_path, strerror(errno));
        goto fail;
    }
    writer_free(w);
    return MD_OK;
fail:
    md_safetensors_writer_abort(w);
    return MD_ERR;
}

void md_safetensors_writer_abort(md_safetensors_writer *w)
{
    if (!w) return;
    int created = w->fp != NULL || w->begun;
    if (w->fp) fclose(w->fp);
    w->fp = NULL;
    if (created && w->tmp_path) unlink(w->tmp_path);
    writer_free(w);
}
