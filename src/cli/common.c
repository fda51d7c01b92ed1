/*
 * common.c: option parsing shared by the image-reading commands.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

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
