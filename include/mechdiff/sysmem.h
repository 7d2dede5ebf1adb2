/* sysmem.h — how much memory this process may still take (for budgets:
 * the CPU fp32 weight cache, make-model's generator threads). */
#ifndef MECHDIFF_SYSMEM_H
#define MECHDIFF_SYSMEM_H

#include <stddef.h>

/* Bytes available now: MemAvailable of /proc/meminfo (else the free pages
 * sysconf reports), capped by the room left under a cgroup v2 memory limit
 * (memory.max - memory.current) when one is set. */
size_t md_sysmem_available(void);

#endif
