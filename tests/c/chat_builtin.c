/* Reference for the built-in chat templates through the raw llama.h C API.
 *
 * usage: chat_builtin NAME ADD_ASS [ROLE CONTENT]...   writes llama_chat_apply_template's output
 *        chat_builtin --list                             writes llama_chat_builtin_templates, one a line
 * The output is written with exactly the length the function returns (no NUL). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

int main(int argc, char ** argv) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        int32_t n = llama_chat_builtin_templates(NULL, 0);
        const char ** names = calloc((size_t) n, sizeof(char *));
        llama_chat_builtin_templates(names, (size_t) n);
        for (int32_t i = 0; i < n; i++) {
            printf("%s\n", names[i]);
        }
        free(names);
        return 0;
    }
    if (argc < 3 || (argc - 3) % 2 != 0) {
        fprintf(stderr, "usage: %s NAME ADD_ASS [ROLE CONTENT]...\n", argv[0]);
        return 2;
    }
    const char * name = argv[1];
    int add_ass = atoi(argv[2]);
    size_t n_msg = (size_t) (argc - 3) / 2;
    struct llama_chat_message * chat = calloc(n_msg ? n_msg : 1, sizeof *chat);
    for (size_t i = 0; i < n_msg; i++) {
        chat[i].role = argv[3 + 2 * i];
        chat[i].content = argv[4 + 2 * i];
    }
    int32_t res = llama_chat_apply_template(name, chat, n_msg, add_ass != 0, NULL, 0);
    if (res < 0) {
        fprintf(stderr, "llama_chat_apply_template returned %d\n", res);
        return 1;
    }
    char * buf = malloc((size_t) res + 1);
    int32_t again = llama_chat_apply_template(name, chat, n_msg, add_ass != 0, buf, res + 1);
    if (again != res) {
        fprintf(stderr, "inconsistent lengths %d and %d\n", res, again);
        return 1;
    }
    fwrite(buf, 1, (size_t) res, stdout);
    free(buf);
    free(chat);
    return 0;
}
