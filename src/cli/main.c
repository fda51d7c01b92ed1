/*
 * main.c: vmferry's entry point: dispatches to one file per command.
 */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#ifndef VMFERRY_VERSION
#define VMFERRY_VERSION "0.1.0"
#endif

static const struct cli_cmd cmds[] = {
    { "info", cmd_info, "info [--json] [-f FMT] IMAGE" },
    { "convert", cmd_convert,
      "convert [-f FMT] -O FMT [-o OPTS] [-c] [-p] [-m N] [-W] [-S SIZE] "
      "[-B BACKING [-F FMT]] [-n] [--unsafe] [--json] SRC DST" },
    { "compare", cmd_compare, "compare [-f FMT] [-F FMT] A B" },
    { "check", cmd_check, "check [--json] [-f FMT] IMAGE" },
    { "map", cmd_map, "map [--json] [-f FMT] IMAGE" },
    { "digest", cmd_digest, "digest [-f FMT] IMAGE..." },
    { "measure", cmd_measure,
      "measure -O FMT [-o OPTS] [--json] (--size SIZE | [-f FMT] SRC)" },
    { "resize", cmd_resize, "resize [--shrink] [-f FMT] IMAGE [+|-]SIZE" },
    { "inspect", cmd_inspect, "inspect [--json] [-f FMT] IMAGE..." },
    { "preflight", cmd_preflight,
      "preflight --target T [--json] [-f FMT] IMAGE..." },
    { "prepare", cmd_prepare,
      "prepare [--target T] [EDITS...] [-O FMT] SRC... DST | --in-place IMAGE..." },
    { "migrate", cmd_migrate,
      "migrate SRC... [--to T] [-o OUTDIR] [--force] [--json] [EDITS...]" },
    { "package", cmd_package,
      "package --target T [--name N] [--memory MB] [--vcpus N] [EDITS...] SRC... OUTDIR" },
    { "configdrive", cmd_configdrive, "configdrive [--format iso|vfat] [--label cidata|config-2] [OPTIONS] OUT" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vmferry COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        fprintf(f, "  vmferry %s\n", cmds[i].synopsis);
    fprintf(f, "\nformats:");
    for (size_t i = 0; fmt_registry[i]; i++)
        fprintf(f, " %s", fmt_registry[i]->name);
    fprintf(f, "\n\n'vmferry COMMAND --help' describes a command.\n");
}

int cli_fail(const char *cmd, vf_error *err)
{
    fprintf(stderr, "vmferry: %s: %s\n", cmd, error_msg(err));
    error_free(err);
    return 1;
}

int cli_failf(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vmferry: %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

const char *cli_human_size(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                         "PiB", "EiB" };
    double d = (double)v;
    size_t u = 0;
    while (d >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        d /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)v);
    else if (d == (double)(uint64_t)d)
        snprintf(buf, len, "%llu %s", (unsigned long long)d, units[u]);
    else
        snprintf(buf, len, "%.3g %s", d, units[u]);
    return buf;
}

void cli_print_json(struct json_object *o)
{
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                               JSON_C_TO_STRING_SPACED |
                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("vmferry %s\n", VMFERRY_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    blk_cleanup_on_signals();
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "vmferry: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 1;
}
