/* tokenizer.h — Hugging Face tokenizer.json BPE tokenizers:
 *   - byte-level BPE with the Llama-3 split regex (PCRE2), and
 *   - SentencePiece-style BPE with "▁" metaspace and <0xNN> byte fallback
 *     (Llama-2, Mistral);
 * plus added/special tokens, BOS from the post-processor, and decoding.
 * Ownership: md_tokenizer owns all its tables; returned arrays/strings are
 * malloc'd and owned by the caller. */
#ifndef MECHDIFF_TOKENIZER_H
#define MECHDIFF_TOKENIZER_H

#include <stddef.h>

#include "mechdiff/error.h"

typedef enum md_tokenizer_kind {
    MD_TOKENIZER_BYTE_LEVEL = 0,
    MD_TOKENIZER_SENTENCEPIECE = 1
} md_tokenizer_kind;

typedef struct md_tokenizer md_tokenizer;

/* Loads DIR/tokenizer.json (and DIR/tokenizer_config.json when present, for
 * the chat template and the BOS/EOS token names; DIR/chat_template.jinja,
 * when present, is the chat template, as in transformers). */
int md_tokenizer_load(md_tokenizer **out, const char *dir, md_error *err);
void md_tokenizer_free(md_tokenizer *tok);

md_tokenizer_kind md_tokenizer_get_kind(const md_tokenizer *tok);
int md_tokenizer_vocab_size(const md_tokenizer *tok);
int md_tokenizer_bos_id(const md_tokenizer *tok);   /* -1 if none */
int md_tokenizer_eos_id(const md_tokenizer *tok);   /* -1 if none */

/* Encodes the UTF-8 text[0..len); the text may hold NUL bytes (U+0000),
 * which are encoded like any other character. add_special != 0 adds what the
 * post-processor adds (BOS). Special/added tokens in the text are
 * recognised. *ids is malloc'd. */
int md_tokenizer_encode_n(const md_tokenizer *tok, const char *text, size_t len, int add_special,
                          int **ids, size_t *n_ids, md_error *err);
/* md_tokenizer_encode_n of the NUL-terminated text. */
int md_tokenizer_encode(const md_tokenizer *tok, const char *text, int add_special,
                        int **ids, size_t *n_ids, md_error *err);
/* Decodes ids to UTF-8 (skip_special != 0 drops special tokens). *text is
 * malloc'd and NUL-terminated; *len (when len is not NULL) is its length in
 * bytes, which counts any NUL the ids decode to. */
int md_tokenizer_decode_n(const md_tokenizer *tok, const int *ids, size_t n_ids,
                          int skip_special, char **text, size_t *len, md_error *err);
/* md_tokenizer_decode_n without the length. */
int md_tokenizer_decode(const md_tokenizer *tok, const int *ids, size_t n_ids,
                        int skip_special, char **text, md_error *err);
/* The vocabulary string of one id (NULL if out of range). */
const char *md_tokenizer_piece(const md_tokenizer *tok, int id);
/* Non-zero when id is an added token marked special (BOS, <|eot_id|>, ...). */
int md_tokenizer_is_special(const md_tokenizer *tok, int id);
/* The text one id stands for on its own: byte-level pieces mapped back to
 * bytes, the metaspace "▁" (U+2581) shown as a space, <0xNN> as its byte. The result
 * may be a partial UTF-8 sequence; *out (malloc'd, NUL-terminated) holds
 * *len bytes. */
int md_tokenizer_piece_text(const md_tokenizer *tok, int id, char **out, size_t *len, md_error *err);
/* The first id below both vocabulary sizes that does not stand for the same
 * token in a and b: its vocabulary string (or added token) differs, or one
 * of them lacks it; an id that is an added token in one and a model piece
 * in the other is the same when both stand for the same bytes
 * (md_tokenizer_piece_text). -1 when every shared id agrees: the smaller
 * vocabulary is a prefix of the larger one, whose extra ids are appended
 * tokens. 0 when the kinds differ (byte-level vs SentencePiece pieces do
 * not mean the same bytes). One pass over the shared ids comparing
 * strings: about a millisecond for a 150k vocabulary. */
int md_tokenizer_first_difference(const md_tokenizer *a, const md_tokenizer *b);
/* The id of an exact vocabulary string or added token; -1 when unknown. */
int md_tokenizer_lookup(const md_tokenizer *tok, const char *piece);
/* Id of WORD (e.g. " TRUE") when it is exactly one token after a preceding
 * text, as in "...is: TRUE"; -1 (and err set, naming the word and the
 * pieces it splits into) otherwise. */
int md_tokenizer_single_token(const md_tokenizer *tok, const char *word, md_error *err);
/* md_tokenizer_single_token that also writes, when the word splits, the
 * pieces it became into pieces (len bytes, may be NULL): "N pieces: 'a' 'b'"
 * (empty when it does not split or could not be encoded). */
int md_tokenizer_word_pieces(const md_tokenizer *tok, const char *word, char *pieces, size_t len, md_error *err);
/* The raw Jinja chat template (chat_template.jinja, else the
 * chat_template of tokenizer_config.json), or NULL. */
const char *md_tokenizer_chat_template(const md_tokenizer *tok);
/* The path of the file the chat template came from (for messages), or NULL. */
const char *md_tokenizer_chat_template_origin(const md_tokenizer *tok);

#endif
