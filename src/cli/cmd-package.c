/*
 * cmd-package.c: vmferry package: write a guest's disks the way a target
 * imports them, with its metadata and a manifest.json, checked by the
 * target's preflight rules.  Edits (prepare's) apply when given.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "guest/inspect.h"
#include "prepare/prepare.h"
#include "prepare/session.h"
#include "targets/package.h"

static void package_help(FILE *f)
{
    fputs("usage: vmferry package --target T [options] [EDITS...] SRC... OUTDIR\n"
          "\n"
          "Write the guest whose disks are SRC... (in order) into OUTDIR the\n"
          "way target T imports it: converted disks (in one pass, streaming\n"
          "into archives), the target's metadata, and manifest.json listing\n"
          "every artifact with its size and SHA-256.  The package is checked\n"
          "with `vmferry preflight --target T` before it is declared done.\n"
          "OUTDIR must not exist (or be empty); it appears whole or not at all.\n"
          "\n"
          "  -t, --target T          the target (below)\n"
          "      --name N            the VM's name (default: the first disk's)\n"
          "      --memory MB         memory in MiB (default 2048)\n"
          "      --vcpus N           virtual CPUs (default 2)\n"
          "  -O FMT                  disk format, where the target allows a choice\n"
          "  -o OPTS                 options for the -O format\n"
          "      --preallocation M   raw/qcow2 preallocation (off, falloc, full)\n"
          "      --manifest ALG      OVA manifest digest: sha256 (default), sha1\n"
          "      --bz2               CloudStack: bzip2 the template\n"
          "      --ova               virtualbox: an OVA instead of VDI disks\n"
          "      --aws-format F      aws: ova (default), vmdk, raw or vhd\n"
          "  -m, --threads N         workers\n"
          "  -f, --format FMT        the sources' format (default: probed)\n"
          "      --convert           make the conversion edits the target needs\n"
          "                          (as vmferry migrate and prepare --target do)\n"
          "      --edits FILE        prepare edits from FILE\n"
          "      --root DEV          the OS to edit\n"
          "      --unsafe            do not fsync\n"
          "      --json              print the manifest (and changes) as JSON\n"
          "      --allow-data-file   open qcow2 external data files\n"
          "      --allow-backing-path  follow backing names outside the directory\n"
          "  -q, --quiet             no change log on stderr\n"
          "  -h, --help              this text\n"
          "\n"
          "Every `vmferry prepare` edit is accepted too (see prepare --help).\n"
          "\n"
          "Targets:\n", f);
    for (const struct pkg_target *t = pkg_targets; t->name; t++)
        fprintf(f, "  %-18s %s\n", t->name, t->desc);
}

enum {
    OPT_TARGET = 3000, OPT_NAME, OPT_MEMORY, OPT_VCPUS, OPT_PREALLOC,
    OPT_MANIFEST, OPT_BZ2, OPT_OVA, OPT_AWS_FORMAT, OPT_EDITS, OPT_ROOT,
    OPT_UNSAFE, OPT_JSON, OPT_CONVERT, OPT_EDIT_BASE = 4000,
};

static void print_summary(struct pkg *p)
{
    struct json_object *a = p->artifacts;
    printf("%s package of %s in %s:\n", p->target, p->vm.name, p->outdir);
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        struct json_object *e = json_object_array_get_idx(a, i), *n, *s, *h;
        json_object_object_get_ex(e, "name", &n);
        json_object_object_get_ex(e, "size", &s);
        json_object_object_get_ex(e, "sha256", &h);
        char hs[32];
        printf("  %-40s %10s  sha256:%s\n", json_object_get_string(n),
               cli_human_size((uint64_t)json_object_get_int64(s), hs,
                              sizeof(hs)),
               json_object_get_string(h));
    }
    printf("  %-40s\n", "manifest.json");
}

int cmd_package(int argc, char **argv)
{
    static const struct option fixed[] = {
        { "target", required_argument, NULL, 't' },
        { "name", required_argument, NULL, OPT_NAME },
        { "memory", required_argument, NULL, OPT_MEMORY },
        { "vcpus", required_argument, NULL, OPT_VCPUS },
        { "preallocation", required_argument, NULL, OPT_PREALLOC },
        { "manifest", required_argument, NULL, OPT_MANIFEST },
        { "bz2", no_argument, NULL, OPT_BZ2 },
        { "ova", no_argument, NULL, OPT_OVA },
        { "aws-format", required_argument, NULL, OPT_AWS_FORMAT },
        { "threads", required_argument, NULL, 'm' },
        { "format", required_argument, NULL, 'f' },
        { "edits", required_argument, NULL, OPT_EDITS },
        { "convert", no_argument, NULL, OPT_CONVERT },
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
    struct option *lo = cli_edit_longopts("package", fixed,
                                          sizeof(fixed) / sizeof(fixed[0]),
                                          OPT_EDIT_BASE, &nedits);
    if (!lo)
        return 1;

    struct blk_open_opts oo = { 0 };
    struct pkg p = { .manifest_alg = "sha256" };
    struct prep_queue q = { 0 };
    struct prep_session ps = { 0 };
    struct pkg_disk disks[PREP_MAX_DISKS];
    const char *target = NULL, *root = NULL;
    bool json = false, quiet = false, convert = false;
    vf_error *err = NULL;
    int c, ret = 1;
    while ((c = getopt_long(argc, argv, "t:O:o:m:f:qh", lo, NULL)) != -1) {
        if (c >= OPT_EDIT_BASE && c < OPT_EDIT_BASE + (int)nedits) {
            if (prep_queue_add(&q, &prep_edits[c - OPT_EDIT_BASE], optarg,
                               &err) < 0)
                goto fail;
            continue;
        }
        switch (c) {
        case 't': target = optarg; break;
        case OPT_NAME: p.vm.name = strdup(optarg); break;
        case OPT_MEMORY:
            if (cli_parse_uint("package", "--memory", optarg, 16,
                               16 * 1024 * 1024, &p.vm.memory_mb) < 0)
                goto out;
            break;
        case OPT_VCPUS:
            if (cli_parse_uint("package", "--vcpus", optarg, 1, 768,
                               &p.vm.vcpus) < 0)
                goto out;
            break;
        case 'O': p.ofmt = optarg; break;
        case 'o': p.ostr = optarg; break;
        case OPT_PREALLOC: p.preallocation = optarg; break;
        case OPT_MANIFEST:
            if (strcmp(optarg, "sha256") && strcmp(optarg, "sha1")) {
                cli_failf("package", "--manifest %s: sha256 or sha1",
                          optarg);
                goto out;
            }
            p.manifest_alg = optarg;
            break;
        case OPT_BZ2: p.bz2 = true; break;
        case OPT_OVA: p.ova = true; break;
        case OPT_AWS_FORMAT: p.aws_format = optarg; break;
        case 'm':
            if (cli_parse_threads("package", optarg, &p.threads) < 0)
                goto out;
            break;
        case 'f': oo.format = optarg; break;
        case OPT_EDITS:
            if (prep_queue_load(&q, optarg, &err) < 0)
                goto fail;
            break;
        case OPT_ROOT: root = optarg; break;
        case OPT_CONVERT: convert = true; break;
        case OPT_UNSAFE: p.unsafe = true; break;
        case OPT_JSON: json = true; break;
        case 'q': quiet = true; break;
        case CLI_OPT_ALLOW_DATA_FILE: oo.allow_data_file = true; break;
        case CLI_OPT_ALLOW_BACKING_PATH: oo.allow_backing_path = true; break;
        case 'h': package_help(stdout); ret = 0; goto out;
        default: package_help(stderr); goto out;
        }
    }
    int ndisks = argc - optind - 1;
    if (!target || ndisks < 1 || ndisks > PREP_MAX_DISKS) {
        package_help(stderr);
        goto out;
    }
    const struct pkg_target *t = pkg_find(target);
    if (!t) {
        cli_failf("package", "unknown target %s (see --help)", target);
        goto out;
    }
    p.target = t->name;
    p.outdir = argv[argc - 1];
    p.mtime = pkg_mtime();

    struct prep_session_opts so = { .oo = &oo, .q = &q, .root = root,
                                    .quiet = quiet || json,
                                    .target = convert ? pkg_prep_target(
                                                            t->name) : NULL };
    if (prep_session_run(&ps, argv + optind, ndisks, &so, &err) < 0)
        goto fail;
    /* the report of what is written: re-inspected after edits */
    if (json_object_array_length(ps.p.changes) > 0) {
        p.report = inspect_disks(ps.ov, (size_t)ndisks, 0, &err);
        if (!p.report)
            goto fail;
    } else {
        p.report = json_object_get(ps.report);
    }
    for (int i = 0; i < ndisks; i++) {
        disks[i].blk = ps.ov[i];
        disks[i].src_path = argv[optind + i];
    }
    p.disks = disks;
    p.ndisks = (size_t)ndisks;
    if (pkg_vm_fill(&p, &err) < 0 || pkg_run(&p, t, &err) < 0)
        goto fail;
    if (json) {
        struct json_object *j = json_object_new_object();
        json_object_object_add(j, "target", json_object_new_string(p.target));
        json_object_object_add(j, "outdir", json_object_new_string(p.outdir));
        json_object_object_add(j, "artifacts", json_object_get(p.artifacts));
        json_object_object_add(j, "metadata", json_object_get(p.meta));
        json_object_object_add(j, "preflight", json_object_get(p.preflight));
        json_object_object_add(j, "changes", json_object_get(ps.p.changes));
        json_object_object_add(j, "warnings",
                               json_object_get(ps.p.warnings));
        cli_print_json(j);
    } else if (!quiet) {
        print_summary(&p);
    }
    ret = 0;
    goto out;
fail:
    ret = cli_fail("package", err);
out:
    json_object_put(p.report);
    json_object_put(p.preflight);
    pkg_free(&p);
    prep_session_close(&ps);
    prep_queue_free(&q);
    free(lo);
    return ret;
}
