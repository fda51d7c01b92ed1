/*
 * cmd-check.c: vmferry check: metadata consistency, reported and exiting
 * like qemu-img check (0 clean, 1 check failed, 2 corruptions, 3 leaks).
 */
#include <json-c/json.h>
#include <stdio.h>

#include "cli/cli.h"

static const char check_help[] =
    "usage: vmferry check [--json] [-f FMT] IMAGE\n"
    "\n"
    "Check an image's metadata.  Exit status: 0 no errors, 1 the check\n"
    "could not be completed, 2 corruptions found, 3 only leaks found.\n"
    "\n"
    "  -f, --format FMT        do not probe: the image is FMT\n"
    "      --json              print JSON (as qemu-img --output=json)\n"
    "      --output=json       the same\n"
    "      --allow-data-file   open qcow2 external data files\n"
    "      --allow-backing-path  follow backing names outside the directory\n"
    "  -h, --help              this text\n";

int cmd_check(int argc, char **argv)
{
    struct blk_open_opts oo = { 0 };
    bool json = false;
    int code;
    int i = cli_parse_common(argc, argv, check_help, &oo, &json, &code);
    if (i < 0)
        return code;
    if (i != argc - 1) {
        fputs(check_help, stderr);
        return 1;
    }
    vf_error *err = NULL;
    struct blk *b = blk_open(argv[i], true, &oo, &err);
    if (!b)
        return cli_fail("check", err);
    if (!b->drv->check) {
        cli_failf("check", "%s: format %s does not support checks",
                  argv[i], b->drv->name);
        blk_close(b);
        return 1;
    }
    struct check_report r = { 0 };
    if (b->drv->check(b, &r, &err) < 0) {
        error_prepend(&err, "%s: ", argv[i]);
        check_report_free(&r);
        blk_close(b);
        return cli_fail("check", err);
    }
    int ret = r.check_errors ? 1 : r.corruptions ? 2 : r.leaks ? 3 : 0;
    if (json) {
        struct json_object *o = json_object_new_object();
        if (r.have_cluster_stats) {
            json_object_object_add(o, "image-end-offset",
                json_object_new_int64((int64_t)r.image_end_offset));
            json_object_object_add(o, "total-clusters",
                json_object_new_int64((int64_t)r.total_clusters));
            json_object_object_add(o, "allocated-clusters",
                json_object_new_int64((int64_t)r.allocated_clusters));
            json_object_object_add(o, "fragmented-clusters",
                json_object_new_int64((int64_t)r.fragmented_clusters));
            json_object_object_add(o, "compressed-clusters",
                json_object_new_int64((int64_t)r.compressed_clusters));
        }
        json_object_object_add(o, "check-errors",
                               json_object_new_int64((int64_t)r.check_errors));
        if (r.corruptions)
            json_object_object_add(o, "corruptions",
                json_object_new_int64((int64_t)r.corruptions));
        if (r.leaks)
            json_object_object_add(o, "leaks",
                                   json_object_new_int64((int64_t)r.leaks));
        json_object_object_add(o, "filename",
                               json_object_new_string(argv[i]));
        json_object_object_add(o, "format",
                               json_object_new_string(b->drv->name));
        struct json_object *m = json_object_new_array();
        for (size_t k = 0; k < r.nmsgs; k++)
            json_object_array_add(m, json_object_new_string(r.msgs[k]));
        json_object_object_add(o, "messages", m);
        cli_print_json(o);
    } else {
        for (size_t k = 0; k < r.nmsgs; k++)
            printf("%s\n", r.msgs[k]);
        if (r.nmsgs)
            printf("\n");
        if (r.corruptions)
            printf("%llu errors were found on the image.\n"
                   "Data may be corrupted, or further writes to the image "
                   "may corrupt it.\n",
                   (unsigned long long)r.corruptions);
        if (r.leaks)
            printf("%s%llu leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n",
                   r.corruptions ? "\n" : "", (unsigned long long)r.leaks);
        if (r.check_errors)
            printf("%s%llu internal errors have occurred during the check.\n",
                   r.corruptions || r.leaks ? "\n" : "",
                   (unsigned long long)r.check_errors);
        if (!r.corruptions && !r.leaks && !r.check_errors)
            printf("No errors were found on the image.\n");
        if (r.have_cluster_stats && r.total_clusters) {
            double t = (double)r.total_clusters;
            printf("%llu/%llu = %.2f%% allocated, %.2f%% fragmented, "
                   "%.2f%% compressed clusters\n",
                   (unsigned long long)r.allocated_clusters,
                   (unsigned long long)r.total_clusters,
                   100.0 * (double)r.allocated_clusters / t,
                   100.0 * (double)r.fragmented_clusters / t,
                   100.0 * (double)r.compressed_clusters / t);
        }
        if (r.have_cluster_stats)
            printf("Image end offset: %llu\n",
                   (unsigned long long)r.image_end_offset);
    }
    check_report_free(&r);
    blk_close(b);
    return ret;
}
