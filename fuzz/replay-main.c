/*
 * replay-main: run a fuzz target over saved inputs without libFuzzer, so
 * a plain gcc build (and every CI run) replays the corpus and crashers.
 *
 *   replay-fuzz-NAME FILE|DIR...
 *
 * Directories are read one level deep, in name order; README* files and
 * names starting with '.' are skipped.  Exit 0 when every input ran (a
 * crash ends the process, which is the point), 1 on an unreadable
 * argument.  With REPLAY_VERBOSE set in the environment, each input's
 * name is printed to stderr before it runs.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* REPLAY_VERBOSE set: name each input before running it, so the last
 * line before a crash says which one it was. */
static int replay_verbose;

static int replay_file(const char *path, unsigned long *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 65536, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap) {
            if (ferror(f)) {
                fprintf(stderr, "replay: %s: read error\n", path);
                free(buf);
                fclose(f);
                return -1;
            }
            break;
        }
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "replay: %s: out of memory\n", path);
        return -1;
    }
    /* An exact-size copy, so ASan sees reads past the input's end. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        fprintf(stderr, "replay: %s: out of memory\n", path);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    if (replay_verbose)
        fprintf(stderr, "replay: %s\n", path);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    (*count)++;
    return 0;
}

static int skip_name(const struct dirent *d)
{
    return d->d_name[0] != '.' && strncmp(d->d_name, "README", 6) != 0;
}

static int replay_dir(const char *dir, unsigned long *count)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_name, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int ret = 0;
    for (int i = 0; i < n; i++) {
        size_t plen = strlen(dir) + strlen(names[i]->d_name) + 2;
        char *path = malloc(plen);
        struct stat st;
        if (path) {
            snprintf(path, plen, "%s/%s", dir, names[i]->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                replay_file(path, count) < 0)
                ret = -1;
        } else {
            ret = -1;
        }
        free(path);
        free(names[i]);
    }
    free(names);
    return ret;
}

int main(int argc, char **argv)
{
    unsigned long count = 0;
    int ret = 0;

    replay_verbose = getenv("REPLAY_VERBOSE") != NULL;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            ret = 1;
        } else if (S_ISDIR(st.st_mode)) {
            if (replay_dir(argv[i], &count) < 0)
                ret = 1;
        } else if (replay_file(argv[i], &count) < 0) {
            ret = 1;
        }
    }
    fprintf(stderr, "replay: %lu inputs\n", count);
    return ret;
}
