/*
 * cli.h: what the command files share.  Only cli/ prints; every error is
 * printed once as "vmferry: COMMAND: message" (the message already names
 * the file) and the command exits non-zero.
 */
#ifndef VF_CLI_H
#define VF_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "formats/format.h"

struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *synopsis;      /* one line */
};

/* Print "vmferry: cmd: message" and free err.  Returns 1. */
int cli_fail(const char *cmd, vf_error *err);
/* Same for a message of our own. */
int cli_failf(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Human size: "1 GiB", "196 KiB". buf >= 32 bytes. */
const char *cli_human_size(uint64_t v, char *buf, size_t len);
/* -m N: a worker count of 1..64 into *out; else prints the error and
 * returns -1. */
int cli_parse_threads(const char *cmd, const char *arg, int *out);
/* The engine's progress callback: qemu-img's "(12.34/100%)" on stderr. */
void cli_progress(void *opaque, uint64_t done, uint64_t total);
/* Print a JSON object to stdout, pretty, with a newline, and release it. */
struct json_object;
void cli_print_json(struct json_object *o);

int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_digest(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_preflight(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_package(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_configdrive(int argc, char **argv);

/* Parse the options every image-reading command shares: -f FMT (into
 * oo->format), --json (when json is non-NULL), --allow-data-file,
 * --allow-backing-path, -h.  Returns the index of the first operand, or
 * -1 after printing help (*exit_code set: 0 for --help, 1 for misuse). */
int cli_parse_common(int argc, char **argv, const char *help,
                     struct blk_open_opts *oo, bool *json, int *exit_code);

/* fixed (nfixed long options) followed by one option per prepare edit
 * (prep_edits[i] gets val base + i; *nedits their count): malloc'd, or
 * NULL after printing the error. */
struct option;
struct option *cli_edit_longopts(const char *cmd, const struct option *fixed,
                                 size_t nfixed, int base, size_t *nedits);
/* A decimal number of lo..hi into *out; else prints "cmd: what S: ..."
 * and returns -1. */
int cli_parse_uint(const char *cmd, const char *what, const char *s,
                   unsigned lo, unsigned hi, unsigned *out);

/* Common open options: --allow-data-file, --allow-backing-path. */
#define CLI_OPT_ALLOW_DATA_FILE 1001
#define CLI_OPT_ALLOW_BACKING_PATH 1002

#endif
