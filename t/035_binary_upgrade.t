# A binary upgrade (SIGUSR2) starts a second master with the same
# configuration, so the same identity: a new instance.  The old master
# hands its instance nonce to the new one (in the environment), so the new
# elector waits for the old one's record without calling it a clash, and
# writes nothing while the old one renews; once the old master quits (and
# releases), the new one takes the lock, in a new term.

use Kle::Emulator;
use Kle::Nginx;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);
use File::Spec ();
use POSIX qw(SIGUSR2 SIGQUIT);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

my ($Bin) = grep { -x } map { File::Spec->catfile($_, 'nginx') }
                          split /:/, $ENV{PATH};
die "no nginx in PATH\n" unless $Bin;

our $U = Kle::Nginx->new(name => 'u', master => 1, workers => 2,
                         bin => $Bin, http_config => <<"_EOC_", config => <<'_EOC_');
    leader_election web {
        lock            leases default/upgrade;
        identity        up;
        lease_duration  4s;
        renew_deadline  3s;
        retry_period    1s;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_
        location = /vars {
            return 200 "$pid $leader_election_is_leader\n";
        }
_EOC_

sub nonce {
    my $o = get_object('leases', 'default', 'upgrade') or return '';
    return $o->{metadata}{annotations}{'leader-election.nginx.org/instance'}
           // '';
}

sub ppid_of {
    my $pid = shift;
    open my $in, '<', "/proc/$pid/stat" or return 0;
    my $st = <$in> // '';
    close $in;
    return $st =~ /\)\s+\S+\s+(\d+)/ ? $1 : 0;
}

# n requests: how many each master's workers answered, and how many of the
# new master's said leader.
sub sample {
    my ($old, $new, $n) = @_;
    my %r = (old => 0, new => 0, new_leader => 0, old_leader => 0);
    for (1 .. $n) {
        my (undef, $v) = $U->get('/vars');
        my ($pid, $l) = ($v // '') =~ /^(\d+) ([01])/ or next;
        my $m = ppid_of($pid);
        my $who = $m == $old ? 'old' : $m == $new ? 'new' : next;
        $r{$who}++;
        $r{"${who}_leader"}++ if $l;
        sleep 0.02;
    }
    return \%r;
}

plan tests => 14;

run_tests();

__DATA__

=== TEST 1: USR2: the old master leads, the new one waits; QUIT the old one: the new one takes over
--- config
    location = /t {
        return 200 "ok\n";
    }
--- init
$main::U->start;
my $old = $main::U->pid;
wait_until(6, sub { (($main::U->get('/vars'))[1] // '') =~ / 1$/ })
    or die "u did not lead:\n" . $main::U->error_log;
my $n_old = main::nonce();
like($n_old, qr/^[0-9a-f]{32}$/, "the old master's nonce is on the Lease");
my $t0 = lease_spec('default', 'upgrade')->{leaseTransitions};
my $since = last_seq();

kill SIGUSR2, $old;
my $new;
wait_until(10, sub { $new = $main::U->pid; $new && $new != $old })
    or die "no new master:\n" . $main::U->error_log;
# the new master's elector has read the lock
wait_until(10, sub { $main::U->error_log =~ /previous nginx master \(instance $n_old, binary upgrade\) holds identity "up"/ });
like($main::U->error_log, qr/\[notice\] [^\n]*the previous nginx master \(instance $n_old, binary upgrade\) holds identity "up": waiting/,
     'the new master knows the old one: notice');

my $r = main::sample($old, $new, 150);
ok($r->{new} > 0 && $r->{old} > 0, "both masters answered ($r->{old} old, $r->{new} new)");
is($r->{new_leader}, 0, "the new master's workers never said leader");
is($r->{old_leader}, $r->{old}, "the old master's workers said leader throughout");
my @foreign = grep { ($_->{body}{metadata}{annotations}{'leader-election.nginx.org/instance'} // '') ne $n_old }
              @{ requests(since => $since, method => 'PUT', path => '/leases/upgrade') };
is(scalar @foreign, 0, 'the new master wrote nothing while the old one renewed');
unlike($main::U->error_log, qr/identity conflict/, 'no clash reported');

# the old master quits and releases; the new one takes the lock
my $tq = time;
kill SIGQUIT, $old;
my $n_new;
wait_until(10, sub { $n_new = main::nonce(); $n_new ne $n_old && lease_spec('default', 'upgrade')->{holderIdentity} eq 'up' });
my $took = time - $tq;
ok($n_new =~ /^[0-9a-f]{32}$/ && $n_new ne $n_old, "the Lease carries the new master's nonce");
ok($took < 4, sprintf('the new master took over %.2f s after QUIT (a release, not an expiry)', $took));
is(lease_spec('default', 'upgrade')->{leaseTransitions}, $t0 + 1, 'a new term');
wait_until(5, sub { my $r = main::sample($old, $new, 5); $r->{new} && $r->{new_leader} == $r->{new} });
$r = main::sample($old, $new, 20);
ok($r->{new} > 0 && $r->{new_leader} == $r->{new} && $r->{old} == 0,
   "now only the new master answers, as leader ($r->{new_leader}/$r->{new})");
unlike($main::U->error_log, qr/\[(?:error|alert|crit|emerg)\]/, 'no error in the log');
$main::U->stop;
--- request
GET /t
--- response_body
ok
