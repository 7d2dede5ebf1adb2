/* tokload_count.h — counts md_tokenizer_load calls in a unit test (included
 * once, by the test's .c file, before anything else uses the name).
 *
 * This executable's md_tokenizer_load takes the place of the library's (ELF
 * symbol interposition: libmechdiff is a shared library built with -fPIC)
 * and forwards to it (dlsym RTLD_NEXT). A build where the library binds its
 * own calls (-fno-semantic-interposition, -Bsymbolic, static) counts
 * nothing: each test's first check says so. Define _GNU_SOURCE before any
 * include of the test file (RTLD_NEXT). */
#ifndef MECHDIFF_TEST_TOKLOAD_COUNT_H
#define MECHDIFF_TEST_TOKLOAD_COUNT_H

#include <dlfcn.h>

#include "mechdiff/error.h"
#include "mechdiff/tokenizer.h"

static int loads; /* md_tokenizer_load calls so far */

int md_tokenizer_load(md_tokenizer **out, const char *dir, md_error *err)
{
    int (*real)(md_tokenizer **, const char *, md_error *) =
        (int (*)(md_tokenizer **, const char *, md_error *))dlsym(RTLD_NEXT, "md_tokenizer_load");
    loads++;
    if (!real) return md_error_set(err, "%s: the library's md_tokenizer_load is not found", __FILE__);
    return real(out, dir, err);
}

#endif
