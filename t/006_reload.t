# nginx -s reload (SIGHUP to the master) keeps the leadership: the new
# worker generation takes over the role and renews the same record, with
# no transition and no release on the Lease, and every worker answers
# is_leader 1 throughout.

use Kle::Emulator;
use Kle::Hooks;
use Kle::Status;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');
master_on();
workers(2);

# Sends SIGHUP to the master and samples /vars every 50 ms until the
# elector pid in the status page changed and the new elector renewed twice.
# Returns (samples that were not "1 r1\n", old elector pid, new one).
sub reload_and_watch {
    my ($expect) = @_;
    my $old = nginx_status()->{elector_pid};
    my $master = Test::Nginx::Util::get_pid_from_pidfile('');
    my $since = @{ requests() } ? requests()->[-1]{seq} : 0;
    kill 'HUP', $master;
    my ($bad, $new, $n) = ('', undef, 0);
    my $deadline = time + 8;
    while (time < $deadline) {
        my ($code, $body, $took) = nginx_get('/vars');
        $n++;
        $bad .= "[$code $body]" if $code != 200 || $body ne $expect;
        my $s = nginx_status();
        $new = $s->{elector_pid} if $s && $s->{elector_pid} != $old;
        last if $new && @{ requests(since => $since, method => 'PUT',
                                    path => '/leases/reload') } >= 3;
        sleep 0.05;
    }
    return ($bad, $old, $new, $since, $n);
}

plan tests => 47;

run_tests();

__DATA__

=== TEST 1: leading under a master with two workers
--- http_config
    leader_election web {
        lock            leases default/reload;
        identity        r1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
        on_new_leader       http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hooks/new_leader;
        on_started_leading  http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hooks/started_leading;
        on_stopped_leading  http://127.0.0.1:$TEST_NGINX_HOOK_PORT/hooks/stopped_leading;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
wait_until(5, sub { my $s = nginx_status(); $s && $s->{is_leader} && @{ hooks_received() } >= 2 });
is(join(',', map { $_->{body}{event} } sort { $a->{body}{time} cmp $b->{body}{time} } @{ hooks_received() }),
   'new_leader,started_leading', 'hooks on acquiring');
--- request eval
["GET /vars", "GET /vars", "GET /vars", "GET /vars"]
--- response_body eval
["1 r1\n", "1 r1\n", "1 r1\n", "1 r1\n"]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: a reload: no transition, no release, leading throughout
--- init
hooks_clear();
our $Before = get_object('leases', 'default', 'reload');
my ($bad, $old, $new, $since, $n) = main::reload_and_watch("1 r1\n");
is($bad, '', "every one of $n answers during the reload was \"1 r1\"");
ok($new && $new != $old, "the elector moved to the new worker ($old -> " . ($new // 'none') . ")");
ok(!kill(0, $old), "the old elector worker $old has exited");
my $after = get_object('leases', 'default', 'reload');
is($after->{spec}{holderIdentity}, 'r1', 'holderIdentity unchanged');
is($after->{spec}{leaseTransitions}, $Before->{spec}{leaseTransitions}, 'leaseTransitions unchanged');
is($after->{spec}{acquireTime}, $Before->{spec}{acquireTime}, 'acquireTime unchanged');
ok($after->{spec}{renewTime} gt $Before->{spec}{renewTime}, 'renewed by the new elector');
my @writes = @{ requests(since => $since, path => '/leases/reload') };
my @release = grep { $_->{method} eq 'PUT'
                     && ($_->{body}{spec}{holderIdentity} ne 'r1'
                         || $_->{body}{spec}{leaseDurationSeconds} != 3
                         || $_->{body}{spec}{acquireTime} ne $Before->{spec}{acquireTime}) }
               @writes;
is(scalar @release, 0, 'no release and no new acquisition written');
my @failed = grep { $_->{code} != 200 } @writes;
is(scalar @failed, 0, 'no failed (409) write: the two generations did not race');
is(join(',', map { $_->{body}{event} } @{ hooks_received() }), '',
   'no hook fired: the instance never stopped leading');
--- request
GET /vars
--- response_body
1 r1
--- no_error_log
stopped leading
[error]
[alert]
[crit]



=== TEST 3: a reload with a changed configuration keeps leading too
--- init
my $conf = "$ENV{TEST_NGINX_SERVER_ROOT}/conf/nginx.conf";
open my $in, '<', $conf or die $!;
my $text = do { local $/; <$in> };
close $in;
$text =~ s{return 200 "\$leader_election_is_leader \$leader_election_holder\\n";}
          {return 200 "v2 \$leader_election_is_leader \$leader_election_holder\\n";}
    or die "cannot edit $conf";
open my $out, '>', $conf or die $!;
print $out $text;
close $out;
my $before = get_object('leases', 'default', 'reload');
my ($bad, $old, $new) = main::reload_and_watch("v2 1 r1\n");
like($bad, qr/^(?:\[200 1 r1\n\])*$/, 'answers were "1 r1", then "v2 1 r1" from the new configuration');
ok($new && $new != $old, 'a new elector');
my $after = lease_spec('default', 'reload');
is($after->{leaseTransitions}, $before->{spec}{leaseTransitions}, 'leaseTransitions unchanged');
is($after->{acquireTime}, $before->{spec}{acquireTime}, 'acquireTime unchanged');
--- request
GET /vars
--- response_body
v2 1 r1
--- no_error_log
stopped leading
[error]
[alert]
[crit]
