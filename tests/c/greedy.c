/* Reference greedy generation through the raw llama.h C API, for token-exactness tests.
 *
 * usage: greedy VARIANT_DIR MODEL N_PREDICT THREADS N_CTX N_BATCH PROMPT
 * Loads every backend plugin of VARIANT_DIR (as the Rust side's AllInDirectory does), tokenizes
 * PROMPT with add_special and parse_special, feeds it in chunks of N_BATCH, then prints each
 * greedily generated token id on its own line until N_PREDICT tokens or end of generation
 * (with GREEDY_MARGINS set, each id is followed by its logit lead over the runner-up; with
 * GREEDY_LORA=PATH:SCALE, that LoRA adapter is applied to the context first). */
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

int main(int argc, char ** argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s VARIANT_DIR MODEL N_PREDICT THREADS N_CTX N_BATCH PROMPT\n", argv[0]);
        return 2;
    }
    const char * dir = argv[1];
    const char * model_path = argv[2];
    int n_predict = atoi(argv[3]);
    int threads = atoi(argv[4]);
    int n_ctx = atoi(argv[5]);
    int n_batch = atoi(argv[6]);
    const char * prompt = argv[7];

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
    cparams.n_batch = n_batch;
    cparams.n_ubatch = cparams.n_ubatch < (uint32_t) n_batch ? cparams.n_ubatch : (uint32_t) n_batch;
    cparams.n_threads = threads;
    cparams.n_threads_batch = threads;
    struct llama_context * ctx = llama_init_from_model(model, cparams);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }
    struct llama_adapter_lora * adapter = NULL;
    const char * lora = getenv("GREEDY_LORA");
    if (lora && lora[0]) {
        char path[4096];
        const char * colon = strrchr(lora, ':');
        size_t len = colon ? (size_t) (colon - lora) : strlen(lora);
        if (len >= sizeof path) { fprintf(stderr, "GREEDY_LORA too long\n"); return 1; }
        memcpy(path, lora, len);
        path[len] = 0;
        float scale = colon ? (float) atof(colon + 1) : 1.0f;
        adapter = llama_adapter_lora_init(model, path);
        if (!adapter) { fprintf(stderr, "adapter load failed\n"); return 1; }
        if (llama_set_adapters_lora(ctx, &adapter, 1, &scale) != 0) { fprintf(stderr, "set adapters failed\n"); return 1; }
    }

    int len = (int) strlen(prompt);
    int cap = len + 16;
    llama_token * tokens = malloc(sizeof(llama_token) * cap);
    int n = llama_tokenize(vocab, prompt, len, tokens, cap, true, true);
    if (n < 0) { fprintf(stderr, "tokenize failed\n"); return 1; }

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
    struct llama_sampler * chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(chain, llama_sampler_init_greedy());
    double t_gen = now_ms();
    int generated = 0;
    for (int i = 0; i < n_predict; i++) {
        llama_token id = llama_sampler_sample(chain, ctx, -1);
        if (llama_vocab_is_eog(vocab, id)) break;
        if (getenv("GREEDY_MARGINS")) {
            /* The lead of the chosen token over the runner-up: where it is small, another
             * backend may pick the runner-up (a near-tie), so comparisons need it. */
            const float * logits = llama_get_logits_ith(ctx, -1);
            float second = -INFINITY;
            for (int t = 0; t < llama_vocab_n_tokens(vocab); t++) {
                if (t != id && logits[t] > second) second = logits[t];
            }
            printf("%d %.6f\n", id, logits[id] - second);
        } else {
            printf("%d\n", id);
        }
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
    llama_sampler_free(chain);
    llama_batch_free(batch);
    free(tokens);
    llama_free(ctx);
    if (adapter) llama_adapter_lora_free(adapter);
    llama_model_free(model);
    return 0;
}
