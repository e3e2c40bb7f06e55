/*
 * kle_creds: the rules every source obeys (credentials only over https),
 * token files (regular files only, bounded, no NUL) and why a re-read
 * failed (token_error), which the elector logs once per change.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kle_base64.h"
#include "kle_http.h"
#include "kle_kubeconfig.h"
#include "kle_token.h"
#include "kle_test.h"
#include "kle_test_dir.h"

static char  err[1024];


static void
test_direct_rules(void)
{
    kle_creds_t  c;

    put("tok", "t0ken\n");
    put("cert", "C");

    memset(&c, 0xa5, sizeof(c));
    is_int(kle_creds_direct(&c, "http://h:8080", at("tok"), NULL, NULL, NULL,
                            err, sizeof(err)), -1, "http + token_file");
    is_str(err, "server \"http://h:8080\": credentials (a bearer token or a "
           "client certificate) are only sent over https://",
           "http + token_file: the rule is named");
    ok(c.server == NULL && c.token == NULL, "http + token_file: freed");

    is_int(kle_creds_direct(&c, "http://h:8080", NULL, NULL, at("cert"),
                            at("cert"), err, sizeof(err)), -1,
           "http + client certificate");
    is_str(err, "server \"http://h:8080\": credentials (a bearer token or a "
           "client certificate) are only sent over https://",
           "http + client certificate: the rule is named");

    is_int(kle_creds_direct(&c, "http://h:8080", NULL, at("cert"), NULL, NULL,
                            err, sizeof(err)), 0, "http + a CA only: allowed");
    kle_creds_free(&c);

    is_int(kle_creds_direct(&c, "https://h", at("tok"), NULL, NULL, NULL,
                            err, sizeof(err)), 0, "https + token_file");
    is_str(c.token, "t0ken", "https + token_file: token read");
    kle_creds_free(&c);
}


/* token_error as a non-root reader of a root-only file sees it */

static void
unreadable_as_nobody(kle_creds_t *c, int64_t now, char *out, size_t size)
{
    int      fd[2], status;
    pid_t    pid;
    ssize_t  n;

    if (geteuid() != 0) {
        chmod(c->token_file, 0);
        kle_creds_token(c, now, 1);
        snprintf(out, size, "%s", c->token_error);
        chmod(c->token_file, 0600);
        return;
    }

    if (pipe(fd) != 0 || (pid = fork()) < 0) {
        perror("pipe/fork");
        exit(2);
    }

    if (pid == 0) {
        close(fd[0]);
        chmod(c->token_file, 0600);
        if (setgid(65534) != 0 || setuid(65534) != 0) {
            _exit(3);
        }
        kle_creds_token(c, now, 1);
        n = write(fd[1], c->token_error, strlen(c->token_error));
        _exit(n < 0);
    }

    close(fd[1]);
    n = read(fd[0], out, size - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd[0]);
    waitpid(pid, &status, 0);
}


static void
test_token_error(void)
{
    int64_t      t = 1000000;
    char         want[512], got[512];
    kle_creds_t  c;

    put("rot", "tok1\n");
    is_int(kle_creds_direct(&c, "https://k:6443", at("rot"), NULL, NULL, NULL,
                            err, sizeof(err)), 0, "direct with token file");
    is_str(c.token_error, "", "token_error empty after the load");

    unlink(at("rot"));
    is_str(kle_creds_token(&c, t, 1), "tok1", "missing: old token kept");
    snprintf(want, sizeof(want), "open %s: No such file or directory",
             at("rot"));
    is_str(c.token_error, want, "missing: token_error names file and errno");

    put("rot", "tok2\n");
    is_str(kle_creds_token(&c, t + 1, 1), "tok2", "back: new token");
    is_str(c.token_error, "", "back: token_error cleared");

    unreadable_as_nobody(&c, t + 2, got, sizeof(got));
    snprintf(want, sizeof(want), "open %s: Permission denied", at("rot"));
    is_str(got, want, "unreadable by the worker: Permission denied");

    put("rot", "\n \n");
    kle_creds_token(&c, t + 3, 1);
    snprintf(want, sizeof(want), "%s: is empty", at("rot"));
    is_str(c.token_error, want, "empty: token_error says so");
    is_str(c.token, "tok2", "empty: old token kept");

    put_bytes("rot", "tok3\0evil", 9);
    kle_creds_token(&c, t + 4, 1);
    snprintf(want, sizeof(want), "%s: contains control characters",
             at("rot"));
    is_str(c.token_error, want, "a NUL inside: refused");
    is_str(c.token, "tok2", "a NUL inside: old token kept");

    unlink(at("rot"));
    if (mkfifo(at("rot"), 0600) != 0) {
        perror("mkfifo");
        exit(2);
    }
    /* no writer: a blocking open would never return */
    alarm(5);
    kle_creds_token(&c, t + 5, 1);
    alarm(0);
    snprintf(want, sizeof(want), "%s: is not a regular file", at("rot"));
    is_str(c.token_error, want, "a FIFO: refused without blocking");
    unlink(at("rot"));

    {
        char  *big = malloc(KLE_TOKEN_FILE_MAX + 1);

        memset(big, 'a', KLE_TOKEN_FILE_MAX + 1);
        put_bytes("rot", big, KLE_TOKEN_FILE_MAX);
        is_int(strlen(kle_creds_token(&c, t + 6, 1)), KLE_TOKEN_FILE_MAX,
               "a 64 KiB token is read");
        put_bytes("rot", big, KLE_TOKEN_FILE_MAX + 1);
        free(big);
    }
    kle_creds_token(&c, t + 7, 1);
    snprintf(want, sizeof(want), "%s: is larger than 65536 bytes",
             at("rot"));
    is_str(c.token_error, want, "a token file over 64 KiB: refused");

    kle_creds_free(&c);
}


static void
test_token_check(void)
{
    const char  *why;

    is_int(kle_token_check("abc", 3, &why), 0, "plain token");
    is_int(kle_token_check("", 0, &why), -1, "empty");
    is_str(why, "is empty", "empty: why");
    is_int(kle_token_check("a\0b", 3, &why), -1, "NUL inside");
    is_int(kle_token_check("a\x7f", 2, &why), -1, "DEL");
    is_int(kle_token_check("a\tb", 3, &why), -1, "TAB");
    is_str(why, "contains control characters", "control: why");
    is_int(kle_token_check("\xc3\xa9", 2, &why), 0, "UTF-8 is passed on");
}


static void
test_base64_len(void)
{
    size_t          n;
    unsigned char  *d;

    /* the length is the caller's: bytes after it are not read */
    d = kle_base64_decode("YWJjZA==garbage", 8, &n);
    ok(d != NULL && n == 4 && memcmp(d, "abcd", 4) == 0, "decodes len bytes");
    free(d);

    d = kle_base64_decode("YW\0I", 4, &n);
    ok(d == NULL && errno == EINVAL, "a NUL is invalid");

    d = kle_base64_decode("", 0, &n);
    ok(d != NULL && n == 0, "empty decodes to nothing");
    free(d);
}


static void
done_cb(const kle_http_response_t *resp, void *data)
{
    (void) resp;
    (*(int *) data)++;
}


/* The transport checks again: creds made by hand cannot go out in clear. */

static void
test_transport_rules(void)
{
    int              called = 0;
    kle_http_t      *h;
    kle_creds_t      c;
    kle_http_req_t  *r;

    h = kle_http_create(NULL);
    ok(h != NULL, "transport");

    memset(&c, 0, sizeof(c));
    c.token = strdup("t0ken");
    r = kle_http_send(h, "GET", "http://127.0.0.1:1/x", NULL, 1000, &c,
                      done_cb, &called);
    ok(r == NULL, "a token to an http:// URL: the request does not start");

    r = kle_http_send(h, "GET", "HTTPS://127.0.0.1:1/x", NULL, 1000, &c,
                      done_cb, &called);
    ok(r == NULL, "HTTPS:// in capitals is not taken for https://");

    free(c.token);
    c.token = NULL;
    c.cert_data = (unsigned char *) strdup("C");
    c.cert_len = 1;
    r = kle_http_send(h, "GET", "http://127.0.0.1:1/x", NULL, 1000, &c,
                      done_cb, &called);
    ok(r == NULL, "a client certificate to an http:// URL: refused");
    free(c.cert_data);
    c.cert_data = NULL;

    c.insecure = 1;
    c.ca_file = strdup("/nonexistent");
    r = kle_http_send(h, "GET", "https://127.0.0.1:1/x", NULL, 1000, &c,
                      done_cb, &called);
    ok(r == NULL, "insecure with a CA: refused");
    free(c.ca_file);
    c.ca_file = NULL;
    c.insecure = 0;

    r = kle_http_send(h, "GET", "http://127.0.0.1:1/x", NULL, 1000, &c,
                      done_cb, &called);
    ok(r != NULL, "no credentials: http:// is allowed");
    is_int(kle_http_pending(h), 1, "one request in flight");

    kle_http_destroy(h);
    is_int(called, 0, "no callback for refused or cancelled requests");
}


int
main(void)
{
    kle_test_dir_make("/tmp/kle_cr_XXXXXX");
    /* a non-root child must reach the files to be denied by their mode */
    chmod(dir, 0755);

    test_direct_rules();
    test_token_error();
    test_token_check();
    test_base64_len();
    test_transport_rules();

    kle_test_dir_remove();

    return done_testing();
}
