/*
 * unit-prepare.c: unit tests of prepare's helpers that need no guest:
 * the package-removal command chosen from the OS facts inspection
 * reports (docs/inspect-json.md: package-management, distro,
 * major-version).  Prints one line per failed check; exit status 0 when
 * all pass.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "prepare/prepare.h"

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* The command for an OS with these facts (NULL: fact absent). */
static const char *remove_cmd(const char *mgr, const char *distro, int major)
{
    static char out[64];
    struct json_object *os = json_object_new_object();
    if (mgr)
        json_object_object_add(os, "package-management",
                               json_object_new_string(mgr));
    if (distro)
        json_object_object_add(os, "distro", json_object_new_string(distro));
    if (major)
        json_object_object_add(os, "major-version",
                               json_object_new_int(major));
    struct prep p = { .os = os };
    const char *c = prep_pkg_remove_cmd(&p);
    snprintf(out, sizeof(out), "%s", c ? c : "(null)");
    json_object_put(os);
    return out;
}

int main(void)
{
    CHECK(!strcmp(remove_cmd("apt", "debian", 12), "apt-get -y purge"));
    CHECK(!strcmp(remove_cmd("dnf", "rhel", 9), "dnf -y remove"));
    CHECK(!strcmp(remove_cmd("yum", "centos", 7), "yum -y remove"));
    CHECK(!strcmp(remove_cmd("zypper", "sles", 15), "zypper -n rm"));
    CHECK(!strcmp(remove_cmd("apk", "alpinelinux", 3), "apk del"));
    CHECK(!strcmp(remove_cmd("pacman", "archlinux", 0),
                  "pacman -Rns --noconfirm"));
    CHECK(!strcmp(remove_cmd("portage", "gentoo", 0), "(null)"));
    /* no package-management fact (an older report): the distro decides */
    CHECK(!strcmp(remove_cmd(NULL, "ubuntu", 22), "apt-get -y purge"));
    CHECK(!strcmp(remove_cmd("unknown", "rhel", 7), "yum -y remove"));
    CHECK(!strcmp(remove_cmd(NULL, "rocky", 8), "dnf -y remove"));
    CHECK(!strcmp(remove_cmd(NULL, "fedora", 20), "dnf -y remove"));
    CHECK(!strcmp(remove_cmd(NULL, "opensuse", 15), "zypper -n rm"));
    CHECK(!strcmp(remove_cmd(NULL, NULL, 0), "(null)"));
    /* a fact of the wrong type is absent */
    struct json_object *os = json_object_new_object();
    json_object_object_add(os, "package-management", json_object_new_int(3));
    struct prep p = { .os = os };
    CHECK(prep_pkg_remove_cmd(&p) == NULL);
    CHECK(prep_os_int(&p, "package-management", -1) == 3);
    CHECK(prep_os_int(&p, "nope", -1) == -1);
    json_object_put(os);
    struct prep none = { 0 };
    CHECK(prep_pkg_remove_cmd(&none) == NULL);
    if (failures)
        printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
