# The elector runs in worker 0 under a master with two workers.  kill -9 of
# that worker: the master respawns it and the new one resumes the same
# lease (holder and leaseTransitions unchanged) under a new elector_pid.
# A paused elector (SIGSTOP) cannot leave its sibling claiming leadership:
# is_leader turns 0 there once renew_deadline has passed, and healthz
# answers 503 once the elector has not run for 10 s.

use Kle::Emulator;
use Kle::Status qw(:DEFAULT workers_of);
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');
master_on();
workers(2);

# T3's log check covers the whole log: the one death is T2's kill -9, so
# the paused worker did not die.
plan tests => 32;

run_tests();

__DATA__

=== TEST 1: the elector is one of the two workers
--- http_config
    leader_election web {
        lock            leases default/kill;
        identity        k1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder $leader_election_transitions\n";
    }
    location = /healthz {
        leader_election_healthz;
    }
    location = /pid {
        return 200 "$pid $leader_election_is_leader\n";
    }
--- init
wait_until(5, sub { my $s = nginx_status(); $s && $s->{is_leader} });
my @w = workers_of();
is(scalar @w, 2, 'two workers');
my $e = nginx_status()->{elector_pid};
ok((grep { $_ == $e } @w), "elector_pid $e is one of the workers (@w)");
--- request
GET /vars
--- response_body
1 k1 0
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: kill -9 of the elector worker: respawned, resumes the same lease
--- init
my $before = get_object('leases', 'default', 'kill');
my $old = nginx_status()->{elector_pid};
my $since = requests()->[-1]{seq};
kill 'KILL', $old;
my $bad = '';
my $s = wait_until(6, sub {
    my ($code, $body) = nginx_get('/vars', undef, 1);
    $bad .= "[$code $body]" if $body ne "1 k1 0\n";
    my $s = nginx_status();
    $s && $s->{elector_pid} && $s->{elector_pid} != $old
       && @{ requests(since => $since, method => 'PUT') } >= 2 && $s;
});
ok($s, 'a new elector renewed twice');
isnt($s->{elector_pid}, $old, "elector_pid changed ($old -> $s->{elector_pid})");
ok((grep { $_ == $s->{elector_pid} } workers_of()), 'the new elector is a worker of the master');
is($bad, '', 'is_leader stayed 1 in every answer meanwhile');
my $after = get_object('leases', 'default', 'kill');
is($after->{spec}{holderIdentity}, 'k1', 'holder unchanged');
is($after->{spec}{leaseTransitions}, $before->{spec}{leaseTransitions}, 'leaseTransitions unchanged');
is($after->{spec}{acquireTime}, $before->{spec}{acquireTime}, 'acquireTime unchanged');
my @odd = grep { $_->{code} != 200 || $_->{body}{spec}{holderIdentity} ne 'k1' }
          @{ requests(since => $since, method => 'PUT') };
is(scalar @odd, 0, 'every write since was a successful renew by k1');
is(scalar @{ requests(since => $since, method => 'POST') }, 0, 'no create');
--- request
GET /vars
--- response_body
1 k1 0
--- error_log eval
qr/\[alert\] \d+#\d+: worker process \d+ exited on signal 9/
--- no_error_log
[error]
[crit]



=== TEST 3: a paused elector: its sibling says is_leader 0 after renew_deadline, healthz 503 after 10 s
--- init
my $e = nginx_status()->{elector_pid};
my ($other) = grep { $_ != $e } workers_of();
kill 'STOP', $e;
my $t0 = time;
# ask until the running worker answers 0 (requests the stopped worker
# would take time out and are retried)
my $flip;
while (time - $t0 < 5) {
    my ($code, $body) = nginx_get('/pid', undef, 0.5);
    if ($code == 200 && $body eq "$other 0\n") {
        $flip = time - $t0;
        last;
    }
    sleep 0.05;
}
ok(defined $flip && $flip <= 2.3,
   'the sibling stopped claiming within renew_deadline (' . ($flip // 'never') . ' s)');
# healthz from the sibling: 503 once the elector has not run for
# max(3 * retry_period, 10 s)
my ($hcode, $hbody, $hat);
while (time - $t0 < 13) {
    my ($code, $body) = nginx_get('/healthz', undef, 0.5);
    if ($code == 503) {
        ($hcode, $hbody, $hat) = ($code, $body, time - $t0);
        last;
    }
    sleep 0.1;
}
is($hcode, 503, 'healthz 503 while the elector is stopped');
like($hbody // '', qr/^leader_election "web": the elector \(pid $e\) last ran (\d+) ms ago$/,
     'healthz says why');
# the last heartbeat before the stop may be up to retry_period (1 s) old
ok(defined $hat && $hat >= 8.9,
   sprintf('not before 10 s after its last heartbeat (%.1f s after the stop)',
           $hat // -1));
kill 'CONT', $e;
wait_until(4, sub { my ($c, $b) = nginx_get('/vars', undef, 1); $b eq "1 k1 0\n" });
my ($c2, $b2) = nginx_get('/healthz');
is("$c2 $b2", '200 ok', 'healthy again');
is(lease_spec('default', 'kill')->{leaseTransitions}, 0, 'no transition after resuming');
--- request
GET /vars
--- response_body
1 k1 0
--- grep_error_log eval: qr/exited on signal \d+/
--- grep_error_log_out
exited on signal 9
--- no_error_log
[error]
[crit]
