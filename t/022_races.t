# Lost races through nginx, answered by the API server's own rules (no
# injected status): a create that finds the lock created meanwhile (409
# AlreadyExists), and two instances updating a free lock from the same
# resourceVersion at once (one 200, the other 409 Conflict).  The loser
# writes nothing more (it reads the lock again or its watch shows the
# winner), follows the winner and logs nothing at warn or above; exactly
# one instance leads.

use Kle::Emulator;
use Kle::Nginx;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

# The create of race-create waits 0.7 s in the emulator (the request
# timeout is 1 s): meanwhile the test creates the Lease as another holder.
add_fault(kind => 'latency', ms => 700, method => 'POST', count => 1,
          path => '/namespaces/default/leases');

# race-rv: held by "other" until the test frees it.
put_object('leases', 'default', 'race-rv', {
    apiVersion => 'coordination.k8s.io/v1', kind => 'Lease',
    metadata => { name => 'race-rv', namespace => 'default' },
    spec => { holderIdentity => 'other', leaseDurationSeconds => 3600,
              acquireTime => '2026-01-01T00:00:00.000000Z',
              renewTime => '2026-01-01T00:00:00.000000Z',
              leaseTransitions => 5 },
});

# b authenticates with a token of its own, so that the request log tells
# the instances apart.
add_token('race-b-token', 'user-b');
our $TokenB = "$ENV{TEST_NGINX_EMULATOR_DIR}/token-b";
{
    open my $out, '>', $TokenB or die "$TokenB: $!";
    print $out 'race-b-token';
    close $out;
}

our $B = Kle::Nginx->new(name => 'b', http_config => <<"_EOC_", config => <<'_EOC_');
    leader_election web {
        lock            leases default/race-rv;
        identity        rb;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      $ENV{TEST_NGINX_API_URL};
        token_file      $TokenB;
        ca_file         $ENV{TEST_NGINX_API_CA};
    }
_EOC_
        location = /leader {
            leader_election_status;
        }
_EOC_

# "METHOD CODE" of the requests for a lock since $since, by $user.
sub trail {
    my ($since, $lock, $user) = @_;
    return join ', ', map { "$_->{method} $_->{code}" }
        grep { !defined $user || $_->{user} eq $user }
        grep { $_->{path} =~ m{/leases(?:/\Q$lock\E)?$}
               && ($_->{method} ne 'POST' || ($_->{body}{metadata}{name} // '') eq $lock)
               && ($_->{query} // '') !~ /watch=/ }
        @{ requests(since => $since) };
}

plan tests => 23;

run_tests();

__DATA__

=== TEST 1: the create finds the Lease created meanwhile: 409 AlreadyExists, then it follows, quietly
--- http_config
    leader_election web {
        lock            leases default/race-create;
        identity        ra;
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
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
my $post = wait_until(0.6, sub { (grep { ($_->{body}{metadata}{name} // '') eq 'race-create' }
                                @{ requests(method => 'POST') })[0] });
ok($post && !$post->{code}, 'the create is in flight');
put_object('leases', 'default', 'race-create', {
    spec => { holderIdentity => 'other', leaseDurationSeconds => 3600,
              acquireTime => '2026-01-01T00:00:00.000000Z',
              renewTime => '2026-01-01T00:00:00.000000Z',
              leaseTransitions => 0 } });
wait_until(5, sub { my $s = nginx_status(); $s && $s->{holder} eq 'other' });
sleep 1;
like(main::trail(0, 'race-create'), qr/^GET 404, POST 409(?:, GET 200)*$/,
     'GET 404, POST 409 (AlreadyExists), then no write (the watch or a GET tells the holder)');
is(lease_spec('default', 'race-create')->{holderIdentity}, 'other', 'the Lease names other');
--- request
GET /vars
--- response_body
0 other
--- no_error_log
[warn]
[error]
[alert]
[crit]



=== TEST 2: two instances update a freed Lease from the same resourceVersion at once: one wins
--- http_config
    leader_election web {
        lock            leases default/race-rv;
        identity        ra;
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
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
$main::B->start;
wait_until(5, sub { my $s = nginx_status(); $s && $s->{holder} eq 'other' });
wait_until(5, sub { my $s = $main::B->status; $s && $s->{holder} eq 'other' });
# both updates wait 0.6 s in the emulator, so that they overlap
my ($slow) = add_fault(kind => 'latency', ms => 600, method => 'PUT',
                       path => '/leases/race-rv');
my $since = last_seq();
my $o = get_object('leases', 'default', 'race-rv');
$o->{spec}{holderIdentity} = '';
$o->{spec}{leaseDurationSeconds} = 1;
put_object('leases', 'default', 'race-rv', $o);
my $free_rv = get_object('leases', 'default', 'race-rv')->{metadata}{resourceVersion};
wait_until(6, sub { scalar(grep { $_->{code} } @{ requests(since => $since, method => 'PUT') }) >= 2 });
delete_fault($slow);
my @puts = @{ requests(since => $since, method => 'PUT') }[0, 1];
is(join(' ', sort map { $_->{user} } grep { $_ } @puts),
   'system:serviceaccount:default:default user-b', 'the first two updates: one from each instance');
is(join(' ', map { $_ && $_->{body}{metadata}{resourceVersion} // 'none' } @puts),
   "$free_rv $free_rv", 'both conditioned on the freed record');
is(join(' ', sort map { $_ && $_->{code} } @puts), '200 409', 'one succeeded, the other got 409 Conflict');
my ($won) = grep { $_->{code} == 200 } @puts;
my $winner = $won->{body}{spec}{holderIdentity};
my $loser_user = (grep { $_->{code} == 409 } @puts)[0]{user};
my $loser = $winner eq 'ra' ? 'rb' : 'ra';
my $led = '';
for (1 .. 6) {
    my $a = nginx_status() // {};
    my $b = $main::B->status // {};
    $led .= ($a->{is_leader} ? 'a' : '') . ($b->{is_leader} ? 'b' : '') . ' ';
    sleep 0.4;
}
is($led, (($winner eq 'ra' ? 'a' : 'b') . ' ') x 6, "exactly one leads, $winner, throughout");
like(main::trail($since, 'race-rv', $loser_user), qr/PUT 409(?:, GET 200)*\z/,
     "the loser ($loser) wrote nothing after its 409 (read again, or the watch told it)");
my $spec = lease_spec('default', 'race-rv');
is("$spec->{holderIdentity} $spec->{leaseTransitions}", "$winner 6", 'the Lease names the winner, transitions 6');
my $s = $loser eq 'ra' ? nginx_status() : $main::B->status;
is("$s->{holder} $s->{state}", "$winner following", 'the loser follows the winner');
my $blog = $main::B->error_log;
unlike($blog, qr/\[(?:warn|error|alert|crit|emerg)\]/, "b's log: nothing at warn or above");
$main::B->stop;
--- request
GET /leader
--- response_body_filters eval
sub { my $s = Kle::Emulator::json_decode($_[0]); $s->{last_error} // 'null' }
--- response_body chomp
null
--- no_error_log
[warn]
[error]
[alert]
[crit]
