# "events on": core/v1 Events about the lock for started and stopped
# leading, as client-go records them (type Normal, reason LeaderElection,
# "<identity> became leader" / "<identity> stopped leading", involvedObject
# the Lease).  None when off (the default).  Best effort: an Event that
# hangs does not delay a renewal; a 403 is logged once and never retried.

use Kle::Emulator;
use Kle::Nginx;
use Test::Nginx::Socket;
use POSIX ();
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

# ev1, ev2: free; ev3, ev4: x's until the test frees them
put_lease('ev1', holder => '', secs => 1, transitions => 3);
put_lease('ev2', holder => '', secs => 1, transitions => 0);
put_lease('ev3', holder => 'x', secs => 3600, transitions => 0);
put_lease('ev4', holder => 'x', secs => 3600, transitions => 0);
put_lease('ev6', holder => '', secs => 1, transitions => 0);

sub election {
    my ($name, $lock, $events) = @_;
    return <<"_EOC_";
    leader_election $name {
        lock            leases default/$lock;
        identity        i1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    500ms;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
        $events
    }
_EOC_
}

# the Events about lease $name, oldest first
sub events_about {
    my ($name) = @_;
    return [ grep { ($_->{involvedObject}{name} // '') eq $name }
             @{ events_in('default') } ];
}

sub posts_since {
    my ($seq) = @_;
    return scalar @{ requests(since => $seq, method => 'POST',
                              path => '/api/v1/namespaces/default/events') };
}

# x takes $name for a moment and frees it again: i1 stops and leads again
sub bounce {
    my ($name) = @_;
    my $t = lease_spec('default', $name)->{leaseTransitions};
    put_lease($name, holder => 'x', secs => 1, transitions => $t + 1);
    wait_until(5, sub { nginx_var('/t') eq "0\n" }) or die "still leading\n";
    put_lease($name, holder => '', secs => 1, transitions => $t + 1);
    wait_until(5, sub { nginx_var('/t') eq "1\n" }) or die "not leading\n";
}

plan tests => 73;

run_tests();

__DATA__

=== TEST 1: became leader, then stopped leading: two Events on the Lease, as client-go writes them
--- http_config eval
main::election('a', 'ev1', 'events on;')
--- config
    location = /t { return 200 "$leader_election_is_leader\n"; }
--- init
wait_until(5, sub { @{ main::events_about('ev1') } == 1 });
my $lease = get_object('leases', 'default', 'ev1');
my ($e) = @{ main::events_about('ev1') };
is($e->{message}, 'i1 became leader', 'message');
is_deeply([ @$e{qw(type reason count)} ], ['Normal', 'LeaderElection', 1],
          'type, reason, count');
is_deeply($e->{source}, { component => 'a' }, 'source: the election');
my $io = $e->{involvedObject};
is_deeply([ @$io{qw(kind namespace name uid apiVersion)} ],
          ['Lease', 'default', 'ev1', $lease->{metadata}{uid},
           'coordination.k8s.io/v1'],
          'involvedObject: the Lease, with its uid');
like($io->{resourceVersion}, qr/^\d+$/, 'involvedObject.resourceVersion');
ok($io->{resourceVersion} <= $lease->{metadata}{resourceVersion},
   'the Lease\'s version when it became leader, or before');
like($e->{firstTimestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
     'firstTimestamp: RFC 3339');
is($e->{lastTimestamp}, $e->{firstTimestamp}, 'lastTimestamp');
like($e->{metadata}{name}, qr/^ev1\.[0-9a-f]+$/, 'name: the Lease\'s, and a time');
is($e->{metadata}{namespace}, 'default', 'namespace: the Lease\'s');

put_lease('ev1', holder => 'x', secs => 3600,
          transitions => $lease->{spec}{leaseTransitions} + 1);
ok(wait_until(5, sub { @{ main::events_about('ev1') } == 2 }),
   'a second Event');
my $s = main::events_about('ev1')->[1];
is($s->{message}, 'i1 stopped leading', 'message');
is_deeply([ @$s{qw(type reason)}, $s->{involvedObject}{name} ],
          ['Normal', 'LeaderElection', 'ev1'], 'type, reason, object');
is(main::posts_since(0), 2, 'two POSTs to /api/v1/namespaces/default/events');
--- request
GET /t
--- response_body
0
--- no_error_log
[error]
[alert]
[crit]
[warn]



=== TEST 2: off by default: no Event, no POST
--- http_config eval
main::election('b', 'ev2', '')
--- config
    location = /t { return 200 "$leader_election_is_leader\n"; }
--- init
my $seq = last_seq();
ok(wait_until(5, sub { nginx_var('/t') eq "1\n" }), 'leads');
main::bounce('ev2');
sleep 1;
is(scalar @{ main::events_about('ev2') }, 0, 'no Event about ev2');
is(main::posts_since($seq), 0, 'no POST to events');
--- request
GET /t
--- response_body
1
--- no_error_log
[error]
[alert]
[crit]
[warn]



=== TEST 3: an Event that hangs: renewals go on at the retry period, the claim holds
--- http_config eval
main::election('c', 'ev3', 'events on;')
--- config
    location = /t { return 200 "$leader_election_is_leader\n"; }
--- init
ok(wait_until(5, sub { nginx_var('/t') eq "0\n" }), 'follows x');
add_fault(kind => 'stall', path => '/events');
my $seq = last_seq();
put_lease('ev3', holder => '', secs => 1, transitions => 1);
ok(wait_until(5, sub { nginx_var('/t') eq "1\n" }), 'leads');
my $t0 = time;
my $lapses = 0;
while (time < $t0 + 4) {
    $lapses++ if nginx_var('/t') ne "1\n";
    sleep 0.1;
}
is($lapses, 0, 'leader throughout 4 s (twice the renew deadline)');
my $puts = requests(since => $seq, method => 'PUT', path => '/leases/ev3');
ok(@$puts >= 6, 'renewed at the retry period meanwhile (' . @$puts . ' PUTs)');
is(main::posts_since($seq), 1, 'the Event was sent, once');
clear_faults();
--- request
GET /t
--- response_body
1
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: events forbidden by RBAC: logged once, never retried, renewals untouched
--- http_config eval
main::election('d', 'ev4', 'events on;')
--- config
    location = /t { return 200 "$leader_election_is_leader\n"; }
--- init
forbid(resource => 'events', verbs => ['create']);
ok(wait_until(5, sub { nginx_var('/t') eq "0\n" }), 'follows x');
my $seq = last_seq();
put_lease('ev4', holder => '', secs => 1, transitions => 1);
ok(wait_until(5, sub { nginx_var('/t') eq "1\n" }), 'leads');
main::bounce('ev4');
sleep 1;
is(main::posts_since($seq), 3, 'three Events tried (became, stopped, became), none retried');
is(scalar @{ main::events_about('ev4') }, 0, 'none stored');
my $puts = requests(since => $seq, method => 'PUT', path => '/leases/ev4');
ok(@$puts >= 2, 'renewing (' . @$puts . ' PUTs)');
clear_forbid();
--- request
GET /t
--- response_body
1
--- grep_error_log eval
qr/Event "[^"]+" not created[^,]*/
--- grep_error_log_out
Event "became leader" not created
--- error_log eval
qr/\[warn\] .*leader_election "d": Event "became leader" not created, and not retried: forbidden: .*\("events on" needs the create verb on events in the Role\)/
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: the kle CLI, --events: the same two Events
--- http_config eval
main::election('e', 'ev2', '')
--- config
    location = /t { return 200 "$leader_election_is_leader\n"; }
--- init
SKIP: {
    skip 'no KLE_BIN', 4 unless $ENV{KLE_BIN} && -x $ENV{KLE_BIN};
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        open STDOUT, '>', "$ENV{TEST_NGINX_SERVROOT}_kle.log";
        open STDERR, '>&', \*STDOUT;
        no warnings 'exec';
        exec $ENV{KLE_BIN}, 'run', '--lock', 'leases/default/ev5',
             '--identity', 'k1', '--kubeconfig', $ENV{TEST_NGINX_KUBECONFIG},
             '--lease-duration', '3s', '--renew-deadline', '2s',
             '--retry-period', '500ms', '--events', '--', 'sleep', '30';
        POSIX::_exit(127);
    }
    ok(wait_until(5, sub { @{ main::events_about('ev5') } == 1 }),
       'kle: an Event');
    is(main::events_about('ev5')->[0]{message}, 'k1 became leader', 'message');
    kill 'TERM', $pid;
    waitpid $pid, 0;
    ok(wait_until(5, sub { @{ main::events_about('ev5') } == 2 }),
       'kle: a second Event after its release');
    is(main::events_about('ev5')->[1]{message}, 'k1 stopped leading',
       'message');
}
--- request
GET /t
--- response_body
1
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: under a master: a reload that keeps the leadership records nothing; a quit records the release
--- http_config eval
main::election('f', 'ev2', '')
--- config
    location = /t { return 200 "$leader_election_is_leader\n"; }
--- init
my $b = Kle::Nginx->new(name => 'b', master => 1, workers => 2,
                        http_config => main::election('g', 'ev6', 'events on;'),
                        config => 'location = /t { return 200 "$leader_election_is_leader\n"; }');
$b->start;
ok(wait_until(5, sub { @{ main::events_about('ev6') } == 1 }), 'became leader');
my $master = $b->pid;
my $old = `pgrep -P $master | sort`;
kill 'HUP', $master;
ok(wait_until(8, sub {
    my %now = map { $_ => 1 } split ' ', `pgrep -P $master`;
    !grep { $now{$_} } split ' ', $old
}), 'the reload is done: none of the old workers is left');
my $seq = last_seq();
ok(wait_until(5, sub {
    @{ requests(since => $seq, method => 'PUT', path => '/leases/ev6') } >= 2
}), 'the new elector renews');
is(scalar @{ main::events_about('ev6') }, 1, 'no Event for the reload');
$b->stop;
ok(wait_until(5, sub { @{ main::events_about('ev6') } == 2 }), 'an Event on quit');
is(main::events_about('ev6')->[1]{message}, 'i1 stopped leading', 'stopped leading');
is(lease_spec('default', 'ev6')->{holderIdentity}, '', 'released');
unlike($b->error_log, qr/\[(?:error|crit|alert|emerg)\]/, 'no error in b\'s log');
--- request
GET /t
--- response_body
1
--- no_error_log
[error]
[alert]
[crit]
