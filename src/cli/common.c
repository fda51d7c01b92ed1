/*
 * common.c: option parsing shared by the image-reading commands.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "prepare/prepare.h"

int cli_parse_common(int argc, char **argv, const char *help,
                     struct blk_open_opts *oo, bool *json, int *exit_code)
{
    static const struct option lo[] = {
        { "format", required_argument, NULL, 'f' },
        { "json", no_argument, NULL, 'j' },
        { "output", required_argument, NULL, 'o' },
        { "allow-data-file", no_argument, NULL, CLI_OPT_ALLOW_DATA_FILE },
        { "allow-backing-path", no_argument, NULL,
          CLI_OPT_ALLOW_BACKING_PATH },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:h", lo, NULL)) != -1) {
        switch (c) {
        case 'f': oo->format = optarg; break;
        case 'j':
        case 'o':
            if (!json || (c == 'o' && strcmp(optarg, "json") &&
                          strcmp(optarg, "human")))
                goto misuse;
            *json = c == 'j' || !strcmp(optarg, "json");
            break;
        case CLI_OPT_ALLOW_DATA_FILE: oo->allow_data_file = true; break;
        case CLI_OPT_ALLOW_BACKING_PATH:
            oo->allow_backing_path = true;
            break;
        case 'h':
            fputs(help, stdout);
            *exit_code = 0;
            return -1;
        default:
            goto misuse;
        }
    }
    return optind;
misuse:
    fputs(help, stderr);
    *exit_code = 1;
    return -1;
}

void cli_progress(void *opaque, uint64_t done, uint64_t total)
{
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    fprintf(stderr, "\r    (%.2f/100%%)", pct);
    if (done >= total)
        fputc('\n', stderr);
    fflush(stderr);
}

int cli_parse_threads(const char *cmd, const char *arg, int *out)
{
    char *end;
    long n = strtol(arg, &end, 10);
    if (!*arg || *end || n < 1 || n > 64) {
        cli_failf(cmd, "invalid thread count '%s' (1..64)", arg);
        return -1;
    }
    *out = (int)n;
    return 0;
}

struct option *cli_edit_longopts(const char *cmd, const struct option *fixed,
                                 size_t nfixed, int base, size_t *nedits)
{
    size_t n = 0;
    while (prep_edits[n].name)
        n++;
    struct option *lo = calloc(nfixed + n + 1, sizeof(*lo));
    if (!lo) {
        cli_failf(cmd, "out of memory");
        return NULL;
    }
    memcpy(lo, fixed, nfixed * sizeof(*fixed));
    for (size_t i = 0; i < n; i++) {
        lo[nfixed + i].name = prep_edits[i].name;
        lo[nfixed + i].has_arg = !prep_edits[i].has_arg ? no_argument
                                 : prep_edits[i].arg_optional
                                     ? optional_argument : required_argument;
        lo[nfixed + i].val = base + (int)i;
    }
    *nedits = n;
    return lo;
}

int cli_parse_uint(const char *cmd, const char *what, const char *s,
                   unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || *s == '-' || errno || v < lo || v > hi) {
        cli_failf(cmd, "%s %s: a number from %u to %u is needed", what, s,
                  lo, hi);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}
