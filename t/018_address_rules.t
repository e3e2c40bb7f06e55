# Configuration rules that nginx -t reports with a message naming them:
# the 1 s margin of lease_duration over renew_deadline (client-go and
# configmaps locks compare records at whole seconds), and the address, which must be HOST:PORT.  Then, on the wire, an
# address is shown only if the current holder wrote it and it is valid.

use Kle::Emulator;
use Kle::Harness qw(must_die_messages nginx_t_http);
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

$ENV{KLE_T_EMPTY} = '';

# A must_die block's error_log lines are exact messages: each must be an
# [emerg] line that holds the message and then the file and line.
must_die_messages();

put_lease('addr', holder => 'x', secs => 3600, transitions => 1,
          address => '10.0.0.1:80');

plan tests => 38;

{
    my ($rc, $text) = nginx_t_http(<<"_EOC_");
    leader_election web {
        lock            configmaps default/web;
        lease_duration  3s;
        renew_deadline  2500ms;
        retry_period    1s;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_
    is($rc, 1, 'nginx -t fails on a configmaps lock with less than 1 s of margin');
    like($text, qr/\[emerg\] lease_duration \(3s\) - renew_deadline \(2500ms\) must be at least 1s: client-go and configmaps locks compare records at whole seconds, so a follower may take over up to 1s early in leader_election "web" in \S+nginx\.conf:\d+\n/,
         'nginx -t names the rule');

    ($rc, $text) = nginx_t_http(<<"_EOC_");
    leader_election web {
        lock            leases default/web;
        address         web-0.example:http;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_
    is($rc, 1, 'nginx -t fails on an invalid address');
    like($text, qr/\[emerg\] invalid address "web-0\.example:http" in leader_election "web"[^\n]* in \S+nginx\.conf:\d+\n/,
         'nginx -t names the value');
}

run_tests();

__DATA__

=== TEST 1: a configmaps lock needs lease_duration - renew_deadline >= 1s
--- http_config
    leader_election web {
        lock            configmaps default/web;
        lease_duration  3s;
        renew_deadline  2500ms;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
lease_duration (3s) - renew_deadline (2500ms) must be at least 1s: client-go and configmaps locks compare records at whole seconds, so a follower may take over up to 1s early in leader_election "web"



=== TEST 2: so does a leases lock: client-go followers read it at whole seconds
--- http_config
    leader_election web {
        lock            leases default/margin;
        lease_duration  3s;
        renew_deadline  2001ms;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
lease_duration (3s) - renew_deadline (2001ms) must be at least 1s: client-go and configmaps locks compare records at whole seconds, so a follower may take over up to 1s early in leader_election "web"



=== TEST 3: exactly 1s of margin is enough
--- http_config
    leader_election web {
        lock            leases default/margin;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /t {
        return 200 "$leader_election_identity\n";
    }
--- request
GET /t
--- response_body_like
^.+$
--- no_error_log
[emerg]
[error]



=== TEST 4: an address without a port
--- http_config
    leader_election web {
        lock            leases default/web;
        address         10.0.0.5;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log eval
qr/\[emerg\] \d+#\d+: invalid address "10\.0\.0\.5" in leader_election "web"/



=== TEST 5: a port out of range
--- http_config
    leader_election web {
        lock            leases default/web;
        address         10.0.0.5:65536;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log eval
qr/\[emerg\] \d+#\d+: invalid address "10\.0\.0\.5:65536" in leader_election "web"/



=== TEST 6: a URL is not an address
--- http_config
    leader_election web {
        lock            leases default/web;
        address         http://10.0.0.5:8080;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log eval
qr/\[emerg\] \d+#\d+: invalid address "http:\/\/10\.0\.0\.5:8080" in leader_election "web"/



=== TEST 7: an unbracketed IPv6 address
--- http_config
    leader_election web {
        lock            leases default/web;
        address         fd00::5:8080;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log eval
qr/\[emerg\] \d+#\d+: invalid address "fd00::5:8080" in leader_election "web"/



=== TEST 8: an environment variable that expands to nothing
--- http_config
    leader_election web {
        lock            leases default/web;
        address         ${KLE_T_EMPTY}:8080;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log eval
qr/\[emerg\] \d+#\d+: invalid address ":8080" in leader_election "web"/



=== TEST 9: IPv4, bracketed IPv6 and DNS names are valid
--- http_config
    leader_election a {
        lock            leases default/va;
        address         10.0.0.5:8080;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
    leader_election b {
        lock            leases default/vb;
        address         [fd00::5]:443;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
    leader_election c {
        lock            leases default/vc;
        address         nginx-0.web.default.svc.cluster.local:1;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /t {
        return 200 "ok\n";
    }
--- request
GET /t
--- response_body
ok
--- no_error_log
[emerg]
[error]



=== TEST 10: the holder's own valid address is shown
--- http_config
    leader_election web {
        lock            leases default/addr;
        identity        me;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /vars {
        return 200 "$leader_election_holder [$leader_election_holder_address]\n";
    }
--- init
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^x / });
--- request
GET /vars
--- response_body
x [10.0.0.1:80]
--- no_error_log
[error]



=== TEST 11: an address written by someone else is not shown
--- init
put_lease('addr', holder => 'y', secs => 3600, transitions => 1,
          address => '10.0.0.1:80', address_holder => 'x');
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^y / });
--- request
GET /vars
--- response_body
y []
--- no_error_log
[error]



=== TEST 12: an address without its holder annotation is not shown
--- init
put_lease('addr', holder => 'w', secs => 3600, transitions => 1,
          annotations => {
              'leader-election.nginx.org/address' => '10.0.0.2:80' });
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^w / });
--- request
GET /vars
--- response_body
w []
--- no_error_log
[error]



=== TEST 13: an invalid address is not shown, even from the holder
--- init
put_lease('addr', holder => 'z', secs => 3600, transitions => 1,
          address => 'evil host/x');
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^z / });
--- request
GET /vars
--- response_body
z []
--- no_error_log
[error]
