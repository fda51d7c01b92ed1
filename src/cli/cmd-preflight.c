/*
 * cmd-preflight.c: vmferry preflight: inspect a guest and check it
 * against a target's import rules (one file per target under
 * src/targets/); exit 0 when no error-level rule fails, 1 otherwise.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "guest/inspect.h"
#include "targets/preflight.h"

static const char preflight_help[] =
    "usage: vmferry preflight --target T [--json] [-f FMT] IMAGE...\n"
    "       vmferry preflight --target T [--json] --from-report FILE\n"
    "\n"
    "Check a guest (its disks, in order) against what target T accepts,\n"
    "rule by rule: each rule's statement, severity, result, the evidence\n"
    "found and the command that fixes a failure.  Exit 0 when no\n"
    "error-level rule fails, 1 otherwise.\n"
    "\n"
    "  -t, --target T          aws, azure, gce, openstack, cloudstack-kvm,\n"
    "                          cloudstack-xen, cloudstack-vmware,\n"
    "                          cloudstack-hyperv, vmware, kvm, sce\n"
    "      --disk-bus BUS      the disk bus the target will use (virtio,\n"
    "                          scsi, sata, ide; default virtio)\n"
    "      --controller C      VMware SCSI controller (pvscsi, lsilogic,\n"
    "                          sata, ide; default pvscsi)\n"
    "      --from-report FILE  check a saved 'vmferry inspect --json' report\n"
    "                          instead of inspecting images\n"
    "  -f, --format FMT        do not probe: every image is FMT\n"
    "      --json              print JSON\n"
    "      --allow-data-file   open qcow2 external data files\n"
    "      --allow-backing-path  follow backing names outside the directory\n"
    "  -h, --help              this text\n";

enum { OPT_DISK_BUS = 2001, OPT_CONTROLLER, OPT_FROM_REPORT };

static void print_text(struct json_object *r)
{
    struct json_object *rules, *v;
    json_object_object_get_ex(r, "rules", &rules);
    for (size_t i = 0; i < json_object_array_length(rules); i++) {
        struct json_object *x = json_object_array_get_idx(rules, i);
        const char *res = "", *sev = "", *id = "", *st = "", *ev = "",
                   *fix = NULL;
        if (json_object_object_get_ex(x, "result", &v)) res = json_object_get_string(v);
        if (json_object_object_get_ex(x, "severity", &v)) sev = json_object_get_string(v);
        if (json_object_object_get_ex(x, "id", &v)) id = json_object_get_string(v);
        if (json_object_object_get_ex(x, "statement", &v)) st = json_object_get_string(v);
        if (json_object_object_get_ex(x, "evidence", &v)) ev = json_object_get_string(v);
        if (json_object_object_get_ex(x, "fix", &v) && v) fix = json_object_get_string(v);
        const char *tag = !strcmp(res, "pass") ? "PASS"
                          : !strcmp(res, "n/a") ? "N/A "
                          : !strcmp(sev, "error") ? "FAIL" : "WARN";
        printf("%s %s: %s\n     found: %s\n", tag, id, st, ev);
        if (fix && strcmp(res, "pass"))
            printf("     fix: %s\n", fix);
    }
    json_object_object_get_ex(r, "verdict", &v);
    const char *verdict = json_object_get_string(v);
    int e = 0, w = 0;
    if (json_object_object_get_ex(r, "errors", &v)) e = json_object_get_int(v);
    if (json_object_object_get_ex(r, "warnings", &v)) w = json_object_get_int(v);
    printf("verdict: %s (%d error%s, %d warning%s)\n", verdict, e,
           e == 1 ? "" : "s", w, w == 1 ? "" : "s");
}

int cmd_preflight(int argc, char **argv)
{
    static const struct option lo[] = {
        { "target", required_argument, NULL, 't' },
        { "disk-bus", required_argument, NULL, OPT_DISK_BUS },
        { "controller", required_argument, NULL, OPT_CONTROLLER },
        { "from-report", required_argument, NULL, OPT_FROM_REPORT },
        { "format", required_argument, NULL, 'f' },
        { "json", no_argument, NULL, 'j' },
        { "allow-data-file", no_argument, NULL, CLI_OPT_ALLOW_DATA_FILE },
        { "allow-backing-path", no_argument, NULL,
          CLI_OPT_ALLOW_BACKING_PATH },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct blk_open_opts oo = { 0 };
    struct pf_ctx ctx = { 0 };
    const char *target = NULL, *from = NULL;
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:f:h", lo, NULL)) != -1) {
        switch (c) {
        case 't': target = optarg; break;
        case OPT_DISK_BUS:
            if (strcmp(optarg, "virtio") && strcmp(optarg, "scsi") &&
                strcmp(optarg, "sata") && strcmp(optarg, "ide"))
                return cli_failf("preflight", "unknown disk bus '%s'", optarg);
            ctx.disk_bus = optarg;
            break;
        case OPT_CONTROLLER:
            if (strcmp(optarg, "pvscsi") && strcmp(optarg, "lsilogic") &&
                strcmp(optarg, "sata") && strcmp(optarg, "ide"))
                return cli_failf("preflight", "unknown controller '%s'",
                                 optarg);
            ctx.controller = optarg;
            break;
        case OPT_FROM_REPORT: from = optarg; break;
        case 'f': oo.format = optarg; break;
        case 'j': json = true; break;
        case CLI_OPT_ALLOW_DATA_FILE: oo.allow_data_file = true; break;
        case CLI_OPT_ALLOW_BACKING_PATH: oo.allow_backing_path = true; break;
        case 'h': fputs(preflight_help, stdout); return 0;
        default: fputs(preflight_help, stderr); return 1;
        }
    }
    if (!target || (from ? optind != argc : optind >= argc)) {
        fputs(preflight_help, stderr);
        return 1;
    }
    const struct pf_target *t = pf_find(target);
    if (!t)
        return cli_failf("preflight", "unknown target '%s'", target);
    vf_error *err = NULL;
    struct json_object *rep;
    if (from) {
        rep = json_object_from_file(from);
        if (!rep || !json_object_is_type(rep, json_type_object)) {
            json_object_put(rep);
            return cli_failf("preflight", "%s: not a JSON inspection report",
                             from);
        }
    } else {
        rep = inspect_images(argv + optind, argc - optind, &oo, &err);
        if (!rep)
            return cli_fail("preflight", err);
    }
    ctx.report = rep;
    bool ok = false;
    struct json_object *res = pf_run(t, &ctx, &ok);
    json_object_put(rep);
    if (json) {
        cli_print_json(res);
    } else {
        print_text(res);
        json_object_put(res);
    }
    return ok ? 0 : 1;
}
