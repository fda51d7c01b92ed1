/*
 * preflight.h: target rules ("will this guest import on T?") as data.
 *
 * A target is one file under targets/ holding a table of rules: an id, a
 * one-line statement of the requirement, a severity, a check, and the
 * vmferry command that would fix a failure.  Checks look only at the
 * inspection report (docs/inspect-json.md) and the options; they write
 * the evidence they found.  The engine (rules.c) runs every rule and
 * builds the verdict: pass unless an error-level rule fails.
 */
#ifndef VF_PREFLIGHT_H
#define VF_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

enum pf_severity { PF_ERROR, PF_WARNING };
enum pf_result { PF_PASS, PF_FAIL, PF_NA };

struct pf_ctx {
    struct json_object *report;   /* inspect_images() output */
    const char *disk_bus;         /* --disk-bus: virtio (default), scsi,
                                     sata, ide */
    const char *controller;       /* --controller: pvscsi, lsilogic,
                                     sata, ide (VMware) */
};

struct pf_rule;
typedef enum pf_result (*pf_check_fn)(const struct pf_ctx *c,
                                      const struct pf_rule *r, char *ev,
                                      size_t evlen);

struct pf_rule {
    const char *id;
    const char *statement;        /* one line: what the target requires */
    enum pf_severity severity;
    pf_check_fn check;
    const char *arg;              /* check parameter (lists, names) */
    uint64_t num;                 /* check parameter (sizes, counts) */
    const char *fix;              /* command that fixes a failure */
};

struct pf_target {
    const char *name;
    const char *desc;
    const struct pf_rule *rules;
    size_t nrules;
};

/* NULL-terminated, for --help and lookup. */
extern const struct pf_target *const pf_targets[];
const struct pf_target *pf_find(const char *name);

/* Run every rule of t; *ok is false when an error-level rule fails.
 * Returns {"target", "verdict", "errors", "warnings", "rules": [...]}. */
struct json_object *pf_run(const struct pf_target *t, const struct pf_ctx *c,
                           bool *ok);

/* ---- shared checks (rules.c); their arg / num are documented here ---- */

/* arg: comma list of formats; "vmdk:streamOptimized" restricts the VMDK
 * create type, "vpc:fixed" the VHD subformat. */
enum pf_result pf_chk_format(const struct pf_ctx *, const struct pf_rule *,
                             char *, size_t);
/* num: largest virtual size in bytes (inclusive). */
enum pf_result pf_chk_max_size(const struct pf_ctx *, const struct pf_rule *,
                               char *, size_t);
/* num: the virtual size must be a multiple of it. */
enum pf_result pf_chk_size_multiple(const struct pf_ctx *,
                                    const struct pf_rule *, char *, size_t);
/* num: most disks. */
enum pf_result pf_chk_max_disks(const struct pf_ctx *, const struct pf_rule *,
                                char *, size_t);
/* An operating system was found and it is 64-bit (x86_64, aarch64). */
enum pf_result pf_chk_64bit(const struct pf_ctx *, const struct pf_rule *,
                            char *, size_t);
/* Not Windows (an NTFS filesystem and no Linux root count as Windows). */
enum pf_result pf_chk_not_windows(const struct pf_ctx *,
                                  const struct pf_rule *, char *, size_t);
/* BIOS with an MBR boot disk, or UEFI with the fallback loader
 * (\EFI\BOOT\BOOTX64.EFI, BOOTAA64.EFI for aarch64) on an ESP. */
enum pf_result pf_chk_boot_mode(const struct pf_ctx *, const struct pf_rule *,
                                char *, size_t);
/* The root filesystem is on the first disk (through LVM too). */
enum pf_result pf_chk_root_on_boot_disk(const struct pf_ctx *,
                                        const struct pf_rule *, char *,
                                        size_t);
/* arg: comma list of filesystem types every mounted filesystem is in. */
enum pf_result pf_chk_fs_types(const struct pf_ctx *, const struct pf_rule *,
                               char *, size_t);
/* No VMDK of create type seSparse. */
enum pf_result pf_chk_no_sesparse(const struct pf_ctx *,
                                  const struct pf_rule *, char *, size_t);
/* arg: comma list of drivers that must be usable at boot (built in or in
 * the initramfs) in some kernel; "net:NAME" only needs the module. */
enum pf_result pf_chk_drivers(const struct pf_ctx *, const struct pf_rule *,
                              char *, size_t);
/* Same, applied only when --disk-bus is virtio. */
enum pf_result pf_chk_drivers_if_virtio(const struct pf_ctx *,
                                        const struct pf_rule *, char *,
                                        size_t);
/* The first disk has an MBR or GPT with a bootable partition (MBR active
 * flag, ESP, BIOS-boot or legacy-BIOS-bootable). */
enum pf_result pf_chk_bootable_table(const struct pf_ctx *,
                                     const struct pf_rule *, char *, size_t);
/* No qcow2 external data file. */
enum pf_result pf_chk_no_data_file(const struct pf_ctx *,
                                   const struct pf_rule *, char *, size_t);
/* arg: comma list of VMDK create types allowed (VMDK disks only). */
enum pf_result pf_chk_vmdk_types(const struct pf_ctx *,
                                 const struct pf_rule *, char *, size_t);
/* No backing file. */
enum pf_result pf_chk_no_backing(const struct pf_ctx *, const struct pf_rule *,
                                 char *, size_t);
/* No LVM volume group. */
enum pf_result pf_chk_no_lvm(const struct pf_ctx *, const struct pf_rule *,
                             char *, size_t);
/* No encrypted volume (LUKS, BitLocker). */
enum pf_result pf_chk_not_encrypted(const struct pf_ctx *,
                                    const struct pf_rule *, char *, size_t);
/* arg: comma list of mountpoints the fstab has, exactly (swap ignored). */
enum pf_result pf_chk_mountpoints(const struct pf_ctx *,
                                  const struct pf_rule *, char *, size_t);
/* The disk image is a VHD whose footer cookie is "conectix". */
enum pf_result pf_chk_vhd_cookie(const struct pf_ctx *,
                                 const struct pf_rule *, char *, size_t);
/* VMware: a driver for --controller (pvscsi needs vmw_pvscsi). */
enum pf_result pf_chk_controller(const struct pf_ctx *,
                                 const struct pf_rule *, char *, size_t);

#define PF_KiB 1024ull
#define PF_MiB (1024ull * PF_KiB)
#define PF_GiB (1024ull * PF_MiB)
#define PF_TiB (1024ull * PF_GiB)

#endif
