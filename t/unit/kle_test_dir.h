/*
 * A scratch directory for the unit tests that read files:
 *
 *     kle_test_dir_make("/tmp/kle_xx_XXXXXX");
 *     path = put("name", "text");     at("name") is the path only
 *     kle_test_dir_remove();
 */

#ifndef KLE_TEST_DIR_H
#define KLE_TEST_DIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char  dir[64];


/* dir/name, in one of a few rotating buffers */

static const char *
at(const char *name)
{
    static int   i;
    static char  buf[8][256];

    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}


/* writes dir/name; the test cannot go on without it */

static const char *
put_bytes(const char *name, const char *bytes, size_t len)
{
    FILE        *f;
    const char  *p;

    p = at(name);
    f = fopen(p, "w");
    if (f == NULL || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
        perror(p);
        exit(2);
    }

    return p;
}


static const char *
put(const char *name, const char *text)
{
    return put_bytes(name, text, strlen(text));
}


static void
kle_test_dir_make(const char *template)
{
    snprintf(dir, sizeof(dir), "%s", template);

    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}


static void
kle_test_dir_remove(void)
{
    char  cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", dir);
    }
}

#endif /* KLE_TEST_DIR_H */
