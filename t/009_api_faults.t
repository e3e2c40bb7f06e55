# API server faults from the emulator: 500s, resets, RBAC 403s, a revoked
# token (401), malformed and HTML answers, 429 with Retry-After.  Each
# block: the leader steps down within renew_deadline (is_leader 0,
# last_error set in the status JSON), logs the condition once however
# often it retries, never crashes a worker, and leads again once the fault
# is cleared.  A 409 on a renew is a lost race: read again, renewed, quiet.

use Kle::Emulator;
use Kle::Status;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');
master_on();
workers(2);

sub cfg {
    my ($lock) = @_;
    return <<"_EOC_";
    leader_election web {
        lock            leases default/$lock;
        identity        f1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_
}

our $Config = <<'_EOC_';
    location = /leader {
        leader_election_status;
    }
    location = /leader/healthz {
        leader_election_healthz;
    }
_EOC_

# Every line the module logs but the holder it observed and whether it
# watches.
our $Grep = qr/leader_election "web": (?!leader is now|no leader|watch).*/;

# "is_leader state last_error" of the status page.
sub brief {
    my $s = ref $_[0] ? $_[0] : json_decode($_[0]);
    return 'not JSON' unless $s;
    return "is_leader=" . ($s->{is_leader} ? 1 : 0)
         . " state=$s->{state} last_error=" . ($s->{last_error} // 'null')
         . " failures=" . ($s->{api}{failures} ? 'yes' : 'no');
}

# Leader first; then the fault ($add->() installs it): how long until the
# status page said is_leader false, and the page 2.2 s (two retries) later;
# then $clear->() and back to leading.  Returns (undef, 'never led') when
# it did not lead before the fault.
sub fault_cycle {
    my ($lock, $add, $clear) = @_;
    wait_until(5, sub { my $s = nginx_status(); $s && $s->{is_leader} })
        or return (undef, 'never led');
    my $t0 = time;
    $add->();
    my $flip;
    while (time - $t0 < 4) {
        my $s = nginx_status();
        if ($s && !$s->{is_leader}) {
            $flip = time - $t0;
            last;
        }
        sleep 0.05;
    }
    sleep 1.2;
    my $during = nginx_status();
    my ($hcode, $hbody) = nginx_get('/leader/healthz');
    $clear->();
    my $back = wait_until(6, sub { my $s = nginx_status(); $s && $s->{is_leader} });
    return ($flip, $during, $back, "$hcode $hbody");
}

# The standard assertions of a fault block.
sub check_cycle {
    my ($flip, $during, $back, $health, $want) = @_;
    my $led = !(defined $during && !ref $during && $during eq 'never led');
    ok($led && defined $flip && $flip <= 2.5,
       'led, then stepped down within renew_deadline ('
       . (!$led ? 'never led' : defined $flip ? sprintf('%.2f s', $flip) : 'never') . ')');
    # the read that failed: a GET, or the update of the one-request
    # takeover (interface.md) that follows a step down
    my $re = ref $want ? $want
           : join '', map { /^(?:get|update)\z/ ? '(?:get|update)' : quotemeta }
             split /\b(get|update)\b(?= lock:| resource )/, $want;
    like(brief($during), qr/^$re\z/, 'status page during the fault');
    is($health, '200 ok', 'healthz: a follower is healthy');
    ok($back, 'leading again once the fault is cleared');
}

plan tests => 100;

run_tests();

__DATA__

=== TEST 1: 500 on every request to the Lease: logged once, at warn
--- http_config eval
main::cfg('f500')
--- config eval
$main::Config
--- init
main::check_cycle(main::fault_cycle('f500',
    sub { add_fault(kind => 'status', code => 500, path => '/leases/f500') },
    sub { clear_faults() }),
    'is_leader=0 state=following last_error=get lock: server error: Internal error occurred: injected fault failures=yes');
--- request
GET /leader
--- response_body_filters eval
\&main::brief
--- response_body chomp
is_leader=1 state=leading last_error=null failures=yes
--- grep_error_log eval: $main::Grep
--- grep_error_log_out
leader_election "web": started leading (transitions 0)
leader_election "web": update lock: server error: Internal error occurred: injected fault
leader_election "web": stopped leading
leader_election "web": API server requests succeed again
leader_election "web": started leading (transitions 0)
--- error_log eval
qr/\[warn\] \d+#\d+: leader_election "web": update lock: server error: /
--- no_error_log
exited on signal
[alert]
[crit]



=== TEST 2: connections reset
--- http_config eval
main::cfg('freset')
--- config eval
$main::Config
--- init
main::check_cycle(main::fault_cycle('freset',
    sub { add_fault(kind => 'reset', path => '/leases/freset') },
    sub { clear_faults() }),
    'is_leader=0 state=following last_error=get lock: transport error: Recv failure: Connection reset by peer failures=yes');
--- request
GET /leader
--- response_body_filters eval
\&main::brief
--- response_body chomp
is_leader=1 state=leading last_error=null failures=yes
--- grep_error_log eval: $main::Grep
--- grep_error_log_out
leader_election "web": started leading (transitions 0)
leader_election "web": update lock: transport error: Recv failure: Connection reset by peer
leader_election "web": stopped leading
leader_election "web": API server requests succeed again
leader_election "web": started leading (transitions 0)
--- error_log eval
qr/\[warn\] \d+#\d+: leader_election "web": update lock: transport error: /
--- no_error_log
exited on signal
[alert]
[crit]



=== TEST 3: RBAC: 403 on get and update
--- http_config eval
main::cfg('f403')
--- config eval
$main::Config
--- init
main::check_cycle(main::fault_cycle('f403',
    sub { forbid(resource => 'leases', name => 'f403') },
    sub { clear_forbid() }),
    'is_leader=0 state=following last_error=get lock: forbidden: leases.coordination.k8s.io "f403" is forbidden: User "system:serviceaccount:default:default" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "default" failures=yes');
--- request
GET /leader
--- response_body_filters eval
\&main::brief
--- response_body chomp
is_leader=1 state=leading last_error=null failures=yes
--- grep_error_log eval: $main::Grep
--- grep_error_log_out eval
qr/\Aleader_election "web": started leading \(transitions 0\)
leader_election "web": update lock: forbidden: leases\.coordination\.k8s\.io "f403" is forbidden: User "system:serviceaccount:default:default" cannot update resource "leases" in API group "coordination\.k8s\.io" in the namespace "default" \(check RBAC, the Role and RoleBinding: the service account needs get, create(?: and update|, update, list and watch) on leases\)
leader_election "web": stopped leading
leader_election "web": API server requests succeed again
leader_election "web": started leading \(transitions 0\)
\z/
--- error_log eval
qr/\[error\] \d+#\d+: leader_election "web": update lock: forbidden: .*\(check RBAC/
--- no_error_log
exited on signal
[alert]
[crit]



=== TEST 4: RBAC: update only forbidden (get works): still logged once
--- http_config eval
main::cfg('f403u')
--- config eval
$main::Config
--- init
main::check_cycle(main::fault_cycle('f403u',
    sub { forbid(resource => 'leases', name => 'f403u', verbs => ['update']) },
    sub { clear_forbid() }),
    'is_leader=0 state=following last_error=update lock: forbidden: leases.coordination.k8s.io "f403u" is forbidden: User "system:serviceaccount:default:default" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "default" failures=yes');
--- request
GET /leader
--- response_body_filters eval
\&main::brief
--- response_body chomp
is_leader=1 state=leading last_error=null failures=yes
--- grep_error_log eval: $main::Grep
--- grep_error_log_out eval
qr/\Aleader_election "web": started leading \(transitions 0\)
leader_election "web": update lock: forbidden: leases\.coordination\.k8s\.io "f403u" is forbidden: User "system:serviceaccount:default:default" cannot update resource "leases" in API group "coordination\.k8s\.io" in the namespace "default" \(check RBAC, the Role and RoleBinding: the service account needs get, create(?: and update|, update, list and watch) on leases\)
leader_election "web": stopped leading
leader_election "web": API server requests succeed again
leader_election "web": started leading \(transitions 0\)
\z/
--- error_log eval
qr/\[error\] \d+#\d+: leader_election "web": update lock: forbidden: .*\(check RBAC/
--- no_error_log
exited on signal
[alert]
[crit]



=== TEST 5: the token is revoked (401), then accepted again
--- http_config eval
main::cfg('f401')
--- config eval
$main::Config
--- init
main::check_cycle(main::fault_cycle('f401',
    sub { revoke_token($ENV{TEST_NGINX_API_TOKEN}) },
    sub { add_token($ENV{TEST_NGINX_API_TOKEN}) }),
    'is_leader=0 state=following last_error=get lock: unauthorized: Unauthorized failures=yes');
--- request
GET /leader
--- response_body_filters eval
\&main::brief
--- response_body chomp
is_leader=1 state=leading last_error=null failures=yes
--- grep_error_log eval: $main::Grep
--- grep_error_log_out
leader_election "web": started leading (transitions 0)
leader_election "web": update lock: unauthorized: Unauthorized
leader_election "web": stopped leading
leader_election "web": API server requests succeed again
leader_election "web": started leading (transitions 0)
--- error_log eval
qr/\[error\] \d+#\d+: leader_election "web": update lock: unauthorized: Unauthorized$/
--- no_error_log
exited on signal
[alert]
[crit]



=== TEST 6: malformed JSON answers (the write happened; the answer is cut)
--- http_config eval
main::cfg('fmal')
--- config eval
$main::Config
--- init
main::check_cycle(main::fault_cycle('fmal',
    sub { add_fault(kind => 'malformed', path => '/leases/fmal') },
    sub { clear_faults() }),
    qr/is_leader=0 state=following last_error=(?:get|update) lock: bad response: (?:HTTP 200 with a|Lease response: a) truncated JSON body failures=yes/);
--- request
GET /leader
--- response_body_filters eval
\&main::brief
--- response_body chomp
is_leader=1 state=leading last_error=null failures=yes
--- grep_error_log eval: $main::Grep
--- grep_error_log_out eval
qr/\Aleader_election "web": started leading \(transitions 0\)
leader_election "web": update lock: bad response: (?:HTTP 200 with a|Lease response: a) truncated JSON body
leader_election "web": stopped leading
leader_election "web": API server requests succeed again
leader_election "web": started leading \(transitions 0\)
\z/
--- error_log eval
qr/\[warn\] \d+#\d+: leader_election "web": update lock: bad response: /
--- no_error_log
exited on signal
[alert]
[crit]



=== TEST 7: an HTML error page from a proxy (502)
--- http_config eval
main::cfg('fhtml')
--- config eval
$main::Config
--- init
main::check_cycle(main::fault_cycle('fhtml',
    sub { add_fault(kind => 'html', code => 502, path => '/leases/fhtml') },
    sub { clear_faults() }),
    'is_leader=0 state=following last_error=get lock: server error: HTTP 502 with a non-JSON body failures=yes');
--- request
GET /leader
--- response_body_filters eval
\&main::brief
--- response_body chomp
is_leader=1 state=leading last_error=null failures=yes
--- grep_error_log eval: $main::Grep
--- grep_error_log_out
leader_election "web": started leading (transitions 0)
leader_election "web": update lock: server error: HTTP 502 with a non-JSON body
leader_election "web": stopped leading
leader_election "web": API server requests succeed again
leader_election "web": started leading (transitions 0)
--- error_log eval
qr/\[warn\] \d+#\d+: leader_election "web": update lock: server error: HTTP 502 /
--- no_error_log
exited on signal
[alert]
[crit]



=== TEST 8: 429 with Retry-After on a renew: the leader waits, but never past its claim's end
--- http_config eval
main::cfg('f429')
--- config eval
$main::Config
--- init
wait_until(5, sub { my $s = nginx_status(); $s && $s->{is_leader} });
my $since = requests()->[-1]{seq};
add_fault(kind => 'status', code => 429, retry_after => 4, count => 1,
          path => '/leases/f429');
my $hit = wait_until(3, sub { requests(since => $since, path => '/leases/f429')->[0] });
is($hit->{code}, 429, 'a request got the 429');
my $t0 = time;
my @down;
while (time - $t0 < 5) {
    my $s = nginx_status();
    push @down, sprintf('%.1f', time - $t0) unless $s && $s->{is_leader};
    sleep 0.1;
}
wait_until(6, sub { my $s = nginx_status(); $s && $s->{is_leader} });
my @r = grep { ($_->{query} // '') !~ /watch=/ }
        @{ requests(since => $since, path => '/leases/f429') };
ok(@r >= 2, 'asked again after the 429');
my $gap = @r >= 2 ? $r[1]{time} - $r[0]{time} : 0;
ok($gap >= 0.9, sprintf('the next request waited: %.2f s after the 429', $gap));
# interface.md: Retry-After is capped; a leader never waits past its
# claim's end (renew start + renew_deadline), so it renews in time (the
# renew starts at the claim's end: is_leader may read 0 for its round trip)
ok($gap <= 2.2, sprintf('... but not past the claim, not 4 s: %.2f s', $gap));
ok(@down <= 2, 'so it led throughout, but for a moment at most (not leading at: '
               . join(' ', @down) . ')');
--- request
GET /leader
--- response_body_filters eval
\&main::brief
--- response_body chomp
is_leader=1 state=leading last_error=null failures=yes
--- grep_error_log eval: $main::Grep
--- grep_error_log_out eval
qr/\Aleader_election "web": started leading \(transitions 0\)
leader_election "web": update lock: too many requests: Too many requests, please try again later\.
(?:leader_election "web": stopped leading
)?leader_election "web": API server requests succeed again
(?:leader_election "web": started leading \(transitions 0\)
)?\z/
--- error_log eval
qr/\[warn\] \d+#\d+: leader_election "web": update lock: too many requests: /
--- no_error_log
exited on signal
[alert]
[crit]



=== TEST 9: a 409 Conflict on a renew is a lost race: read again, renewed, nothing logged above debug
--- http_config eval
main::cfg('f409')
--- config eval
$main::Config
--- init
wait_until(5, sub { my $s = nginx_status(); $s && $s->{is_leader} });
my $since = requests()->[-1]{seq};
add_fault(kind => 'status', code => 409, method => 'PUT', count => 1,
          path => '/leases/f409');
my $bad = '';
my $t0 = time;
while (time - $t0 < 3) {
    my $s = nginx_status();
    $bad .= ' ' . main::brief($s) unless $s && $s->{is_leader};
    sleep 0.1;
}
is($bad, '', 'leading throughout');
my @conflicts = grep { $_->{code} == 409 } @{ requests(since => $since, path => '/leases/f409') };
is(scalar @conflicts, 1, 'a renew got a 409');
my @after = grep { $_->{seq} > $conflicts[0]{seq} } @{ requests(since => $since, path => '/leases/f409') };
is(join(' ', map { "$_->{method} $_->{code}" } @after[0, 1]), 'GET 200 PUT 200',
   'then read and renewed at once');
--- request
GET /leader
--- response_body_filters eval
\&main::brief
--- response_body chomp
is_leader=1 state=leading last_error=null failures=no
--- grep_error_log eval: $main::Grep
--- grep_error_log_out
leader_election "web": started leading (transitions 0)
--- no_error_log
exited on signal
[warn]
[error]
[alert]
[crit]
