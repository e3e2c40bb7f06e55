# Exercises t/lib/Test/Nginx/Socket.pm against plain nginx (no module).
# Written against CPAN's Test::Nginx::Socket interface so that it also runs
# under the real one.

use Test::Nginx::Socket;

repeat_each(2);
master_on();
master_process_enabled(1);
workers(2);
log_level('debug');
no_shuffle();
no_long_string();
no_root_location();

$ENV{TEST_NGINX_HARNESS_BAR} = 'from-perl';
env_to_nginx("TEST_NGINX_HARNESS_FOO=bar", "TEST_NGINX_HARNESS_BAR");

# Each request carries X-Harness unless the block sets its own headers.
add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->more_headers) {
        $block->set_value("more_headers", "X-Harness: 1");
    }
});

# 50 tests per repetition, 2 shutdown_error_log checks and 2 below.
plan tests => repeat_each() * 50 + 4;

run_tests();

# The generated nginx.conf passes the variables on to nginx.
my $conf = do {
    local $/;
    open my $in, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/conf/nginx.conf"
        or die "cannot read nginx.conf: $!";
    <$in>;
};
like($conf, qr/^env TEST_NGINX_HARNESS_FOO=bar;$/m, "env with a value");
like($conf, qr/^env TEST_NGINX_HARNESS_BAR;$/m, "env by name");

__DATA__

=== TEST 1: return, add_header, header absence, chomp
--- config
    location = /t {
        add_header X-Foo bar;
        return 200 "hello";
    }
--- request
    GET /t
--- response_headers
X-Foo: bar
!X-Bar
--- response_body chomp
hello
--- no_error_log
[error]



=== TEST 2: response_headers_like and response_body_like
--- config
    location = /t {
        return 200 "the answer is 42\n";
    }
--- request
GET /t
--- response_headers_like
Content-Type: text/plain
Server: nginx/[\d.]+
--- response_body_like: ^the answer is \d+$



=== TEST 3: 404 for a missing file, per-block log level
--- log_level: warn
--- config
    location / {
        root html;
    }
--- request
GET /nope
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log eval
qr{open\(\) "\S+/html/nope" failed \(2: No such file or directory\)}
--- no_error_log
[debug]



=== TEST 4: 403 with several error_log lines, timeout and wait
--- config
    location = /t {
        deny all;
    }
--- request
GET /t
--- error_code: 403
--- response_body_like: 403 Forbidden
--- error_log
access forbidden by rule
client: 127.0.0.1
--- timeout: 5
--- wait: 0.1



=== TEST 5: more_headers, preprocessor header, port substitution
--- http_config
    map $http_x_test $harness_x {
        default  "x=$http_x_test";
    }
--- config
    location = /t {
        return 200 "$harness_x h=$http_x_harness p=$TEST_NGINX_SERVER_PORT\n";
    }
--- more_headers
X-Test: hi
X-Harness: 1
--- request
GET /t
--- response_body
x=hi h=1 p=$ServerPort



=== TEST 6: request body gets a Content-Length
--- main_config
worker_shutdown_timeout 10s;
--- config
    location = /len {
        return 200 "len=$http_content_length h=$http_x_harness\n";
    }
--- request
POST /len
hello world
--- response_body
len=11 h=1



=== TEST 7: several requests in one block
--- config
    location = /a {
        return 200 "a\n";
    }
    location = /b {
        return 404 "b\n";
    }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 404]
--- response_body eval
["a\n", "b\n"]
--- no_error_log
[error]



=== TEST 8: pipelined requests
--- config
    location = /a {
        return 200 "a\n";
    }
    location = /b {
        return 200 "bb\n";
    }
--- pipelined_requests eval
["GET /a", "GET /b"]
--- response_body eval
["a\n", "bb\n"]



=== TEST 9: chunked response
--- config
    location / {
        root html;
        sub_filter 'works' 'WORKS';
        sub_filter_once off;
    }
--- request
GET /index.html
--- response_headers
Transfer-Encoding: chunked
--- response_body chomp
<html><head><title>It WORKS!</title></head><body>It WORKS!</body></html>



=== TEST 10: two workers under a master; the log is read per repetition
--- config
    location = /t {
        return 200;
    }
--- request
GET /t
--- grep_error_log eval: qr/start worker process(?= \d)/
--- grep_error_log_out eval
["start worker process\nstart worker process\n", ""]



=== TEST 11: user_files and init
--- user_files
>>> hello.txt
hi from file
--- init
open my $out, '>', Test::Nginx::Util::html_dir() . '/init.txt' or die $!;
print $out "from init\n";
close $out;
--- config
    location / {
        root html;
    }
--- request eval
["GET /hello.txt", "GET /init.txt"]
--- response_body eval
["hi from file\n", "from init\n"]



=== TEST 12: unknown directive
--- config
    location = /t {
        harness_no_such_directive on;
    }
--- request
GET /t
--- must_die
--- error_log
unknown directive "harness_no_such_directive"



=== TEST 13: bad arguments, with the exit code
--- config
    location = /t {
        return;
    }
--- request
GET /t
--- must_die: 1
--- error_log
invalid number of arguments in "return" directive



=== TEST 14: skipped by skip_eval
--- config
    location = /t {
        return 500;
    }
--- request
GET /t
--- response_body
never checked
--- skip_eval: 2: 1



=== TEST 15: shutdown_error_log, checked when the next block stops nginx
--- config
    location = /t {
        return 200 "bye\n";
    }
--- request
GET /t
--- response_body
bye
--- shutdown_error_log
gracefully shutting down



=== TEST 16: shutdown_error_log, checked at the end of the run
--- config
    location = /t {
        return 200 "last\n";
    }
--- request
GET /t
--- response_body
last
--- shutdown_error_log eval
qr/\[notice\] \d+#\d+: exit$/
