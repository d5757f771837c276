/* Reference embeddings and rerank scores through the raw llama.h C API, one text at a time.
 *
 * usage: embed VARIANT_DIR MODEL POOLING THREADS N_CTX TEXT...
 *        embed VARIANT_DIR MODEL rerank THREADS N_CTX QUERY DOC...
 * POOLING is none, mean, cls, last or rank (the llama_pooling_type numbers 0..4 also work).
 * Each TEXT is tokenized with add_special (special-token text not parsed) and decoded alone in
 * a fresh memory (cleared before each); one line per TEXT: its pooled embedding (n_embd_out
 * floats, n_cls_out for rank), unnormalised, space separated. In rerank mode each DOC is paired
 * with QUERY as gguf-loader's Embedder::rerank does (the query as one encoded text, a SEP (else
 * EOS) appended when it ends with neither, then the document encoded without its BOS) and the
 * line is the first classifier output. Like tests/c/greedy.c, the CPU's extra buffer types are
 * used unless GREEDY_EXTRA_BUFTS is "0". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char * text, void * user_data) {
    (void) level; (void) text; (void) user_data;
}

static int tokenize(const struct llama_vocab * vocab, const char * text, bool add_special,
                    llama_token ** out) {
    int len = (int) strlen(text);
    int cap = len + 16;
    *out = malloc(sizeof(llama_token) * cap);
    int n = llama_tokenize(vocab, text, len, *out, cap, add_special, false);
    if (n < 0) { fprintf(stderr, "tokenize failed\n"); exit(1); }
    return n;
}

int main(int argc, char ** argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s VARIANT_DIR MODEL POOLING|rerank THREADS N_CTX TEXT...\n", argv[0]);
        return 2;
    }
    const char * dir = argv[1];
    const char * model_path = argv[2];
    const char * mode = argv[3];
    int threads = atoi(argv[4]);
    int n_ctx = atoi(argv[5]);

    bool rerank = strcmp(mode, "rerank") == 0;
    enum llama_pooling_type pooling;
    if (rerank || strcmp(mode, "rank") == 0) pooling = LLAMA_POOLING_TYPE_RANK;
    else if (strcmp(mode, "none") == 0) pooling = LLAMA_POOLING_TYPE_NONE;
    else if (strcmp(mode, "mean") == 0) pooling = LLAMA_POOLING_TYPE_MEAN;
    else if (strcmp(mode, "cls") == 0) pooling = LLAMA_POOLING_TYPE_CLS;
    else if (strcmp(mode, "last") == 0) pooling = LLAMA_POOLING_TYPE_LAST;
    else pooling = (enum llama_pooling_type) atoi(mode);

    llama_log_set(quiet, NULL);
    ggml_backend_load_all_from_path(dir);
    llama_backend_init();

    struct llama_model_params mparams = llama_model_default_params();
    mparams.n_gpu_layers = 0;
    /* The crate turns the CPU's extra buffer types off where the build has a faulty one (AMX). */
    const char * extra = getenv("GREEDY_EXTRA_BUFTS");
    mparams.use_extra_bufts = !(extra && extra[0] == '0');
    struct llama_model * model = llama_model_load_from_file(model_path, mparams);
    if (!model) { fprintf(stderr, "model load failed\n"); return 1; }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);

    struct llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = n_ctx;
    cparams.n_batch = n_ctx;
    cparams.n_ubatch = n_ctx;
    cparams.n_seq_max = 1;
    cparams.n_threads = threads;
    cparams.n_threads_batch = threads;
    cparams.embeddings = true;
    cparams.pooling_type = pooling;
    struct llama_context * ctx = llama_init_from_model(model, cparams);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }
    int n_out = pooling == LLAMA_POOLING_TYPE_RANK ? (int) llama_model_n_cls_out(model)
                                                   : llama_model_n_embd_out(model);

    struct llama_batch batch = llama_batch_init(n_ctx, 0, 1);
    int first = rerank ? 7 : 6;
    for (int a = first; a < argc; a++) {
        llama_token * tokens = NULL;
        int n = 0;
        if (rerank) {
            llama_token * q = NULL;
            llama_token * d = NULL;
            llama_token * plain = NULL;
            int nq = tokenize(vocab, argv[6], true, &q);
            int nd = tokenize(vocab, argv[a], true, &d);
            int np = tokenize(vocab, argv[a], false, &plain);
            llama_token eos = llama_vocab_eos(vocab);
            llama_token sep = llama_vocab_sep(vocab);
            llama_token bos = llama_vocab_bos(vocab);
            tokens = malloc(sizeof(llama_token) * (nq + nd + 1));
            memcpy(tokens, q, sizeof(llama_token) * nq);
            n = nq;
            bool ends = n > 0 && ((eos != LLAMA_TOKEN_NULL && tokens[n - 1] == eos) ||
                                  (sep != LLAMA_TOKEN_NULL && tokens[n - 1] == sep));
            if (!ends) {
                llama_token separator = sep != LLAMA_TOKEN_NULL ? sep : eos;
                if (separator != LLAMA_TOKEN_NULL) tokens[n++] = separator;
            }
            int skip = (bos != LLAMA_TOKEN_NULL && nd > 0 && d[0] == bos &&
                        !(np > 0 && plain[0] == bos)) ? 1 : 0;
            memcpy(tokens + n, d + skip, sizeof(llama_token) * (nd - skip));
            n += nd - skip;
            free(q); free(d); free(plain);
        } else {
            n = tokenize(vocab, argv[a], true, &tokens);
        }
        if (n > n_ctx) { fprintf(stderr, "text %d too long\n", a - first); return 1; }
        llama_memory_clear(llama_get_memory(ctx), true);
        batch.n_tokens = n;
        for (int i = 0; i < n; i++) {
            batch.token[i] = tokens[i];
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
        const float * embd = llama_get_embeddings_seq(ctx, 0);
        if (!embd) { fprintf(stderr, "no embeddings\n"); return 1; }
        if (rerank) {
            printf("%.9g\n", embd[0]);
        } else {
            for (int i = 0; i < n_out; i++) printf(i ? " %.9g" : "%.9g", embd[i]);
            printf("\n");
        }
        free(tokens);
    }
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
