/* replay_main.c — the main() of a harness built without libFuzzer (the
 * ordinary build): runs LLVMFuzzerTestOneInput once on each file named on
 * the command line, or on each file of a folder named there, so that ctest
 * replays the regression inputs of tests/fuzz/regress/<harness>/ with the
 * harness's own checks (under ASan/UBSan in the sanitizer builds). Prints
 * the number of inputs replayed; a failed check aborts. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads PATH whole and replays it; returns 0, or 1 when it cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    size_t cap = 4096, n = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        if ((n += got) < cap) continue;
        uint8_t *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        return 1;
    }
    /* libFuzzer hands over exactly size bytes: a private copy lets ASan see overreads */
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, buf, n);
    free(buf);
    fprintf(stderr, "replay: %s\n", path);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

int main(int argc, char **argv)
{
    int bad = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            struct dirent **ents = NULL;
            int n = scandir(argv[i], &ents, NULL, alphasort);
            for (int k = 0; k < n; k++) {
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], ents[k]->d_name);
                if (ents[k]->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
                    bad |= replay_file(p), count++;
                free(ents[k]);
            }
            free(ents);
            if (n < 0) bad = 1, fprintf(stderr, "replay: cannot list %s\n", argv[i]);
        } else {
            bad |= replay_file(argv[i]), count++;
        }
    }
    printf("replayed %d inputs\n", count);
    return bad;
}
