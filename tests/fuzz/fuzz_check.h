/* fuzz_check.h — the checks the results-file harnesses (fuzz_results,
 * fuzz_h5bytes, fuzz_catchup) make beyond the sanitizers: no HDF5
 * identifier left open by a reader, a refusal is one line naming the
 * file, every line `mechdiff verify` prints starts with the file's path,
 * a file read is left byte for byte as it was and no PATH.tmp is left.
 * A failed check prints what it saw and aborts. FUZZ_SHOW=1 prints every
 * refusal. */
#ifndef MECHDIFF_FUZZ_CHECK_H
#define MECHDIFF_FUZZ_CHECK_H

#include <hdf5.h>

#include "fuzz_common.h"
#include "mechdiff/error.h"
#include "mechdiff/verify.h"

/* Open HDF5 identifiers of the kinds a reader opens (file objects,
 * dataspaces, datatypes, property lists). */
static int64_t open_ids(void)
{
    hsize_t spaces = 0, types = 0, plists = 0;
    H5Inmembers(H5I_DATASPACE, &spaces);
    H5Inmembers(H5I_DATATYPE, &types);
    H5Inmembers(H5I_GENPROP_LST, &plists);
    return (int64_t)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) + (int64_t)(spaces + types + plists);
}

/* Aborts when the reader `who` left identifiers open (ids: the count before it). */
static void ids_closed(int64_t ids, const char *who)
{
    if (open_ids() == ids) return;
    hsize_t spaces = 0, types = 0, plists = 0;
    H5Inmembers(H5I_DATASPACE, &spaces);
    H5Inmembers(H5I_DATATYPE, &types);
    H5Inmembers(H5I_GENPROP_LST, &plists);
    fprintf(stderr, "fuzz: %s left %lld HDF5 identifiers open (now: %lld file objects, %llu dataspaces, %llu "
            "datatypes, %llu property lists)\n", who, (long long)(open_ids() - ids),
            (long long)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), (unsigned long long)spaces,
            (unsigned long long)types, (unsigned long long)plists);
    abort();
}

static inline void must_name(const char *msg, const char *path, const char *who)
{
    if (getenv("FUZZ_SHOW")) fprintf(stderr, "fuzz: %s: %s\n", who, msg);
    if (!strstr(msg, path) || strchr(msg, '\n')) {
        fprintf(stderr, "fuzz: %s: a message that does not name %s on one line: '%s'\n", who, path, msg);
        abort();
    }
}

/* verify: each line "PATH: ..."; MD_ERR = exactly one line. */
static int run_verify(const char *path, md_verify_result *res)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) abort();
    int rc = md_verify_file(path, out, res);
    fclose(out);
    size_t plen = strlen(path), lines = 0;
    for (char *l = text; l && *l; lines++) {
        char *nl = strchr(l, '\n');
        if (!nl || strncmp(l, path, plen) != 0 || strncmp(l + plen, ": ", 2) != 0) {
            fprintf(stderr, "fuzz: verify printed a line that does not start with '%s: ': '%.*s'\n", path,
                    nl ? (int)(nl - l) : (int)strlen(l), l);
            abort();
        }
        l = nl + 1;
    }
    if (rc != MD_OK && lines != 1) {
        fprintf(stderr, "fuzz: verify refused the file in %zu lines:\n%s", lines, text);
        abort();
    }
    if (rc == MD_OK && res->defects == 0 && lines && !res->incomplete) {
        fprintf(stderr, "fuzz: verify found the file valid and complete but printed:\n%s", text);
        abort();
    }
    free(text);
    return rc;
}

static void check_unchanged(const char *path, const uint8_t *img, size_t len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *now = malloc(len + 1);
    size_t got = f && now ? fread(now, 1, len + 1, f) : 0;
    if (f) fclose(f);
    if (got != len || memcmp(now, img, len) != 0) {
        fprintf(stderr, "fuzz: a reader changed %s\n", path);
        abort();
    }
    free(now);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (access(tmp, F_OK) == 0) {
        fprintf(stderr, "fuzz: %s left behind\n", tmp);
        abort();
    }
}

#endif
