/* cmd_merge.c — placeholder until its module lands (replaced by the owner). */
#include <stdio.h>
#include "tools/cmds.h"
int cmd_merge(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "mechdiff: 'merge' is not built yet\n");
    return 2;
}
