# The directives: every configuration mistake stops nginx at start (as
# "nginx -t" does) with one message that names it; ${VAR} expansion from the
# master's environment; the defaults, as the status page shows them.

use Kle::Emulator;
use Kle::Harness qw(must_die_messages nginx_t_http);
use Kle::Status;
use Test::Nginx::Socket;
use Sys::Hostname ();

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

# Seen by the nginx master (Test::Nginx starts it from this process).
$ENV{KLE_T_POD_NAME} = 'pod-7';
$ENV{KLE_T_POD_IP} = '127.0.0.9';
$ENV{KLE_T_NAMESPACE} = 'kle-ns';
delete $ENV{KLE_T_UNSET};
delete $ENV{KUBERNETES_SERVICE_HOST};
delete $ENV{KUBERNETES_SERVICE_PORT};

our $Host = lc Sys::Hostname::hostname();

# A must_die block's error_log lines are exact messages: each must be an
# [emerg] line that holds the message and then the file and line.
must_die_messages();

# 23 must_die blocks x 2, 5 started blocks with their own checks, and
# the 4 "nginx -t" checks at the end.
plan tests => 89;

run_tests();

# "nginx -t" itself reports a missing variable, naming it.
{
    my ($rc, $text, $file) = nginx_t_http(<<"_EOC_");
    leader_election web {
        lock leases default/web;
        identity \${KLE_T_UNSET};
        api_server kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_
    is($rc, 1, 'nginx -t fails on a missing variable');
    like($text, qr/\[emerg\] environment variable "KLE_T_UNSET" is not set in "identity" directive in \Q$file\E:8\n/,
         'nginx -t names the variable, the directive and the line');
    like($text, qr/configuration file \Q$file\E test failed/,
         'nginx -t says the test failed');
    unlike($text, qr/\[(?:alert|crit)\]|signal/, 'nginx -t: nothing worse');
}

__DATA__

=== TEST 1: lease_duration must be greater than renew_deadline
--- http_config
    leader_election web {
        lock            leases default/web;
        lease_duration  2s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
lease_duration (2s) must be greater than renew_deadline (2s) in leader_election "web"



=== TEST 2: renew_deadline must be greater than 1.2 * retry_period
--- http_config
    leader_election web {
        lock            leases default/web;
        lease_duration  3s;
        renew_deadline  1200ms;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
renew_deadline (1200ms) must be greater than 1.2 * retry_period (1s) in leader_election "web"



=== TEST 3: retry_period must be greater than 0
--- http_config
    leader_election web {
        lock            leases default/web;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    0;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
retry_period must be greater than 0 in leader_election "web"



=== TEST 4: the defaults count: renew_deadline 10s is not below lease_duration 5s
--- http_config
    leader_election web {
        lock            leases default/web;
        lease_duration  5s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
lease_duration (5s) must be greater than renew_deadline (10s) in leader_election "web"



=== TEST 5: a missing ${VAR} in identity is named
--- http_config
    leader_election web {
        lock        leases default/web;
        identity    ${KLE_T_UNSET};
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
environment variable "KLE_T_UNSET" is not set in "identity" directive



=== TEST 6: a missing ${VAR} in lock is named
--- http_config
    leader_election web {
        lock        leases ${KLE_T_NAMESPACE}/web-${KLE_T_UNSET};
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
environment variable "KLE_T_UNSET" is not set in "lock" directive



=== TEST 7: a missing ${VAR} in address is named
--- http_config
    leader_election web {
        lock        leases default/web;
        address     ${KLE_T_UNSET}:8080;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
environment variable "KLE_T_UNSET" is not set in "address" directive



=== TEST 8: a lock without NAMESPACE/NAME
--- http_config
    leader_election web {
        lock        leases web;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
invalid lock "web": expected NAMESPACE/NAME in "lock" directive



=== TEST 9: a lock name that is no DNS subdomain
--- http_config
    leader_election web {
        lock        leases default/Web_1;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
invalid lock name "Web_1": must be a DNS subdomain (at most 253 of a-z, 0-9, '-' and '.', each dot-separated part starting and ending with a letter or digit) in "lock" directive



=== TEST 10: an unknown lock kind
--- http_config
    leader_election web {
        lock        endpoints default/web;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
invalid lock kind "endpoints": expected "leases" or "configmaps" in "lock" directive



=== TEST 11: an unknown directive in the block
--- http_config
    leader_election web {
        lock        leases default/web;
        lease_time  3s;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
unknown directive "lease_time"



=== TEST 12: an unknown parameter of api_server
--- http_config
    leader_election web {
        lock        leases default/web;
        api_server  in-cluster yes;
    }
--- config
--- must_die
--- error_log
invalid parameter "yes" in "api_server" directive



=== TEST 13: an unknown api_server
--- http_config
    leader_election web {
        lock        leases default/web;
        api_server  incluster;
    }
--- config
--- must_die
--- error_log
invalid value "incluster" in "api_server" directive, it must be "in-cluster", "kubeconfig" or an https:// URL



=== TEST 14: no lock
--- http_config
    leader_election web {
        identity    a;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
no "lock" is defined in leader_election "web"



=== TEST 15: an unreadable kubeconfig
--- http_config
    leader_election web {
        lock        leases default/web;
        api_server  kubeconfig /nonexistent/kle/kubeconfig;
    }
--- config
--- must_die
--- error_log
kubeconfig "/nonexistent/kle/kubeconfig": cannot open: No such file or directory in leader_election "web"



=== TEST 16: an invalid kubeconfig
--- user_files
>>> broken.kubeconfig
apiVersion: v1
kind: Config
clusters: [
--- http_config
    leader_election web {
        lock        leases default/web;
        api_server  kubeconfig $TEST_NGINX_SERVER_ROOT/html/broken.kubeconfig;
    }
--- config
--- must_die
--- error_log eval
qr{\[emerg\] \d+#\d+: kubeconfig "\Q$ENV{TEST_NGINX_SERVER_ROOT}\E/html/broken\.kubeconfig": line 4: did not find expected node content in leader_election "web" in \S+/nginx\.conf:\d+$}



=== TEST 16b: a kubeconfig whose cluster has no server
--- user_files
>>> noserver.kubeconfig
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    certificate-authority: ca.crt
users:
- name: u
  user:
    token: abc
contexts:
- name: x
  context:
    cluster: c
    user: u
current-context: x
--- http_config
    leader_election web {
        lock        leases default/web;
        api_server  kubeconfig $TEST_NGINX_SERVER_ROOT/html/noserver.kubeconfig;
    }
--- config
--- must_die
--- error_log eval
qr{\[emerg\] \d+#\d+: kubeconfig "\Q$ENV{TEST_NGINX_SERVER_ROOT}\E/html/noserver\.kubeconfig": cluster "c": missing "server" in leader_election "web" in \S+/nginx\.conf:\d+$}



=== TEST 17: a kubeconfig context that does not exist
--- http_config
    leader_election web {
        lock        leases default/web;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG no-such-context;
    }
--- config
--- must_die
--- error_log eval
qr{\[emerg\] \d+#\d+: kubeconfig "\Q$ENV{TEST_NGINX_KUBECONFIG}\E": context "no-such-context" not found in leader_election "web" in \S+/nginx\.conf:\d+$}



=== TEST 18: in-cluster (the default) outside a pod names what is missing
--- http_config
    leader_election web {
        lock  leases default/web;
    }
--- config
--- must_die
--- error_log
in-cluster configuration: KUBERNETES_SERVICE_HOST is not set (not running in a pod? use "api_server kubeconfig PATH") in leader_election "web"



=== TEST 19: a duplicate election name
--- http_config
    leader_election web {
        lock        leases default/web;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
    leader_election web {
        lock        leases default/web2;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
--- must_die
--- error_log
duplicate leader_election "web"



=== TEST 20: leader_election_status naming an unknown election
--- http_config
    leader_election web {
        lock        leases default/web;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status nope;
    }
--- must_die
--- error_log
unknown leader_election "nope"



=== TEST 21: leader_election_healthz without any election
--- config
    location = /healthz {
        leader_election_healthz;
    }
--- must_die
--- error_log
no "leader_election" is defined for the "leader_election_healthz" directive



=== TEST 22: a hook that is no URL
--- http_config
    leader_election web {
        lock                leases default/web;
        api_server          kubeconfig $TEST_NGINX_KUBECONFIG;
        on_started_leading  /hooks/started;
    }
--- config
--- must_die
--- error_log
invalid value "/hooks/started" in "on_started_leading" directive, it must be an http:// or https:// URL



=== TEST 23: ${VAR} in identity, address and lock comes from the master's environment
--- http_config
    leader_election web {
        lock            leases ${KLE_T_NAMESPACE}/web-${KLE_T_POD_NAME};
        identity        ${KLE_T_POD_NAME};
        address         ${KLE_T_POD_IP}:8080;
        lease_duration  10s;
        renew_deadline  8s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_identity $leader_election_holder $leader_election_holder_address\n";
    }
--- init
wait_until(10, sub { my $s = nginx_status(); $s && $s->{is_leader} });
my $o = get_object('leases', 'kle-ns', 'web-pod-7');
is($o->{spec}{holderIdentity}, 'pod-7', 'Lease holderIdentity');
is($o->{metadata}{annotations}{'leader-election.nginx.org/address'},
   '127.0.0.9:8080', 'Lease address annotation');
is($o->{spec}{leaseDurationSeconds}, 10, 'Lease leaseDurationSeconds');
is(get_object('leases', 'default', 'web-pod-7'), undef,
   'nothing in the default namespace');
--- request eval
["GET /vars", "GET /leader"]
--- response_body_filters eval
[[], [\&Kle::Status::canon_status]]
--- response_body eval
["1 pod-7 pod-7 127.0.0.9:8080\n",
Kle::Status::canon_json({
    name => "pod-7", election => "web", identity => "pod-7",
    is_leader => \1, holder => "pod-7", holder_address => "127.0.0.9:8080",
    transitions => 0,
    lock => { kind => "leases", namespace => "kle-ns", name => "web-pod-7" },
    lease_duration => 10, renew_deadline => 8, retry_period => 1,
    acquire_time => "<MicroTime>", renew_time => "<MicroTime>",
    state => "leading", elector_pid => "<pid>", last_error => undef,
    api => { requests => "<n>", failures => 0 },
    heartbeat_age_ms => "<age>", identity_conflict => \0,
})]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 24: defaults: identity is the host name, 15s/10s/2s, no address
--- http_config
    leader_election web {
        lock        leases default/defaults;
        api_server  kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_identity [$leader_election_holder_address]\n";
    }
--- init
wait_until(10, sub { my $s = nginx_status(); $s && $s->{is_leader} });
my $o = get_object('leases', 'default', 'defaults');
is($o->{spec}{holderIdentity}, $main::Host, 'holderIdentity is the host name');
is($o->{spec}{leaseDurationSeconds}, 15, 'leaseDurationSeconds 15');
is_deeply([keys %{ $o->{metadata}{annotations} // {} }],
          ['leader-election.nginx.org/instance'], 'no annotation but the instance nonce');
--- request eval
["GET /vars", "GET /leader"]
--- response_body_filters eval
[[], [\&Kle::Status::canon_status]]
--- response_body eval
["1 $main::Host []\n",
Kle::Status::canon_json({
    name => $main::Host, election => "web", identity => $main::Host,
    is_leader => \1, holder => $main::Host, holder_address => "",
    transitions => 0,
    lock => { kind => "leases", namespace => "default", name => "defaults" },
    lease_duration => 15, renew_deadline => 10, retry_period => 2,
    acquire_time => "<MicroTime>", renew_time => "<MicroTime>",
    state => "leading", elector_pid => "<pid>", last_error => undef,
    api => { requests => "<n>", failures => 0 },
    heartbeat_age_ms => "<age>", identity_conflict => \0,
})]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 25: api_server URL with token_file and ca_file
--- http_config
    leader_election web {
        lock            leases default/direct;
        identity        direct-1;
        lease_duration  10s;
        renew_deadline  8s;
        retry_period    1s;
        api_server      $TEST_NGINX_API_URL;
        token_file      $TEST_NGINX_API_TOKEN_FILE;
        ca_file         $TEST_NGINX_API_CA;
    }
--- config
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
# a renew, so that GET, POST and PUT have all been made
wait_until(10, sub { @{ requests(method => 'PUT', path => '/leases/direct') } });
my %users = map { $_->{user} => 1 } @{ requests(path => '/leases/direct') };
is_deeply([sort keys %users], ['system:serviceaccount:default:default'],
          'every request authenticated by the token');
--- request
GET /vars
--- response_body
1 direct-1
--- no_error_log
[error]
[alert]
[crit]



=== TEST 26: kubeconfig with a context: client certificate authentication
--- http_config
    leader_election web {
        lock            leases default/cert;
        identity        cert-1;
        lease_duration  10s;
        renew_deadline  8s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG kle-emulator-cert;
    }
--- config
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
wait_until(10, sub { @{ requests(method => 'PUT', path => '/leases/cert') } });
my %users = map { $_->{user} => 1 } @{ requests(path => '/leases/cert') };
is_deeply([sort keys %users], ['kle-client'],
          'every request authenticated by the client certificate');
--- request
GET /vars
--- response_body
1 cert-1
--- no_error_log
[error]
[alert]
[crit]
