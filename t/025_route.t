# $leader_election_route: "self" while this instance leads; the holder's
# address while another instance holds a lease that runs, as this instance
# observed it, and advertised one; empty otherwise: no holder, no address,
# a lease that lapsed unrenewed, the holder's address being this
# instance's own, or the lock naming this instance while its claim has
# lapsed.  Each value through the routing map the docs lead with, and the
# _NAME forms.

use Kle::Emulator;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

our $Remote = "127.0.0.1:$ENV{TEST_NGINX_EXTRA_PORT_2}";
our $Self = "127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}";

# r-lead, r-lapse: free (absent), taken by "me".  r-held: boss's for an
# hour, boss advertising the "remote" server.  r-noaddr: boss's, no
# address.  r-expire: boss's for 4 s from our first sight, never renewed,
# and our takeover refused.  r-free: released, our takeover refused.
# r-renew: boss's, renewed by TEST 6.  r-old: a holder that advertised this instance's own address (what a
# reload that changed the identity leaves behind).
put_lease('r-held', holder => 'boss', secs => 3600, transitions => 2,
          address => $Remote);
put_lease('r-noaddr', holder => 'boss', secs => 3600, transitions => 2,
          annotations => {});
put_lease('r-expire', holder => 'boss', secs => 4, transitions => 2,
          address => $Remote);
put_lease('r-free', holder => '', secs => 1, transitions => 3,
          annotations => {});
put_lease('r-old', holder => 'old-me', secs => 3600, transitions => 2,
          address => $Self);
for my $lock (qw(r-expire r-free)) {
    add_fault(kind => 'status', code => 500, method => 'PUT',
              path => "/leases/$lock");
}

sub election {
    my ($name, $lock, $lease) = @_;
    $lease //= '3s';
    return <<"_EOC_";
    leader_election $name {
        lock            leases default/$lock;
        identity        me;
        address         $main::Self;
        lease_duration  $lease;
        renew_deadline  2s;
        retry_period    500ms;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_
}

# The routing map of the README, and a local backend and a "remote" one.
our $Routing = <<'_EOC_';
    map $leader_election_route $backend {
        self     127.0.0.1:$TEST_NGINX_EXTRA_PORT_1;
        ""       "";
        default  $leader_election_route;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_1;
        location / { return 200 "local got $uri\n"; }
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_EXTRA_PORT_2;
        location / { return 200 "remote got $uri\n"; }
    }
_EOC_

sub http_config { election('web', @_) . $Routing }

our $Config = <<'_EOC_';
    location = /route {
        return 200 "[$leader_election_route] $leader_election_is_leader $leader_election_holder [$leader_election_holder_address]\n";
    }
    location /api/ {
        if ($backend = "") {
            return 503 "no leader\n";
        }
        proxy_pass http://$backend;
    }
_EOC_

sub route { nginx_var('/route') // '' }

# boss's renewal number $n of r-renew (a 2 s lease): a new renewTime
sub renew {
    my ($n) = @_;
    put_object('leases', 'default', 'r-renew', {
        apiVersion => 'coordination.k8s.io/v1', kind => 'Lease',
        metadata => {
            name => 'r-renew', namespace => 'default',
            annotations => {
                'leader-election.nginx.org/address' => $Remote,
                'leader-election.nginx.org/address-holder' => 'boss' },
        },
        spec => { holderIdentity => 'boss', leaseDurationSeconds => 2,
                  acquireTime => '2026-01-01T00:00:00.000000Z',
                  renewTime => sprintf('2026-01-01T00:00:%02d.000000Z', $n),
                  leaseTransitions => 2 },
    });
}

plan tests => 107;

run_tests();

__DATA__

=== TEST 1: the leader: self, to its local backend
--- http_config eval
main::http_config('r-lead')
--- config eval
$main::Config
--- init
wait_until(5, sub { route() =~ /^\[self\]/ });
--- request eval
["GET /route", "GET /api/x"]
--- response_body eval
["[self] 1 me [$main::Self]\n", "local got /api/x\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: a follower: the holder's address, to the holder
--- http_config eval
main::http_config('r-held')
--- config eval
$main::Config
--- init
wait_until(5, sub { route() =~ /boss/ });
--- request eval
["GET /route", "GET /api/x"]
--- response_body eval
["[$main::Remote] 0 boss [$main::Remote]\n", "remote got /api/x\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: a holder that advertised no address: nowhere
--- http_config eval
main::http_config('r-noaddr')
--- config eval
$main::Config
--- init
wait_until(5, sub { route() =~ /boss/ });
--- request eval
["GET /route", "GET /api/x"]
--- error_code eval
[200, 503]
--- response_body eval
["[] 0 boss []\n", "no leader\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: no leader known (released, and we may not take it): nowhere
--- http_config eval
main::http_config('r-free')
--- config eval
$main::Config
--- init
wait_until(5, sub { @{ requests(method => 'PUT', path => '/leases/r-free') } });
--- request eval
["GET /route", "GET /api/x"]
--- error_code eval
[200, 503]
--- response_body eval
["[] 0  []\n", "no leader\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: the holder's lease lapses unrenewed, as observed here: nowhere
The record still names boss and its address; its lease ran out 4 s after
this instance first saw it, and our takeover is refused.
--- http_config eval
main::http_config('r-expire')
--- config eval
$main::Config
--- init
ok(wait_until(3, sub { route() eq "[$main::Remote] 0 boss [$main::Remote]\n" }),
   'routed to boss while its lease runs');
ok(wait_until(6, sub { route() eq "[] 0 boss [$main::Remote]\n" }),
   'nowhere once it lapsed, though boss still holds the record');
is(get_object('leases', 'default', 'r-expire')->{spec}{holderIdentity},
   'boss', 'the Lease still names boss');
--- request eval
["GET /route", "GET /api/x"]
--- error_code eval
[200, 503]
--- response_body eval
["[] 0 boss [$main::Remote]\n", "no leader\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: a holder that renews stays the route past its lease duration
boss renews r-renew (a 2 s lease) every 0.4 s for 4 s: each renewal this
instance sees restarts the lease in its eyes.  Then boss stops, and this
instance takes over once the lease has run out.
--- http_config eval
main::http_config('r-renew')
--- config eval
$main::Config
--- init
main::renew(0);
ok(wait_until(5, sub { route() =~ /boss/ }), 'boss seen');
my %seen;
for my $i (1 .. 10) {
    main::renew($i);
    for (1 .. 4) { $seen{ route() }++; sleep 0.1; }
}
is_deeply([keys %seen], ["[$main::Remote] 0 boss [$main::Remote]\n"],
          'the holder\'s address all along');
ok(wait_until(5, sub { route() =~ /^\[self\]/ }), 'taken over after it');
--- request eval
["GET /route", "GET /api/x"]
--- response_body eval
["[self] 1 me [$main::Self]\n", "local got /api/x\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 7: the Lease names this instance but its claim lapsed: nowhere, not itself
The API stalls every request: no renewal ends, the claim lapses after
renew_deadline (2 s), and the Lease still names "me" with this instance's
address, its lease running (10 s) as this instance last saw it.
--- http_config eval
main::http_config('r-lapse', '10s')
--- config eval
$main::Config
--- init
ok(wait_until(5, sub { route() =~ /^\[self\] 1 me/ }), 'led first');
my ($f) = add_fault(kind => 'stall', path => '/leases/r-lapse');
ok(wait_until(5, sub { route() =~ / 0 me / }), 'the claim lapsed');
my %seen;
for (1 .. 10) { $seen{ route() }++; sleep 0.1; }
is_deeply([keys %seen], ["[] 0 me [$main::Self]\n"],
          'nowhere from then on, while the lease runs');
my $o = get_object('leases', 'default', 'r-lapse');
is($o->{spec}{holderIdentity}, 'me', 'the Lease still names this instance');
is($o->{metadata}{annotations}{'leader-election.nginx.org/address'},
   $main::Self, 'with its address');
our $StallId = $f;
--- request eval
["GET /route", "GET /api/x"]
--- error_code eval
[200, 503]
--- response_body eval
["[] 0 me [$main::Self]\n", "no leader\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 8: ... and self again once the API answers
--- init
delete_fault($main::StallId);
ok(wait_until(5, sub { route() =~ /^\[self\]/ }), 'leads again');
--- request eval
["GET /route", "GET /api/y"]
--- response_body eval
["[self] 1 me [$main::Self]\n", "local got /api/y\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 9: a holder whose address is this instance's own: nowhere (it would loop)
--- http_config eval
main::http_config('r-old')
--- config eval
$main::Config
--- init
wait_until(5, sub { route() =~ /old-me/ });
--- request eval
["GET /route", "GET /api/x"]
--- error_code eval
[200, 503]
--- response_body eval
["[] 0 old-me [$main::Self]\n", "no leader\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 10: the _NAME forms; the unsuffixed one follows the first election
--- http_config eval
main::election('web', 'r-lead') . main::election('b', 'r-held')
--- config
    location = /t {
        return 200 "[$leader_election_route] [$leader_election_route_web] [$leader_election_route_b]\n";
    }
--- init
wait_until(5, sub { (nginx_var('/t') // '') =~ /^\[self\] \[self\] \[1/ });
--- request
GET /t
--- response_body eval
"[self] [self] [$main::Remote]\n"
--- no_error_log
[error]
[alert]
[crit]
