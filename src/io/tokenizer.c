/* tokenizer.c — loads a Hugging Face tokenizer.json BPE tokenizer (model,
 * added tokens; the components through tok_components.c) with
 * tokenizer_config.json and chat_template.jinja, and answers questions
 * about its vocabulary (see include/mechdiff/tokenizer.h). Encoding:
 * tok_encode.c; decoding: tok_decode.c.
 * Ownership: md_tokenizer owns every table, string and compiled regex. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/tokenizer_int.h"
#include "mechdiff/fsutil.h"

/* Largest tokenizer.json / tokenizer_config.json / chat_template.jinja read
 * (real tokenizer.json files are 2-35 MB). */
#define MD_TK_MAX_FILE ((size_t)512 << 20)

/* --- byte-level map (GPT-2 bytes_to_unicode) --------------------------------- */

static void build_byte_map(md_tokenizer *t)
{
    for (int i = 0; i < 324; i++) t->char_byte[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        int cp = keep ? b : 256 + extra++;
        char buf[4];
        int l = md_u8_enc(cp, buf);
        memset(t->byte_char[b], 0, 3);
        memcpy(t->byte_char[b], buf, (size_t)l);
        t->char_byte[cp] = b;
    }
}

static int parse_added(md_tokenizer *t, json_t *arr, md_error *err)
{
    size_t n = json_array_size(arr);
    if (!n) return MD_OK;
    t->added = calloc(n, sizeof *t->added);
    if (!t->added) return md_error_set(err, "out of memory");
    size_t i;
    json_t *a;
    json_array_foreach(arr, i, a) {
        const char *c = json_string_value(json_object_get(a, "content"));
        json_t *id = json_object_get(a, "id");
        if (!c || !*c || !json_is_integer(id))
            return md_error_set(err, "added_tokens[%zu] needs a non-empty \"content\" and an integer \"id\"", i);
        added_tok *x = &t->added[t->n_added++];
        x->content = strdup(c);
        if (!x->content) return md_error_set(err, "out of memory");
        x->len = strlen(c);
        x->id = (int)json_integer_value(id);
        x->special = md_tk_get_bool(a, "special", 0);
        x->lstrip = md_tk_get_bool(a, "lstrip", 0);
        x->rstrip = md_tk_get_bool(a, "rstrip", 0);
        x->single_word = md_tk_get_bool(a, "single_word", 0);
        x->normalized = md_tk_get_bool(a, "normalized", !x->special);
    }
    return MD_OK;
}

static int parse_model(md_tokenizer *t, json_t *model, md_error *err)
{
    const char *type = json_string_value(json_object_get(model, "type"));
    if (type && strcmp(type, "BPE") != 0)
        return md_error_set(err, "unsupported model type \"%s\" (only BPE tokenizers are supported)", type);
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab) || !json_is_array(merges))
        return md_error_set(err, "model needs a \"vocab\" object and a \"merges\" array (is it a BPE model?)");
    const char *pfx = json_string_value(json_object_get(model, "continuing_subword_prefix"));
    const char *sfx = json_string_value(json_object_get(model, "end_of_word_suffix"));
    if ((pfx && *pfx) || (sfx && *sfx))
        return md_error_set(err, "BPE continuing_subword_prefix/end_of_word_suffix are not supported");
    json_t *drop = json_object_get(model, "dropout");
    if (drop && !json_is_null(drop) && json_number_value(drop) != 0.0)
        return md_error_set(err, "BPE dropout is set (%g); it randomises encoding, set it to null",
                            json_number_value(drop));
    /* Size: the largest id over vocab and added tokens. */
    json_int_t max_id = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v)) return md_error_set(err, "vocab entry '%s' has a non-integer id", key);
        json_int_t id = json_integer_value(v);
        if (id < 0 || id > 10000000) return md_error_set(err, "vocab entry '%s' has id %lld out of range", key, (long long)id);
        if (id > max_id) max_id = id;
    }
    for (size_t i = 0; i < t->n_added; i++) {
        if (t->added[i].id < 0 || t->added[i].id > 10000000)
            return md_error_set(err, "added token '%s' has id %d out of range", t->added[i].content, t->added[i].id);
        if (t->added[i].id > max_id) max_id = t->added[i].id;
    }
    t->n_vocab = (int)(max_id + 1);
    if (md_bpe_init(&t->bpe, (size_t)t->n_vocab, json_array_size(merges), err)) return MD_ERR;
    json_object_foreach(vocab, key, v) {
        if (md_bpe_add_piece(&t->bpe, key, strlen(key), (int)json_integer_value(v), err)) return MD_ERR;
    }
    size_t i;
    json_array_foreach(merges, i, v) {
        const char *l, *r;
        size_t ll, rl;
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return md_error_set(err, "merges[%zu] \"%s\" is not two tokens separated by one space", i, s);
            l = s; ll = (size_t)(sp - s); r = sp + 1; rl = strlen(r);
        } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) {
            l = json_string_value(json_array_get(v, 0)); ll = json_string_length(json_array_get(v, 0));
            r = json_string_value(json_array_get(v, 1)); rl = json_string_length(json_array_get(v, 1));
        } else {
            return md_error_set(err, "merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", i);
        }
        if (md_bpe_add_merge(&t->bpe, l, ll, r, rl, err)) return md_error_prefix(err, "merges[%zu]", i);
    }
    md_bpe_finish(&t->bpe);
    t->bpe.byte_fallback = md_tk_get_bool(model, "byte_fallback", 0);
    t->bpe.fuse_unk = md_tk_get_bool(model, "fuse_unk", 0);
    t->bpe.ignore_merges = md_tk_get_bool(model, "ignore_merges", 0);
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    if (unk) {
        t->bpe.unk_id = md_bpe_lookup(&t->bpe, unk, strlen(unk));
        for (size_t k = 0; t->bpe.unk_id < 0 && k < t->n_added; k++)
            if (strcmp(t->added[k].content, unk) == 0) t->bpe.unk_id = t->added[k].id;
        if (t->bpe.unk_id < 0) return md_error_set(err, "unk_token '%s' is not in the vocabulary", unk);
    }
    return MD_OK;
}

static const char *config_token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_string(v)) return json_string_value(v);
    return json_string_value(json_object_get(v, "content"));
}

static int load_config(md_tokenizer *t, const char *dir, int *add_bos, md_error *err)
{
    char *path = md_tk_path_join(dir, "tokenizer_config.json");
    if (!path) return md_error_set(err, "out of memory");
    if (access(path, F_OK) != 0) { free(path); return MD_OK; } /* optional */
    size_t len = 0;
    char *text = md_fsutil_read_input(path, MD_TK_MAX_FILE, &len, err); /* a FIFO is refused, never read */
    if (!text) { free(path); return MD_ERR; }
    json_error_t je;
    /* INT_AS_REAL: real configs hold model_max_length = 1e30 as an integer. */
    json_t *cfg = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &je);
    free(text);
    int rc = MD_ERR;
    if (!cfg) {
        md_error_set(err, "%s: invalid JSON at line %d: %s; fix or remove the file", path, je.line, je.text);
        goto out;
    }
    json_t *ct = json_object_get(cfg, "chat_template");
    const char *tmpl = json_string_value(ct);
    if (json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (name && strcmp(name, "default") == 0) tmpl = json_string_value(json_object_get(e, "template"));
        }
        if (!tmpl) {
            md_error_set(err, "%s: chat_template is a list without a \"default\" entry", path);
            goto out;
        }
    }
    if (tmpl && (!(t->chat_template = strdup(tmpl)) || !(t->chat_template_origin = strdup(path)))) {
        md_error_set(err, "out of memory");
        goto out;
    }
    const char *names[2] = {config_token(cfg, "bos_token"), config_token(cfg, "eos_token")};
    int *ids[2] = {&t->bos_id, &t->eos_id};
    for (int k = 0; k < 2; k++) {
        if (!names[k]) continue;
        int id = md_tokenizer_lookup(t, names[k]);
        if (id < 0) {
            md_error_set(err, "%s: %s \"%s\" is not in the vocabulary of the tokenizer.json beside it", path,
                         k ? "eos_token" : "bos_token", names[k]);
            goto out;
        }
        *ids[k] = id;
    }
    *add_bos = md_tk_get_bool(cfg, "add_bos_token", -1);
    rc = MD_OK;
out:
    json_decref(cfg);
    free(path);
    return rc;
}

/* DIR/chat_template.jinja (where recent transformers saves the template)
 * replaces the chat_template of tokenizer_config.json, as in transformers. */
static int load_chat_template_file(md_tokenizer *t, const char *dir, md_error *err)
{
    char *path = md_tk_path_join(dir, "chat_template.jinja");
    if (!path) return md_error_set(err, "out of memory");
    if (access(path, F_OK) != 0) {
        free(path);
        return MD_OK; /* optional */
    }
    size_t len = 0;
    char *text = md_fsutil_read_input(path, MD_TK_MAX_FILE, &len, err); /* a FIFO is refused, never read */
    int rc = text ? MD_OK : MD_ERR;
    if (text && memchr(text, '\0', len)) rc = md_error_set(err, "%s: holds a NUL byte; is it a text file?", path);
    if (rc == MD_OK) {
        free(t->chat_template);
        free(t->chat_template_origin);
        t->chat_template = text;
        t->chat_template_origin = path;
        return MD_OK;
    }
    free(text);
    free(path);
    return rc;
}

/* Reads t->path (tokenizer.json) into *root: a JSON object with a "model"
 * object (the caller frees *root, also on MD_ERR). */
static int read_tokenizer_json(md_tokenizer *t, json_t **root, md_error *err)
{
    json_error_t je;
    if (access(t->path, F_OK) != 0)
        return md_error_set(err, "%s: cannot open (does DIR hold a Hugging Face tokenizer.json?)", t->path);
    size_t len = 0;
    char *text = md_fsutil_read_input(t->path, MD_TK_MAX_FILE, &len, err); /* a FIFO is refused, never read */
    if (!text) return MD_ERR;
    *root = json_loadb(text, len, 0, &je);
    free(text);
    if (!*root) return md_error_set(err, "%s: invalid JSON at line %d: %s", t->path, je.line, je.text);
    if (!json_is_object(*root) || !json_is_object(json_object_get(*root, "model")))
        return md_error_set(err, "%s: no \"model\" object; not a tokenizer.json", t->path);
    return MD_OK;
}

/* tokenizer.json's sections (added tokens, model, normalizer,
 * pre-tokenizer, decoder, post-processor) into t. */
static int parse_sections(md_tokenizer *t, json_t *root, md_error *err)
{
    if (parse_added(t, json_object_get(root, "added_tokens"), err) ||
        parse_model(t, json_object_get(root, "model"), err) ||
        md_tk_parse_normalizer(t, json_object_get(root, "normalizer"), err) ||
        md_tk_parse_pre_tokenizer(t, json_object_get(root, "pre_tokenizer"), err) ||
        md_tk_parse_decoder(t, json_object_get(root, "decoder"), err) ||
        md_tk_parse_post(t, json_object_get(root, "post_processor"), err))
        return md_error_prefix(err, "%s", t->path);
    for (size_t k = 0; k < t->post_prefix.n + t->post_suffix.n; k++) {
        int id = k < t->post_prefix.n ? t->post_prefix.v[k] : t->post_suffix.v[k - t->post_prefix.n];
        if (id < 0 || id >= t->n_vocab)
            return md_error_set(err, "%s: post_processor adds id %d, outside the vocabulary", t->path, id);
    }
    return MD_OK;
}

/* Added-token tables (added_of_id, each one's normalised text, the first
 * bytes that may start one); every id must be a piece or an added token. */
static int build_added_tables(md_tokenizer *t, md_error *err)
{
    t->added_of_id = malloc((size_t)t->n_vocab * sizeof *t->added_of_id);
    if (!t->added_of_id) return md_error_set(err, "out of memory");
    for (int i = 0; i < t->n_vocab; i++) t->added_of_id[i] = -1;
    for (size_t k = 0; k < t->n_added; k++) {
        added_tok *a = &t->added[k];
        t->added_of_id[a->id] = (int)k;
        md_sbuf nb = {0};
        if (md_tk_apply_normalizer(t, a->content, a->len, &nb)) return md_error_set(err, "out of memory");
        a->norm = nb.s;
        a->norm_len = nb.n;
        if (a->normalized ? a->norm_len : a->len)
            t->added_first[a->normalized][(unsigned char)(a->normalized ? a->norm[0] : a->content[0])] = 1;
    }
    for (int id = 0; id < t->n_vocab; id++)
        if (!t->bpe.pieces[id] && t->added_of_id[id] < 0)
            return md_error_set(err, "%s: id %d is neither in model.vocab nor in added_tokens", t->path, id);
    return MD_OK;
}

int md_tokenizer_load(md_tokenizer **out, const char *dir, md_error *err)
{
    *out = NULL;
    json_t *root = NULL;
    md_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return md_error_set(err, "out of memory");
    t->bos_id = t->eos_id = -1;
    t->bpe.unk_id = -1;
    build_byte_map(t);
    t->path = md_tk_path_join(dir, "tokenizer.json");
    if (!t->path) { md_error_set(err, "out of memory"); goto fail; }
    if (read_tokenizer_json(t, &root, err) || parse_sections(t, root, err) || build_added_tables(t, err)) goto fail;
    /* Kind. */
    t->kind = MD_TOKENIZER_BYTE_LEVEL;
    int byte_level = 0;
    for (size_t k = 0; k < t->n_pre; k++) byte_level |= t->pre[k].kind == PRE_BYTELEVEL;
    if (!byte_level) t->kind = MD_TOKENIZER_SENTENCEPIECE;
    /* Config; BOS defaults to the post-processor's first token. */
    int add_bos = -1;
    if (load_config(t, dir, &add_bos, err) || load_chat_template_file(t, dir, err)) goto fail;
    if (t->bos_id < 0 && t->post_prefix.n) t->bos_id = t->post_prefix.v[0];
    if (!t->has_post && add_bos == 1 && t->bos_id >= 0 && md_ivec_push(&t->post_prefix, t->bos_id)) {
        md_error_set(err, "out of memory");
        goto fail;
    }
    json_decref(root);
    *out = t;
    return MD_OK;
fail:
    json_decref(root);
    md_tokenizer_free(t);
    return MD_ERR;
}

void md_tokenizer_free(md_tokenizer *t)
{
    if (!t) return;
    md_bpe_free(&t->bpe);
    for (size_t i = 0; i < t->n_norm; i++) { free(t->norm[i].a); free(t->norm[i].b); }
    free(t->norm);
    for (size_t i = 0; i < t->n_pre; i++) { pcre2_code_free(t->pre[i].re); free(t->pre[i].repl); }
    free(t->pre);
    for (size_t i = 0; i < t->n_dec; i++) { free(t->dec[i].a); free(t->dec[i].b); }
    free(t->dec);
    for (size_t i = 0; i < t->n_added; i++) { free(t->added[i].content); free(t->added[i].norm); }
    free(t->added);
    free(t->added_of_id);
    free(t->post_prefix.v);
    free(t->post_suffix.v);
    free(t->chat_template);
    free(t->chat_template_origin);
    free(t->path);
    free(t);
}

md_tokenizer_kind md_tokenizer_get_kind(const md_tokenizer *t) { return t->kind; }
int md_tokenizer_vocab_size(const md_tokenizer *t) { return t->n_vocab; }
int md_tokenizer_bos_id(const md_tokenizer *t) { return t->bos_id; }
int md_tokenizer_eos_id(const md_tokenizer *t) { return t->eos_id; }
const char *md_tokenizer_chat_template(const md_tokenizer *t) { return t->chat_template; }
const char *md_tokenizer_chat_template_origin(const md_tokenizer *t) { return t->chat_template_origin; }

const char *md_tokenizer_piece(const md_tokenizer *t, int id)
{
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (t->added_of_id[id] >= 0) return t->added[t->added_of_id[id]].content;
    return t->bpe.pieces[id];
}

int md_tokenizer_lookup(const md_tokenizer *t, const char *piece)
{
    for (size_t k = 0; k < t->n_added; k++)
        if (strcmp(t->added[k].content, piece) == 0) return t->added[k].id;
    return md_bpe_lookup(&t->bpe, piece, strlen(piece));
}

int md_tokenizer_is_special(const md_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_vocab && t->added_of_id[id] >= 0 && t->added[t->added_of_id[id]].special;
}

/* The vocabulary string of id (NULL for an id without one) and its length
 * in bytes (model pieces and added tokens may hold a NUL). */
static const char *piece_bytes(const md_tokenizer *t, int id, size_t *len)
{
    int k = t->added_of_id[id];
    *len = k >= 0 ? t->added[k].len : t->bpe.piece_len[id];
    return k >= 0 ? t->added[k].content : t->bpe.pieces[id];
}

/* Whether id stands for the same bytes in a and b when one has it as an
 * added token and the other as a model piece (md_tokenizer_piece_text). */
static int same_text(const md_tokenizer *a, const md_tokenizer *b, int id)
{
    char *ta = NULL, *tb = NULL;
    size_t na = 0, nb = 0;
    md_error ignored;
    int same = md_tokenizer_piece_text(a, id, &ta, &na, &ignored) == MD_OK &&
               md_tokenizer_piece_text(b, id, &tb, &nb, &ignored) == MD_OK && na == nb && memcmp(ta, tb, na) == 0;
    free(ta);
    free(tb);
    return same;
}

int md_tokenizer_first_difference(const md_tokenizer *a, const md_tokenizer *b)
{
    if (a->kind != b->kind) return 0;
    int n = a->n_vocab < b->n_vocab ? a->n_vocab : b->n_vocab;
    for (int id = 0; id < n; id++) {
        size_t la, lb;
        const char *pa = piece_bytes(a, id, &la), *pb = piece_bytes(b, id, &lb);
        if (!pa || !pb) {
            if (pa != pb) return id; /* an id one vocabulary lacks */
            continue;
        }
        if (la == lb && memcmp(pa, pb, la) == 0) continue;
        if ((a->added_of_id[id] >= 0) == (b->added_of_id[id] >= 0) || !same_text(a, b, id)) return id;
    }
    return -1;
}
