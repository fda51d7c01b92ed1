/*
 * fuzz-source: libFuzzer target for migrate's source readers
 * (pipeline/source*.c): the input is written to a file in a private
 * directory and opened with src_open(), so detection by content picks
 * the OVA walker, manifest and OVF reader, the .vmx parser, the libvirt
 * domain reader, or a plain disk.  Then every disk found is read a
 * little.
 *
 * A libvirt domain may name any host path (by design), and a .vmx its
 * own directory's files: inputs naming /dev, /proc or /sys are skipped
 * so a mutation cannot make the harness read a terminal or a pipe.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[64];

static void fuzz_cleanup(void)
{
    rmdir(fuzz_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const banned[] = { "/dev", "/proc", "/sys" };
    for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
        if (memmem(data, size, banned[i], strlen(banned[i])))
            return 0;
    if (!fuzz_dir[0]) {
        snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/vf-fuzz-source-XXXXXX");
        if (!mkdtemp(fuzz_dir))
            abort();
        atexit(fuzz_cleanup);
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/in", fuzz_dir);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f))
        abort();
    char *args[] = { path };
    struct src_vm vm;
    vf_error *err = NULL;
    if (src_open(args, 1, NULL, &vm, &err) == 0) {
        uint8_t buf[4096];
        for (size_t d = 0; d < vm.ndisks; d++) {
            struct blk *b = vm.disks[d];
            size_t n = b->size < sizeof(buf) ? (size_t)b->size : sizeof(buf);
            vf_error *e2 = NULL;
            if (blk_pread(b, buf, 0, n, &e2) < 0)
                error_free(e2);
        }
        src_close(&vm);
    } else {
        error_free(err);
    }
    unlink(path);
    return 0;
}
