/* cmd_status.c — placeholder until its module lands (replaced by the owner). */
#include <stdio.h>
#include "tools/cmds.h"
int cmd_status(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "mechdiff: 'status' is not built yet\n");
    return 2;
}
