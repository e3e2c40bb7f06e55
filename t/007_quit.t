# Graceful shutdown under a master (SIGQUIT, "nginx -s quit", SIGTERM) with
# release_on_shutdown on: the Lease holds client-go's release record
# (holderIdentity "", leaseDurationSeconds 1, transitions kept) as soon as
# nginx has exited.  With release_on_shutdown off it still names the
# instance.  Each block stops Test::Nginx's nginx in its init, checks the
# Lease, and starts it again for the block's request.

use Kle::Emulator;
use Kle::Status;
use Kle::Harness qw(quit_test_nginx);
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');
master_on();
workers(2);

$ENV{KLE_Q_ID} = 'q1';

# A ConfigMap lock with what a release must keep; its record says two
# transitions so far.
put_object('configmaps', 'default', 'quit-cm', {
    apiVersion => 'v1', kind => 'ConfigMap',
    metadata => {
        name => 'quit-cm', namespace => 'default', labels => { app => 'q' },
        annotations => {
            team => 'web',
            'control-plane.alpha.kubernetes.io/leader' =>
                '{"holderIdentity":"","leaseDurationSeconds":1,'
                . '"acquireTime":"2026-01-01T00:00:00Z",'
                . '"renewTime":"2026-01-01T00:00:00Z","leaderTransitions":1}',
        },
    },
    data => { keep => 'me' },
});

# Stops nginx with $how (a signal name, or 'nginx -s quit'); returns
# (seconds until the master was gone, the Lease right then).
sub stop_nginx_by {
    my ($how) = @_;
    my $pid = Test::Nginx::Util::get_pid_from_pidfile('');
    my $t0 = time;
    if ($how eq 'nginx -s quit') {
        # the signaller runs without the master's environment
        local $ENV{KLE_Q_ID};
        delete $ENV{KLE_Q_ID};
        my $out = `nginx -p $ENV{TEST_NGINX_SERVER_ROOT}/ -c $ENV{TEST_NGINX_SERVER_ROOT}/conf/nginx.conf -s quit 2>&1`;
        Test::More::is($?, 0, 'nginx -s quit succeeded') or Test::More::diag($out);
    } else {
        kill $how, $pid;
    }
    wait_until(10, sub { !kill 0, $pid });
    my $t = time - $t0;
    return ($t, get_object('leases', 'default', 'quit'));
}

sub restart { Kle::Harness::start_test_nginx() }

plan tests => 55;

run_tests();

__DATA__

=== TEST 1: SIGQUIT releases the lock before nginx exits
--- http_config
    leader_election web {
        lock            leases default/quit;
        identity        ${KLE_Q_ID};
        address         127.0.0.1:$TEST_NGINX_SERVER_PORT;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder $leader_election_transitions\n";
    }
--- init
wait_until(5, sub { (nginx_var('/vars') // '') eq "1 q1 0\n" });
my $acquired = lease_spec('default', 'quit');
my ($t, $o) = main::stop_nginx_by('QUIT');
ok($t < 3, "nginx exited $t s after SIGQUIT");
is(Kle::Status::canon_lease($o), Kle::Status::canon_json({
    kind => 'Lease',
    metadata => { name => 'quit', namespace => 'default',
                  annotations => { 'leader-election.nginx.org/instance' => '<instance>' } },
    spec => { holderIdentity => '', leaseDurationSeconds => 1,
              acquireTime => '<MicroTime>', renewTime => '<MicroTime>',
              leaseTransitions => 0 },
}), 'the release record');
is($o->{spec}{acquireTime}, $o->{spec}{renewTime}, 'acquireTime = renewTime (now)');
ok($o->{spec}{renewTime} gt $acquired->{renewTime}, 'written at shutdown');
main::restart();
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^1 / });
--- request
GET /vars
--- response_body
1 q1 1
--- error_log
leader_election "web": stopped leading
--- no_error_log
the lock was not released
[error]
[alert]
[crit]



=== TEST 2: nginx -s quit (the signaller lacks the master's environment)
--- init
my ($t, $o) = main::stop_nginx_by('nginx -s quit');
ok($t < 3, "nginx exited $t s after nginx -s quit");
is($o->{spec}{holderIdentity}, '', 'released: holderIdentity ""');
is($o->{spec}{leaseDurationSeconds}, 1, 'released: leaseDurationSeconds 1');
is($o->{spec}{leaseTransitions}, 1, 'transitions kept');
main::restart();
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^1 / });
--- request
GET /vars
--- response_body
1 q1 2
--- no_error_log
the lock was not released
[error]
[alert]
[crit]



=== TEST 3: SIGTERM releases too
--- init
my ($t, $o) = main::stop_nginx_by('TERM');
ok($t < 3, "nginx exited $t s after SIGTERM");
is($o->{spec}{holderIdentity}, '', 'released: holderIdentity ""');
is($o->{spec}{leaseDurationSeconds}, 1, 'released: leaseDurationSeconds 1');
is($o->{spec}{leaseTransitions}, 2, 'transitions kept');
main::restart();
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^1 / });
--- request
GET /vars
--- response_body
1 q1 3
--- no_error_log
the lock was not released
[error]
[alert]
[crit]



=== TEST 4: release_on_shutdown off: the Lease still names the identity; restarted, nginx is a new instance and waits for the lease
--- http_config
    leader_election web {
        lock                 leases default/quit;
        identity             ${KLE_Q_ID};
        lease_duration       3s;
        renew_deadline       2s;
        retry_period         1s;
        api_server           kubeconfig $TEST_NGINX_KUBECONFIG;
        release_on_shutdown  off;
    }
--- config
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder $leader_election_transitions\n";
    }
--- init
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^1 / });
my $since = last_seq();
my ($t, $o) = main::stop_nginx_by('QUIT');
ok($t < 3, "nginx exited $t s after SIGQUIT");
is($o->{spec}{holderIdentity}, 'q1', 'still held by q1');
is($o->{spec}{leaseDurationSeconds}, 3, 'leaseDurationSeconds 3');
my @rel = grep { $_->{body}{spec}{holderIdentity} ne 'q1' }
          @{ requests(since => $since, method => 'PUT') };
is(scalar @rel, 0, 'no release written');
my $t0 = time;
main::restart();
wait_until(8, sub { (nginx_var('/vars') // '') =~ /^1 / });
my $took = time - $t0;
# its own identity, another instance's nonce: not resumed, taken once the
# lease (3 s from the first read) expires, in a new term
ok($took >= 2.5 && $took < 7, sprintf('led again %.2f s after the restart', $took));
--- request
GET /vars
--- response_body
1 q1 5
--- error_log
but another instance wrote it
--- no_error_log
stopped leading
identity conflict
[error]
[alert]
[crit]



=== TEST 5: a ConfigMap lock: client-go's release record in the annotation, the rest kept
--- http_config
    leader_election web {
        lock            configmaps default/quit-cm;
        identity        ${KLE_Q_ID};
        address         127.0.0.1:$TEST_NGINX_SERVER_PORT;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder $leader_election_transitions\n";
    }
--- init
wait_until(5, sub { (nginx_var('/vars') // '') eq "1 q1 2\n" });
my $held = get_object('configmaps', 'default', 'quit-cm');
quit_test_nginx(10);
my $o = get_object('configmaps', 'default', 'quit-cm');
my $rec = json_decode($o->{metadata}{annotations}{'control-plane.alpha.kubernetes.io/leader'} // '');
my $held_rec = json_decode($held->{metadata}{annotations}{'control-plane.alpha.kubernetes.io/leader'} // '');
is(join(' ', map { $_ // 'null' } @{ $rec // {} }{qw(holderIdentity leaseDurationSeconds leaderTransitions)}),
   ' 1 2', 'released: holderIdentity "", leaseDurationSeconds 1, leaderTransitions kept');
ok($rec && $rec->{acquireTime} eq $rec->{renewTime}
       && $rec->{renewTime} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/
       && $rec->{renewTime} ge $held_rec->{renewTime},
   "acquireTime = renewTime = the release's time ($rec->{renewTime})");
is($o->{metadata}{annotations}{team}, 'web', 'another annotation kept');
is_deeply([$o->{metadata}{labels}, $o->{data}], [{ app => 'q' }, { keep => 'me' }],
          'labels and data kept');
main::restart();
wait_until(5, sub { (nginx_var('/vars') // '') =~ /^1 / });
--- request
GET /vars
--- response_body
1 q1 3
--- no_error_log
the lock was not released
[error]
[alert]
[crit]
