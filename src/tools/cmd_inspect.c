/* cmd_inspect.c — placeholder until its module lands (replaced by the owner). */
#include <stdio.h>
#include "tools/cmds.h"
int cmd_inspect(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "mechdiff: 'inspect' is not built yet\n");
    return 2;
}
