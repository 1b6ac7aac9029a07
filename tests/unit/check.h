/* A minimal test harness: CHECK records a failure and goes on, so one run
 * shows every broken property; main returns non-zero if any failed. */
#ifndef PF_CHECK_H
#define PF_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Both the status and a distinctive part of the message must match. */
#define CHECK_ERR(err, st, needle)                                                                 \
    CHECK_MSG((err).status == (st) && strstr((err).msg, (needle)) != NULL,                         \
              "want status %d with \"%s\", got status %d: %s", (int)(st), (needle),                \
              (int)(err).status, (err).msg)

static inline int check_summary(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures == 0 ? 0 : 1;
}

#endif
