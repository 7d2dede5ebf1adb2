/* sysmem.c — see include/mechdiff/sysmem.h. */
#include "mechdiff/sysmem.h"

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* Bytes of "MemAvailable:" in /proc/meminfo (0 when unreadable). */
static size_t meminfo_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    return (size_t)kb * 1024;
}

/* Room left under a cgroup v2 memory limit (SIZE_MAX: no limit / no cgroup). */
static size_t cgroup_room(void)
{
    unsigned long long max = 0, cur = 0;
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
    int have_max = f && fscanf(f, "%llu", &max) == 1; /* "max" (no limit) does not parse */
    if (f) fclose(f);
    f = fopen("/sys/fs/cgroup/memory.current", "r");
    int have_cur = f && fscanf(f, "%llu", &cur) == 1;
    if (f) fclose(f);
    if (!have_max || !have_cur) return SIZE_MAX;
    return max > cur ? (size_t)(max - cur) : 0;
}

size_t md_sysmem_available(void)
{
    size_t avail = meminfo_available();
    if (avail == 0) {
        long pages = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        avail = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : 0;
    }
    size_t room = cgroup_room();
    return room < avail ? room : avail;
}
