/* Measurement: can two different llama.cpp builds live in ONE process (Linux, glibc)?
 *
 * usage: two_builds UPSTREAM_DIR FORK_DIR MODEL MODE ORDER
 *   UPSTREAM_DIR  the pinned upstream build (libggml-base.so, libggml.so, libllama.so and the
 *                 libggml-cpu-<isa>.so plugins)
 *   FORK_DIR      an old (2024) llama.cpp fork such as BitNet's: libggml.so and libllama.so in one dir
 *   MODEL         a GGUF model both builds can load (llama arch)
 *   MODE          local    : both builds dlopen(RTLD_NOW | RTLD_LOCAL) (what the crate does)
 *                 deepbind : both builds dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)
 *                 dlmopen  : the first build dlopen(RTLD_NOW | RTLD_LOCAL), the second
 *                            dlmopen(LM_ID_NEWLM, RTLD_NOW | RTLD_LOCAL) (own link-map namespace)
 *   ORDER         up-first | fork-first
 *
 * Environment: TWO_BUILDS_CPU (upstream CPU plugin suffix, default haswell), TWO_BUILDS_THREADS
 * (default 1), TWO_BUILDS_NOFORK=1 (run only the combined sequence, in this process: for gdb and
 * LD_DEBUG), TWO_BUILDS_VERBOSE=1 (echo the builds' log messages to stderr).
 *
 * Without TWO_BUILDS_NOFORK the program runs three child processes: each build alone (the
 * baselines), then the combined sequence, and compares the token ids. A crash of a child is
 * reported with its signal and the last step it finished. The combined sequence (A = first build of
 * ORDER, B = second):
 *   A1 load A, generate     B1 load B, generate      A2 generate with A again
 *   B2 generate with B      exc  each build loads a non-GGUF file (C++ throw/catch inside it)
 *   B3 free A (model, llama_backend_free), generate with B      B4 dlclose A's handles, generate with B
 * Each generation: a fresh context (n_ctx 256), prompt "The three primary colors are" tokenized
 * with add_special and parse_special, 16 greedy tokens (argmax of the last logits).
 *
 * Both builds' headers define the same names with different layouts, so nothing here includes
 * llama.h: the few structs needed are mirrored from each header (sizes asserted below) and every
 * function is reached through dlsym.
 *
 * build: cc -O1 -Wall -o two_builds tests/c/two_builds.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_PREDICT 16
#define N_CTX 256
static const char * PROMPT = "The three primary colors are";

/* ---- upstream (llama.cpp 0.6.0-dev, ggml 0.26.0) struct mirrors ---- */
struct up_model_params {
    void * devices;
    const void * tensor_buft_overrides;
    int32_t n_gpu_layers, split_mode, load_mode, lazy_mode, main_gpu;
    const float * tensor_split;
    void * progress_callback;
    void * progress_callback_user_data;
    const void * kv_overrides;
    bool vocab_only, check_tensors, use_extra_bufts, no_host, no_alloc, load_mtp;
};
struct up_context_params {
    uint32_t n_ctx, n_batch, n_ubatch, n_seq_max, n_rs_seq, n_outputs_max, n_outputs_max_per_seq;
    int32_t n_threads, n_threads_batch;
    int32_t ctx_type, rope_scaling_type, pooling_type, attention_type, flash_attn_type;
    float rope_freq_base, rope_freq_scale, yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
    uint32_t yarn_orig_ctx;
    float defrag_thold;
    void * cb_eval;
    void * cb_eval_user_data;
    int32_t type_k, type_v;
    void * abort_callback;
    void * abort_callback_data;
    bool embeddings, offload_kqv, no_perf, op_offload, swa_full, kv_unified;
    void * samplers;
    size_t n_samplers;
    void * ctx_other;
};
struct up_batch {
    int32_t n_tokens;
    int32_t * token;
    float * embd;
    int32_t * pos;
    int32_t * n_seq_id;
    int32_t ** seq_id;
    int8_t * logits;
};
_Static_assert(sizeof(struct up_model_params) == 80, "upstream llama_model_params");
_Static_assert(offsetof(struct up_model_params, n_gpu_layers) == 16, "upstream n_gpu_layers");
_Static_assert(sizeof(struct up_context_params) == 160, "upstream llama_context_params");
_Static_assert(offsetof(struct up_context_params, n_threads) == 28, "upstream n_threads");
_Static_assert(sizeof(struct up_batch) == 56, "upstream llama_batch");

/* ---- fork (BitNet's 2024 llama.cpp) struct mirrors ---- */
struct bn_model_params {
    int32_t n_gpu_layers, split_mode, main_gpu;
    const float * tensor_split;
    const char * rpc_servers;
    void * progress_callback;
    void * progress_callback_user_data;
    const void * kv_overrides;
    bool vocab_only, use_mmap, use_mlock, check_tensors;
};
struct bn_context_params {
    uint32_t n_ctx, n_batch, n_ubatch, n_seq_max;
    int32_t n_threads, n_threads_batch;
    int32_t rope_scaling_type, pooling_type, attention_type;
    float rope_freq_base, rope_freq_scale, yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
    uint32_t yarn_orig_ctx;
    float defrag_thold;
    void * cb_eval;
    void * cb_eval_user_data;
    int32_t type_k, type_v;
    bool logits_all, embeddings, offload_kqv, flash_attn, no_perf;
    void * abort_callback;
    void * abort_callback_data;
};
struct bn_batch {
    int32_t n_tokens;
    int32_t * token;
    float * embd;
    int32_t * pos;
    int32_t * n_seq_id;
    int32_t ** seq_id;
    int8_t * logits;
    int32_t all_pos_0, all_pos_1, all_seq_id;
};
_Static_assert(sizeof(struct bn_model_params) == 64, "fork llama_model_params");
_Static_assert(sizeof(struct bn_context_params) == 120, "fork llama_context_params");
_Static_assert(offsetof(struct bn_context_params, n_threads) == 16, "fork n_threads");
_Static_assert(sizeof(struct bn_batch) == 72, "fork llama_batch");

typedef void (*log_cb)(int level, const char * text, void * user_data);

struct build {
    const char * name; /* "up" or "fork" */
    bool is_up;
    const char * dir;
    void * handles[3];
    int n_handles;
    Lmid_t lmid;
    /* common */
    void (*backend_init)(void);
    void (*backend_free)(void);
    void (*log_set)(log_cb, void *);
    void (*free_ctx)(void *);
    float * (*get_logits_ith)(void *, int32_t);
    /* upstream */
    void * (*backend_load)(const char *);
    struct up_model_params (*up_mdefault)(void);
    void * (*up_load)(const char *, struct up_model_params);
    void (*up_model_free)(void *);
    const void * (*up_get_vocab)(const void *);
    struct up_context_params (*up_cdefault)(void);
    void * (*up_init)(void *, struct up_context_params);
    int32_t (*up_tokenize)(const void *, const char *, int32_t, int32_t *, int32_t, bool, bool);
    struct up_batch (*up_batch_get_one)(int32_t *, int32_t);
    int32_t (*up_decode)(void *, struct up_batch);
    int32_t (*up_n_vocab)(const void *);
    bool (*up_is_eog)(const void *, int32_t);
    /* fork */
    struct bn_model_params (*bn_mdefault)(void);
    void * (*bn_load)(const char *, struct bn_model_params);
    void (*bn_model_free)(void *);
    struct bn_context_params (*bn_cdefault)(void);
    void * (*bn_init)(void *, struct bn_context_params);
    int32_t (*bn_tokenize)(const void *, const char *, int32_t, int32_t *, int32_t, bool, bool);
    struct bn_batch (*bn_batch_get_one)(int32_t *, int32_t, int32_t, int32_t);
    int32_t (*bn_decode)(void *, struct bn_batch);
    int32_t (*bn_n_vocab)(const void *);
    bool (*bn_is_eog)(const void *, int32_t);
    /* state */
    void * model;
    long log_count;
    long log_error_loading; /* messages that prove a C++ exception was caught inside the build */
};

static int out_fd = 1;
static int n_threads = 1;

static void emit(const char * fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char * fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int) sizeof buf - 1) n = sizeof buf - 1;
    ssize_t w = write(out_fd, buf, (size_t) n);
    (void) w;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A field of /proc/self/status in kB: "VmRSS:" (all resident), "RssAnon:" (heap, not file pages). */
static long status_kb(const char * field) {
    FILE * f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0) { kb = atol(line + n); break; }
    }
    fclose(f);
    return kb;
}
static long vm_rss_kb(void) { return status_kb("VmRSS:"); }
static long anon_kb(void) { return status_kb("RssAnon:"); }

/* How many times each interesting file is mapped (offset 0 mappings in /proc/self/maps). */
static void count_mapped(const char * tag) {
    static const char * names[] = {"libstdc++.so", "libc.so.6", "libgcc_s.so", "libm.so.6", "libllama.so", "libggml"};
    int counts[6] = {0};
    FILE * f = fopen("/proc/self/maps", "r");
    if (!f) return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char perms[8], path[4000] = "";
        unsigned long off;
        if (sscanf(line, "%*x-%*x %7s %lx %*s %*s %3999s", perms, &off, path) < 2) continue;
        if (off != 0) continue;
        const char * base = strrchr(path, '/');
        base = base ? base + 1 : path;
        for (int i = 0; i < 6; i++) {
            if (strncmp(base, names[i], strlen(names[i])) == 0) counts[i]++;
        }
    }
    fclose(f);
    emit("MAPS %s libstdc++=%d libc=%d libgcc_s=%d libm=%d libllama=%d libggml*=%d\n", tag,
         counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]);
}

static void on_log(int level, const char * text, void * user_data) {
    struct build * b = user_data;
    (void) level;
    b->log_count++;
    if (text && strstr(text, "error loading model")) b->log_error_loading++;
    if (getenv("TWO_BUILDS_VERBOSE")) fprintf(stderr, "[%s] %s", b->name, text ? text : "");
}

static void * sym(struct build * b, const char * name) {
    for (int i = b->n_handles - 1; i >= 0; i--) {
        void * p = dlsym(b->handles[i], name);
        if (p) return p;
    }
    emit("FATAL %s: symbol %s not found\n", b->name, name);
    _exit(3);
}

/* how: 0 dlopen, 1 dlopen + RTLD_DEEPBIND, 2 dlmopen(LM_ID_NEWLM) */
static void load_libs(struct build * b, int how) {
    static const char * up_files[] = {"libggml-base.so", "libggml.so", "libllama.so"};
    static const char * bn_files[] = {"libggml.so", "libllama.so"};
    const char ** files = b->is_up ? up_files : bn_files;
    int n = b->is_up ? 3 : 2;
    int flags = RTLD_NOW | RTLD_LOCAL | (how == 1 ? RTLD_DEEPBIND : 0);
    b->lmid = LM_ID_BASE;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", b->dir, files[i]);
        void * h;
        if (how == 2) {
            h = dlmopen(i == 0 ? LM_ID_NEWLM : b->lmid, path, flags);
            if (h && i == 0) dlinfo(h, RTLD_DI_LMID, &b->lmid);
        } else {
            h = dlopen(path, flags);
        }
        if (!h) { emit("FATAL dlopen %s: %s\n", path, dlerror()); _exit(3); }
        b->handles[b->n_handles++] = h;
    }
    if (b->is_up) {
        b->backend_load = sym(b, "ggml_backend_load");
        b->up_mdefault = sym(b, "llama_model_default_params");
        b->up_load = sym(b, "llama_model_load_from_file");
        b->up_model_free = sym(b, "llama_model_free");
        b->up_get_vocab = sym(b, "llama_model_get_vocab");
        b->up_cdefault = sym(b, "llama_context_default_params");
        b->up_init = sym(b, "llama_init_from_model");
        b->up_tokenize = sym(b, "llama_tokenize");
        b->up_batch_get_one = sym(b, "llama_batch_get_one");
        b->up_decode = sym(b, "llama_decode");
        b->up_n_vocab = sym(b, "llama_vocab_n_tokens");
        b->up_is_eog = sym(b, "llama_vocab_is_eog");
    } else {
        b->bn_mdefault = sym(b, "llama_model_default_params");
        b->bn_load = sym(b, "llama_load_model_from_file");
        b->bn_model_free = sym(b, "llama_free_model");
        b->bn_cdefault = sym(b, "llama_context_default_params");
        b->bn_init = sym(b, "llama_new_context_with_model");
        b->bn_tokenize = sym(b, "llama_tokenize");
        b->bn_batch_get_one = sym(b, "llama_batch_get_one");
        b->bn_decode = sym(b, "llama_decode");
        b->bn_n_vocab = sym(b, "llama_n_vocab");
        b->bn_is_eog = sym(b, "llama_token_is_eog");
    }
    b->backend_init = sym(b, "llama_backend_init");
    b->backend_free = sym(b, "llama_backend_free");
    b->log_set = sym(b, "llama_log_set");
    b->free_ctx = sym(b, "llama_free");
    b->get_logits_ith = sym(b, "llama_get_logits_ith");
}

static void * load_model(struct build * b, const char * path) {
    if (b->is_up) {
        struct up_model_params mp = b->up_mdefault();
        mp.n_gpu_layers = 0;
        return b->up_load(path, mp);
    }
    struct bn_model_params mp = b->bn_mdefault();
    mp.n_gpu_layers = 0;
    return b->bn_load(path, mp);
}

static void start_build(struct build * b, int how, const char * model_path) {
    load_libs(b, how);
    b->log_set(on_log, b);
    if (b->is_up) {
        const char * isa = getenv("TWO_BUILDS_CPU");
        char path[4096];
        snprintf(path, sizeof path, "%s/libggml-cpu-%s.so", b->dir, isa && isa[0] ? isa : "haswell");
        if (!b->backend_load(path)) { emit("FATAL ggml_backend_load %s failed\n", path); _exit(3); }
    }
    b->backend_init();
    b->model = load_model(b, model_path);
    if (!b->model) { emit("FATAL %s: model load failed\n", b->name); _exit(3); }
}

static int argmax(const float * logits, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return best;
}

/* Greedy generation in a fresh context; writes the ids to out, returns their count (<0 on error). */
static int generate(struct build * b, int32_t * out) {
    int32_t tokens[256];
    int n, got = 0;
    void * ctx;
    if (b->is_up) {
        struct up_context_params cp = b->up_cdefault();
        cp.n_ctx = N_CTX; cp.n_batch = N_CTX; cp.n_ubatch = N_CTX;
        cp.n_threads = n_threads; cp.n_threads_batch = n_threads;
        ctx = b->up_init(b->model, cp);
        if (!ctx) return -1;
        const void * vocab = b->up_get_vocab(b->model);
        int n_vocab = b->up_n_vocab(vocab);
        n = b->up_tokenize(vocab, PROMPT, (int32_t) strlen(PROMPT), tokens, 256, true, true);
        if (n <= 0) { b->free_ctx(ctx); return -2; }
        if (b->up_decode(ctx, b->up_batch_get_one(tokens, n)) != 0) { b->free_ctx(ctx); return -3; }
        for (int i = 0; i < N_PREDICT; i++) {
            int32_t id = argmax(b->get_logits_ith(ctx, -1), n_vocab);
            if (b->up_is_eog(vocab, id)) break;
            out[got++] = id;
            if (i + 1 == N_PREDICT) break;
            if (b->up_decode(ctx, b->up_batch_get_one(&id, 1)) != 0) { b->free_ctx(ctx); return -3; }
        }
    } else {
        struct bn_context_params cp = b->bn_cdefault();
        cp.n_ctx = N_CTX; cp.n_batch = N_CTX; cp.n_ubatch = N_CTX;
        cp.n_threads = n_threads; cp.n_threads_batch = n_threads;
        ctx = b->bn_init(b->model, cp);
        if (!ctx) return -1;
        int n_vocab = b->bn_n_vocab(b->model);
        n = b->bn_tokenize(b->model, PROMPT, (int32_t) strlen(PROMPT), tokens, 256, true, true);
        if (n <= 0) { b->free_ctx(ctx); return -2; }
        int pos = 0;
        if (b->bn_decode(ctx, b->bn_batch_get_one(tokens, n, pos, 0)) != 0) { b->free_ctx(ctx); return -3; }
        pos += n;
        for (int i = 0; i < N_PREDICT; i++) {
            int32_t id = argmax(b->get_logits_ith(ctx, -1), n_vocab);
            if (b->bn_is_eog(b->model, id)) break;
            out[got++] = id;
            if (i + 1 == N_PREDICT) break;
            if (b->bn_decode(ctx, b->bn_batch_get_one(&id, 1, pos, 0)) != 0) { b->free_ctx(ctx); return -3; }
            pos++;
        }
    }
    b->free_ctx(ctx);
    return got;
}

static void gen_step(const char * label, struct build * b, double t0) {
    int32_t ids[N_PREDICT];
    int n = generate(b, ids);
    double ms = now_ms() - t0;
    char buf[512];
    int o = 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++) o += snprintf(buf + o, sizeof buf - o, "%s%d", i ? "," : "", ids[i]);
    emit("STEP %s build=%s ms=%.1f rss_kb=%ld anon_kb=%ld rc=%d ids=%s\n", label, b->name, ms, vm_rss_kb(), anon_kb(),
         n < 0 ? n : 0, buf);
}

/* The whole sequence for one child. mode: -1 alone (only the first build), 0 local, 1 deepbind, 2 dlmopen */
static void run_sequence(const char * up_dir, const char * fork_dir, const char * model, int mode, bool up_first) {
    static struct build up, bn;
    up = (struct build) {.name = "up", .is_up = true, .dir = up_dir};
    bn = (struct build) {.name = "fork", .is_up = false, .dir = fork_dir};
    struct build * A = up_first ? &up : &bn;
    struct build * B = up_first ? &bn : &up;
    int how_a = mode == 1 ? 1 : 0;
    int how_b = mode == 2 ? 2 : (mode == 1 ? 1 : 0);

    emit("INFO rss_kb_start=%ld\n", vm_rss_kb());
    double t0 = now_ms();
    start_build(A, how_a, model);
    emit("INFO %s loaded ms=%.1f rss_kb=%ld anon_kb=%ld\n", A->name, now_ms() - t0, vm_rss_kb(), anon_kb());
    gen_step("A1", A, now_ms());
    if (mode < 0) {
        gen_step("A2", A, now_ms());
        count_mapped("alone");
        emit("DONE\n");
        return;
    }
    t0 = now_ms();
    start_build(B, how_b, model);
    emit("INFO %s loaded ms=%.1f rss_kb=%ld anon_kb=%ld lmid=%ld\n", B->name, now_ms() - t0, vm_rss_kb(), anon_kb(),
         (long) B->lmid);
    count_mapped("both");
    gen_step("B1", B, now_ms());
    gen_step("A2", A, now_ms());
    gen_step("B2", B, now_ms());

    /* C++ exceptions inside each build: loading a non-GGUF file throws and is caught in llama */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = 0;
    for (int i = 0; i < 2; i++) {
        struct build * b = i ? B : A;
        long before = b->log_error_loading;
        void * m = load_model(b, self);
        emit("EXC %s returned=%s caught_error_logged=%ld\n", b->name, m ? "model?!" : "NULL", b->log_error_loading - before);
    }
    emit("LOG %s messages=%ld  %s messages=%ld\n", A->name, A->log_count, B->name, B->log_count);

    /* freeing A must not disturb B */
    t0 = now_ms();
    if (A->is_up) A->up_model_free(A->model); else A->bn_model_free(A->model);
    A->model = NULL;
    A->backend_free();
    emit("INFO freed %s (model + llama_backend_free)\n", A->name);
    gen_step("B3", B, now_ms());
    for (int i = A->n_handles - 1; i >= 0; i--) dlclose(A->handles[i]);
    A->n_handles = 0;
    count_mapped("after_dlclose_A");
    gen_step("B4", B, now_ms());
    emit("DONE\n");
}

/* Runs run_sequence in a child; collects its output into buf. Returns the wait status. */
static int run_child(const char * up_dir, const char * fork_dir, const char * model, int mode, bool up_first,
                     char * buf, size_t cap) {
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); exit(1); }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        out_fd = fds[1];
        run_sequence(up_dir, fork_dir, model, mode, up_first);
        _exit(0);
    }
    close(fds[1]);
    size_t used = 0;
    ssize_t r;
    while (used + 1 < cap && (r = read(fds[0], buf + used, cap - 1 - used)) > 0) used += (size_t) r;
    buf[used] = 0;
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    return status;
}

/* The ids of step label in a child's output (NULL if the step did not finish). */
static const char * ids_of(const char * out, const char * label, char * dst, size_t cap) {
    char key[32];
    snprintf(key, sizeof key, "STEP %s ", label);
    const char * p = strstr(out, key);
    if (!p) return NULL;
    const char * ids = strstr(p, "ids=");
    if (!ids) return NULL;
    ids += 4;
    size_t n = strcspn(ids, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(dst, ids, n);
    dst[n] = 0;
    return dst;
}

static void describe(const char * what, int status) {
    if (WIFSIGNALED(status)) printf("%s: CRASH signal %d (%s)\n", what, WTERMSIG(status), strsignal(WTERMSIG(status)));
    else printf("%s: exit %d\n", what, WEXITSTATUS(status));
}

int main(int argc, char ** argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s UPSTREAM_DIR FORK_DIR MODEL local|deepbind|dlmopen up-first|fork-first\n", argv[0]);
        return 2;
    }
    const char * up_dir = argv[1], * fork_dir = argv[2], * model = argv[3];
    int mode = strcmp(argv[4], "local") == 0 ? 0 : strcmp(argv[4], "deepbind") == 0 ? 1 : strcmp(argv[4], "dlmopen") == 0 ? 2 : -9;
    if (mode == -9 || (strcmp(argv[5], "up-first") && strcmp(argv[5], "fork-first"))) {
        fprintf(stderr, "bad MODE or ORDER\n");
        return 2;
    }
    bool up_first = strcmp(argv[5], "up-first") == 0;
    const char * th = getenv("TWO_BUILDS_THREADS");
    if (th && atoi(th) > 0) n_threads = atoi(th);
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (getenv("TWO_BUILDS_NOFORK")) {
        run_sequence(up_dir, fork_dir, model, mode, up_first);
        return 0;
    }

    static char base_up[16384], base_bn[16384], comb[65536];
    int s;
    s = run_child(up_dir, fork_dir, model, -1, true, base_up, sizeof base_up);
    printf("---- baseline upstream alone\n%s", base_up);
    describe("baseline upstream", s);
    s = run_child(up_dir, fork_dir, model, -1, false, base_bn, sizeof base_bn);
    printf("---- baseline fork alone\n%s", base_bn);
    describe("baseline fork", s);
    s = run_child(up_dir, fork_dir, model, mode, up_first, comb, sizeof comb);
    printf("---- combined mode=%s order=%s\n%s", argv[4], argv[5], comb);
    describe("combined", s);

    char ref_up[512], ref_bn[512], got[512];
    if (!ids_of(base_up, "A1", ref_up, sizeof ref_up) || !ids_of(base_bn, "A1", ref_bn, sizeof ref_bn)) {
        printf("VERDICT baseline failed\n");
        return 1;
    }
    static const char * labels[] = {"A1", "B1", "A2", "B2", "B3", "B4"};
    printf("VERDICT mode=%s order=%s:", argv[4], argv[5]);
    int bad = 0;
    for (int i = 0; i < 6; i++) {
        bool is_a = labels[i][0] == 'A';
        bool is_up = is_a == up_first;
        if (!ids_of(comb, labels[i], got, sizeof got)) { printf(" %s=missing", labels[i]); bad = 1; continue; }
        bool ok = strcmp(got, is_up ? ref_up : ref_bn) == 0;
        if (!ok) bad = 1;
        printf(" %s(%s)=%s", labels[i], is_up ? "up" : "fork", ok ? "ok" : "WRONG");
    }
    if (WIFSIGNALED(s)) printf(" CRASH(signal %d)", WTERMSIG(s));
    printf("\n");
    return bad || WIFSIGNALED(s) || WEXITSTATUS(s) ? 1 : 0;
}
