# One instance on a free lock becomes the leader: the variables, the status
# page (JSON and Prometheus), healthz and the Lease the emulator holds all
# say so.  Then an instance that finds the lock held by someone else
# follows and shows the holder.  Every block starts its own nginx and the
# timings leave room for valgrind (TEST_NGINX_USE_VALGRIND).

use Kle::Emulator;
use Kle::Status;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

# Held by "other" for an hour, renewed just now: the instance must follow.
put_object('leases', 'default', 'held', {
    apiVersion => 'coordination.k8s.io/v1', kind => 'Lease',
    metadata => {
        name => 'held', namespace => 'default',
        annotations => { 'leader-election.nginx.org/address' => '10.1.2.3:8080',
                         'leader-election.nginx.org/address-holder' => 'other' },
    },
    spec => {
        holderIdentity => 'other', leaseDurationSeconds => 3600,
        acquireTime => '2026-01-01T00:00:00.000000Z',
        renewTime => '2026-01-01T00:00:00.000000Z',
        leaseTransitions => 4,
    },
});

# Free (released by "gone"); this instance may not update them.  The
# second still carries the address "gone" advertised.
for my $name ('free', 'free-addr') {
    put_object('leases', 'default', $name, {
        apiVersion => 'coordination.k8s.io/v1', kind => 'Lease',
        metadata => {
            name => $name, namespace => 'default',
            $name eq 'free' ? () : (annotations => {
                'leader-election.nginx.org/address' => '10.1.2.4:8080',
                'leader-election.nginx.org/address-holder' => 'gone' }),
        },
        spec => {
            holderIdentity => '', leaseDurationSeconds => 1,
            acquireTime => '2026-01-01T00:00:00.000000Z',
            renewTime => '2026-01-01T00:00:00.000000Z',
            leaseTransitions => 3,
        },
    });
    forbid(resource => 'leases', name => $name, verbs => ['update']);
}

our %Solo = (
    name => "solo", election => "web", identity => "solo",
    is_leader => \1, holder => "solo", holder_address => "127.0.0.1:8081",
    transitions => 0,
    lock => { kind => "leases", namespace => "default", name => "solo" },
    lease_duration => 10, renew_deadline => 8, retry_period => 1,
    acquire_time => "<MicroTime>", renew_time => "<MicroTime>",
    state => "leading", elector_pid => "<pid>", last_error => undef,
    api => { requests => "<n>", failures => 0 },
    heartbeat_age_ms => "<age>", identity_conflict => \0,
);

plan tests => 100;

run_tests();

__DATA__

=== TEST 1: the leader: variables, status page, Prometheus, healthz
--- http_config
    leader_election web {
        lock            leases default/solo;
        identity        solo;
        address         127.0.0.1:8081;
        lease_duration  10s;
        renew_deadline  8s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /leader/healthz {
        leader_election_healthz;
    }
    location = /vars {
        return 200 "is_leader=$leader_election_is_leader holder=$leader_election_holder identity=$leader_election_identity transitions=$leader_election_transitions holder_address=$leader_election_holder_address\n";
    }
--- init
wait_until(10, sub { my $s = nginx_status(); $s && $s->{is_leader} });
is_deeply(log_lines(qr/leader_election "web": .*/),
          ['leader_election "web": leader is now "solo" (transitions 0)',
           'leader_election "web": started leading (transitions 0)'],
          'what the module logged');
--- request eval
["GET /vars", "GET /leader", "GET /leader?format=prometheus", "GET /leader/healthz"]
--- response_headers eval
["Content-Type: text/plain", "Content-Type: application/json",
 "Content-Type: text/plain; version=0.0.4", "Content-Type: text/plain"]
--- response_body_filters eval
[[], [\&Kle::Status::canon_status], [\&Kle::Status::canon_prometheus], []]
--- response_body eval
["is_leader=1 holder=solo identity=solo transitions=0 holder_address=127.0.0.1:8081\n",
Kle::Status::canon_json(\%main::Solo),
'# HELP leader_election_master_status 1 if this instance leads the election, else 0.
# TYPE leader_election_master_status gauge
leader_election_master_status{name="web"} 1
# HELP leader_election_transitions Leader changes of the lock, as last observed.
# TYPE leader_election_transitions gauge
leader_election_transitions{name="web"} 0
# HELP leader_election_api_requests_total API server requests made by the elector.
# TYPE leader_election_api_requests_total counter
leader_election_api_requests_total{name="web"} <n>
# HELP leader_election_api_failures_total API server requests that failed.
# TYPE leader_election_api_failures_total counter
leader_election_api_failures_total{name="web"} 0
# HELP leader_election_identity_conflict 1 while another instance holds the lock in this instance\'s identity.
# TYPE leader_election_identity_conflict gauge
leader_election_identity_conflict{name="web"} 0
',
"ok"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: the Lease, as client-go writes it, agrees with the status page; renews
--- http_config
    leader_election web {
        lock            leases default/solo2;
        identity        solo;
        address         127.0.0.1:8081;
        lease_duration  10s;
        renew_deadline  8s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
--- init
wait_until(10, sub { my $s = nginx_status(); $s && $s->{is_leader} });
my $first = lease_spec('default', 'solo2');
# two renews
wait_until(10, sub { @{ requests(method => 'PUT', path => '/leases/solo2') } >= 2 });
my $s = nginx_status();
my $o = get_object('leases', 'default', 'solo2');
# interface.md: the writer of the address names itself beside it
is($o->{metadata}{annotations}{'leader-election.nginx.org/address-holder'},
   'solo', 'the address-holder annotation names the holder');
is(Kle::Status::canon_lease($o), Kle::Status::canon_json({
    kind => 'Lease',
    metadata => { name => 'solo2', namespace => 'default',
                  annotations => { 'leader-election.nginx.org/instance' => '<instance>',
                                   'leader-election.nginx.org/address' => '127.0.0.1:8081',
                                   'leader-election.nginx.org/address-holder' => 'solo' } },
    spec => { holderIdentity => 'solo', leaseDurationSeconds => 10,
              acquireTime => '<MicroTime>', renewTime => '<MicroTime>',
              leaseTransitions => 0 },
}), 'the Lease');
is($o->{apiVersion}, 'coordination.k8s.io/v1', 'apiVersion');
is($s->{acquire_time}, $o->{spec}{acquireTime}, 'status acquire_time is the Lease acquireTime');
ok($s->{renew_time} ge $s->{acquire_time} && $s->{renew_time} le $o->{spec}{renewTime},
   "status renew_time $s->{renew_time} within [acquireTime, Lease renewTime $o->{spec}{renewTime}]");
is($o->{spec}{acquireTime}, $first->{acquireTime}, 'renews keep acquireTime');
ok($o->{spec}{renewTime} gt $first->{renewTime}, 'renews move renewTime');

# Every write: MicroTimes with 6 digits, a number for the duration; every
# update carries the resourceVersion it read (the emulator answers 409 on
# a stale one, 422 on none).
my $posts = [ grep { $_->{body}{metadata}{name} eq 'solo2' }
              @{ requests(method => 'POST', path => '/namespaces/default/leases') } ];
is(scalar @$posts, 1, 'one create');
is($posts->[0]{code}, 201, 'the create succeeded');
my $puts = requests(method => 'PUT', path => '/leases/solo2');
my @bad = grep { $_->{code} != 200 } @$puts;
is(scalar @bad, 0, 'every renew answered 200');
my @norv = grep { !$_->{body}{metadata}{resourceVersion} } @$puts;
is(scalar @norv, 0, 'every renew carries a resourceVersion');
my @badtime = grep {
    !is_microtime($_->{body}{spec}{acquireTime})
    || !is_microtime($_->{body}{spec}{renewTime})
    || Kle::Status::canon_json([$_->{body}{spec}{leaseDurationSeconds}]) ne "[\n  10\n]\n"
} @$posts, @$puts;
is(scalar @badtime, 0, 'MicroTimes and a number leaseDurationSeconds in every write');
my @others = grep { $_->{body}{spec}{holderIdentity} ne 'solo'
                    || $_->{body}{spec}{acquireTime} ne $o->{spec}{acquireTime} }
             @$puts;
is(scalar @others, 0, 'renews keep holderIdentity and acquireTime');
--- request
GET /leader
--- response_body_filters eval
sub { my $s = Kle::Emulator::json_decode($_[0]); "$s->{holder} $s->{transitions}" }
--- response_body chomp
solo 0
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: the status page and healthz only answer GET and HEAD
--- http_config
    leader_election web {
        lock            leases default/solo3;
        identity        solo;
        lease_duration  10s;
        renew_deadline  8s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /leader/healthz {
        leader_election_healthz;
    }
--- request eval
["POST /leader\nx", "POST /leader/healthz\nx", "HEAD /leader/healthz"]
--- error_code eval
[405, 405, 200]
--- response_body eval
[qr/405 Not Allowed/, qr/405 Not Allowed/, ""]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: a lock held by another: this instance follows and shows the holder
--- http_config
    leader_election web {
        lock            leases default/held;
        identity        follower;
        address         127.0.0.1:8082;
        lease_duration  10s;
        renew_deadline  8s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /leader/healthz {
        leader_election_healthz;
    }
    location = /vars {
        return 200 "is_leader=$leader_election_is_leader holder=$leader_election_holder identity=$leader_election_identity transitions=$leader_election_transitions holder_address=$leader_election_holder_address\n";
    }
--- init
wait_until(10, sub { my $s = nginx_status(); $s && $s->{holder} eq 'other' });
sleep 1.5;
is_deeply(log_lines(qr/leader_election "web": .*/),
          ['leader_election "web": leader is now "other" (transitions 4)'],
          'what the module logged');
my $spec = lease_spec('default', 'held');
is($spec->{holderIdentity}, 'other', 'still held by other');
is($spec->{renewTime}, '2026-01-01T00:00:00.000000Z', 'not written');
is(scalar @{ requests(method => 'PUT', path => '/leases/held') }, 0, 'no PUT');
my $st = nginx_status();
is($st->{acquire_time}, '2026-01-01T00:00:00.000000Z', 'acquire_time as recorded');
is($st->{renew_time}, '2026-01-01T00:00:00.000000Z', 'renew_time as recorded');
--- request eval
["GET /vars", "GET /leader", "GET /leader/healthz", "GET /leader?format=prometheus"]
--- response_body_filters eval
[[], [\&Kle::Status::canon_status], [], [\&Kle::Status::canon_prometheus]]
--- response_body eval
["is_leader=0 holder=other identity=follower transitions=4 holder_address=10.1.2.3:8080\n",
Kle::Status::canon_json({ %main::Solo,
    name => "other", identity => "follower", is_leader => \0,
    holder => "other", holder_address => "10.1.2.3:8080",
    transitions => 4,
    lock => { kind => "leases", namespace => "default", name => "held" },
    state => "following" }),
"ok",
'# HELP leader_election_master_status 1 if this instance leads the election, else 0.
# TYPE leader_election_master_status gauge
leader_election_master_status{name="web"} 0
# HELP leader_election_transitions Leader changes of the lock, as last observed.
# TYPE leader_election_transitions gauge
leader_election_transitions{name="web"} 4
# HELP leader_election_api_requests_total API server requests made by the elector.
# TYPE leader_election_api_requests_total counter
leader_election_api_requests_total{name="web"} <n>
# HELP leader_election_api_failures_total API server requests that failed.
# TYPE leader_election_api_failures_total counter
leader_election_api_failures_total{name="web"} 0
# HELP leader_election_identity_conflict 1 while another instance holds the lock in this instance\'s identity.
# TYPE leader_election_identity_conflict gauge
leader_election_identity_conflict{name="web"} 0
']
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: a free lock (released) it may not take: no holder, so $leader_election_holder is empty
--- init
# (seeded at the top: holderIdentity "", and RBAC that refuses this
# instance's update)
wait_until(10, sub { @{ requests(method => 'PUT', path => '/leases/free') } });
my $s = nginx_status();
is(join(' ', map { $_ // 'null' } @$s{qw(name holder holder_address is_leader state transitions)}),
   '   0 following 3', 'status: no holder, no address, following');
is(lease_spec('default', 'free')->{holderIdentity}, '', 'the Lease is still free');
--- http_config
    leader_election web {
        lock            leases default/free;
        identity        taker;
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
        return 200 "is_leader=$leader_election_is_leader holder=[$leader_election_holder] holder_address=[$leader_election_holder_address] transitions=$leader_election_transitions\n";
    }
--- request
GET /vars
--- response_body
is_leader=0 holder=[] holder_address=[] transitions=3
--- error_log eval
qr/\[error\] .*leader_election "web": update lock: forbidden: /
--- no_error_log
[alert]
[crit]



=== TEST 6: ... and the address the last holder advertised is not shown
--- init
# (seeded at the top: as "free", with the annotations of "gone")
wait_until(10, sub { @{ requests(method => 'PUT', path => '/leases/free-addr') } });
my $s = nginx_status();
is("[$s->{holder}] $s->{is_leader} $s->{state} $s->{transitions}", '[] 0 following 3',
   'status: no holder, following');
# interface.md: no address without the holder that wrote it
is($s->{holder_address}, '', 'status: no address');
is(nginx_var('/vars'), "is_leader=0 holder=[] holder_address=[] transitions=3\n",
   '$leader_election_holder_address empty');
is(lease_spec('default', 'free-addr')->{holderIdentity}, '', 'the Lease is still free');
--- http_config
    leader_election web {
        lock            leases default/free-addr;
        identity        taker;
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
        return 200 "is_leader=$leader_election_is_leader holder=[$leader_election_holder] holder_address=[$leader_election_holder_address] transitions=$leader_election_transitions\n";
    }
--- request
GET /leader
--- response_body_filters eval
sub { my $s = Kle::Emulator::json_decode($_[0]); "[$s->{name}] [$s->{holder}] $s->{is_leader}" }
--- response_body chomp
[] [] 0
--- error_log eval
qr/\[error\] .*leader_election "web": update lock: forbidden: /
--- no_error_log
[alert]
[crit]
