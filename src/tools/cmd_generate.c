/* cmd_generate.c — placeholder until its module lands (replaced by the owner). */
#include <stdio.h>
#include "tools/cmds.h"
int cmd_generate(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "mechdiff: 'generate' is not built yet\n");
    return 2;
}
