# leader_election_healthz under client-go's rule: a leader is unhealthy
# once its last successful renew began more than lease_duration + 20 s ago
# (client-go's maxTolerableExpiredLease): by then the others have taken
# over, and a process that still believes it leads must be restarted.  The
# elector worker is paused (SIGSTOP) so that the shared state keeps saying
# "leading" while no renew happens; its sibling answers.  Before that the
# elector-heartbeat rule (no tick for 10 s) already answers 503, with its
# own reason; followers are healthy.

use Kle::Emulator;
use Kle::Status qw(workers_of);
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');
master_on();
workers(2);

# GET $path until a worker that is not $stopped answers (the paused one
# holds the connections it accepts): (code, body).
sub ask {
    my ($path) = @_;
    for (1 .. 20) {
        my ($code, $body) = nginx_get($path, undef, 0.4);
        return ($code, $body) if $code != 599;
    }
    return (599, 'no answer');
}

plan tests => 12;

run_tests();

__DATA__

=== TEST 1: a paused leader: 503 for the heartbeat after 10 s, for the lease after lease_duration + 20 s
--- http_config
    leader_election web {
        lock            leases default/healthz;
        identity        hz;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /healthz {
        leader_election_healthz;
    }
--- init
wait_until(5, sub { my $s = nginx_status(); $s && $s->{is_leader} });
my ($c0, $b0) = ask('/healthz');
is("$c0 $b0", '200 ok', 'the leader is healthy');
my $e = nginx_status()->{elector_pid};
ok((grep { $_ == $e } workers_of()), "the elector $e is a worker");
kill 'STOP', $e;
my $t0 = time;
my (@early, $heartbeat, $lease, $lease_at);
while (time - $t0 < 27) {
    my ($code, $body) = ask('/healthz');
    my $at = time - $t0;
    if ($body =~ /leading, but the lease was last renewed (\d+) ms ago$/) {
        ($lease, $lease_at) = ($1, $at);
        last;
    }
    push @early, sprintf('%.1f s: %s %s', $at, $code, $body)
        if $at < 9 && $code != 200;
    $heartbeat //= $at if $code == 503 && $body =~ /the elector \(pid $e\) last ran/;
    sleep 0.2;
}
kill 'CONT', $e;
is(join("\n", @early), '', 'healthy for the first 9 s of the pause');
# the elector last ran up to a retry period (1 s) before it was stopped
ok(defined $heartbeat && $heartbeat >= 9,
   sprintf('then 503: the elector has not run (from %.1f s)', $heartbeat // -1));
ok(defined $lease_at && $lease_at >= 22.5,
   sprintf("client-go's rule once lease_duration + 20 s passed (at %.1f s)", $lease_at // -1));
ok(defined $lease && $lease >= 23000 && $lease < 30000,
   'the reason names the age of the last renew (' . ($lease // 'none') . ' ms)');
my $back = wait_until(6, sub { my ($c, $b) = ask('/healthz'); "$c $b" eq '200 ok' });
ok($back, 'healthy again once the elector runs');
wait_until(6, sub { my $s = nginx_status(); $s && $s->{is_leader} });
--- request
GET /leader
--- response_body_filters eval
sub { my $s = Kle::Emulator::json_decode($_[0]); "$s->{holder} $s->{state}" }
--- response_body chomp
hz leading
--- no_error_log
[error]
[alert]
[crit]
