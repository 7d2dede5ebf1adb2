/* job_yaml.h — internal to src/io/job*.c: the nesting pre-scan of a job
 * file's YAML text (libyaml spends quadratic time on deep nesting, so it is
 * measured before libyaml sees the text). */
#ifndef MECHDIFF_IO_JOB_YAML_H
#define MECHDIFF_IO_JOB_YAML_H

#include "mechdiff/error.h"

/* MD_OK when the text nests at most max_depth levels (overestimated
 * cheaply, see job_yaml.c); else an error naming source and the line. */
int md_job_yaml_check_depth(const char *text, const char *source, int max_depth, md_error *err);

#endif
