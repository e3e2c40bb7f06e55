# Two nginx instances on one lock: Test::Nginx's ("a") and a second one
# started here ("b", its own prefix t/servroot_003_b, port and identity).
# Exactly one leads; the follower names the leader and its address; when
# the leader quits, the other takes over at once.  Nothing here waits for
# a lease to run out, so the lease is long: a machine loaded enough to
# stall b's renewals for its renew deadline would otherwise hand the lock
# to a before b's release is tested.

use Kle::Emulator;
use Kle::Nginx;
use Kle::Status;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

our $B = Kle::Nginx->new(name => 'b', http_config => <<"_EOC_", config => <<'_EOC_');
    leader_election web {
        lock            leases default/shared;
        identity        b;
        address         127.0.0.1:\${KLE_B_PORT};
        lease_duration  6s;
        renew_deadline  4s;
        retry_period    1s;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_
        location = /leader {
            leader_election_status;
        }
        location = /vars {
            return 200 "is_leader=$leader_election_is_leader holder=$leader_election_holder holder_address=$leader_election_holder_address transitions=$leader_election_transitions\n";
        }
_EOC_
$ENV{KLE_B_PORT} = $B->port;
our $PB = $B->port;
our $PA = $ENV{TEST_NGINX_SERVER_PORT};

# b first: it takes the free lock.
$B->start;
wait_until(5, sub { my $s = $B->status; $s && $s->{is_leader} })
    or die "b did not become the leader:\n" . $B->error_log;

# Samples both instances n times over secs: how many samples had exactly
# one leader, and who led in each.
sub sample {
    my ($n, $secs) = @_;
    my ($one, @leaders) = (0);
    for (1 .. $n) {
        my $a = nginx_var('/vars', $PA) // '';
        my $b = nginx_var('/vars', $PB) // '';
        my @l = ($a =~ /^is_leader=1 / ? 'a' : (),
                 $b =~ /^is_leader=1 / ? 'b' : ());
        $one++ if @l == 1;
        push @leaders, join('+', @l) || 'none';
        sleep $secs / $n;
    }
    return ($one, join ',', @leaders);
}

plan tests => 41;

run_tests();

__DATA__

=== TEST 1: a follows b: its holder is b, with b's address
--- http_config
    leader_election web {
        lock            leases default/shared;
        identity        a;
        address         127.0.0.1:$TEST_NGINX_SERVER_PORT;
        lease_duration  6s;
        renew_deadline  4s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /vars {
        return 200 "is_leader=$leader_election_is_leader holder=$leader_election_holder holder_address=$leader_election_holder_address transitions=$leader_election_transitions\n";
    }
--- init
wait_until(5, sub { my $s = nginx_status(); $s && $s->{holder} eq 'b' });
--- request
GET /vars
--- response_body eval
"is_leader=0 holder=b holder_address=127.0.0.1:$main::PB transitions=0\n"
--- error_log
leader_election "web": leader is now "b" (transitions 0)
--- no_error_log
started leading
[error]
[alert]
[crit]



=== TEST 2: exactly one leads, over several samples
--- init
my ($one, $who) = main::sample(8, 4);
is($one, 8, 'exactly one leader in each of 8 samples over 4 s');
is($who, join(',', ('b') x 8), 'b led throughout');
my $spec = lease_spec('default', 'shared');
is($spec->{holderIdentity}, 'b', 'the Lease names b');
is($spec->{leaseTransitions}, 0, 'no transition');
my @puts_by_a = grep { $_->{body}{spec}{holderIdentity} eq 'a' }
                @{ requests(method => 'PUT', path => '/leases/shared') };
is(scalar @puts_by_a, 0, 'a never tried to write while b held the lease');
my (undef, $bvars) = $main::B->get('/vars');
is($bvars, "is_leader=1 holder=b holder_address=127.0.0.1:$main::PB transitions=0\n",
   "b's variables");
--- request
GET /leader
--- response_body_filters eval
sub { my $s = Kle::Emulator::json_decode($_[0]);
      CORE::join ' ', map { "$_=" . ($s->{$_} // 'null') }
                qw(name identity holder holder_address transitions state) }
--- response_body eval
"name=b identity=a holder=b holder_address=127.0.0.1:$main::PB transitions=0 state=following"
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: b quits and releases; a takes over at once
--- init
my $since = requests()->[-1]{seq};
my $t = $main::B->stop;
ok($t < 5, "b stopped in $t s");
# a may have taken over already: b's release is read from the request log
my ($rel) = grep { $_->{body}{spec}{holderIdentity} eq '' }
            @{ requests(since => $since, method => 'PUT', path => '/leases/shared') };
is($rel && join(' ', $rel->{code}, map { $rel->{body}{spec}{$_} } qw(leaseDurationSeconds leaseTransitions)),
   '200 1 0', "b wrote client-go's release record (leaseDurationSeconds 1, transitions kept) before it exited");
my $t0 = Time::HiRes::time();
my $s = wait_until(3, sub { my $s = nginx_status(); $s && $s->{is_leader} && $s });
my $took = Time::HiRes::time() - $t0;
ok($s && $took < 1.5, sprintf('a leads %.2f s after the release (watch, not a poll)', $took));
my $o = get_object('leases', 'default', 'shared');
is($o->{spec}{holderIdentity}, 'a', 'the Lease names a');
is($o->{spec}{leaseTransitions}, 1, 'leaseTransitions 1');
is($o->{spec}{leaseDurationSeconds}, 6, 'leaseDurationSeconds 6');
is($o->{metadata}{annotations}{'leader-election.nginx.org/address'},
   "127.0.0.1:$main::PA", "the annotation is a's address");
--- request
GET /vars
--- response_body eval
"is_leader=1 holder=a holder_address=127.0.0.1:$main::PA transitions=1\n"
--- error_log
leader_election "web": started leading (transitions 1)
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: b comes back and follows a
--- init
$main::B->start;
wait_until(5, sub { my $s = $main::B->status; $s && $s->{holder} eq 'a' });
my (undef, $bvars) = $main::B->get('/vars');
is($bvars, "is_leader=0 holder=a holder_address=127.0.0.1:$main::PA transitions=1\n",
   "b's variables name a");
my ($one, $who) = main::sample(6, 3);
is($one, 6, 'exactly one leader in each of 6 samples over 3 s');
is($who, join(',', ('a') x 6), 'a led throughout');
is(lease_spec('default', 'shared')->{leaseTransitions}, 1, 'still 1 transition');
unlike($main::B->error_log, qr/\[(?:error|alert|crit|emerg)\]|started leading/,
       "b's log: no errors, b did not lead");
--- request
GET /vars
--- response_body eval
"is_leader=1 holder=a holder_address=127.0.0.1:$main::PA transitions=1\n"
--- no_error_log
[error]
[alert]
[crit]
