/*
 * cmd-migrate.c: vmferry migrate: the whole cold migration of one guest
 * in one command (src/pipeline/migrate.c), with a stage log and one
 * progress bar per disk on a terminal, and a summary (or --json).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "pipeline/migrate.h"
#include "pipeline/source.h"
#include "prepare/prepare.h"
#include "prepare/session.h"
#include "targets/package.h"

static void migrate_help(FILE *f)
{
    fputs("usage: vmferry migrate SRC... [--to T] [-o OUTDIR] [options] [EDITS...]\n"
          "\n"
          "Migrate the guest whose disks are SRC... (in order): inspect it,\n"
          "check it against target T's rules, make the conversion edits T\n"
          "needs (and the EDITS given), write the package (the disks are\n"
          "converted once, straight into it) and verify what was written.\n"
          "The source is never written.\n"
          "\n"
          "      --to T              target (default local: qcow2 + libvirt XML)\n"
          "  -o, --output OUTDIR     where the package goes (default ./NAME)\n"
          "      --name N            the VM's name (default: the first disk's)\n"
          "      --memory MB         memory in MiB (default 2048)\n"
          "      --vcpus N           virtual CPUs (default 2)\n"
          "  -O FMT                  disk format, where the target allows a choice\n"
          "      --format-options O  options for the -O format\n"
          "      --preallocation M   raw/qcow2 preallocation\n"
          "      --manifest ALG      OVA manifest digest: sha256 (default), sha1\n"
          "      --bz2, --ova, --aws-format F   as in vmferry package\n"
          "      --force             go on when the target's rules fail\n"
          "      --no-verify         skip reading the package back\n"
          "  -m, --threads N         workers\n"
          "  -f, --format FMT        the sources' format (default: probed)\n"
          "      --edits FILE        more edits from FILE\n"
          "      --root DEV          the OS to edit\n"
          "      --unsafe            do not fsync\n"
          "      --json              print the summary as JSON\n"
          "      --allow-data-file   open qcow2 external data files\n"
          "      --allow-backing-path  follow backing names outside the directory\n"
          "  -q, --quiet             no log, no progress\n"
          "  -h, --help              this text\n"
          "\n"
          "Every `vmferry prepare` edit is accepted too (see prepare --help).\n"
          "Targets: see `vmferry package --help`.\n", f);
}

enum {
    OPT_TO = 3000, OPT_NAME, OPT_MEMORY, OPT_VCPUS, OPT_FOPTS, OPT_PREALLOC,
    OPT_MANIFEST, OPT_BZ2, OPT_OVA, OPT_AWS_FORMAT, OPT_FORCE, OPT_NO_VERIFY,
    OPT_EDITS, OPT_ROOT, OPT_UNSAFE, OPT_JSON, OPT_EDIT_BASE = 4000,
};

struct ui {
    bool on;          /* log lines */
    bool bars;        /* progress bars (a terminal) */
    double t0;
    size_t ndisks;
    char *const *names;
    size_t cur;       /* disk whose bar is shown, +1 */
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ui_stage(void *opaque, const char *what)
{
    struct ui *u = opaque;
    if (u->on)
        fprintf(stderr, "[%6.1f] %s\n", mono() - u->t0, what);
}

static void ui_progress(void *opaque, size_t disk, uint64_t done,
                        uint64_t total)
{
    struct ui *u = opaque;
    if (!u->on)
        return;
    if (u->cur != disk + 1) {
        u->cur = disk + 1;
        fprintf(stderr, "[%6.1f] Copying disk %zu/%zu (%s)\n",
                mono() - u->t0, disk + 1, u->ndisks,
                disk < u->ndisks ? u->names[disk] : "?");
    }
    if (u->bars)
        cli_progress(NULL, done, total);
}

static void summary(struct json_object *r)
{
    struct json_object *v, *a;
    char hs[32];
    double total = 0;
    printf("Migrated %s to %s in %s\n",
           json_object_get_string(json_object_object_get(r, "name")),
           json_object_get_string(json_object_object_get(r, "target")),
           json_object_get_string(json_object_object_get(r, "outdir")));
    if (json_object_object_get_ex(r, "changes", &v)) {
        size_t n = json_object_array_length(v);
        printf("\nChanges in the guest (%zu):\n", n);
        for (size_t i = 0; i < n; i++) {
            struct json_object *c = json_object_array_get_idx(v, i), *w;
            json_object_object_get_ex(c, "change", &w);
            printf("  %s\n", json_object_get_string(w));
        }
    }
    if (json_object_object_get_ex(r, "artifacts", &a)) {
        printf("\nArtifacts:\n");
        for (size_t i = 0; i < json_object_array_length(a); i++) {
            struct json_object *e = json_object_array_get_idx(a, i);
            printf("  %-36s %10s  sha256:%s\n",
                   json_object_get_string(json_object_object_get(e, "name")),
                   cli_human_size((uint64_t)json_object_get_int64(
                                      json_object_object_get(e, "size")),
                                  hs, sizeof(hs)),
                   json_object_get_string(json_object_object_get(e,
                                                                 "sha256")));
        }
    }
    if (json_object_object_get_ex(r, "stages", &v)) {
        printf("\nTime per stage:");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            struct json_object *s = json_object_array_get_idx(v, i);
            double sec = json_object_get_double(
                json_object_object_get(s, "seconds"));
            total += sec;
            printf("%s %s %.2f s", i ? "," : "",
                   json_object_get_string(json_object_object_get(s, "stage")),
                   sec);
        }
        printf("; total %.2f s\n", total);
    }
}

int cmd_migrate(int argc, char **argv)
{
    static const struct option fixed[] = {
        { "to", required_argument, NULL, OPT_TO },
        { "output", required_argument, NULL, 'o' },
        { "name", required_argument, NULL, OPT_NAME },
        { "memory", required_argument, NULL, OPT_MEMORY },
        { "vcpus", required_argument, NULL, OPT_VCPUS },
        { "format-options", required_argument, NULL, OPT_FOPTS },
        { "preallocation", required_argument, NULL, OPT_PREALLOC },
        { "manifest", required_argument, NULL, OPT_MANIFEST },
        { "bz2", no_argument, NULL, OPT_BZ2 },
        { "ova", no_argument, NULL, OPT_OVA },
        { "aws-format", required_argument, NULL, OPT_AWS_FORMAT },
        { "force", no_argument, NULL, OPT_FORCE },
        { "no-verify", no_argument, NULL, OPT_NO_VERIFY },
        { "threads", required_argument, NULL, 'm' },
        { "format", required_argument, NULL, 'f' },
        { "edits", required_argument, NULL, OPT_EDITS },
        { "root", required_argument, NULL, OPT_ROOT },
        { "unsafe", no_argument, NULL, OPT_UNSAFE },
        { "json", no_argument, NULL, OPT_JSON },
        { "quiet", no_argument, NULL, 'q' },
        { "allow-data-file", no_argument, NULL, CLI_OPT_ALLOW_DATA_FILE },
        { "allow-backing-path", no_argument, NULL,
          CLI_OPT_ALLOW_BACKING_PATH },
        { "help", no_argument, NULL, 'h' },
    };
    size_t nedits;
    struct option *lo = cli_edit_longopts("migrate", fixed,
                                          sizeof(fixed) / sizeof(fixed[0]),
                                          OPT_EDIT_BASE, &nedits);
    if (!lo)
        return 1;
    struct blk_open_opts oo = { 0 };
    struct migrate_opts mo = { 0 };
    struct prep_queue q = { 0 };
    struct src_vm sv = { 0 };
    bool sv_open = false;
    char *src_name = NULL;
    struct json_object *res = NULL;
    bool json = false, quiet = false;
    vf_error *err = NULL;
    int c, ret = 1, n = 0;
    while ((c = getopt_long(argc, argv, "o:O:m:f:qh", lo, NULL)) != -1) {
        if (c >= OPT_EDIT_BASE && c < OPT_EDIT_BASE + (int)nedits) {
            if (prep_queue_add(&q, &prep_edits[c - OPT_EDIT_BASE], optarg,
                               &err) < 0)
                goto fail;
            continue;
        }
        switch (c) {
        case OPT_TO: mo.to = optarg; break;
        case 'o': mo.outdir = optarg; break;
        case OPT_NAME: mo.name = optarg; break;
        case OPT_MEMORY:
            if (cli_parse_uint("migrate", "--memory", optarg, 16,
                               16 * 1024 * 1024, &mo.memory_mb) < 0)
                goto out;
            break;
        case OPT_VCPUS:
            if (cli_parse_uint("migrate", "--vcpus", optarg, 1, 768,
                               &mo.vcpus) < 0)
                goto out;
            break;
        case 'O': mo.ofmt = optarg; break;
        case OPT_FOPTS: mo.ostr = optarg; break;
        case OPT_PREALLOC: mo.preallocation = optarg; break;
        case OPT_MANIFEST:
            if (strcmp(optarg, "sha256") && strcmp(optarg, "sha1")) {
                cli_failf("migrate", "--manifest %s: sha256 or sha1", optarg);
                goto out;
            }
            mo.manifest_alg = optarg;
            break;
        case OPT_BZ2: mo.bz2 = true; break;
        case OPT_OVA: mo.ova = true; break;
        case OPT_AWS_FORMAT: mo.aws_format = optarg; break;
        case OPT_FORCE: mo.force = true; break;
        case OPT_NO_VERIFY: mo.no_verify = true; break;
        case 'm':
            if (cli_parse_threads("migrate", optarg, &mo.threads) < 0)
                goto out;
            break;
        case 'f': oo.format = optarg; break;
        case OPT_EDITS:
            if (prep_queue_load(&q, optarg, &err) < 0)
                goto fail;
            break;
        case OPT_ROOT: mo.root = optarg; break;
        case OPT_UNSAFE: mo.unsafe = true; break;
        case OPT_JSON: json = true; break;
        case 'q': quiet = true; break;
        case CLI_OPT_ALLOW_DATA_FILE: oo.allow_data_file = true; break;
        case CLI_OPT_ALLOW_BACKING_PATH: oo.allow_backing_path = true; break;
        case 'h': migrate_help(stdout); ret = 0; goto out;
        default: migrate_help(stderr); goto out;
        }
    }
    n = argc - optind;
    if (n < 1 || n > PREP_MAX_DISKS) {
        migrate_help(stderr);
        n = 0;
        goto out;
    }
    if (mo.to && !pkg_find(mo.to)) {
        cli_failf("migrate", "unknown target %s (see vmferry package --help)",
                  mo.to);
        n = 0;
        goto out;
    }
    /* disk images, an OVA, a .vmx or a libvirt domain */
    if (src_open(argv + optind, n, &oo, &sv, &err) < 0)
        goto fail;
    sv_open = true;
    if (!mo.name && sv.name) {
        /* a description's name ("Web Server 01") made a file name */
        if (!(src_name = pkg_name_sanitize(sv.name))) {
            error_setg(&err, "out of memory");
            goto fail;
        }
        mo.name = src_name;
    }
    if (!mo.memory_mb)
        mo.memory_mb = sv.memory_mb;
    if (!mo.vcpus)
        mo.vcpus = sv.vcpus;
    mo.firmware = sv.firmware;
    struct ui u = { .on = !quiet && !json,
                    .bars = !quiet && !json && isatty(STDERR_FILENO),
                    .t0 = mono(), .ndisks = sv.ndisks,
                    .names = sv.disk_names };
    mo.q = &q;
    mo.quiet = quiet || json;
    mo.progress = ui_progress;
    mo.stage = ui_stage;
    mo.opaque = &u;
    if (migrate_run(sv.disks, sv.disk_names, sv.ndisks, &mo, &res,
                    &err) < 0) {
        if (json && res)
            cli_print_json(json_object_get(res));
        goto fail;
    }
    json_object_object_add(res, "source", json_object_get(sv.facts));
    json_object_object_add(res, "source-kind", json_object_new_string(sv.kind));
    if (json)
        cli_print_json(json_object_get(res));
    else if (!quiet)
        summary(res);
    ret = 0;
    goto out;
fail:
    ret = cli_fail("migrate", err);
out:
    json_object_put(res);
    if (sv_open)
        src_close(&sv);
    free(src_name);
    prep_queue_free(&q);
    free(lo);
    return ret;
}
