# stream{}: the $leader_election_* variables for elections defined in
# http{}, read from the same shared state with the same values as http's.
# TCP routed on "map $leader_election_route $upstream": the leader to
# its local backend, a follower to the holder's advertised address; the
# _NAME forms; the fencing token; routing that follows a step down.

use Kle::Emulator;
use Kle::Stream;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

if (my $why = Kle::Stream::missing()) {
    plan skip_all => $why;
}

our $Remote = "127.0.0.1:$ENV{TEST_NGINX_EXTRA_PORT_2}";

# s1: free, taken as the 7th transition; s2: x's for an hour, x
# advertising the "remote" backend; s3 free (5th), s4: y's, no address;
# s5: free, then taken by x; s6: free, then the API stalls.
put_lease('s1', holder => '', secs => 1, transitions => 6, annotations => {});
put_lease('s2', holder => 'x', secs => 3600, transitions => 2,
          address => $Remote);
put_lease('s3', holder => '', secs => 1, transitions => 4, annotations => {});
put_lease('s4', holder => 'y', secs => 3600, transitions => 1,
          annotations => {});
put_lease('s5', holder => '', secs => 1, transitions => 0, annotations => {});
put_lease('s6', holder => '', secs => 1, transitions => 0, annotations => {});

sub election {
    my ($name, $lock) = @_;
    return <<"_EOC_";
    leader_election $name {
        lock            leases default/$lock;
        identity        i1;
        address         127.0.0.1:$ENV{TEST_NGINX_EXTRA_PORT_1};
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    500ms;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_
}

# The routing docs/stream.md shows, on $leader_election_route: the leader
# to its local backend (which says its token), a follower to the holder's
# address; nowhere (a server that says so) when no leader is known, when
# the holder advertised no address, or when the holder is this instance
# but its claim has lapsed (its own address would loop back here).
our $Backends = <<'_EOC_';
    map $leader_election_route $upstream {
        self     127.0.0.1:$TEST_NGINX_EXTRA_PORT_1;
        ""       127.0.0.1:$TEST_NGINX_EXTRA_PORT_3;
        default  $leader_election_route;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_1;
        return "local token=$leader_election_fencing_token\n";
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_2;
        return "remote x\n";
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_3;
        return "no leader\n";
    }
_EOC_

sub via { stream_get(stream_port()) // '' }

plan tests => 37;

run_tests();

__DATA__

=== TEST 1: the leader routes to its local backend, whose token is its term
--- http_config eval
main::election('a', 's1')
--- config
    location = /t { return 200 "$leader_election_is_leader\n"; }
--- stream_config eval
$main::Backends
--- stream_server_config
    proxy_pass $upstream;
--- init
wait_until(5, sub { via() eq "local token=7\n" });
--- stream_response
local token=7
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: a follower routes to the address the holder advertised
--- http_config eval
main::election('a', 's2')
--- config
    location = /t { return 200 "$leader_election_holder_address\n"; }
--- stream_config eval
$main::Backends
--- stream_server_config
    proxy_pass $upstream;
--- init
wait_until(5, sub { via() eq "remote x\n" });
is(nginx_var('/t'), "$main::Remote\n", 'http shows the same address');
--- stream_response
remote x
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: every variable and its _NAME forms, as http shows them
--- http_config eval
main::election('a', 's3') . main::election('b', 's4')
--- config
    location = /vars {
        return 200 "[$leader_election_is_leader $leader_election_holder $leader_election_identity $leader_election_transitions $leader_election_fencing_token $leader_election_route] a=$leader_election_is_leader_a:$leader_election_holder_a:$leader_election_holder_address_a:$leader_election_identity_a:$leader_election_transitions_a:[$leader_election_fencing_token_a]:$leader_election_route_a b=$leader_election_is_leader_b:$leader_election_holder_b:[$leader_election_holder_address_b]:$leader_election_identity_b:$leader_election_transitions_b:[$leader_election_fencing_token_b]:[$leader_election_route_b]\n";
    }
--- stream_server_config
    return "[$leader_election_is_leader $leader_election_holder $leader_election_identity $leader_election_transitions $leader_election_fencing_token $leader_election_route] a=$leader_election_is_leader_a:$leader_election_holder_a:$leader_election_holder_address_a:$leader_election_identity_a:$leader_election_transitions_a:[$leader_election_fencing_token_a]:$leader_election_route_a b=$leader_election_is_leader_b:$leader_election_holder_b:[$leader_election_holder_address_b]:$leader_election_identity_b:$leader_election_transitions_b:[$leader_election_fencing_token_b]:[$leader_election_route_b]\n";
--- init
wait_until(5, sub { via() =~ /^\[1 / && via() =~ /b=0:y:/ });
is(via(), nginx_var('/vars'), 'stream and http say the same');
--- stream_response eval
"[1 i1 i1 5 5 self] a=1:i1:127.0.0.1:$ENV{TEST_NGINX_EXTRA_PORT_1}:i1:5:[5]:self b=0:y:[]:i1:1:[]:[]\n"
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: routing follows a step down: x takes the lock, and its address
--- http_config eval
main::election('a', 's5')
--- config
    location = /t { return 200 "$leader_election_is_leader\n"; }
--- stream_config eval
$main::Backends
--- stream_server_config
    proxy_pass $upstream;
--- init
wait_until(5, sub { via() eq "local token=1\n" });
my $o = get_object('leases', 'default', 's5');
put_lease('s5', holder => 'x', secs => 3600,
          transitions => $o->{spec}{leaseTransitions} + 1,
          address => $main::Remote);
ok(wait_until(5, sub { via() eq "remote x\n" }), 'routed to x');
is(stream_get($ENV{TEST_NGINX_EXTRA_PORT_1}), "local token=\n",
   'no token once not leader');
is(nginx_var('/t'), "0\n", 'http agrees');
--- stream_response
remote x
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: this instance holds the lock but its claim lapsed: nowhere, not itself
--- http_config eval
main::election('a', 's6')
--- config
    location = /t { return 200 "$leader_election_is_leader $leader_election_holder\n"; }
--- stream_config eval
$main::Backends
--- stream_server_config
    proxy_pass $upstream;
--- init
wait_until(5, sub { via() eq "local token=1\n" });
add_fault(kind => 'stall', path => '/leases/s6');
ok(wait_until(5, sub { via() eq "no leader\n" }), 'not routed once the claim lapsed');
is(nginx_var('/t'), "0 i1\n", 'still the holder, not the leader');
--- stream_response
no leader
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: a holder that advertised no address: nowhere
--- http_config eval
main::election('b', 's4')
--- config
    location = /t { return 200 "$leader_election_holder\n"; }
--- stream_config eval
$main::Backends
--- stream_server_config
    proxy_pass $upstream;
--- init
clear_faults();
wait_until(5, sub { nginx_var('/t') eq "y\n" });
--- stream_response
no leader
--- no_error_log
[error]
[alert]
[crit]
