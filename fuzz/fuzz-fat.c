/*
 * fuzz-fat: libFuzzer target for the FAT12/16/32 reader (guest/fat.c).
 * Input: the head of a FAT volume; the device is FUZZ_FAT_DEV bytes, the
 * input followed by zeros, so a seed cut after its last non-zero byte
 * (fuzz/mk-corpus-fat.sh) is a whole volume again.  A few paths are
 * looked up, as inspection does on an ESP.  Errors are fine; crashes,
 * sanitizer reports and long runs are not.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "formats/format.h"
#include "guest/guest.h"
#include "io/io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Big enough for a FAT16 and the small FAT32 mkfs.fat makes on 8 MiB. */
#define FUZZ_FAT_DEV (8u << 20)

static uint8_t dev[FUZZ_FAT_DEV];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_FAT_DEV)
        size = FUZZ_FAT_DEV;
    memcpy(dev, data, size);
    struct io *io = io_mem_view("fuzz-input", dev, FUZZ_FAT_DEV);
    struct blk *b = NULL;
    vf_error *err = NULL;
    if (io) {
        struct blk_open_opts oo;
        memset(&oo, 0, sizeof(oo));
        oo.format = "raw";
        oo.no_backing = true;
        b = blk_open_io(io, "fuzz-input", true, &oo, &err);
    }
    if (b) {
        struct gdev d;
        memset(&d, 0, sizeof(d));
        snprintf(d.name, sizeof(d.name), "/dev/sda1");
        d.blk = b;
        d.size = b->size;
        static const char *const paths[] = {
            "/EFI/BOOT/BOOTX64.EFI", "/efi/boot/bootaa64.efi",
            "/EFI/ubuntu/a-long-menu-entry-file-name-1.cfg", "/../.",
        };
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            bool dir;
            uint64_t len;
            if (fat_stat(&d, paths[i], &dir, &len, &err) < 0) {
                error_free(err);
                err = NULL;
            }
        }
        blk_close(b);
    }
    error_free(err);
    memset(dev, 0, size);
    return 0;
}
