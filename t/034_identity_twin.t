# Two nginx instances given one identity ("twin": a copied configuration,
# ${HOSTNAME} under hostNetwork): each writes its own instance nonce with
# the record (annotation leader-election.nginx.org/instance), so neither
# takes the other's renewals for its own.  Exactly one leads; the other
# logs the clash once, shows it in its status and never writes; once the
# leader is gone, it takes over when the lease expires, in a new term.

use Kle::Emulator;
use Kle::Nginx;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);
use POSIX qw(SIGKILL);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

our $Election = <<"_EOC_";
    leader_election web {
        lock            leases default/twin;
        identity        twin;
        lease_duration  4s;
        renew_deadline  3s;
        retry_period    1s;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_

our $Locations = <<'_EOC_';
        location = /leader {
            leader_election_status;
        }
        location = /vars {
            return 200 "$leader_election_is_leader $leader_election_fencing_token\n";
        }
_EOC_

our $B = Kle::Nginx->new(name => 'b', http_config => $Election,
                         config => $Locations, master => 1);
our $PB = $B->port;
our $PA = $ENV{TEST_NGINX_SERVER_PORT};

our $Conflict = qr/\[error\] [^\n]*identity conflict: another instance \([0-9a-f]{32}\) holds the lock as "twin", this instance's identity/;

sub instance_of_lease {
    my $o = get_object('leases', 'default', 'twin') or return '';
    return $o->{metadata}{annotations}{'leader-election.nginx.org/instance'}
           // '';
}

# b first: it takes the free lock.
$B->start;
wait_until(5, sub { my $s = $B->status; $s && $s->{is_leader} })
    or die "b did not become the leader:\n" . $B->error_log;
our $NonceB = instance_of_lease();

# n samples over secs: how many had exactly one leader, and who led.
sub sample {
    my ($n, $secs) = @_;
    my ($one, @who) = (0);
    for (1 .. $n) {
        my $a = nginx_var('/vars', $PA) // '';
        my $b = nginx_var('/vars', $PB) // '';
        my @l = ($a =~ /^1 / ? 'a' : (), $b =~ /^1 / ? 'b' : ());
        $one++ if @l == 1;
        push @who, join('+', @l) || 'none';
        sleep $secs / $n;
    }
    return ($one, join ',', @who);
}

plan tests => 37;

run_tests();

__DATA__

=== TEST 1: a, the same identity, starts while b leads: exactly one leads, a logs the clash once
--- http_config eval
$::Election
--- config eval
$::Locations
--- init
like($main::NonceB, qr/^[0-9a-f]{32}$/, "b's record carries b's nonce");
my $since = last_seq();
# a reads b's record, then sees b renew it (a live twin)
wait_until(6, sub { my $s = nginx_status(); $s && $s->{identity_conflict} });
my ($one, $who) = main::sample(20, 6);
is($one, 20, 'exactly one leader in each of 20 samples over 6 s');
is($who, join(',', ('b') x 20), 'b led throughout');
is(main::instance_of_lease(), $main::NonceB, "the Lease still carries b's nonce");
my @by_a = grep { ($_->{body}{metadata}{annotations}{'leader-election.nginx.org/instance'} // '') ne $main::NonceB }
           @{ requests(since => $since, method => 'PUT', path => '/leases/twin') };
is(scalar @by_a, 0, 'a never wrote while b renewed');
is(scalar @{ log_lines($main::Conflict) }, 1, "a logged the clash once, naming the identity");
unlike($main::B->error_log, qr/identity conflict/, 'b, the leader, saw no clash');
my $sb = $main::B->status;
ok($sb && $sb->{is_leader} && !$sb->{identity_conflict}, "b's status: leading, no conflict");
--- request
GET /leader
--- response_body_filters eval
sub { my $s = Kle::Emulator::json_decode($_[0]);
      CORE::join ' ', map { "$_=" . ($s->{$_} ? 'true' : 'false') }
                qw(is_leader identity_conflict) }
--- response_body eval
"is_leader=false identity_conflict=true"
--- error_log
waiting for it to expire
--- no_error_log
[alert]
[crit]
started leading



=== TEST 2: the clash in Prometheus
--- request
GET /leader?format=prometheus
--- response_body_like eval
qr/leader_election_identity_conflict\{name="web"\} 1\n\z/
--- no_error_log
[alert]
[crit]



=== TEST 3: b dies without releasing: a takes over once the lease expires, in a new term
--- init
my $t0 = time;
# master and worker at once (the group nginx made when it daemonized)
kill SIGKILL, -$main::B->pid;
$main::B->stop;
my $s = wait_until(10, sub { my $s = nginx_status(); $s && $s->{is_leader} && $s });
my $took = time - $t0;
ok($s && $took >= 2.5 && $took < 7,
   sprintf('a leads %.2f s after b died: after the lease, not at once', $took));
my $o = get_object('leases', 'default', 'twin');
is($o->{spec}{holderIdentity}, 'twin', 'the Lease names twin');
is($o->{spec}{leaseTransitions}, 1, 'a new term: leaseTransitions 1');
my $na = main::instance_of_lease();
ok($na =~ /^[0-9a-f]{32}$/ && $na ne $main::NonceB, "the Lease carries a's own nonce");
is(scalar @{ log_lines($main::Conflict) }, 1, 'still one clash logged');
--- request
GET /leader
--- response_body_filters eval
sub { my $s = Kle::Emulator::json_decode($_[0]);
      CORE::join ' ', map { "$_=" . ($s->{$_} ? 'true' : 'false') }
                qw(is_leader identity_conflict) }
--- response_body eval
"is_leader=true identity_conflict=false"
--- error_log
started leading (transitions 1)
--- no_error_log
[alert]
[crit]



=== TEST 4: b restarts (a new instance): it sees a renew, logs the clash once, and never leads
--- init
my $since = last_seq();
$main::B->start;
wait_until(6, sub { my $s = $main::B->status; $s && $s->{identity_conflict} });
my ($one, $who) = main::sample(10, 4);
is($one, 10, 'exactly one leader in each of 10 samples over 4 s');
is($who, join(',', ('a') x 10), 'a led throughout');
my $na = main::instance_of_lease();
my @by_b = grep { ($_->{body}{metadata}{annotations}{'leader-election.nginx.org/instance'} // '') ne $na }
           @{ requests(since => $since, method => 'PUT', path => '/leases/twin') };
is(scalar @by_b, 0, 'b never wrote while a renewed');
my @clash = ($main::B->error_log =~ /$main::Conflict/g);
is(scalar @clash, 1, "b logged the clash once");
my $sb = $main::B->status;
ok($sb && $sb->{identity_conflict} && !$sb->{is_leader}, "b's status: conflict, not leading");
--- request
GET /vars
--- response_body_like
^1 1$
--- no_error_log
[alert]
[crit]
