/*
 * A main() for the fuzz targets without libFuzzer: runs every file named,
 * or every file in every folder named, through LLVMFuzzerTestOneInput once.
 * Any compiler builds it, so "make test" replays the corpora with gcc.
 */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));


static long
replay_file(const char *path)
{
    FILE     *f;
    long      n;
    uint8_t  *buf;

    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        perror(path);
        exit(2);
    }

    /* a copy of exactly n bytes, so ASan sees any read past the end */
    buf = malloc(n ? n : 1);
    if (buf == NULL || (long) fread(buf, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);

    LLVMFuzzerTestOneInput(buf, (size_t) n);
    free(buf);

    return 1;
}


static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char * const *) a, *(char * const *) b);
}


static long
replay(const char *path)
{
    DIR            *d;
    long            n;
    size_t          count, cap, i;
    char          **names, full[4096];
    struct stat     st;
    struct dirent  *e;

    if (stat(path, &st) != 0) {
        perror(path);
        exit(2);
    }

    if (!S_ISDIR(st.st_mode)) {
        return replay_file(path);
    }

    d = opendir(path);
    if (d == NULL) {
        perror(path);
        exit(2);
    }

    names = NULL;
    count = 0;
    cap = 0;

    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof(char *));
            if (names == NULL) {
                exit(2);
            }
        }
        names[count++] = strdup(e->d_name);
    }
    closedir(d);

    /* the same order every run: a failure replays the same way */
    if (count) {
        qsort(names, count, sizeof(char *), by_name);
    }

    n = 0;
    for (i = 0; i < count; i++) {
        snprintf(full, sizeof(full), "%s/%s", path, names[i]);
        n += replay(full);
        free(names[i]);
    }
    free(names);

    return n;
}


int
main(int argc, char **argv)
{
    int   i;
    long  n;

    if (LLVMFuzzerInitialize != NULL) {
        LLVMFuzzerInitialize(&argc, &argv);
    }

    n = 0;
    for (i = 1; i < argc; i++) {
        n += replay(argv[i]);
    }

    printf("%s: %ld inputs replayed\n", argv[0], n);
    return 0;
}
