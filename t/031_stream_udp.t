# stream{} over UDP: the variables answer in datagrams, and datagrams are
# routed on the election as TCP is (the leader to its local backend, a
# follower to the holder's address), under a master with two workers
# that both read the shared state.  Then a reload: the new configuration's
# stream variables read the same claim, with no gap.

use Kle::Emulator;
use Kle::Stream;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');
master_on();
workers(2);

if (my $why = Kle::Stream::missing()) {
    plan skip_all => $why;
}

our ($P1, $P2, $P4, $P5, $P6) =
    map { $ENV{"TEST_NGINX_EXTRA_PORT_$_"} } 1, 2, 4, 5, 6;

# u1: free, taken as the 3rd transition; u2: x's for an hour, advertising
# the "remote" UDP backend.
put_lease('u1', holder => '', secs => 1, transitions => 2, annotations => {});
put_lease('u2', holder => 'x', secs => 3600, transitions => 5,
          address => "127.0.0.1:$P2");

our $HttpConfig = <<"_EOC_";
    leader_election a {
        lock            leases default/u1;
        identity        i1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    500ms;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
    leader_election b {
        lock            leases default/u2;
        identity        i1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    500ms;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_

our $StreamConfig = <<'_EOC_';
    map $leader_election_is_leader_a $up_a {
        1        127.0.0.1:$TEST_NGINX_EXTRA_PORT_1;
        default  $leader_election_holder_address_a;
    }

    map $leader_election_is_leader_b $up_b {
        1        127.0.0.1:$TEST_NGINX_EXTRA_PORT_1;
        default  $leader_election_holder_address_b;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_4 udp;
        return "a=$leader_election_is_leader_a:$leader_election_fencing_token_a b=$leader_election_is_leader_b:$leader_election_holder_b:$leader_election_transitions_b\n";
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_5 udp;
        proxy_pass $up_a;
        proxy_responses 1;
        proxy_timeout 2s;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_6 udp;
        proxy_pass $up_b;
        proxy_responses 1;
        proxy_timeout 2s;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_1 udp;
        return "local udp\n";
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_2 udp;
        return "remote x udp\n";
    }
_EOC_

sub udp { udp_get($_[0], "ping\n") // 'no answer' }

plan tests => 16;

run_tests();

__DATA__

=== TEST 1: datagrams: the variables, the leader's own backend, the holder's address
--- http_config eval
$main::HttpConfig
--- config
    location = /t { return 200 "$leader_election_is_leader_a\n"; }
--- stream_config eval
$main::StreamConfig
--- stream_server_config
    return "$leader_election_is_leader_a $leader_election_is_leader_b\n";
--- init
wait_until(5, sub { udp($main::P4) eq "a=1:3 b=0:x:5\n" });
# each datagram may land in either worker: ask several times
my %seen;
$seen{ udp($main::P4) }++ for 1 .. 10;
is(join('|', sort keys %seen), "a=1:3 b=0:x:5\n", 'the variables, in every worker');
is(udp($main::P5), "local udp\n", 'the leader sends to its local backend');
is(udp($main::P6), "remote x udp\n", 'a follower sends to the holder\'s address');
--- stream_response
1 0
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: a reload: stream{} of the new configuration reads the same claim, with no gap
--- init
my $master = Test::Nginx::Util::get_pid_from_pidfile('');
my $workers = `pgrep -P $master | sort`;
kill 'HUP', $master;
my ($bad, $n) = ('', 0);
my $deadline = time + 6;
while (time < $deadline) {
    my $got = udp($main::P4);
    $n++;
    $bad .= "[$got]" if $got ne "a=1:3 b=0:x:5\n";
    last if `pgrep -P $master | sort` ne $workers && $n > 20;
    sleep 0.05;
}
is($bad, '', "every answer during the reload said leader with token 3 ($n)");
isnt(`pgrep -P $master | sort`, $workers, 'new workers');
is(lease_spec('default', 'u1')->{leaseTransitions}, 3, 'no new transition');
--- stream_response
1 0
--- no_error_log
[error]
[alert]
[crit]
