/* hf_family.h — the model families of config.json beyond Llama/Mistral
 * (Qwen2, Qwen3, Gemma-2, OLMo-2): used by hf_config.c only (not
 * installed). md_hf_config_check_pair is public (hf_config.h). */
#ifndef MECHDIFF_HF_FAMILY_H
#define MECHDIFF_HF_FAMILY_H

#include <jansson.h>

#include "mechdiff/error.h"
#include "mechdiff/hf_config.h"

/* The family of architectures[0] (or of model_type when arch is NULL); the
 * canonical spellings of both. Error naming the key when unsupported or
 * when the two disagree. */
int md_family_lookup(const char *arch, const char *model_type, md_family *fam, const char **arch_out,
                     const char **type_out, const char *src, md_error *err);
/* Reads the keys of cfg->family (widths, eps, RoPE and tie already read
 * with Llama defaults; family defaults replace those where the key is
 * absent). A no-op for Llama/Mistral. */
int md_family_parse(md_config *cfg, json_t *root, const char *src, md_error *err);
/* Adds/replaces the family's keys in a config.json object being written. */
void md_family_write(const md_config *cfg, json_t *r);

#endif
