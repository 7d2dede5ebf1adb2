/* cmd_make_model.c — placeholder until its module lands (replaced by the owner). */
#include <stdio.h>
#include "tools/cmds.h"
int cmd_make_model(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "mechdiff: 'make_model' is not built yet\n");
    return 2;
}
