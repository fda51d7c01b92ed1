/*
 * cmd-configdrive.c: vmferry configdrive: a cloud-init NoCloud seed or an
 * OpenStack config drive, as an ISO 9660 or FAT image (like cloud-localds,
 * or the drive Nova attaches).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "targets/configdrive.h"

static const char configdrive_help[] =
    "usage: vmferry configdrive [--format iso|vfat] [--label cidata|config-2]\n"
    "           [--user-data FILE] [--meta-data FILE | [--instance-id ID]\n"
    "           [--hostname NAME] [--ssh-key FILE]...]\n"
    "           [--network-config FILE | --network-data FILE] OUT\n"
    "\n"
    "Write a drive cloud-init reads at first boot to OUT.  With the label\n"
    "cidata (NoCloud): meta-data, user-data and network-config in its root.\n"
    "With config-2 (an OpenStack config drive): openstack/latest/\n"
    "meta_data.json, user_data and network_data.json, mirrored under\n"
    "openstack/2012-08-10 (and 2015-10-15 with network data) as Nova does.\n"
    "Files given are copied byte for byte; the metadata is generated unless\n"
    "--meta-data gives it.\n"
    "\n"
    "      --format iso|vfat     ISO 9660 with Joliet and Rock Ridge, or FAT\n"
    "                            (default iso)\n"
    "      --label cidata|config-2  the layout and volume label\n"
    "                            (default cidata)\n"
    "      --user-data FILE      user data (#cloud-config, a script, ...)\n"
    "      --meta-data FILE      metadata as it is (cidata: YAML; config-2:\n"
    "                            meta_data.json, with a \"uuid\")\n"
    "      --instance-id ID      instance id (default: a random UUID)\n"
    "      --hostname NAME       local-hostname (config-2: hostname, name)\n"
    "      --ssh-key FILE        public keys, one a line; repeatable\n"
    "      --network-config FILE  cidata: network config v1/v2 (YAML)\n"
    "      --network-data FILE   config-2: network_data.json\n"
    "  -h, --help                this text\n";

enum {
    OPT_USER_DATA = 3000, OPT_META_DATA, OPT_INSTANCE_ID, OPT_HOSTNAME,
    OPT_SSH_KEY, OPT_NETWORK_CONFIG, OPT_NETWORK_DATA, OPT_FORMAT, OPT_LABEL,
};

int cmd_configdrive(int argc, char **argv)
{
    static const struct option lo[] = {
        { "user-data", required_argument, NULL, OPT_USER_DATA },
        { "meta-data", required_argument, NULL, OPT_META_DATA },
        { "instance-id", required_argument, NULL, OPT_INSTANCE_ID },
        { "hostname", required_argument, NULL, OPT_HOSTNAME },
        { "ssh-key", required_argument, NULL, OPT_SSH_KEY },
        { "network-config", required_argument, NULL, OPT_NETWORK_CONFIG },
        { "network-data", required_argument, NULL, OPT_NETWORK_DATA },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "label", required_argument, NULL, OPT_LABEL },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *keys[CONFIGDRIVE_MAX_KEY_FILES];
    struct configdrive_opts o = { .fs = CONFIGDRIVE_ISO, .label = "cidata",
                                  .ssh_keys = keys };
    vf_error *err = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case OPT_USER_DATA: o.user_data = optarg; break;
        case OPT_META_DATA: o.meta_data = optarg; break;
        case OPT_INSTANCE_ID: o.instance_id = optarg; break;
        case OPT_HOSTNAME: o.hostname = optarg; break;
        case OPT_SSH_KEY:
            if (o.n_ssh_keys == CONFIGDRIVE_MAX_KEY_FILES)
                return cli_failf("configdrive", "more than %d --ssh-key "
                                 "files", CONFIGDRIVE_MAX_KEY_FILES);
            keys[o.n_ssh_keys++] = optarg;
            break;
        case OPT_NETWORK_CONFIG: o.network_config = optarg; break;
        case OPT_NETWORK_DATA: o.network_data = optarg; break;
        case OPT_FORMAT:
            if (configdrive_fs_parse(optarg, &o.fs, &err) < 0)
                return cli_fail("configdrive", err);
            break;
        case OPT_LABEL: o.label = optarg; break;
        case 'h': fputs(configdrive_help, stdout); return 0;
        default: fputs(configdrive_help, stderr); return 1;
        }
    }
    if (optind != argc - 1) {
        fputs(configdrive_help, stderr);
        return 1;
    }
    if (configdrive_build(&o, argv[optind], &err) < 0)
        return cli_fail("configdrive", err);
    return 0;
}
