/*
 * edit-cloudinit.c: --cloud-init-datasource LIST: point cloud-init at
 * the new platform's datasources and make it run again there.
 *
 * cloud-init reads /etc/cloud/cloud.cfg, then /etc/cloud/cloud.cfg.d/
 * *.cfg in name order, a later file overriding an earlier one
 * (cloudinit/util.py read_conf_d sorts the names and merges them last
 * first).  Debian's 90_dpkg.cfg and Ubuntu's 90_dpkg.cfg / 99-installer
 * .cfg set datasource_list too, so ours is named to sort after them:
 * 99_vmferry-datasource.cfg ('_' sorts after '-' and the digits).  The
 * per-instance state (instance, instances/, sem/ under /var/lib/cloud)
 * is removed so that the first boot on the new platform configures the
 * guest as new, as "cloud-init clean" would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "prepare/prepare.h"

#define DS_FILE "/etc/cloud/cloud.cfg.d/99_vmferry-datasource.cfg"
#define DS_MAX 16
/* cloud.cfg.d files: a few KiB. */
#define CLOUD_CFG_MAX (1u << 20)

static bool cloud_init_installed(struct prep *p)
{
    struct json_object *tools;
    if (!json_object_object_get_ex(p->os, "tools", &tools) ||
        !json_object_is_type(tools, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        const char *n = jget_str(json_object_array_get_idx(tools, i), "name");
        if (n && !strcmp(n, "cloud-init"))
            return true;
    }
    return false;
}

/* Files of cloud.cfg.d that sort after ours and set datasource_list
 * would win over it: say so. */
static void warn_overrides(struct prep *p)
{
    char **names;
    size_t n;
    vf_error *lerr = NULL;
    if (prep_list_dir(p, "/etc/cloud/cloud.cfg.d", NULL, ".cfg", &names, &n,
                      &lerr) < 0) {
        error_free(lerr);
        return;
    }
    const char *ours = strrchr(DS_FILE, '/') + 1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], ours) <= 0)
            continue;
        char path[600];
        size_t len;
        vf_error *err = NULL;
        snprintf(path, sizeof(path), "/etc/cloud/cloud.cfg.d/%s", names[i]);
        char *t = prep_read(p, path, CLOUD_CFG_MAX, &len, &err);
        if (t && strstr(t, "datasource_list"))
            prep_warn(p, "%s sets datasource_list and is read after %s, so "
                      "it wins; remove its datasource_list", path, DS_FILE);
        free(t);
        error_free(err);
    }
    prep_names_free(names, n);
}

int edit_cloud_init_datasource(struct prep *p, const char *arg,
                               vf_error **errp)
{
    const char *why = "--cloud-init-datasource";
    /* the list, checked: names are identifiers (Ec2, ConfigDrive, ...) */
    char list[512] = "";
    size_t count = 0;
    for (const char *s = arg; *s;) {
        s += strspn(s, ", \t");
        size_t l = strcspn(s, ", \t");
        if (!l)
            break;
        for (size_t k = 0; k < l; k++)
            if (!((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
                  (s[k] >= '0' && s[k] <= '9'))) {
                error_setg(errp, "'%.*s' is not a datasource name", (int)l, s);
                return -1;
            }
        if (++count > DS_MAX || l > 24) {
            error_setg(errp, "more than %d datasources, or a name over 24 "
                       "characters", DS_MAX);
            return -1;
        }
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%.*s",
                 count > 1 ? ", " : "", (int)l, s);
        s += l;
    }
    if (!count) {
        error_setg(errp, "no datasource named");
        return -1;
    }
    if (!cloud_init_installed(p)) {
        /* nothing to do; only worth saying when asked for by name */
        if (!p->target)
            prep_warn(p, "cloud-init is not installed; datasource not set");
        return 0;
    }
    char text[700];
    snprintf(text, sizeof(text),
             "# vmferry: the datasources of the new platform\n"
             "datasource_list: [ %s ]\n", list);
    if (!prep_exists(p, "/etc/cloud/cloud.cfg.d") &&
        gview_mkdir(p->v, "/etc/cloud/cloud.cfg.d", 0755, -1, -1, GV_PARENTS,
                    errp) < 0)
        return -1;
    if (prep_same_content(p, DS_FILE, text, strlen(text)))
        return 0; /* set already (and the state removed then) */
    if (gview_write(p->v, DS_FILE, text, strlen(text), 0644, -1, -1,
                    GV_NOFOLLOW, errp) < 0)
        return -1;
    prep_log(p, DS_FILE, why, "Setting cloud-init's datasource_list to "
             "[ %s ]", list);
    warn_overrides(p);
    static const char *const state[] = { "/var/lib/cloud/instance",
                                         "/var/lib/cloud/instances",
                                         "/var/lib/cloud/sem" };
    for (size_t i = 0; i < sizeof(state) / sizeof(state[0]); i++) {
        if (gview_lstat(p->v, state[i]) == GT_NONE)
            continue;
        if (gview_remove(p->v, state[i], true, errp) < 0)
            return -1;
        prep_log(p, state[i], why, "Removing cloud-init's %s so that it "
                 "runs again on the new platform", state[i]);
    }
    return 0;
}
