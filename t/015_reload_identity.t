# The old configuration's elector stops as soon as the new generation
# exists, also while its worker drains a slow request: after a reload that
# changes the identity, the emulator sees no request from the old elector
# (told apart by its token's user), and its watch ends within a retry
# period rather than when the worker exits.  One worker: the slow request
# keeps the old worker 0 (the old elector's process) alive.

use Kle::Emulator;
use Kle::Harness qw(reload_test_nginx);
use Kle::Nginx;
use Test::Nginx::Socket;
use IO::Socket::INET ();
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');
master_on();
workers(1);

# Two tokens, so that the request log tells the electors apart.
our %Tokens = (old => 'kle-old-' . $$, new => 'kle-new-' . $$);
for my $who (keys %Tokens) {
    add_token($Tokens{$who}, "elector-$who");
    my $file = "$ENV{TEST_NGINX_EMULATOR_DIR}/token-$who";
    open my $out, '>', $file or die "$file: $!\n";
    print $out $Tokens{$who};
    close $out;
    $ENV{"TEST_NGINX_TOKEN_\U$who"} = $file;
}

# A foreign holder whose lease outlives the test: the instance follows it.
put_object('leases', 'default', 'ident', {
    apiVersion => 'coordination.k8s.io/v1', kind => 'Lease',
    metadata => { name => 'ident', namespace => 'default' },
    spec => { holderIdentity => 'x', leaseDurationSeconds => 3600,
              acquireTime => '2026-01-01T00:00:00.000000Z',
              renewTime => '2026-01-01T00:00:00.000000Z',
              leaseTransitions => 4 },
});

plan tests => 19;

run_tests();

__DATA__

=== TEST 1: following a foreign holder, one worker
--- http_config
    leader_election web {
        lock            leases default/ident;
        identity        old1;
        lease_duration  4s;
        renew_deadline  3s;
        retry_period    1s;
        api_server      $TEST_NGINX_API_URL;
        ca_file         $TEST_NGINX_API_CA;
        token_file      $TEST_NGINX_TOKEN_OLD;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder $leader_election_identity\n";
    }
    location = /slow {
        proxy_pass $TEST_NGINX_API_URL/version;
        add_header X-Leader "$leader_election_is_leader";
    }
--- init
wait_until(5, sub { my $s = nginx_status(); $s && $s->{holder} eq 'x' });
# the watch is established
wait_until(5, sub { grep { $_->{query} =~ /watch=/ }
                    @{ requests(path => '/leases') } });
--- request
GET /vars
--- response_body
0 x old1
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: a reload that changes the identity while the old worker drains: the old elector sends nothing more
--- init
add_fault(kind => 'latency', ms => 5000, path => '/version');
my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                 Proto => 'tcp', Timeout => 2) or die "connect: $!";
$sock->autoflush(1);
print $sock "GET /slow HTTP/1.0\r\nHost: localhost\r\n\r\n";
sleep 0.3;
my $old = nginx_status()->{elector_pid};
reload_test_nginx(sub {
    my $t = shift;
    $t =~ s/identity\s+old1;/identity        new1;/ or die "no identity";
    $t =~ s/token-old;/token-new;/ or die "no token_file";
    return $t;
});
# the new elector has run: from now on the old one must be silent
my $cut = wait_until(5, sub { my $s = nginx_status();
                              $s && ($s->{elector_pid} // $old) != $old ? time : 0 });
ok($cut, 'a new elector runs');
ok(kill(0, $old), "the old worker $old still drains");
# a released record: an elector still watching would take the lock
put_object('leases', 'default', 'ident', {
    apiVersion => 'coordination.k8s.io/v1', kind => 'Lease',
    metadata => { name => 'ident', namespace => 'default' },
    spec => { holderIdentity => '', leaseDurationSeconds => 1,
              acquireTime => '2026-01-01T00:00:00.000000Z',
              renewTime => '2026-01-01T00:00:00.000000Z',
              leaseTransitions => 4 },
});
my $put = time;
wait_until(5, sub { (lease_spec('default', 'ident')->{holderIdentity} // '') eq 'new1' });
local $/;
my $answer = <$sock> // '';
my $done = time;
close $sock;
ok($done > $put, sprintf('the old worker drained until %.2f s after the released record', $done - $put));
like($answer, qr/^X-Leader: 1\r?$/m, 'and then read the claim new1 made in the shared zone') or diag($answer);
my @all = grep { "$_->{path}?$_->{query}" =~ /ident/ } @{ requests(path => '/leases') };
my @late = grep { $_->{user} eq 'elector-old' && $_->{time} >= $cut } @all;
is(join(' ', map { "$_->{method} $_->{path}?$_->{query}" } @late), '',
   'no request from the old elector after the new one ran');
my @by_old = grep { ($_->{body}{spec}{holderIdentity} // '') eq 'old1' } @all;
is(scalar @by_old, 0, 'the Lease was never written by old1');
my @watch = grep { $_->{user} eq 'elector-old' && $_->{query} =~ /watch=/ } @all;
ok(@watch && defined $watch[-1]{duration_ms}, 'the old watch has ended') or diag(Test::More::explain(\@watch), "cut $cut put $put");
ok(@watch && $watch[-1]{time} + $watch[-1]{duration_ms} / 1000 < $cut + 2.5,
   'within retry_period of the reload, not when the worker exited');
is(lease_spec('default', 'ident')->{holderIdentity}, 'new1', 'new1 holds the Lease');
wait_until(5, sub { (nginx_var('/vars') // '') eq "1 new1 new1\n" });
--- request
GET /vars
--- response_body
1 new1 new1
--- no_error_log
[error]
[alert]
[crit]
