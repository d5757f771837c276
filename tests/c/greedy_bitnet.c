/* Reference greedy generation through the BitNet fork's llama.h (bitnet.cpp, llama.cpp build
 * ~3947: the old API of llama_load_model_from_file, llama_new_context_with_model and model-based
 * vocabulary functions), for token-exactness tests. tests/c/greedy.c is the same program over the
 * upstream API: arguments, output and environment variables are the same.
 *
 * usage: greedy_bitnet VARIANT_DIR MODEL N_PREDICT THREADS N_CTX N_BATCH PROMPT
 * The fork has no backend plugins (its libggml.so holds the CPU backend, I2_S kernels included),
 * so VARIANT_DIR is what the program is linked against (-L/-rpath) and is not opened at run time.
 * Tokenizes PROMPT with add_special and parse_special, feeds it in chunks of N_BATCH, then prints
 * each greedily generated token id (the first of the largest logits over llama_n_vocab) on its own
 * line until N_PREDICT tokens or end of generation (with GREEDY_MARGINS set, each id is followed
 * by its logit lead over the runner-up; with GREEDY_LORA=PATH:SCALE, that LoRA adapter is applied
 * to the context first; with GREEDY_TIMING set, one timing line goes to stderr; with
 * GREEDY_PIECES set, each id is followed by a tab and its text piece, escaped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>

#include "llama.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void quiet(enum ggml_log_level level, const char * text, void * user_data) {
    (void) level; (void) text; (void) user_data;
}

/* The first token with the largest logit (as upstream's greedy sampler picks). */
static llama_token argmax(const float * logits, int n_vocab) {
    llama_token best = 0;
    for (int t = 1; t < n_vocab; t++) {
        if (logits[t] > logits[best]) best = t;
    }
    return best;
}

static void print_piece(const struct llama_model * model, llama_token id) {
    char buf[256];
    int n = llama_token_to_piece(model, id, buf, (int) sizeof buf, 0, true);
    putchar('\t');
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char) buf[i];
        if (c == '\\') fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
}

int main(int argc, char ** argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s VARIANT_DIR MODEL N_PREDICT THREADS N_CTX N_BATCH PROMPT\n", argv[0]);
        return 2;
    }
    const char * model_path = argv[2];
    int n_predict = atoi(argv[3]);
    int threads = atoi(argv[4]);
    int n_ctx = atoi(argv[5]);
    int n_batch = atoi(argv[6]);
    const char * prompt = argv[7];
    if (n_batch < 1 || n_ctx < 1 || threads < 1) {
        fprintf(stderr, "N_CTX, N_BATCH and THREADS must be positive\n");
        return 2;
    }

    if (!getenv("GREEDY_VERBOSE")) llama_log_set(quiet, NULL);
    llama_backend_init();

    struct llama_model_params mparams = llama_model_default_params();
    mparams.n_gpu_layers = 0;
    struct llama_model * model = llama_load_model_from_file(model_path, mparams);
    if (!model) { fprintf(stderr, "model load failed\n"); return 1; }
    const int n_vocab = llama_n_vocab(model);

    struct llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = n_ctx;
    cparams.n_batch = n_batch;
    cparams.n_ubatch = cparams.n_ubatch < (uint32_t) n_batch ? cparams.n_ubatch : (uint32_t) n_batch;
    cparams.n_threads = threads;
    cparams.n_threads_batch = threads;
    struct llama_context * ctx = llama_new_context_with_model(model, cparams);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }
    struct llama_lora_adapter * adapter = NULL;
    const char * lora = getenv("GREEDY_LORA");
    if (lora && lora[0]) {
        char path[4096];
        const char * colon = strrchr(lora, ':');
        size_t len = colon ? (size_t) (colon - lora) : strlen(lora);
        if (len >= sizeof path) { fprintf(stderr, "GREEDY_LORA too long\n"); return 1; }
        memcpy(path, lora, len);
        path[len] = 0;
        float scale = colon ? (float) atof(colon + 1) : 1.0f;
        adapter = llama_lora_adapter_init(model, path);
        if (!adapter) { fprintf(stderr, "adapter load failed\n"); return 1; }
        if (llama_lora_adapter_set(ctx, adapter, scale) != 0) { fprintf(stderr, "set adapters failed\n"); return 1; }
    }

    int len = (int) strlen(prompt);
    int cap = len + 16;
    llama_token * tokens = malloc(sizeof(llama_token) * cap);
    int n = llama_tokenize(model, prompt, len, tokens, cap, true, true);
    if (n < 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
    if (n == 0) { fprintf(stderr, "the prompt gave no tokens\n"); return 1; }

    struct llama_batch batch = llama_batch_init(n_batch, 0, 1);
    int pos = 0;
    double t_prompt = now_ms();
    for (int start = 0; start < n; start += n_batch) {
        int count = n - start < n_batch ? n - start : n_batch;
        batch.n_tokens = count;
        for (int i = 0; i < count; i++) {
            batch.token[i] = tokens[start + i];
            batch.pos[i] = pos + i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = (start + i == n - 1);
        }
        if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "prompt decode failed\n"); return 1; }
        pos += count;
    }

    t_prompt = now_ms() - t_prompt;
    double t_gen = now_ms();
    int generated = 0;
    for (int i = 0; i < n_predict; i++) {
        const float * logits = llama_get_logits_ith(ctx, -1);
        if (!logits) { fprintf(stderr, "no logits\n"); return 1; }
        llama_token id = argmax(logits, n_vocab);
        if (llama_token_is_eog(model, id)) break;
        printf("%d", id);
        if (getenv("GREEDY_MARGINS")) {
            /* The lead of the chosen token over the runner-up: where it is small, another
             * build may pick the runner-up (a near-tie), so comparisons need it. */
            float second = -INFINITY;
            for (int t = 0; t < n_vocab; t++) {
                if (t != id && logits[t] > second) second = logits[t];
            }
            printf(" %.6f", logits[id] - second);
        }
        if (getenv("GREEDY_PIECES")) print_piece(model, id);
        putchar('\n');
        generated++;
        if (i + 1 == n_predict) break; /* like the Rust loop: the last token is not decoded */
        batch.n_tokens = 1;
        batch.token[0] = id;
        batch.pos[0] = pos++;
        batch.n_seq_id[0] = 1;
        batch.seq_id[0][0] = 0;
        batch.logits[0] = 1;
        if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
    }
    t_gen = now_ms() - t_gen;
    if (getenv("GREEDY_TIMING")) {
        fprintf(stderr, "timing prompt_tokens=%d prompt_ms=%.3f generated=%d gen_ms=%.3f\n", n, t_prompt, generated, t_gen);
    }
    fflush(stdout);
    llama_batch_free(batch);
    free(tokens);
    llama_free(ctx);
    if (adapter) llama_lora_adapter_free(adapter);
    llama_free_model(model);
    return 0;
}
